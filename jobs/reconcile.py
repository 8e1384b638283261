"""Bring the workspace up to date with the jobs: ingest every finished job's outputs once.

Any orienteer process may call this (the job itself when it ends, ``job list``, the TUI's timer).
A per-job ``flock`` keeps two processes of this machine from staging the same outputs at once;
the ``job_ingests`` table, checked inside the writing transaction, makes it exactly once anyway.
A busy workspace is not an error: the next call tries again.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from orienteer.data.errors import OrienteerError, WorkspaceBusyError
from orienteer.data.job_ingest import ingest_job
from orienteer.data.job_outputs import read_manifest
from orienteer.data.workspace import Workspace
from orienteer.jobs.status import JobView, job_view
from orienteer.jobs.store import JobDir, list_job_dirs, read_json, write_json


def ingest_finished(ws: Workspace, job: JobDir) -> str | None:
    """Ingest ``job``'s outputs if it ended well and nobody has; returns a line saying what happened."""
    exit_info = job.exit()
    if exit_info is None or exit_info.get("code") != 0 or exit_info.get("cancelled"):
        return None
    recorded = read_json(job.ingest_path)
    if recorded is not None:
        return None
    if read_manifest(job.out_dir) is None:
        write_json(job.ingest_path, {"ok": False, "error": "the job ended without writing its manifest"})
        return "no manifest"
    fd = os.open(job.path / "ingest.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process of this machine is ingesting it right now
        if read_json(job.ingest_path) is not None:
            return None
        spec = job.spec()
        try:
            result = ingest_job(ws, job.job_id, spec["kind"], job.out_dir)
        except WorkspaceBusyError:
            return "workspace busy; will retry"
        except Exception as exc:  # noqa: BLE001 - recorded on the job, shown in the jobs table
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            write_json(job.ingest_path, {"ok": False, "error": message})
            return f"failed: {message}"
        write_json(job.ingest_path, result.as_dict())
        return "; ".join(result.summary) or "nothing to ingest"
    finally:
        os.close(fd)


def reconcile(ws: Workspace, ingest: bool = True) -> list[JobView]:
    """Every job's current view, newest first, ingesting finished jobs on the way."""
    from orienteer.jobs.runner import reap_children

    reap_children()
    views: list[JobView] = []
    jobs = list_job_dirs(ws)
    _ask_slurm(jobs)
    for job in jobs:
        try:
            if ingest:
                ingest_finished(ws, job)
            views.append(job_view(job))
        except OrienteerError:
            continue
    return views


def _ask_slurm(jobs: list[JobDir]) -> None:
    """One squeue call for every Slurm job that has not ended yet (the views below read its answer)."""
    from orienteer.jobs.slurm import QUEUE, unsettled_ids

    ids = unsettled_ids(jobs)
    if ids:
        QUEUE.prefetch(ids)


def summary_line(view: JobView) -> dict[str, Any]:
    """A JSON-friendly row for ``job list --json``."""
    p = view.progress
    return {
        "job_id": view.job_id, "kind": view.kind, "status": view.status, "gpu": view.gpu, "device": view.device,
        "done": p.done, "total": p.total, "unit": p.unit, "rate": p.rate, "eta_s": p.eta_s,
        "elapsed_s": view.elapsed_s, "exit_code": view.exit_code, "error": view.error,
        "ingest": view.ingest, "argv": view.argv, "runner": view.runner, "slurm_job_id": view.slurm_job_id,
        "node": view.node, "slurm_state": view.slurm_state, "reason": view.reason,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m orienteer.jobs.reconcile JOB_DIR``: ingest one finished job in a process of its own.

    The TUI uses this rather than ingesting in its own process, whose read-only connection to the
    same file must not meet a read-write one.
    """
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orienteer.jobs.reconcile JOB_DIR", file=sys.stderr)
        return 2
    job = JobDir(Path(args[0]))
    spec = job.spec()
    line = ingest_finished(Workspace(spec["workspace"]), job)
    print(line or "nothing to do")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
