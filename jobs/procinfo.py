"""Is a recorded process still the one we started? (pid + start time, so a reused pid is not mistaken.)"""

from __future__ import annotations

import os
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
