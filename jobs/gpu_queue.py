"""Jobs that need a GPU take turns per GPU: an exclusive ``flock`` on ``jobs/.gpu-N.lock``.

The kernel releases the lock when the holder exits, however it exits (SIGKILL included), so a
crashed job never blocks the queue. Waiters are served in no particular order; the TUI shows
them as queued.
"""

from __future__ import annotations

import fcntl
import os
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
