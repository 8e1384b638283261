"""The job process: ``python -m orienteer.jobs.worker JOB_DIR``, started detached by a runner.

It records who it is (pid + start time + boot id), waits for its GPU if it needs one, runs the
kind, writes the manifest and ``exit.json``, then ingests its outputs. stdout and stderr are the
job's log. SIGTERM asks the kind to stop at its next check (a canceller escalates to SIGKILL).

Under the Slurm runner (``jobs.slurm``) the same process runs on a compute node: it records the Slurm
job id and node, takes no GPU lock and keeps Slurm's ``CUDA_VISIBLE_DEVICES`` (``--gres`` queues GPU
jobs there), and a SIGTERM without the ``cancel`` file (time limit, preemption) is recorded as a stop
by Slurm, never as a cancel: the state Slurm ends the job in is filled in by ``jobs.slurm.settle``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from orienteer.data.job_outputs import write_manifest
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobCancelled, JobContext
from orienteer.jobs.gpu_queue import GpuLocks, job_gpus
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.procinfo import boot_id, start_ticks
from orienteer.jobs.store import JobDir, resume_dir, write_json


def _record_state(job: JobDir, phase: str, gpu: str | None, started_at: float, device: str | None = None) -> None:
    state = {
        "pid": os.getpid(), "ticks": start_ticks(os.getpid()), "boot_id": boot_id(), "phase": phase,
        "gpu": gpu, "device": device, "started_at": started_at, "host": os.uname().nodename,
    }
    if _on_slurm(job):
        state |= {"slurm_job_id": os.environ.get("SLURM_JOB_ID"), "node": os.environ.get("SLURMD_NODENAME"),
                  "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    write_json(job.state_path, state)


def _on_slurm(job: JobDir) -> bool:
    """Whether this job was submitted through the Slurm runner (and this process is its batch step)."""
    return (job.spec().get("params") or {}).get("runner") == "slurm" and bool(os.environ.get("SLURM_JOB_ID"))


SLURM_STOP = "stopped by Slurm (SIGTERM without a cancel request: time limit, preemption or an outside scancel)"


def _device(gpu: str | None, needs_gpu: bool) -> str:
    if gpu is None or not needs_gpu:
        return "cpu"
    from orienteer.jobs.model.loading import cuda_available

    available = cuda_available()
    if available is None:  # no torch: nothing but the CPU
        return "cpu"
    if available:
        return "cuda"
    print(f"note: no CUDA device is visible (CUDA_VISIBLE_DEVICES={gpu}); running on the CPU", flush=True)
    return "cpu"


def run_job(job_dir: Path) -> int:
    job = JobDir(job_dir)
    spec = job.spec()
    kind = get_kind(spec["kind"])
    params = spec["params"]
    ws = Workspace(spec["workspace"])
    gpu = params.get("gpu")
    started_at = time.time()
    ctx = JobContext(
        job_id=job.job_id, kind=kind.name, params=params, workspace=ws, job_dir=job.path,
        out_dir=job.out_dir, resume_dir=resume_dir(ws, kind.name, params), _progress_path=job.progress_path,
    )
    queued = {"waiting": False}

    def on_term(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop()
        if queued["waiting"]:
            raise JobCancelled("cancelled while queued")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end the job
    lock: GpuLocks | None = None
    try:
        held = job_gpus(gpu, params.get("gpus"))  # every GPU of the job's --gpus plan, sorted
        if _on_slurm(job):
            held = ()  # Slurm's --gres queued the job and set CUDA_VISIBLE_DEVICES: no flock, no override
        shown = ",".join(held) if len(held) > 1 else gpu  # what the jobs screen shows: every GPU the job holds
        if held:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(held)
            lock = GpuLocks(ws.dir("jobs"), held)
            if not lock.try_acquire():
                _record_state(job, "queued", shown, started_at)
                print(f"[{time.strftime('%H:%M:%S')}] queued: waiting for GPU {','.join(held)}", flush=True)
                queued["waiting"] = True
                lock.acquire()
                queued["waiting"] = False
        _record_state(job, "running", shown, started_at)
        if job.cancel_path.exists():
            raise JobCancelled("cancelled before it started")
        ctx.device = _device(gpu, kind.needs_gpu)
        _record_state(job, "running", shown, started_at, ctx.device)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{time.strftime('%H:%M:%S')}] job {job.job_id}: {kind.name} on {ctx.device}", flush=True)
        kind.run(ctx)
        if ctx.should_stop():
            raise JobCancelled("cancelled")
        write_manifest(ctx.out_dir, ctx.outputs)
        write_json(job.exit_path, {"code": 0, "cancelled": False, "ended_at": time.time()})
    except (JobCancelled, KeyboardInterrupt) as exc:
        if _on_slurm(job) and not job.cancel_path.exists():
            print(f"[{time.strftime('%H:%M:%S')}] {SLURM_STOP}", flush=True)
            write_json(job.exit_path, {"code": 143, "cancelled": False, "ended_at": time.time(), "error": SLURM_STOP,
                                       "slurm_signal": True})
            return 143
        print(f"[{time.strftime('%H:%M:%S')}] cancelled: {exc}", flush=True)
        write_json(job.exit_path, {"code": 130, "cancelled": True, "ended_at": time.time(), "error": "cancelled"})
        return 130
    except BaseException as exc:  # noqa: BLE001 - the job's last word must reach exit.json
        traceback.print_exc()
        sys.stderr.flush()
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        write_json(job.exit_path, {"code": 1, "cancelled": False, "ended_at": time.time(), "error": error})
        return 1
    finally:
        if lock is not None:
            lock.release()
    from orienteer.jobs.reconcile import ingest_finished

    result = ingest_finished(ws, job)
    if result is not None:
        print(f"[{time.strftime('%H:%M:%S')}] ingest: {result}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m orienteer.jobs.worker JOB_DIR", file=sys.stderr)
        return 2
    return run_job(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
