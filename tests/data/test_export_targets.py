"""Exports write regular files only: devices, FIFOs and folders are refused (even with --force), a symbolic
link is written through to its target, and two exports to one path never share a temporary name."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orienteer.data.errors import FileAccessError, OrienteerError
from orienteer.data.job_outputs import atomic_file
from orienteer.data.workspace import Workspace


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orienteer", "-w", str(ws.root), *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, ORIENTEER_DEBUG=""))


def _one_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_force_onto_a_device_is_refused_and_the_device_stays(ws_with_run: Workspace, tmp_path: Path) -> None:
    """As root, renaming over /dev/full used to turn the device into a regular file."""
    link = tmp_path / "full.csv"
    link.symlink_to("/dev/full")
    _one_line(_cli(ws_with_run, "export", "failures", "-o", str(link), "--force"), str(link), "character device")
    _one_line(_cli(ws_with_run, "dataset", "export", "d", "/dev/full", "--force"), "/dev/full", "character device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert link.is_symlink() and os.readlink(link) == "/dev/full"


def test_force_onto_a_folder_or_fifo_is_refused(ws_with_run: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "out.csv"
    folder.mkdir()
    (folder / "keep").write_text("x")
    _one_line(_cli(ws_with_run, "export", "failures", "-o", str(folder), "--force"), str(folder), "is a folder")
    _one_line(_cli(ws_with_run, "dataset", "export", "d", str(folder), "--force"), str(folder), "is a folder")
    assert (folder / "keep").read_text() == "x"
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    _one_line(_cli(ws_with_run, "export", "failures", "-o", str(fifo), "--force"), str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_is_written_through_and_stays_a_link(ws_with_run: Workspace, tmp_path: Path) -> None:
    real = tmp_path / "real" / "failures.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "failures.csv"
    link.symlink_to(real)
    result = _cli(ws_with_run, "export", "failures", "-o", str(link), "--force")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("run,benchmark,item_id")
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640  # a replaced file keeps its permissions
    assert sorted(p.name for p in real.parent.iterdir()) == ["failures.csv"]  # no temporary file left

    dlink = tmp_path / "dlink.jsonl"
    dlink.symlink_to(tmp_path / "real" / "d.jsonl")  # dangling: the target is created
    assert _cli(ws_with_run, "dataset", "export", "d", str(dlink)).returncode == 0
    assert dlink.is_symlink() and len((tmp_path / "real" / "d.jsonl").read_text().splitlines()) == 3
    assert "written through" in _cli(ws_with_run, "export", "failures", "--help").stdout.replace("\n", " ")


def test_without_force_an_existing_file_is_kept(ws_with_run: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    out.write_text("mine")
    _one_line(_cli(ws_with_run, "export", "failures", "-o", str(out)), "already exists; pass --force")
    assert out.read_text() == "mine"


def test_two_exports_to_one_path_at_once_do_not_collide(ws_with_run: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "both.jsonl"
    procs = [subprocess.Popen([sys.executable, "-m", "orienteer", "-w", str(ws_with_run.root), "export", "failures",
                               "-o", str(out), "--force", "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert len(out.read_text().splitlines()) == 60  # whole: every row once
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_atomic_file_gives_concurrent_writers_their_own_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            with atomic_file(path) as fh:
                barrier.wait(10)
                fh.write(str(k) * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    text = path.read_text()
    assert len(text) == 1000 and len(set(text)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_file_refuses_a_folder_and_writes_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(FileAccessError, match="is a folder"):
        with atomic_file(tmp_path / "dir") as fh:
            fh.write("x")
    (tmp_path / "t.txt").write_text("old")
    (tmp_path / "l.txt").symlink_to(tmp_path / "t.txt")
    with atomic_file(tmp_path / "l.txt") as fh:
        fh.write("new")
    assert (tmp_path / "l.txt").is_symlink() and (tmp_path / "t.txt").read_text() == "new"


def test_export_into_a_missing_folder_creates_it_and_a_file_in_the_way_is_one_line(ws_with_run: Workspace,
                                                                                   tmp_path: Path) -> None:
    made = _cli(ws_with_run, "export", "failures", "-o", str(tmp_path / "nope" / "x.csv"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "nope" / "x.csv").read_text(encoding="utf-8").startswith("run,")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    _one_line(_cli(ws_with_run, "export", "failures", "-o", str(tmp_path / "afile" / "x.csv")), "afile")
    with pytest.raises(OrienteerError):
        from orienteer.data.fileio import output_target

        output_target(tmp_path / "still-missing" / "x.csv", force=True)
