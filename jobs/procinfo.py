"""Is a recorded process still the one we started? (pid + start time, so a reused pid is not mistaken.)"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux ``/proc/PID/stat`` field 22)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    rest = raw[raw.rfind(")") + 2:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rfind(")") + 2:].startswith("Z")


def is_alive(pid: int, ticks: int | None) -> bool:
    """True while ``pid`` runs and, when ``ticks`` is known, started at that time (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if is_zombie(pid):
        return False
    if ticks is None:
        return True
    current = start_ticks(pid)
    return current is None or current == ticks


def boot_id() -> str | None:
    """Changes at every reboot: a job recorded under another boot is certainly gone."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child the job starts (torchrun, a serving engine): the kernel sends it SIGTERM
    when the job process dies, however it dies (SIGKILL, the OOM killer), so no orphan keeps writing into
    the resume folder while a re-run starts. Linux only (``prctl(PR_SET_PDEATHSIG)``); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def set_pdeathsig() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_pdeathsig
