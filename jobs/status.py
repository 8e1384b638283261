"""What a job is doing, read from its folder alone (no database): the job list's one source of truth.

``starting``  spec written, the process has not recorded itself yet
``queued``    waiting for its GPU
``running``   the recorded process is alive (same pid *and* start time, same boot)
``done``      exit code 0 (its outputs are ingested, or will be the next time anyone looks)
``failed``    non-zero exit code, or its outputs could not be ingested
``cancelled`` asked to stop and stopped
``lost``      the process is gone without an exit code (killed, machine rebooted)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orienteer.jobs.procinfo import boot_id, is_alive
from orienteer.jobs.store import JobDir, read_json

STARTING_GRACE_S = 15.0
ACTIVE = ("starting", "queued", "running")


@dataclass
class Progress:
    done: int = 0
    total: int | None = None
    unit: str = "items"
    note: str = ""
    rate: float | None = None
    eta_s: float | None = None
    last_t: float | None = None  # when the last record was written

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


@dataclass
class JobView:
    job_id: str
    kind: str
    status: str
    params: dict[str, Any]
    argv: list[str]
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    gpu: str | None = None
    device: str | None = None  # where it really runs ("cuda" or "cpu"), once the job has started
    progress: Progress = field(default_factory=Progress)
    ingest: dict[str, Any] | None = None

    @property
    def elapsed_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def awaiting_ingest(self) -> bool:
        """Ended well, but nobody has ingested its outputs yet."""
        return self.status == "done" and self.ingest is None

    @property
    def where(self) -> str:
        """Where it runs: ``cpu``, or ``gpu N`` once it really runs on that GPU (or is meant to)."""
        return "cpu" if self.gpu is None or self.device == "cpu" else f"gpu {self.gpu}"


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m07s``, ``2h05m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


PROGRESS_WINDOW = 20  # the rate is taken over the last this many records
_PROGRESS_TAIL_BYTES = 16 * 1024  # enough for them: records are about 100 bytes


def _progress_lines(path: Path) -> list[bytes]:
    """The first line and the last lines of ``progress.jsonl``, without reading a long file whole."""
    with open(path, "rb") as fh:
        first = fh.readline()
        size = fh.seek(0, 2)
        start = max(len(first), size - _PROGRESS_TAIL_BYTES)
        fh.seek(start)
        rest = fh.read().splitlines()
    if start > len(first) and rest:
        rest = rest[1:]  # begins mid-record
    return [first, *rest[-PROGRESS_WINDOW:]] if first else []


def read_progress(job: JobDir) -> Progress:
    """The last progress record, with the rate over this run's records and the ETA it implies."""
    try:
        lines = _progress_lines(job.progress_path)
    except FileNotFoundError:
        return Progress()
    records = []
    for raw in lines:
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    if not records:
        return Progress()
    first, last = records[0], records[-1]
    progress = Progress(int(last.get("done") or 0), last.get("total"), last.get("unit") or "items", last.get("note") or "")
    try:
        progress.last_t = float(last["t"])
    except (KeyError, TypeError, ValueError):
        pass
    window = records[-PROGRESS_WINDOW:]
    span_t = float(window[-1]["t"]) - float(window[0]["t"])
    span_n = int(window[-1].get("done") or 0) - int(window[0].get("done") or 0)
    if span_t <= 0 or span_n <= 0:
        span_t = float(last["t"]) - float(first["t"])
        span_n = int(last.get("done") or 0) - int(first.get("done") or 0)
    if span_t > 0 and span_n > 0:
        progress.rate = span_n / span_t
        if progress.total:
            progress.eta_s = max(0.0, (progress.total - progress.done) / progress.rate)
    return progress


ENDED_WITHOUT_SUCCESS = ("failed", "cancelled", "lost")


def _last_sign_of_life(job: JobDir, view: JobView) -> float | None:
    """When a job that vanished without an exit record was last seen working: its last progress record,
    or the last write to its log or state (never before it started)."""
    seen = [view.progress.last_t] if view.progress.last_t is not None else []
    for path in (job.log_path, job.state_path):
        try:
            seen.append(path.stat().st_mtime)
        except OSError:
            pass
    if view.started_at is None:
        return max(seen, default=None)
    return max([float(view.started_at), *seen])


def _settle(job: JobDir, view: JobView) -> JobView:
    """A job that ended without success has no rate or ETA; one that ended without an exit record (lost,
    or cancelled before it wrote one) has its elapsed time frozen where it was last seen working."""
    if view.status in ENDED_WITHOUT_SUCCESS:
        view.progress.rate = None
        view.progress.eta_s = None
        if view.ended_at is None:
            view.ended_at = _last_sign_of_life(job, view)
    return view


def job_view(job: JobDir) -> JobView:
    """The job's status, progress and outcome, from its folder."""
    return _settle(job, _job_view(job))


def _job_view(job: JobDir) -> JobView:
    spec = job.spec()
    state = job.state()
    exit_info = job.exit()
    view = JobView(
        job_id=job.job_id, kind=spec["kind"], status="starting", params=spec.get("params", {}),
        argv=spec.get("argv", []), created_at=float(spec.get("created_at") or 0),
        gpu=(state or {}).get("gpu", spec.get("params", {}).get("gpu")), device=(state or {}).get("device"),
        started_at=(state or {}).get("started_at"), progress=read_progress(job), ingest=read_json(job.ingest_path),
    )
    if exit_info is not None:
        view.exit_code = int(exit_info.get("code", 1))
        view.ended_at = exit_info.get("ended_at")
        view.error = exit_info.get("error")
        if exit_info.get("cancelled"):
            view.status = "cancelled"
        elif view.exit_code == 0:
            view.status = "done"
            if view.ingest is not None and not view.ingest.get("ok", True):
                view.status = "failed"
                view.error = f"ingest: {view.ingest.get('error')}"
        else:
            view.status = "failed"
        return view
    if state is None:
        if time.time() - view.created_at < STARTING_GRACE_S:
            view.status = "starting"
        else:
            view.status = "cancelled" if job.cancel_path.exists() else "lost"
        return view
    same_boot = state.get("boot_id") is None or state.get("boot_id") == boot_id()
    if same_boot and is_alive(int(state.get("pid") or 0), state.get("ticks")):
        view.status = "queued" if state.get("phase") == "queued" else "running"
        return view
    if job.exit() is not None:
        return _job_view(job)  # it wrote exit.json and ended between the two reads: not lost
    view.status = "cancelled" if job.cancel_path.exists() else "lost"
    view.error = "the job process vanished without an exit code (killed, or the machine restarted)"
    return view


def tail(path: Any, n: int = 5) -> list[str]:
    """The last ``n`` lines of a text file (empty when it does not exist)."""
    return tail_and_end(path, n)[0]


def tail_and_end(path: Any, n: int) -> tuple[list[str], int]:
    """The last ``n`` lines (read from at most the last 64 KB) and the offset where they end, so a
    follower can continue from exactly there."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, 2)
            fh.seek(max(0, end - 64 * 1024))
            data = fh.read(end - fh.tell()).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], 0
    return data.splitlines()[-n:], end
