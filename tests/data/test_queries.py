"""Reports, confusion, failure pages, comparison and export on a small workspace with known answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orienteer.core.directions import categorize, direction_vector
from orienteer.core.stats import mcnemar_exact, wilson_interval
from orienteer.data.errors import OrienteerError, WorkspaceError
from orienteer.data.export import export_predictions
from orienteer.data.filters import PredictionFilter
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.queries.compare import compare_runs
from orienteer.data.queries.confusion import confusion
from orienteer.data.queries.failures import count_predictions, predictions_page
from orienteer.data.queries.report import list_runs, report_json, task_report
from tests.conftest import write_official_csv


def _options(item: dict) -> dict[str, str]:
    return dict(line.split(". ", 1) for line in item["choices"].split("\n"))


def _mirror_letter(item: dict) -> str | None:
    """The option whose label is the gold mirrored left<->right, if the item offers it."""
    opts = _options(item)
    gold = opts[item["answer"][0]]
    for letter, label in opts.items():
        if label != gold and categorize(gold, label).value == "horizontal":
            return letter
    return None


@pytest.fixture
def two_runs(ws_with_bench, vs_items, tmp_path):
    """'base' answers item i right when i % 2 == 0; 'aug' when i % 3 == 0; wrong answers are the first wrong option."""
    def wrong(item: dict) -> str:
        return _mirror_letter(item) or next(k for k in "ABCD" if k != item["answer"][0])
    base = {i: (it["answer"][0] if i % 2 == 0 else wrong(it)) for i, it in enumerate(vs_items)}
    aug = {i: (it["answer"][0] if i % 3 == 0 else wrong(it)) for i, it in enumerate(vs_items)}
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "b.csv", vs_items, base), "vs", "base")
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "a.csv", vs_items, aug), "vs", "aug")
    return ws_with_bench, base, aug


def test_runs_listing(two_runs, vs_items):
    ws, base, _ = two_runs
    with ws.read() as con:
        rows = list_runs(con)
    assert [r.run for r in rows] == ["base", "aug"]
    assert rows[0].items == len(vs_items) and rows[0].coverage == 1.0
    assert rows[0].correct == sum(1 for i in base if i % 2 == 0)


def test_report_cells_intervals_and_mcnemar(two_runs, vs_items):
    ws, _, _ = two_runs
    with ws.read() as con:
        [report] = task_report(con)
    assert report.baseline == "base"
    base, aug = report.runs
    n = len(vs_items)
    assert (base.overall.n, base.overall.correct) == (n, len(range(0, n, 2)))
    assert (base.overall.ci_low, base.overall.ci_high) == pytest.approx(wilson_interval(base.overall.correct, n))
    fixed = sum(1 for i in range(n) if i % 2 and i % 3 == 0)
    broken = sum(1 for i in range(n) if i % 2 == 0 and i % 3)
    d = aug.deltas["overall"]
    assert (d.fixed, d.broken) == (fixed, broken)
    assert d.p_value == pytest.approx(mcnemar_exact(fixed, broken))
    assert d.delta == pytest.approx(aug.overall.accuracy - base.overall.accuracy)
    for task, cell in aug.tasks.items():
        idx = [i for i, it in enumerate(vs_items) if it["question_type"] == task]
        assert cell.correct == sum(1 for i in idx if i % 3 == 0)
        td = aug.deltas[task]
        assert (td.fixed, td.broken) == (sum(1 for i in idx if i % 2 and i % 3 == 0), sum(1 for i in idx if i % 2 == 0 and i % 3))


def test_report_json_shape(two_runs):
    ws, _, _ = two_runs
    with ws.read() as con:
        doc = report_json(task_report(con))
    assert [r["run"] for r in doc["runs"]] == ["base", "aug"]
    for run in doc["runs"]:
        assert {"run", "benchmark", "n", "correct", "accuracy", "tasks"} <= set(run)
        assert 0 <= run["accuracy"] <= 1
        for cell in run["tasks"].values():
            assert {"n", "correct", "accuracy"} <= set(cell)
            assert cell["accuracy"] == pytest.approx(cell["correct"] / cell["n"])
    assert "delta" in doc["runs"][1] and doc["runs"][1]["baseline"] == "base"
    json.dumps(doc)


def test_report_baseline_choice_and_unknown(two_runs):
    ws, _, _ = two_runs
    with ws.read() as con:
        [report] = task_report(con, baseline="aug")
        assert report.baseline == "aug" and report.runs[0].deltas and not report.runs[1].deltas
        with pytest.raises(WorkspaceError, match="no run named 'zzz'"):
            task_report(con, runs=["zzz"])


def test_confusion_matrix_and_categories(two_runs, vs_items):
    ws, base, _ = two_runs
    with ws.read() as con:
        c = confusion(con, "base")
        task = vs_items[0]["question_type"]
        ct = confusion(con, "base", task)
        with pytest.raises(WorkspaceError, match="has no task"):
            confusion(con, "base", "nope")
    expected: dict[str, int] = {}
    cells: dict[tuple[str, str], int] = {}
    for i, reply in base.items():
        opts = _options(vs_items[i])
        gold, pred = opts[vs_items[i]["answer"][0]], opts[reply]
        cells[(gold, pred)] = cells.get((gold, pred), 0) + 1
        if gold != pred:
            cat = categorize(gold, pred).value
            expected[cat] = expected.get(cat, 0) + 1
    assert c.categories == dict(sorted(expected.items(), key=lambda kv: -kv[1])) or c.categories == expected
    assert {(m.gold, m.pred): m.n for m in c.matrix} == cells
    assert c.errors == sum(expected.values()) and c.answered == len(base)
    assert set(ct.as_json()) >= {"run", "task", "categories", "matrix"}
    assert ct.task == task and sum(m.n for m in ct.matrix) == sum(1 for it in vs_items if it["question_type"] == task)
    assert all(direction_vector(label) for label in c.labels)


def test_failure_pages_filters_and_counts(two_runs, vs_items):
    ws, base, _ = two_runs
    with ws.read() as con:
        filt = PredictionFilter(runs=("base",))
        total = count_predictions(con, filt)
        assert total == sum(1 for i in base if i % 2)
        page1 = predictions_page(con, filt, limit=5)
        page2 = predictions_page(con, filt, limit=5, offset=5)
        assert [r["item_id"] for r in page1] == [str(i) for i in range(1, 10, 2)]
        assert [r["item_id"] for r in page2] == [str(i) for i in range(11, 20, 2)]
        horizontal = PredictionFilter(runs=("base",), categories=("horizontal",))
        rows = predictions_page(con, horizontal, limit=1000)
        assert rows and all(r["category"] == "horizontal" for r in rows)
        assert len(rows) == sum(1 for i in base if i % 2 and _mirror_letter(vs_items[i]))
        task = vs_items[1]["question_type"]
        by_task = predictions_page(con, PredictionFilter(runs=("base",), tasks=(task,)), limit=1000)
        assert {r["task"] for r in by_task} == {task}
        everything = count_predictions(con, PredictionFilter(failures_only=False))
        assert everything == 2 * len(vs_items)
        text = predictions_page(con, PredictionFilter(runs=("base",), text="person 13,"), limit=10)
        assert [r["item_id"] for r in text] == ["13"]
        sorted_rows = predictions_page(con, filt, sort="gold", limit=1000)
        assert [r["gold_label"] for r in sorted_rows] == sorted(r["gold_label"] for r in sorted_rows)


def test_compare_runs(two_runs, vs_items):
    ws, _, _ = two_runs
    with ws.read() as con:
        rows = compare_runs(con, "base", "aug")
    overall = rows[-1]
    n = len(vs_items)
    assert overall.task == "overall" and overall.n == n
    assert overall.fixed == sum(1 for i in range(n) if i % 2 and i % 3 == 0)
    assert overall.broken == sum(1 for i in range(n) if i % 2 == 0 and i % 3)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_by_extension(two_runs, tmp_path, suffix):
    ws, base, _ = two_runs
    out = tmp_path / f"fails{suffix}"
    filt = PredictionFilter(runs=("base",), categories=("horizontal",))
    with ws.read() as con:
        n = export_predictions(con, filt, out)
        expected = count_predictions(con, filt)
    assert n == expected > 0
    frame = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix](out)
    assert len(frame) == n
    for col in ("item_id", "task", "question", "options", "gold_letter", "gold_label", "pred_letter", "pred_label",
                "category", "reply", "images"):
        assert col in frame.columns, col
    assert set(frame["category"]) == {"horizontal"}
    with ws.read() as con:
        with pytest.raises(OrienteerError, match="already exists; pass --force"):
            export_predictions(con, filt, out)
        assert export_predictions(con, filt, out, force=True) == n


def test_export_marked_rows_only(two_runs, tmp_path):
    ws, _, _ = two_runs
    out = tmp_path / "marked.jsonl"
    with ws.read() as con:
        n = export_predictions(con, PredictionFilter(failures_only=False), out, item_keys=[("base", "1"), ("aug", "2")])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert n == 2 and {(r["run"], r["item_id"]) for r in rows} == {("base", "1"), ("aug", "2")}
    assert rows[0]["options"] and isinstance(rows[0]["images"], list)


def test_export_refuses_unknown_type(two_runs, tmp_path):
    ws, _, _ = two_runs
    with ws.read() as con, pytest.raises(OrienteerError, match="unknown export type"):
        export_predictions(con, PredictionFilter(), tmp_path / "x.xlsx")


@pytest.mark.parametrize("deep", [True, False])
@pytest.mark.parametrize("sort", ["item", "task", "category", "gold", "pred"])
def test_pages_match_a_plain_sorted_query(two_runs, monkeypatch, sort, deep):
    """Both page paths (buckets for deep offsets, a walk over sort values for shallow ones) return
    exactly what ORDER BY ... OFFSET would, NULL sort values (correct answers' category) included."""
    import orienteer.data.queries.failures as q

    ws, _, _ = two_runs
    order = ", ".join([*q.SORTS[sort], "p.run_id", "p.item_idx"])
    with ws.read() as con:
        for filt in (PredictionFilter(), PredictionFilter(failures_only=False), PredictionFilter(runs=("aug",))):
            total = count_predictions(con, filt)
            naive = [tuple(r) for r in con.execute(
                f"SELECT r.name, i.item_id FROM predictions p JOIN runs r USING (run_id) "
                f"JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx "
                f"WHERE {'NOT p.correct' if filt.failures_only else 'TRUE'} "
                f"{'AND r.name = ' + repr(filt.runs[0]) if filt.runs else ''} ORDER BY {order}").fetchall()]
            assert len(naive) == total
            if deep:
                monkeypatch.setattr(q, "DEEP_OFFSET", 0)
            for offset in (0, 1, 7, total // 2, total - 3):
                page = predictions_page(con, filt, sort=sort, limit=10, offset=offset)
                assert [(r["run"], r["item_id"]) for r in page] == naive[offset:offset + 10], (filt, offset)
            monkeypatch.undo()
