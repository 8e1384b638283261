"""Watches the workspace's jobs for the app: views for the jobs screen, events for notifications.

Runs in a worker thread (file reads only). Finished jobs whose outputs are not in the workspace
yet are ingested by a child process (``python -m orienteer.jobs.reconcile``): the app's own
read-only DuckDB connection must not meet a read-write one in the same process.
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

    def refresh(self) -> list[JobEvent]:
        """Re-read every job; returns what changed since the last call (nothing on the first call)."""
        from orienteer.jobs.reconcile import reconcile  # the ingest code is not needed at start-up

        with self._lock:
            views = reconcile(self.ws, ingest=False)
            for view in views:
                if view.status == "done" and view.ingest is None and view.ended_at is not None and time.time() - view.ended_at > 3:
                    self._ingest_elsewhere(view)
            views = reconcile(self.ws, ingest=False) if any(v.status == "done" and v.ingest is None for v in views) else views
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

    def _ingest_elsewhere(self, view: JobView) -> None:
        job_dir = self.ws.root / "jobs" / view.job_id
        subprocess.run(
            [sys.executable, "-m", "orienteer.jobs.reconcile", str(job_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False,
        )
