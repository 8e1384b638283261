"""Runners start and stop job processes: ``local`` (a detached process here) and ``slurm`` (``jobs.slurm``).

Both implement the same methods: the TUI and the CLI only call ``submit``/``cancel`` through
:func:`get_runner` (by way of ``jobs.api``), and read state from the job folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Protocol

from orienteer.jobs.procinfo import is_alive
from orienteer.jobs.store import JobDir, write_json

_CHILDREN: list[subprocess.Popen[bytes]] = []
CANCEL_GRACE_S = 10.0
STARTING_WAIT_S = 15.0


class Runner(Protocol):
    name: str

    def submit(self, job: JobDir) -> None:
        """Start the job described by ``job.spec_path``; returns at once."""

    def cancel(self, job: JobDir, grace_s: float = CANCEL_GRACE_S) -> bool:
        """Ask the job to stop, then make it stop; True when it was running."""


def reap_children() -> None:
    """Collect exit codes of jobs this process started, so they don't linger as zombies."""
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)


class LocalRunner:
    """Runs each job as a detached process on this machine, in its own session and process group.

    The process survives the TUI and the SSH session (new session, SIGHUP ignored, stdin closed).
    The argument vector is a list, never a shell string, so nothing in a spec is ever interpreted
    by a shell.
    """

    name = "local"

    def submit(self, job: JobDir) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("YOLO_OFFLINE", "1")
        env.setdefault("YOLO_AUTOINSTALL", "0")
        with open(job.log_path, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "orienteer.jobs.worker", str(job.path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, env=env, cwd=str(job.path),
            )
        _CHILDREN.append(child)

    def cancel(self, job: JobDir, grace_s: float = CANCEL_GRACE_S) -> bool:
        job.cancel_path.touch()
        state = job.state()
        deadline = time.monotonic() + STARTING_WAIT_S
        while state is None and job.exit() is None and time.monotonic() < deadline:
            # Just started: the process records itself within moments, and then sees the cancel file.
            time.sleep(0.05)
            state = job.state()
        if state is None or job.exit() is not None:
            return False
        pid = int(state.get("pid") or 0)
        ticks = state.get("ticks")
        if not is_alive(pid, ticks):
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            reap_children()
            if not is_alive(pid, ticks):
                return True
            time.sleep(0.05)
        _signal_group(pid, signal.SIGKILL)
        if job.exit() is None:
            write_json(job.exit_path, {"code": -9, "cancelled": True, "ended_at": time.time(), "error": "killed after SIGTERM"})
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


RUNNERS = ("local", "slurm")


def get_runner(name: str = "local") -> Runner:
    """The one door to the runners, by the name a job's spec records."""
    if name == "local":
        return LocalRunner()
    if name == "slurm":
        from orienteer.jobs.slurm import SlurmRunner

        return SlurmRunner()
    from orienteer.data.errors import OrienteerError

    raise OrienteerError(f"--runner: unknown runner {name!r} (expected one of {', '.join(RUNNERS)})")
