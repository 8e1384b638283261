"""Every hostile file, fed to every import command, is refused the same way.

The corpus is both generators in ``tests/data/hostile``: ``make_corpus.py`` (parsing: ids, strict
CSV, probabilities, names) and ``io_cases.py`` (reading: FIFOs, devices, folders, unreadable,
missing, empty, garbage, huge lines, deep nesting). Each file goes to ``import bench``,
``import preds`` and ``dataset import`` as a real ``orienteer`` process, which must exit 2 with one
line on stderr naming the file, print no traceback, and leave every byte under the workspace as it
was. A case's own expected words are checked on the command it was written for (``make_corpus``)
or on all three (``io_cases``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.workspace import Workspace
from tests.conftest import make_viewspatial_items
from tests.data.hostile import io_cases, make_corpus

COMMANDS = ("bench", "preds", "dataset")
NOBODY = 65534
CASES: list[tuple[str, Any]] = (
    [pytest.param("parse", c, id=f"parse-{c.name}") for c in make_corpus.CASES]
    + [pytest.param("io", c, id=f"io-{c.name}") for c in io_cases.CASES]
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with benchmark ``vs`` (ViewSpatial JSON, 60 items), shared: no case may change it."""
    folder = tmp_path_factory.mktemp("hostile-ws")
    bench = folder / "ViewSpatial-Bench.json"
    import json

    bench.write_text(json.dumps(make_viewspatial_items()), encoding="utf-8")
    ws = Workspace(folder / "ws")
    import_benchmark(ws, bench, "vs")
    return ws.root


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root``: a file's SHA-256, or ``dir``."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def _argv(command: str, path: Path, kind: str, case: Any) -> list[str]:
    own = kind == "parse" and case.command == command
    if command == "bench":
        return ["import", "bench", str(path), "--name", "new", *(case.args if own else ())]
    if command == "preds":
        return ["import", "preds", str(path), "--bench", "vs", *(case.args if own else ("--run", "new"))]
    return ["dataset", "import", str(path), "--name", "new"]


def _shown(path: Path) -> str:
    """The path as the error line shows it: control characters as escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(path))


def _other_user_prefix(tmp_path: Path) -> list[str]:
    """Run as ``nobody`` when the tests run as root (root reads any file); skip where that is impossible."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to run the CLI as a non-root user")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import orienteer.tui.cli.main"], capture_output=True, cwd="/")
    if probe.returncode != 0:
        pytest.skip("user nobody cannot run this Python")
    return prefix


@pytest.mark.parametrize("kind, case", CASES)
def test_every_import_command_refuses_every_hostile_file(workspace: Path, tmp_path: Path, kind: str, case: Any) -> None:
    path = case.write(tmp_path)
    prefix = _other_user_prefix(tmp_path) if getattr(case, "as_other_user", False) else []
    env = {k: v for k, v in os.environ.items() if k != "ORIENTEER_DEBUG"}
    before = _tree(workspace)
    try:
        for command in COMMANDS:
            result = subprocess.run([*prefix, sys.executable, "-m", "orienteer", "-w", str(workspace),
                                     *_argv(command, path, kind, case)],
                                    capture_output=True, text=True, errors="replace", timeout=120, env=env, cwd="/")
            where = f"{command}: exit {result.returncode}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
            assert result.returncode == 2, where
            assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, where
            lines = result.stderr.strip("\n").split("\n")
            assert len(lines) == 1 and lines[0].startswith("error: "), where
            assert _shown(path) in lines[0] or str(path) in lines[0], where
            if kind == "io" or case.command == command:
                for needle in case.expect:
                    assert needle in lines[0], where
    finally:
        if kind == "io" and case.name == "unreadable":
            os.chmod(path.parent, 0o700)  # so pytest can clean up
    assert _tree(workspace) == before
