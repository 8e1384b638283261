"""What a job is doing, read from its folder alone (no database): the job list's one source of truth.

``starting``  spec written, the process has not recorded itself yet
``queued``    waiting for its GPU
``running``   the recorded process is alive (same pid *and* start time, same boot)
``done``      exit code 0 (its outputs are ingested, or will be the next time anyone looks)
``failed``    non-zero exit code, or its outputs could not be ingested
``cancelled`` asked to stop and stopped
``lost``      the process is gone without an exit code (killed, machine rebooted)

A Slurm job (``runner`` slurm in its spec) is read the same way once it has written ``exit.json``;
until then its liveness is Slurm's, not a pid's (the process runs on another machine): PENDING is
``queued`` with Slurm's reason, RUNNING is ``running`` on its node, and a job Slurm ended (TIMEOUT,
OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, CANCELLED...) is ``failed`` or ``cancelled`` with that state named;
one that ended without an exit record this machine can see reads ``running`` ("finishing") for a grace
period first (``jobs.slurm.settle``: a shared file system may show the worker's record late).
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
    runner: str = "local"
    slurm_job_id: str | None = None
    node: str | None = None  # the Slurm node it runs (or ran) on
    slurm_state: str | None = None  # Slurm's state of it (PENDING, RUNNING, TIMEOUT...), when asked
    reason: str | None = None  # why Slurm keeps it pending (Resources, Priority...), or that it is finishing

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
        """Where it runs: ``cpu``, or ``gpu N`` once it really runs on that GPU (or is meant to); a Slurm
        job: ``slurm NODE`` once it has one, else ``slurm #ID``."""
        if self.runner == "slurm":
            return f"slurm {self.node}" if self.node else (f"slurm #{self.slurm_job_id}" if self.slurm_job_id else "slurm")
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
    view.runner = str(view.params.get("runner") or "local")
    if view.runner == "slurm":
        return _slurm_view(job, view, state, exit_info)
    if exit_info is not None:
        return _ended(view, exit_info)
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


def _ended(view: JobView, exit_info: dict[str, Any]) -> JobView:
    """The view of a job whose ``exit.json`` says how it ended."""
    view.exit_code = int(exit_info.get("code", 1))
    view.ended_at = exit_info.get("ended_at")
    view.error = exit_info.get("error")
    view.slurm_state = exit_info.get("slurm_state") or view.slurm_state
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


def _slurm_view(job: JobDir, view: JobView, state: dict[str, Any] | None, exit_info: dict[str, Any] | None) -> JobView:
    """A Slurm job: its own ``exit.json`` when it wrote one, else what Slurm says (``jobs.slurm``)."""
    from orienteer.jobs.slurm import QUEUE, settle, slurm_job_id

    view.slurm_job_id = slurm_job_id(job)
    view.node = (state or {}).get("node")
    if exit_info is not None and not exit_info.get("slurm_signal"):
        return _ended(view, exit_info)
    if view.slurm_job_id is None:  # sbatch has not answered yet (or the folder lost slurm.json)
        if time.time() - view.created_at < STARTING_GRACE_S:
            return view
        view.status = "lost"
        view.error = "no Slurm job id was recorded for this job"
        return view
    info = QUEUE.lookup(view.slurm_job_id)
    if info is None:  # Slurm no longer knows it
        exit_info = job.exit()
        if exit_info is not None:
            return _ended(view, exit_info)
        view.status = "cancelled" if job.cancel_path.exists() else "lost"
        view.error = f"Slurm no longer knows job {view.slurm_job_id} and it left no exit record"
        return view
    view.slurm_state = info.state
    view.node = info.node or view.node
    if info.ended:
        settled = settle(job, info)
        if settled is not None:
            return _ended(view, settled)
        view.status = "running"  # ended for Slurm, but its exit record may not be visible here yet
        view.reason = f"finishing: Slurm says {info.state}; waiting for the job's exit record"
        return view
    if info.pending:
        view.status = "queued"
        view.reason = info.reason or None
        view.node = None
    elif info.running:
        view.status = "running"
    else:  # squeue could not be asked: the folder's word
        view.status = "queued" if state is None or state.get("phase") == "queued" else "running"
        view.reason = info.reason
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
