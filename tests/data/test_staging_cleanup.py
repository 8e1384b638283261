"""A killed import leaves its staging spill folder behind; the next staging connection removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from orienteer.data.workspace import STAGING_PREFIX, Workspace, remove_stale_staging

HOLD = """
import sys, time
from orienteer.data.workspace import Workspace
with Workspace(sys.argv[1]).staging() as con:
    print("staging", flush=True)
    time.sleep(120)
"""


def test_a_killed_imports_staging_folder_is_removed_by_the_next_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    env = {**os.environ, "TMPDIR": str(spill_root)}
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "ws")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "staging"
        [left] = list(spill_root.glob(f"{STAGING_PREFIX}*"))
        assert left.name.startswith(f"{STAGING_PREFIX}{child.pid}-")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert left.is_dir()  # killed: nothing cleaned up
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    with Workspace(tmp_path / "ws").staging():
        mine = [p for p in spill_root.glob(f"{STAGING_PREFIX}*")]
        assert not left.exists() and len(mine) == 1 and mine[0].name.startswith(f"{STAGING_PREFIX}{os.getpid()}-")
    assert list(spill_root.glob(f"{STAGING_PREFIX}*")) == []


def test_live_and_unowned_folders_stay(tmp_path: Path) -> None:
    live = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-abc"
    old_style = tmp_path / f"{STAGING_PREFIX}k2j4_x9z"  # an older version's name: no owner to check
    dead = tmp_path / f"{STAGING_PREFIX}{_dead_pid()}-q"
    for folder in (live, old_style, dead):
        folder.mkdir()
        (folder / "spill.tmp").write_bytes(b"x")
    assert remove_stale_staging(tmp_path) == [dead]
    assert live.is_dir() and old_style.is_dir() and not dead.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    time.sleep(0.05)
    return child.pid
