"""A damaged, full, or unwritable workspace is one line, never a traceback; check and backup find and keep data.

Damage is made on real DuckDB files (truncated to half, zero length, overwritten). A full disk is a
1.5 MB tmpfs where mounting is permitted (root), and always a child process under ``RLIMIT_FSIZE``
(writes past the limit fail with EFBIG, as on a full disk). Permission cases run the CLI as user
``nobody`` (uid 65534) when the tests run as root, since root passes every permission check.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orienteer.data.datasets import get_dataset, read_examples, write_examples
from orienteer.data.errors import WorkspaceDamagedError
from orienteer.data.queries.report import list_runs
from orienteer.data.workspace import Workspace
from orienteer.data.workspace_tools import check_workspace
from tests.conftest import make_viewspatial_items, random_replies, snapshot, write_official_csv

NOBODY = 65534


@pytest.fixture
def full_ws(ws_with_run: Workspace, vs_items, tmp_path: Path) -> Workspace:
    write_official_csv(tmp_path / "r2.csv", vs_items, random_replies(vs_items, seed=5))
    return ws_with_run


def _cli(ws_root: Path, *args: str, preexec: Callable[[], None] | None = None, cwd: Path | None = None,
         prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ORIENTEER_DEBUG"}
    return subprocess.run([*prefix, sys.executable, "-m", "orienteer", "-w", str(ws_root), *args], capture_output=True,
                          text=True, timeout=120, env=env, preexec_fn=preexec, cwd=cwd)


def _one_line(result: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _truncate(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def _zero(db: Path) -> None:
    os.truncate(db, 0)


def _garbage(db: Path) -> None:
    db.write_bytes(b"not a database\n" * 1000)


@pytest.mark.parametrize("damage", [_truncate, _zero, _garbage], ids=["truncated-half", "zero-length", "overwritten"])
def test_every_command_on_a_damaged_file_is_one_line_and_writes_nothing(full_ws: Workspace, tmp_path: Path,
                                                                        damage: Callable[[Path], None]) -> None:
    damage(full_ws.db_path)
    before = _files(full_ws.root)
    for args in (("runs",), ("report",), ("benchmarks",), ("import", "preds", str(tmp_path / "r2.csv"), "--bench", "vs",
                 "--run", "r2"), ("dataset", "import", str(tmp_path / "d.jsonl"), "--name", "d2"),
                 ("dataset", "list"), ("workspace", "check"), ("workspace", "backup", str(tmp_path / "bk"))):
        line = _one_line(_cli(full_ws.root, *args), f"workspace {full_ws.db_path} is damaged",
                         "restore from a backup or re-import")
        assert line.count("\n") == 0
    assert _files(full_ws.root) == before  # nothing was written into the damaged workspace
    assert not (tmp_path / "bk").exists()


def test_check_reads_every_block_and_finds_damage_that_runs_does_not_touch(full_ws: Workspace) -> None:
    report = check_workspace(full_ws)
    assert report.ok and report.tables["predictions"] == 60 and report.tables["datasets"] == 1
    pristine = full_ws.db_path.read_bytes()
    found_hidden = False
    for offset in range(12288, len(pristine), 262144):
        data = bytearray(pristine)
        data[offset + 100: offset + 200] = b"\xff" * 100
        full_ws.db_path.write_bytes(bytes(data))
        ws = Workspace(full_ws.root)
        with pytest.raises(WorkspaceDamagedError, match="is damaged: .*checksum"):
            check_workspace(ws)
        try:
            with ws.read() as con:
                list_runs(con)
            found_hidden = True  # the block holds data that listing runs never reads
        except WorkspaceDamagedError:
            pass
    full_ws.db_path.write_bytes(pristine)
    assert check_workspace(Workspace(full_ws.root)).ok
    assert found_hidden, "expected at least one block that `runs` does not read"


def test_check_reports_a_missing_dataset_file(full_ws: Workspace) -> None:
    get_dataset(full_ws, "d").path.unlink()
    result = _cli(full_ws.root, "workspace", "check")
    assert result.returncode == 1 and "dataset 'd'" in result.stderr and "missing" in result.stderr


def test_backup_while_the_app_reads_and_an_import_writes_then_restore(full_ws: Workspace, tmp_path: Path) -> None:
    reader = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from orienteer.data.workspace import Workspace; from orienteer.data.queries.report import list_runs;"
        "ws = Workspace(sys.argv[1]); end = time.monotonic() + 4\n"
        "while time.monotonic() < end:\n    with ws.read() as con: list_runs(con)\n    time.sleep(0.01)\n"
    ), str(full_ws.root)], stderr=subprocess.PIPE, text=True)
    writer = subprocess.Popen([sys.executable, "-m", "orienteer", "-w", str(full_ws.root), "import", "preds",
                               str(tmp_path / "r2.csv"), "--bench", "vs", "--run", "r2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = _cli(full_ws.root, "workspace", "backup", str(tmp_path / "bk"))
    assert result.returncode == 0, result.stderr
    assert writer.wait(120) == 0, writer.stderr.read()
    assert reader.wait(60) == 0, reader.stderr.read()
    backup = Workspace(tmp_path / "bk")
    assert check_workspace(backup).ok
    with backup.read() as con:
        runs = {r.run for r in list_runs(con)}
    assert runs in ({"r"}, {"r", "r2"})  # a snapshot from before or after the import, never half of it
    assert [p.name for p in (tmp_path / "bk" / "datasets").iterdir()] == [get_dataset(full_ws, "d").path.name]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]

    # the README's recovery: move the damaged file aside, copy the backup's database and datasets back
    before = snapshot(backup)
    _truncate(full_ws.db_path)
    _one_line(_cli(full_ws.root, "runs"), "is damaged")
    full_ws.db_path.rename(full_ws.db_path.with_name("orienteer.duckdb.damaged"))
    shutil.copy2(tmp_path / "bk" / "orienteer.duckdb", full_ws.db_path)
    for f in (tmp_path / "bk" / "datasets").iterdir():
        if not (full_ws.root / "datasets" / f.name).exists():
            shutil.copy2(f, full_ws.root / "datasets" / f.name)
    restored = Workspace(full_ws.root)
    assert snapshot(restored) == before
    assert len(read_examples(get_dataset(restored, "d").path)) == 3
    assert _cli(full_ws.root, "workspace", "check").returncode == 0


def test_backup_refuses_an_existing_target_and_one_inside_the_workspace(full_ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    _one_line(_cli(full_ws.root, "workspace", "backup", str(tmp_path / "there")), "already exists")
    _one_line(_cli(full_ws.root, "workspace", "backup", str(full_ws.root / "artifacts" / "bk")), "inside the workspace")
    _one_line(_cli(full_ws.root, "workspace", "backup", str(tmp_path / "no" / "bk")), "does not exist")


# ------------------------------------------------------------------ disk full


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1.5 MB tmpfs (root only, where the container permits mounting)."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root and permission to mount (the RLIMIT_FSIZE tests cover the rest)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes fail with EFBIG
    return apply


def test_import_onto_a_full_tmpfs_is_one_line_and_keeps_what_was_there(tmp_path: Path, small_tmpfs: Path) -> None:
    items = make_viewspatial_items(600)
    bench = tmp_path / "b.json"
    bench.write_text(__import__("json").dumps(items))
    root = small_tmpfs / "ws"
    assert _cli(root, "import", "bench", str(bench), "--name", "vs").returncode == 0
    results = []
    for k in range(4):
        csv = write_official_csv(tmp_path / f"p{k}.csv", items, random_replies(items, seed=k))
        results.append(_cli(root, "import", "preds", str(csv), "--bench", "vs", "--run", f"r{k}"))
    failed = [r for r in results if r.returncode != 0]
    assert failed, "expected the tmpfs to fill up"
    for r in failed:
        _one_line(r, "no space left on device")
    ws = Workspace(root)
    assert check_workspace(ws).ok
    with ws.read() as con:
        assert {x.run for x in list_runs(con)} == {f"r{k}" for k, r in enumerate(results) if r.returncode == 0}

    # an export onto the full disk: one line, no temporary file left
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    _one_line(_cli(root, "export", "failures", "-o", str(small_tmpfs / "out.csv"), "--all"), "no space left on device")
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "ws"]


def test_import_and_export_past_a_file_size_limit_are_one_line(full_ws: Workspace, tmp_path: Path) -> None:
    before = snapshot(full_ws)
    limit = _fsize_limit(4096)
    _one_line(_cli(full_ws.root, "import", "preds", str(tmp_path / "r2.csv"), "--bench", "vs", "--run", "r2",
                   preexec=limit), "file too large")
    big = [{"item_id": f"x{k}", "question": "Where is it? " * 50, "options": {"A": "left", "B": "right"}, "answer": "A",
            "images": [], "target": "A. left"} for k in range(400)]
    write_examples(tmp_path / "big.jsonl", big)
    _one_line(_cli(full_ws.root, "dataset", "import", str(tmp_path / "big.jsonl"), "--name", "big", preexec=limit),
              "file too large")
    _one_line(_cli(full_ws.root, "export", "failures", "-o", str(tmp_path / "out.jsonl"), "--all", preexec=limit),
              "file too large")
    _one_line(_cli(full_ws.root, "dataset", "export", "big-nope", str(tmp_path / "x.jsonl")), "no dataset named")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    fresh = Workspace(full_ws.root)
    assert snapshot(fresh) == before
    assert check_workspace(fresh).ok
    assert [p.name for p in (full_ws.root / "datasets").iterdir()] == [get_dataset(fresh, "d").path.name]


# ------------------------------------------------------------------ permissions


AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="runs the CLI as user nobody with setpriv, which needs root")
def test_unwritable_workspace_and_unreadable_input_are_one_line(full_ws: Workspace, tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="orienteer-perm-", dir="/tmp"))  # pytest's tmp folders are root-only
    try:
        os.chmod(base, 0o755)
        root = base / "ws"
        shutil.copytree(full_ws.root, root)  # owned by root, mode 644/755: readable, not writable, for nobody
        csv = shutil.copy(tmp_path / "r2.csv", base / "r2.csv")
        nobody = AS_NOBODY
        probe = subprocess.run([*nobody, sys.executable, "-c", "import os, orienteer.tui.cli.main; print(os.getuid())"],
                               capture_output=True, text=True, cwd=base)
        if probe.returncode != 0 or probe.stdout.strip() != str(NOBODY):
            pytest.skip(f"user nobody cannot run this Python: {probe.stderr[-200:]!r}")
        before = _files(root)
        _one_line(_cli(root, "import", "preds", str(csv), "--bench", "vs", "--run", "r2", prefix=nobody, cwd=base),
                  "permission denied", str(root / "orienteer.duckdb"))
        _one_line(_cli(base / "new-ws", "import", "preds", str(csv), "--bench", "vs", "--run", "r2", prefix=nobody,
                       cwd=base), "no workspace")
        _one_line(_cli(base / "new-ws", "dataset", "import", str(tmp_path.parent), "--name", "x", prefix=nobody,
                       cwd=base), str(tmp_path.parent), "permission denied")
        locked = base / "locked"
        (locked / "inner").mkdir(parents=True)
        shutil.copy(csv, locked / "inner" / "r.csv")
        os.chmod(locked, 0o700)
        _one_line(_cli(root, "import", "preds", str(locked / "inner" / "r.csv"), "--bench", "vs", "--run", "r3",
                       prefix=nobody, cwd=base), str(locked / "inner" / "r.csv"), "permission denied")
        assert _files(root) == before
        runs = _cli(root, "runs", "--json", prefix=nobody, cwd=base)  # reading needs no write permission
        assert runs.returncode == 0, runs.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ the last handler

runner = CliRunner()


def test_a_bug_is_one_line_with_exit_1_and_debug_shows_the_traceback(full_ws: Workspace, monkeypatch) -> None:
    from orienteer.tui.cli import main as cli

    def broken(*args, **kwargs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr("orienteer.data.queries.report.list_runs", broken)
    monkeypatch.delenv("ORIENTEER_DEBUG", raising=False)
    result = runner.invoke(cli.app, ["-w", str(full_ws.root), "runs"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: internal error: ValueError: boom second line (run again with ORIENTEER_DEBUG=1 for the traceback, "
        "and please report it)"]
    monkeypatch.setenv("ORIENTEER_DEBUG", "1")
    result = runner.invoke(cli.app, ["-w", str(full_ws.root), "runs"])
    assert isinstance(result.exception, ValueError)


def test_main_catches_what_escapes_a_command(monkeypatch, capsys) -> None:
    from orienteer.tui.cli import main as cli

    def app() -> None:
        raise OSError(28, "No space left on device", "/somewhere/file")

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.delenv("ORIENTEER_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "error: /somewhere/file: no space left on device (the disk is full)"
