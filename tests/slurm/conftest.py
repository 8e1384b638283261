"""A real single-node Slurm for the Slurm runner's tests (``local_cluster.sh``), started once per session.

Started here when it is not running, and stopped at the end only if a test session started it and no other
session (another xdist worker, another pytest) still uses it: each user is a file under the state folder,
and starting, joining and leaving happen under one lock. Without
Slurm's daemons on the machine the tests skip, naming what is missing; with ``ORIENTEER_REQUIRE_SLURM=1``
(CI: ``.ci/run``) they fail instead, so CI can never pass without having run them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CLUSTER = Path(__file__).resolve().parent / "local_cluster.sh"
STATE_DIR = os.environ.get("ORIENTEER_SLURM_DIR", "/tmp/orienteer-slurm")


def _why_not() -> str | None:
    missing = [cmd for cmd in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel") if shutil.which(cmd) is None]
    if missing:
        return f"Slurm is not installed here ({', '.join(missing)} not found: apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "tests/slurm/local_cluster.sh runs Slurm's daemons as root, and this is not root"
    return None


def _cluster(action: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ORIENTEER_SLURM_DIR=STATE_DIR)
    return subprocess.run(["bash", str(CLUSTER), action], capture_output=True, text=True, env=env, timeout=120, check=False)


@contextmanager
def _locked() -> Iterator[None]:
    with open(f"{STATE_DIR}.pytest.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _users() -> Path:
    return Path(STATE_DIR) / "pytest-users"


def _live_users() -> list[Path]:
    live = []
    for user in _users().glob("*"):
        try:
            os.kill(int(user.name), 0)
        except (ValueError, ProcessLookupError):
            user.unlink(missing_ok=True)  # a session that died without leaving
            continue
        except PermissionError:
            pass
        live.append(user)
    return live


def _join() -> None:
    """Start the cluster unless it runs; count this process among its users."""
    with _locked():
        if _cluster("status").returncode != 0:
            done = _cluster("start")
            if done.returncode != 0:
                pytest.fail(f"local Slurm did not start: {done.stderr.strip()[-2000:]}")
            _users().mkdir(parents=True, exist_ok=True)
            (Path(STATE_DIR) / "pytest-started").touch()
        _users().mkdir(parents=True, exist_ok=True)
        (_users() / str(os.getpid())).touch()


def _leave() -> None:
    """Stop the cluster if a test session started it and this process was its last user."""
    with _locked():
        (_users() / str(os.getpid())).unlink(missing_ok=True)
        started = Path(STATE_DIR) / "pytest-started"
        if started.exists() and not _live_users():
            _cluster("stop")
            started.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """``SLURM_CONF`` of a running local cluster (set in this process's environment for the session)."""
    why = _why_not()
    if why is not None:
        if os.environ.get("ORIENTEER_REQUIRE_SLURM") == "1":
            pytest.fail(f"ORIENTEER_REQUIRE_SLURM=1 but {why}")
        pytest.skip(why)
    _join()
    conf = f"{STATE_DIR}/slurm.conf"
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        _leave()
