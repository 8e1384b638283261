"""Jobs that need a GPU take turns per GPU: an exclusive ``flock`` on ``jobs/.gpu-N.lock``.

The kernel releases the lock when the holder exits, however it exits (SIGKILL included), so a
crashed job never blocks the queue. Waiters are served in no particular order; the TUI shows
them as queued. A job spread over several GPUs (``--gpus``) holds one lock per GPU
(``GpuLocks``), always taken in sorted order: two jobs that want overlapping sets then never
hold one GPU each while waiting for the other's (the classic lock-ordering rule).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path


class GpuLock:
    def __init__(self, jobs_dir: Path, gpu: str) -> None:
        self.path = jobs_dir / f".gpu-{gpu}.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self) -> None:
        """Block until this process holds the GPU (a signal handler may interrupt the wait)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class GpuLocks:
    """The locks of every GPU a job runs on, taken in sorted order (no deadlock between jobs)."""

    def __init__(self, jobs_dir: Path, gpus: Sequence[str]) -> None:
        self.gpus = tuple(sorted(set(gpus), key=_gpu_order))
        self._locks = [GpuLock(jobs_dir, gpu) for gpu in self.gpus]

    def try_acquire(self) -> bool:
        """All of them now, or none (those taken are given back): a job never half-holds its GPUs
        without being queued."""
        taken: list[GpuLock] = []
        for lock in self._locks:
            if not lock.try_acquire():
                for held in reversed(taken):
                    held.release()
                return False
            taken.append(lock)
        return True

    def acquire(self) -> None:
        """Block until this process holds every GPU; waiting in sorted order avoids deadlock."""
        for lock in self._locks:
            lock.acquire()

    def release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()


def _gpu_order(gpu: str) -> tuple[int, int | str]:
    return (0, int(gpu)) if gpu.isdigit() else (1, gpu)


def job_gpus(gpu: str | None, gpus: object = None) -> tuple[str, ...]:
    """The GPUs a job with runtime ``gpu`` (normalised) and ``--gpus`` runs on, sorted, each once
    (none on the CPU). Raises ``OrienteerError`` for a ``--gpus`` that cannot work with ``gpu``."""
    from orienteer.jobs.gpus import gpu_plan

    if gpu is None and gpus in (None, "", "1", 1):
        return ()
    return tuple(sorted(set(gpu_plan(gpu, gpus if gpus not in (None, "") else "1").gpus), key=_gpu_order))


def normalize_gpu(value: object, needs_gpu: bool) -> str | None:
    """``--gpu`` as stored in the spec: an index string, or ``None`` for the CPU."""
    if value is None or value == "":
        if not needs_gpu:
            return None
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        return visible or "0"
    text = str(value).strip().lower()
    if text in ("none", "cpu", "-1"):
        return None
    return text
