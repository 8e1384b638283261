"""Watches the workspace's jobs for the app: views for the jobs screen, events for notifications.

Runs in a worker thread (file reads only). Finished jobs whose outputs are not in the workspace
yet are ingested by a child process (``python -m orienteer.jobs.reconcile``), never waited for:
the app's own read-only DuckDB connection must not meet a read-write one in the same process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orienteer.data.workspace import Workspace

if TYPE_CHECKING:
    from orienteer.jobs.status import JobView

INGEST_TIMEOUT_S = 120.0  # an ingest child still busy after this long is stopped (the next refresh starts another)


@dataclass(frozen=True)
class JobEvent:
    view: "JobView"
    what: str  # "done", "failed", "lost", "cancelled", "ingested"


class JobsMonitor:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.views: list["JobView"] = []
        self._last: dict[str, tuple[str, bool]] = {}
        self._lock = threading.Lock()
        self._first = True
        self._ingesting: dict[str, tuple[subprocess.Popen[bytes], float]] = {}  # job id -> (child, started)

    def refresh(self) -> list[JobEvent]:
        """Re-read every job; returns what changed since the last call (nothing on the first call)."""
        from orienteer.jobs.reconcile import reconcile  # the ingest code is not needed at start-up

        with self._lock:
            self._reap_ingests()
            views = reconcile(self.ws, ingest=False)
            self._start_ingests(views)
            events: list[JobEvent] = []
            for view in views:
                key = (view.status, view.ingest is not None)
                before = self._last.get(view.job_id)
                if not self._first and before != key:
                    if before is None or before[0] != view.status:
                        if not view.active:
                            events.append(JobEvent(view, view.status))
                    if view.ingest is not None and (before is None or not before[1]):
                        events.append(JobEvent(view, "ingested"))
                self._last[view.job_id] = key
            self._first = False
            self.views = views
            return events

    def _reap_ingests(self) -> None:
        """Forget ingest children that ended (the job folder holds what they did); stop hung ones."""
        for job_id, (child, started) in list(self._ingesting.items()):
            if child.poll() is None:
                if time.monotonic() - started < INGEST_TIMEOUT_S:
                    continue
                child.kill()
                child.wait()
            del self._ingesting[job_id]

    def _start_ingests(self, views: list["JobView"]) -> None:
        """A child process for each finished job still not ingested a few seconds after it ended.

        Never waits for it (this may run on the UI thread); a later refresh sees what it did.
        """
        from orienteer.jobs.store import job_dir

        for view in views:
            if (view.awaiting_ingest and view.job_id not in self._ingesting and view.ended_at is not None
                    and time.time() - view.ended_at > 3):
                child = subprocess.Popen(
                    [sys.executable, "-m", "orienteer.jobs.reconcile", str(job_dir(self.ws, view.job_id).path)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                self._ingesting[view.job_id] = (child, time.monotonic())
