"""WorkspaceService on a real workspace: typed rows that match the queries, cancellable counts, items for jobs."""

from __future__ import annotations

import threading
import time
from dataclasses import fields
from pathlib import Path

import duckdb
import pytest

from orienteer.data.errors import OrienteerError, WorkspaceError
from orienteer.data.filters import PredictionFilter
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.queries.case import Artifact, OtherRunAnswer
from orienteer.data.queries.compare import audit
from orienteer.data.queries.failures import count_predictions, predictions_page
from orienteer.data.rows import AuditRow, BenchmarkRow, PredictionRow
from orienteer.data.service import Cancellable, WorkspaceService
from orienteer.jobs.selection import load_items
from tests.conftest import random_replies, write_official_csv


@pytest.fixture
def two_run_ws(ws_with_run, vs_items, tmp_path):
    """The benchmark ``vs`` with runs ``r`` and ``s`` (different random replies)."""
    replies = random_replies(vs_items, seed=5, skip=3)
    import_predictions(ws_with_run, write_official_csv(tmp_path / "s.csv", vs_items, replies), "vs", "s")
    return ws_with_run


def test_pages_are_typed_rows_with_the_query_values_by_name(two_run_ws):
    filt = PredictionFilter(failures_only=False)
    with two_run_ws.read() as con:
        expected = predictions_page(con, filt, sort="gold", limit=40, offset=5)
        total = count_predictions(con, filt)
    with WorkspaceService(two_run_ws) as service:
        rows = service.predictions_page(filt, sort="gold", limit=40, offset=5)
        page = service.page_with_total(filt, sort="gold", limit=40, offset=5)
        assert service.count(filt) == total
    assert rows and all(type(r) is PredictionRow for r in rows)
    assert [r.as_json() for r in rows] == expected  # same values, same keys in the same order (what --json prints)
    assert [f.name for f in fields(PredictionRow)] == list(expected[0])
    assert page.total == total and page.rows == rows and page.as_json()["offset"] == 5
    with pytest.raises(AttributeError):
        rows[0].run = "other"  # type: ignore[misc]  # frozen


def test_audit_and_benchmarks_are_typed(two_run_ws, vs_items):
    with two_run_ws.read() as con:
        checked, expected = audit(con, "r")
    with WorkspaceService(two_run_ws) as service:
        found = service.audit("r")
        [bench] = service.benchmarks()
    assert found.checked == checked == len(vs_items)
    assert all(type(r) is AuditRow for r in found.rows) and [r.as_json() for r in found.rows] == expected
    assert found.as_json() == {"run": "r", "checked": checked, "disagreements": len(expected), "rows": expected}
    assert isinstance(bench, BenchmarkRow)
    assert (bench.name, bench.items, bench.tasks) == ("vs", len(vs_items), len({it["question_type"] for it in vs_items}))
    assert list(bench.as_json()) == ["benchmark", "items", "tasks", "format", "image_root", "created"]


def test_catalog_lookups(two_run_ws, vs_items):
    with WorkspaceService(two_run_ws) as service:
        assert service.bench_names() == ["vs"]
        assert service.run_names() == ["r", "s"] == service.run_names("vs")
        assert service.run_names("nope") == []
        assert service.run_info("s").bench_name == "vs"
        model = service.run_model("r")
        assert (model.run, model.bench) == ("r", "vs")
        assert service.tasks_of_run("r") == sorted({it["question_type"] for it in vs_items})
        assert set(service.distinct_values("task", ("r",))) <= set(service.tasks_of_run("r"))
        assert service.comparable_runs("vs") == ["r", "s"]
        with pytest.raises(WorkspaceError, match="runs are: r, s"):
            service.run_info("missing")


def test_case_detail_rows_are_typed(two_run_ws, vs_items):
    with WorkspaceService(two_run_ws) as service:
        item_id = service.load_items("vs", limit=1)[0][0].item_id
        detail = service.case_detail("r", item_id)
    assert (detail.run, detail.benchmark, detail.item_id) == ("r", "vs", item_id)
    assert detail.options and detail.answer_letter in dict(detail.options)
    assert [o.run for o in detail.other_runs] == ["s"] and all(type(o) is OtherRunAnswer for o in detail.other_runs)
    assert all(isinstance(a, Artifact) for a in detail.artifacts)


def test_items_for_jobs_match_the_selection_language(two_run_ws, vs_items):
    with WorkspaceService(two_run_ws) as service:
        every, root = service.load_items("vs")
        wrong, _ = service.load_items("vs", failures_of="r")
        two, _ = service.load_items("vs", ids=(every[3].item_id, every[1].item_id))
        one, _ = service.load_item("vs", every[2].item_id)
        none, _ = service.load_item("vs", "no such id")
        detail = service.run_detail("r")
        image_root = service.bench_info("vs").image_root
    assert len(every) == len(vs_items) and image_root and root == Path(image_root)
    assert [i.item_id for i in two] == [every[1].item_id, every[3].item_id]  # benchmark order
    assert one == every[2] and none is None
    right = {item_id for item_id, a in detail.answers.items() if a.correct}
    assert [i.item_id for i in wrong] == [i.item_id for i in every if i.item_id not in right]
    assert (detail.run, detail.bench) == ("r", "vs") and len(detail.answers) == len(vs_items)
    # the jobs' entry points are the same service
    assert load_items(two_run_ws, "vs", "failures:r;limit:3")[0] == wrong[:3]


def test_failures_of_a_run_of_another_benchmark_is_refused(two_run_ws, vs_bench_file):
    from orienteer.data.ingest_bench import import_benchmark

    import_benchmark(two_run_ws, vs_bench_file, "vs2")
    with WorkspaceService(two_run_ws) as service:
        with pytest.raises(OrienteerError, match="that run is on benchmark 'vs', not 'vs2'"):
            service.load_items("vs2", failures_of="r")
        with pytest.raises(WorkspaceError, match="no benchmark named 'other'"):
            service.load_items("other")


def test_a_new_count_cancels_the_previous_one(two_run_ws):
    filt = PredictionFilter(failures_only=False)
    with WorkspaceService(two_run_ws) as service:
        first = service.start_count()
        second = service.start_count()
        assert first.cancelled and not second.cancelled
        stale = service.count_cancellable(filt, first)
        fresh = service.count_cancellable(filt, second)
        service.cancel_count()
        assert second.cancelled
    assert stale.cancelled and stale.total is None
    assert not fresh.cancelled and fresh.total is not None and fresh.error is None
    with two_run_ws.read() as con:
        assert fresh.total == count_predictions(con, filt)


def test_cancel_interrupts_a_running_query(tmp_path):
    """The token interrupts the DuckDB connection it is attached to, from another thread."""
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    token = Cancellable()
    assert token._attach(con)
    outcome: list[BaseException | int] = []

    def run() -> None:
        try:
            outcome.append(con.execute("SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3").fetchone()[0])
        except duckdb.InterruptException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    token.cancel()
    thread.join(20)
    con.close()
    assert not thread.is_alive() and isinstance(outcome[0], duckdb.InterruptException)
    assert not token._attach(con)  # a cancelled token never starts another query


def test_the_reader_lets_go_when_idle_and_on_close(two_run_ws):
    service = WorkspaceService(two_run_ws, idle_s=0.0)
    service.bench_names()
    assert service.reader._con is not None
    assert service.release_if_idle() and service.reader._con is None
    service.bench_names()
    service.close()
    assert service.reader._con is None
