"""A derived benchmark made by a job lines up with its parent in compare and in drill-downs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.compare import comparable_runs, compare_runs
from orienteer.data.queries.failures import count_predictions
from orienteer.data.workspace import Workspace
from orienteer.demo.build import DEMO_BENCH, build_demo_workspace

ORIENTEER = [sys.executable, "-c", "from orienteer.tui.cli.main import main; main()"]


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORIENTEER, "-w", str(ws.root), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def flipped(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("derived") / "ws"
    build_demo_workspace(root, n_items=40)
    ws = Workspace(root)
    result = cli(ws, "job", "run", "flip", "--bench", DEMO_BENCH, "--name", "demo-flip", "--items", "limit:25", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    # A run on the flipped benchmark that answers every item with "A" (the sleep job's baseline run).
    result = cli(ws, "job", "run", "sleep", "--steps", "1", "--seconds", "0", "--emit-run", "flip-always-a",
                 "--bench", "demo-flip", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    return ws


def test_flip_job_made_a_derived_benchmark_with_parent_ids(flipped: Workspace) -> None:
    with flipped.read() as con:
        parent, child = con.execute(
            "SELECT p.bench_id, c.parent_bench_id FROM benchmarks p, benchmarks c WHERE p.name = ? AND c.name = 'demo-flip'",
            [DEMO_BENCH],
        ).fetchone()
        assert parent == child
        pairs = con.execute(
            """SELECT c.item_id, c.parent_item_id, p.item_id FROM items c JOIN benchmarks bc ON bc.bench_id = c.bench_id
               LEFT JOIN items p ON p.item_id = c.parent_item_id AND p.bench_id = bc.parent_bench_id
               WHERE bc.name = 'demo-flip'"""
        ).fetchall()
    assert len(pairs) == 25
    assert all(p is not None and c == f"{p}#flip" for c, _, p in pairs)


def test_compare_pairs_items_through_parent_ids(flipped: Workspace) -> None:
    with flipped.read() as con:
        assert "flip-always-a" in comparable_runs(con, DEMO_BENCH)
        rows = compare_runs(con, "qwen3b-base", "flip-always-a")
        overall = rows[-1]
        assert overall.n == 25
        # Independent count: pair by parent id in SQL written here, not by the query under test.
        fixed, broken = con.execute(
            """WITH a AS (SELECT i.item_id, p.correct FROM predictions p JOIN runs r USING (run_id)
                          JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx WHERE r.name = 'qwen3b-base'),
                    b AS (SELECT i.parent_item_id AS item_id, p.correct FROM predictions p JOIN runs r USING (run_id)
                          JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx WHERE r.name = 'flip-always-a')
               SELECT count(*) FILTER (WHERE NOT COALESCE(a.correct, FALSE) AND b.correct),
                      count(*) FILTER (WHERE COALESCE(a.correct, FALSE) AND NOT b.correct)
               FROM b LEFT JOIN a USING (item_id)"""
        ).fetchone()
        assert (overall.fixed, overall.broken) == (fixed, broken)
        # The drill-down "fixed by B" lands on exactly that many rows of B, and "broken" likewise.
        fixed_rows = count_predictions(con, PredictionFilter(runs=("flip-always-a",), failures_only=False,
                                                             outcomes=("correct",), versus_run="qwen3b-base",
                                                             versus_correct=False))
        assert fixed_rows == fixed
        only_fixed = count_predictions(con, PredictionFilter(runs=("flip-always-a",), versus_run="qwen3b-base",
                                                             versus_correct=True, failures_only=True))
        assert only_fixed == broken


def test_unrelated_benchmarks_are_refused(flipped: Workspace, tmp_path: Path) -> None:
    from orienteer.data.errors import WorkspaceError
    from tests.conftest import make_viewspatial_items

    bench = tmp_path / "other.json"
    bench.write_text(json.dumps(make_viewspatial_items(10)))
    copy = tmp_path / "ws"
    shutil.copytree(flipped.root, copy)
    ws = Workspace(copy)
    assert cli(ws, "import", "bench", str(bench), "--name", "other").returncode == 0
    assert cli(ws, "job", "run", "sleep", "--steps", "1", "--emit-run", "other-a", "--bench", "other", "--wait").returncode == 0
    with ws.read() as con, pytest.raises(WorkspaceError, match="unrelated benchmarks"):
        compare_runs(con, "qwen3b-base", "other-a")


def test_benchmarks_lists_the_derived_benchmark_with_its_parent(flipped: Workspace) -> None:
    result = cli(flipped, "benchmarks", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["benchmark"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {DEMO_BENCH, "demo-flip"}
    assert rows["demo-flip"]["items"] == 25
