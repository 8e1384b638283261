"""Unanswered items (issue 16): items a run's file has no row for are failures with category
"unanswered": counted wrong as before, and now listed, filtered, sorted, exported and shown in the
confusion's category panel. Runs with full coverage read ``predictions`` exactly as before.

The files are the official ViewSpatial-Bench result CSV as its ``evaluate.py`` writes it
(``tests.conftest.write_official_csv``: ID, Question, Question_Type, Predicted Answer, Correct Answer,
IsCorrect) with rows left out, as a run that skipped or crashed on items leaves them.
"""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from orienteer.core.directions import Category, category_from_name
from orienteer.data.export import export_predictions
from orienteer.data.filters import PredictionFilter, compile_filter
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.queries import failures as failures_mod
from orienteer.data.queries.confusion import confusion
from orienteer.data.queries.failures import SORTS, count_predictions, filtered_item_ids, predictions_page
from orienteer.data.queries.report import list_runs
from orienteer.data.rescore import rescore_run
from orienteer.tui.labels import category_name
from tests.conftest import write_official_csv

SKIP = 7  # the file leaves out every 7th item


def _wrong(item: dict) -> str:
    return next(k for k in "ABCD" if k != item["answer"][0])


@pytest.fixture
def gappy(ws_with_bench, vs_items, tmp_path):
    """'gappy' answers items i % 7 != 0 (right when i % 2 == 0); 'full' answers every item (right when i % 3 == 0)."""
    gappy = {i: (it["answer"][0] if i % 2 == 0 else _wrong(it)) for i, it in enumerate(vs_items) if i % SKIP}
    full = {i: (it["answer"][0] if i % 3 == 0 else _wrong(it)) for i, it in enumerate(vs_items)}
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "full.csv", vs_items, full), "vs", "full")
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "gappy.csv", vs_items, gappy), "vs", "gappy")
    missing = [i for i in range(len(vs_items)) if i % SKIP == 0]
    return ws_with_bench, gappy, missing


def _all_pages(con, filt: PredictionFilter, sort: str, size: int = 7) -> list[dict]:
    rows: list[dict] = []
    while True:
        page = predictions_page(con, filt, sort=sort, limit=size, offset=len(rows))
        rows += page
        if len(page) < size:
            return rows


def test_accuracy_and_coverage_do_not_change(gappy, vs_items):
    ws, answered, missing = gappy
    with ws.read() as con:
        row = next(r for r in list_runs(con) if r.run == "gappy")
        n_pred = con.execute("SELECT count(*) FROM predictions p JOIN runs r USING (run_id) WHERE r.name = 'gappy'").fetchone()
    correct = sum(1 for i in answered if i % 2 == 0)
    assert row.items == len(vs_items) and row.correct == correct
    assert row.coverage == pytest.approx(len(answered) / len(vs_items))
    assert n_pred[0] == len(answered)  # nothing stored for the missing items: coverage stays what the file answered


def test_failures_list_unanswered_items_in_item_order(gappy, vs_items):
    ws, answered, missing = gappy
    correct = sum(1 for i in answered if i % 2 == 0)
    with ws.read() as con:
        filt = PredictionFilter(runs=("gappy",))
        assert count_predictions(con, filt) == len(vs_items) - correct
        rows = _all_pages(con, filt, "item")
    assert [r["item_idx"] for r in rows] == sorted(i for i in range(len(vs_items)) if i not in answered or i % 2)
    unanswered = [r for r in rows if r["outcome"] == "unanswered"]
    assert [r["item_idx"] for r in unanswered] == missing
    first = unanswered[0]
    item = vs_items[first["item_idx"]]
    assert first["category"] == "unanswered" and first["correct"] is False
    assert first["reply"] is None and first["pred_letter"] is None and first["pred_label"] is None
    assert first["gold_letter"] == item["answer"][0] and first["task"] == item["question_type"]
    assert first["run"] == "gappy" and first["item_id"] == str(first["item_idx"])


@pytest.mark.parametrize("sort", list(SORTS))
@pytest.mark.parametrize("deep", [False, True])
def test_every_sort_pages_through_each_row_once(gappy, vs_items, monkeypatch, sort, deep):
    ws, answered, missing = gappy
    if deep:  # the keyset path for deep offsets, on a workspace small enough to page through
        monkeypatch.setattr(failures_mod, "DEEP_OFFSET", 3)
    with ws.read() as con:
        for filt in (PredictionFilter(runs=("gappy",)), PredictionFilter(), PredictionFilter(failures_only=False)):
            rows = _all_pages(con, filt, sort)
            keys = [(r["run"], r["item_idx"]) for r in rows]
            assert len(keys) == len(set(keys)) == count_predictions(con, filt), (sort, filt)
            assert sum(r["outcome"] == "unanswered" for r in rows) == len(missing)
    if sort == "category":
        cats = [r["category"] for r in rows if not r["correct"]]
        assert cats == sorted(cats, key=lambda c: (c is None, c))


def test_category_and_outcome_filters(gappy):
    ws, _, missing = gappy
    with ws.read() as con:
        for filt in (PredictionFilter(categories=("unanswered",)), PredictionFilter(outcomes=("unanswered",)),
                     PredictionFilter(runs=("gappy",), categories=("unanswered", "horizontal"), outcomes=("unanswered",)),
                     PredictionFilter(runs=("gappy",), categories=("unanswered",), failures_only=False)):
            assert count_predictions(con, filt) == len(missing), filt
            assert {r["outcome"] for r in predictions_page(con, filt, limit=100)} == {"unanswered"}
        # filters that cannot match an unanswered row leave them out
        for filt in (PredictionFilter(runs=("gappy",), categories=("horizontal", "non_directional", "unparsed",
                                                                    "adjacent", "orthogonal", "opposite", "depth")),
                     PredictionFilter(runs=("gappy",), outcomes=("wrong",)),
                     PredictionFilter(runs=("gappy",), pred_labels=("left", "right", "front", "back"))):
            assert all(r["outcome"] != "unanswered" for r in predictions_page(con, filt, limit=100))
        # the full run misses nothing: a filter on unanswered is empty, and is not even a scan
        empty = PredictionFilter(runs=("full",), categories=("unanswered",))
        assert count_predictions(con, empty) == 0 and predictions_page(con, empty) == []
        assert compile_filter(con, empty).where.endswith("FALSE")
        # gold and text filters apply to unanswered rows (the question, the item id)
        gold = predictions_page(con, PredictionFilter(runs=("gappy",), categories=("unanswered",)), limit=1)[0]
        by_gold = PredictionFilter(runs=("gappy",), categories=("unanswered",), gold_labels=(gold["gold_label"],))
        assert gold["item_idx"] in [r["item_idx"] for r in predictions_page(con, by_gold, limit=100)]
        by_text = PredictionFilter(runs=("gappy",), text=gold["item_id"])
        assert [r["outcome"] for r in predictions_page(con, by_text)] == ["unanswered"]


def test_full_coverage_runs_read_predictions_alone(gappy):
    """No anti-join for a run that misses nothing: the failures pages' query is what it was."""
    ws, _, _ = gappy
    with ws.read() as con:
        assert compile_filter(con, PredictionFilter(runs=("full",))).source == "predictions"
        assert compile_filter(con, PredictionFilter(runs=("gappy",), outcomes=("wrong",))).source == "predictions"
        assert "UNION ALL" in compile_filter(con, PredictionFilter(runs=("gappy",))).source
        assert "UNION ALL" not in compile_filter(con, PredictionFilter(categories=("unanswered",))).source


def test_versus_and_item_ids(gappy, vs_items):
    ws, answered, missing = gappy
    with ws.read() as con:
        # items 'full' got right that 'gappy' missed or got wrong: the missed ones are among them
        fixed = PredictionFilter(runs=("full",), failures_only=False, versus_run="gappy", versus_correct=False)
        expected = [i for i in range(len(vs_items)) if i % 3 == 0 and (i in missing or i % 2)]
        got = [r["item_idx"] for r in _all_pages(con, fixed.with_(outcomes=("correct",)), "item")]
        assert got == expected
        # 'gappy' rows, unanswered included, that 'full' got right
        lost = PredictionFilter(runs=("gappy",), versus_run="full", versus_correct=True)
        assert {r["item_idx"] for r in _all_pages(con, lost, "item") if r["outcome"] == "unanswered"} == {
            i for i in missing if i % 3 == 0}
        ids = filtered_item_ids(con, PredictionFilter(categories=("unanswered",)), "gappy")
    assert ids == [str(i) for i in missing]


def test_export_all_includes_unanswered(gappy, vs_items, tmp_path):
    ws, answered, missing = gappy
    out = tmp_path / "all.csv"
    with ws.read() as con:
        n = export_predictions(con, PredictionFilter(runs=("gappy",), failures_only=False), out)
        assert n == len(vs_items)
        only = tmp_path / "unanswered.jsonl"
        assert export_predictions(con, PredictionFilter(categories=("unanswered",)), only) == len(missing)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["item_id"]) for r in rows] == list(range(len(vs_items)))
    gaps = [r for r in rows if r["outcome"] == "unanswered"]
    assert [int(r["item_id"]) for r in gaps] == missing
    assert all(r["category"] == "unanswered" and r["reply"] == "" and r["pred_letter"] == "" for r in gaps)
    assert all(r["options"] and r["question"] and r["gold_letter"] for r in gaps)
    lines = [json.loads(line) for line in only.read_text(encoding="utf-8").splitlines()]
    assert {line["run"] for line in lines} == {"gappy"} and all(line["reply"] is None for line in lines)


@pytest.mark.parametrize("grouping", ["fine", "deck"])
def test_confusion_counts_unanswered_apart_from_chance(gappy, vs_items, grouping):
    ws, answered, missing = gappy
    with ws.read() as con:
        conf = confusion(con, "gappy", grouping=grouping)
        task = vs_items[0]["question_type"]
        per_task = confusion(con, "gappy", task, grouping=grouping)
        full = confusion(con, "full", grouping=grouping)
    assert conf.categories["unanswered"] == len(missing) == conf.unanswered
    assert conf.answered == len(answered)  # the matrix counts answered items only
    assert conf.errors == len(vs_items) - sum(1 for i in answered if i % 2 == 0)
    assert "unanswered" not in conf.chance and "unanswered" in conf.rows
    assert conf.wrong_picks == sum(1 for i in answered if i % 2)
    assert per_task.unanswered == sum(1 for i in missing if vs_items[i]["question_type"] == task)
    assert "unanswered" not in full.categories and full.unanswered == 0
    assert conf.as_json()["unanswered"] == len(missing)


def test_rescore_keeps_unanswered(gappy):
    ws, _, missing = gappy
    rescore_run(ws, "gappy", "strict")
    with ws.read() as con:
        assert count_predictions(con, PredictionFilter(runs=("gappy",), categories=("unanswered",))) == len(missing)


def test_category_names():
    assert category_from_name("unanswered") is Category.UNANSWERED
    assert category_from_name("Unanswered") is Category.UNANSWERED
    assert category_from_name("missing") is Category.UNANSWERED
    assert category_name("unanswered") == "Unanswered"


def test_cli_failures_and_export(gappy, tmp_path):
    from orienteer.tui.cli.main import app

    ws, _, missing = gappy
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(ws.root), "failures", "--run", "gappy", "--category", "unanswered",
                                 "--json", "--limit", "100"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["total"] == len(missing)
    assert {r["category"] for r in doc["rows"]} == {"unanswered"}
    out = tmp_path / "x" / "fails.csv"
    out.parent.mkdir()
    result = runner.invoke(app, ["-w", str(ws.root), "export", "failures", "--all", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        assert sum(r["outcome"] == "unanswered" for r in csv.DictReader(fh)) == len(missing)


def test_marked_unanswered_rows_export(gappy, tmp_path):
    """Rows marked in the app are exported by (run, item id): an unanswered one too."""
    ws, answered, missing = gappy
    wrong = next(i for i in sorted(answered) if i % 2)
    keys = [("gappy", str(missing[1])), ("gappy", str(wrong))]
    out = tmp_path / "marked.csv"
    with ws.read() as con:
        assert export_predictions(con, PredictionFilter(), out, item_keys=keys) == 2
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["item_id"], r["outcome"]) for r in rows] == sorted(
        [(str(missing[1]), "unanswered"), (str(wrong), "wrong")], key=lambda x: int(x[0]))


def test_cli_table_shows_unanswered(gappy):
    from orienteer.tui.cli.main import app

    ws, _, missing = gappy
    result = CliRunner().invoke(app, ["-w", str(ws.root), "failures", "--run", "gappy", "-c", "unanswered"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Unanswered") == len(missing)
