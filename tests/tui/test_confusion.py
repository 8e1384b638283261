"""Screen 2, confusion: the matrix and categories match the query, and every drill-down opens exactly its items."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, OptionList

from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.confusion import INVALID_LABEL, UNPARSED_LABEL, confusion
from orienteer.data.queries.failures import count_predictions
from orienteer.data.queries.lookups import run_names_of, tasks_of_run
from orienteer.tui.screens.confusion import (
    GOLD_COLUMN,
    TOTAL_COLUMN,
    ConfusionScreen,
    abbreviate,
    column_headers,
)
from orienteer.tui.widgets.pickers import PickerScreen
from tests.tui.pilot import drive


def _matrix(app) -> DataTable:
    return app.screen.query_one("#cf-matrix", DataTable)


def _table_counts(table: DataTable) -> dict[tuple[str, str], int]:
    """(gold, pred) -> count as shown, zero cells left out."""
    keys = [c.key.value for c in table.columns.values()]
    out: dict[tuple[str, str], int] = {}
    for row in range(table.row_count):
        gold = str(table.get_cell_at((row, 0)))
        for col, key in enumerate(keys):
            if key in (GOLD_COLUMN, TOTAL_COLUMN):
                continue
            text = str(table.get_cell_at((row, col))).strip()
            if text != "·":
                out[(gold, key)] = int(text)
    return out


def _expected(con, run: str, task: str | None = None) -> dict[tuple[str, str], int]:
    return {(m.gold, m.pred): m.n for m in confusion(con, run, task).matrix if m.n}


async def _goto_cell(pilot, app, gold: str, pred: str) -> None:
    """Move the matrix cursor with the keyboard (it starts on the first count column)."""
    table = _matrix(app)
    keys = [c.key.value for c in table.columns.values()]
    rows = [str(table.get_cell_at((r, 0))) for r in range(table.row_count)]
    table.focus()
    table.cursor_coordinate = (0, 1)
    moves = keys.index(pred) - 1
    await pilot.press(*(["j"] * rows.index(gold)), *(["l"] * moves if moves >= 0 else ["h"]))
    await pilot.pause()
    assert table.cursor_coordinate == (rows.index(gold), keys.index(pred))


async def _open_confusion(pilot) -> None:
    await pilot.press("2")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfusionScreen)


def test_abbreviations_are_short_and_distinct():
    labels = ["front", "front-right", "right", "back-right", "back", "back-left", "left", "front-left", "above",
              "above-right", "above-left", "front-up", "back-up", "down", "down-right", "down-left", "front-down",
              "back-down", UNPARSED_LABEL, INVALID_LABEL]
    assert [abbreviate(label) for label in labels] == [
        "F", "FR", "R", "BR", "B", "BL", "L", "FL", "A", "AR", "AL", "FU", "BU", "D", "DR", "DL", "FD", "BD",
        "unp", "inv"]
    assert abbreviate("Up Above.") == "UA" and abbreviate("a red mug") == "a re"
    headers = column_headers(["back", "behind", "bottom"])
    assert len(set(headers)) == 3


def test_matrix_matches_query_for_default_run_and_after_choosing_a_task(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        run = run_names_of(con, "demo")[0]
        tasks = tasks_of_run(con, run)
        whole = _expected(con, run)
        per_task = _expected(con, run, tasks[1])

    async def scenario(pilot):
        await _open_confusion(pilot)
        assert app.state.confusion_run == run and app.state.confusion_task is None
        assert _table_counts(_matrix(app)) == whole
        title = str(app.screen.query_one("#cf-title").render())
        assert run in title and "all tasks" in title and "1000 answered" in title
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        assert app.screen.query_one(OptionList).highlighted == 0  # "all tasks" is the current one
        await pilot.press("j", "j", "enter")  # all tasks, tasks[0], tasks[1]
        await pilot.pause()
        assert isinstance(app.screen, ConfusionScreen)
        assert app.state.confusion_task == tasks[1]
        assert _table_counts(_matrix(app)) == per_task
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("escape")  # cancel keeps the task
        await pilot.pause()
        assert app.state.confusion_task == tasks[1]

    drive(app, scenario)


def test_categories_ranked_with_shares_summing_to_100(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        conf = confusion(con, run_names_of(con, "demo")[0])

    async def scenario(pilot):
        await _open_confusion(pilot)
        cats = app.screen.query_one("#cf-cats", DataTable)
        rows = [[str(cats.get_cell_at((r, c))).strip() for c in range(3)] for r in range(cats.row_count)]
        counts = [int(r[1]) for r in rows]
        assert counts == sorted(counts, reverse=True)
        assert sum(counts) == conf.errors
        assert [r[1] for r in rows] == [str(n) for n in conf.categories.values()]
        assert rows[0][0] == "Horizontal (L<->R)"
        assert sum(float(r[2].rstrip("%")) for r in rows) == pytest.approx(100.0, abs=0.1 * len(rows))

    drive(app, scenario)


@pytest.mark.parametrize("kind", ["off_diagonal", "diagonal", "unparsed", "gold_row"])
def test_enter_on_a_cell_opens_exactly_its_items(app_factory, demo_ws, kind):
    app = app_factory()
    with demo_ws.read() as con:
        run = run_names_of(con, "demo")[0]
        counts = _expected(con, run)
    if kind == "off_diagonal":
        (gold, pred), n = max(((k, v) for k, v in counts.items() if k[0] != k[1] and k[1] not in
                               (UNPARSED_LABEL, INVALID_LABEL)), key=lambda kv: kv[1])
        expected = PredictionFilter(runs=(run,), gold_labels=(gold,), pred_labels=(pred,))
    elif kind == "diagonal":
        gold = pred = "back-right"
        n = counts[(gold, pred)]
        expected = PredictionFilter(runs=(run,), gold_labels=(gold,), pred_labels=(gold,), failures_only=False)
    elif kind == "unparsed":
        (gold, pred), n = max(((k, v) for k, v in counts.items() if k[1] == UNPARSED_LABEL), key=lambda kv: kv[1])
        expected = PredictionFilter(runs=(run,), gold_labels=(gold,), outcomes=("unparsed",))
    else:  # the gold label itself: every failure of that row
        gold, pred = "left", GOLD_COLUMN
        n = sum(v for (g, p), v in counts.items() if g == gold and p != gold)
        expected = PredictionFilter(runs=(run,), gold_labels=(gold,))

    async def scenario(pilot):
        await _open_confusion(pilot)
        await _goto_cell(pilot, app, gold, pred)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "failures"
        assert app.state.failures == expected
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == n

    drive(app, scenario)


def test_enter_on_a_cell_of_one_task(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        run = run_names_of(con, "demo")[0]
        task = tasks_of_run(con, run)[1]
        counts = _expected(con, run, task)
    (gold, pred), n = max(((k, v) for k, v in counts.items() if k[0] != k[1]), key=lambda kv: kv[1])

    async def scenario(pilot):
        app.state.confusion_task = task
        await _open_confusion(pilot)
        await _goto_cell(pilot, app, gold, pred)
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.failures == PredictionFilter(runs=(run,), tasks=(task,), gold_labels=(gold,),
                                                      pred_labels=(pred,))
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == n

    drive(app, scenario)


def test_enter_on_a_category_opens_exactly_its_failures(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        conf = confusion(con, run_names_of(con, "demo")[0])
    cat, n = list(conf.categories.items())[1]

    async def scenario(pilot):
        await _open_confusion(pilot)
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is app.screen.query_one("#cf-cats")
        await pilot.press("j", "enter")
        await pilot.pause()
        assert app.current_mode == "failures"
        assert app.state.failures == PredictionFilter(runs=(conf.run,), categories=(cat,))
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == n

    drive(app, scenario)


def test_run_picker_changes_the_view(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        runs = run_names_of(con, "demo")
        second = _expected(con, runs[1])

    async def scenario(pilot):
        await _open_confusion(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen) and app.screen.options[:3] == runs
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.state.confusion_run == runs[1]
        assert _table_counts(_matrix(app)) == second
        assert runs[1] in str(app.screen.query_one("#cf-title").render())

    drive(app, scenario)


def test_small_terminal_and_wide_layout(app_factory):
    app = app_factory()

    async def scenario(pilot):
        await _open_confusion(pilot)
        body = app.screen.query_one("#cf-body")
        assert not body.has_class("wide")
        matrix = _matrix(app)
        matrix.cursor_coordinate = (matrix.row_count - 2, len(matrix.columns) - 2)  # far corner: scrolled
        await pilot.press("l", "j", "tab", "j", "tab", "k")
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfusionScreen)
        await pilot.resize_terminal(130, 40)
        await pilot.pause()
        assert body.has_class("wide")

    drive(app, scenario, size=(80, 24))


def _category_rows(app) -> list[list[str]]:
    cats = app.screen.query_one("#cf-cats", DataTable)
    return [[str(cats.get_cell_at((r, c))).strip() for c in range(5)] for r in range(cats.row_count)]


def test_category_panel_sets_each_count_against_chance(app_factory, demo_ws):
    """The demo's base run mirrors left/right far beyond chance; box-prompt's raw counts lead with
    Horizontal on person relative direction but its picks are uniform, and nothing is flagged."""
    app = app_factory()
    task = "Person perspective - Relative Direction"
    with demo_ws.read() as con:
        base = confusion(con, "qwen3b-base")
        box = confusion(con, "box-prompt", task)

    async def scenario(pilot):
        await _open_confusion(pilot)
        rows = _category_rows(app)
        assert [r[0] for r in rows][0] == "Horizontal (L<->R)"
        horizontal = base.chance["horizontal"]
        assert rows[0][3] == f"{horizontal.expected:.1f}" and rows[0][4] == f"{horizontal.ratio:.2f}×*"
        assert horizontal.ratio > 2 and horizontal.p_holm < 1e-10
        caption = str(app.screen.query_one("#cf-cats-caption").render())
        assert "uniform wrong pick" in caption and f"{base.wrong_picks} answered wrong" in caption and "Holm" in caption
        unparsed = next(r for r in rows if r[0] == "Unparsed")
        assert unparsed[3] == unparsed[4] == "–"
        # box-prompt on one task: Horizontal leads the raw counts, yet it is what chance gives
        app.state.confusion_run, app.state.confusion_task = "box-prompt", task
        app.screen.reload()
        await pilot.pause()
        rows = _category_rows(app)
        assert rows[0][0] == "Horizontal (L<->R)" and int(rows[0][1]) == max(box.categories.values())
        assert not any(r[4].endswith("*") for r in rows)
        assert all(not row.significant for row in box.chance.values())
        assert 0.8 < box.chance["horizontal"].ratio < 1.25

    drive(app, scenario)


def test_g_switches_to_the_deck_grouping_and_drills_into_its_members(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        deck = confusion(con, "qwen3b-base", grouping="deck")

    async def scenario(pilot):
        await _open_confusion(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert app.state.confusion_grouping == "deck"
        rows = _category_rows(app)
        names = [r[0] for r in rows]
        assert "Adjacent (not 90/180)" in names and "Obtuse" not in names and "Depth (F<->B)" not in names
        assert [int(r[1]) for r in rows] == [deck.count(k) for k in deck.rows]
        row = names.index("Adjacent (not 90/180)")
        await pilot.press("tab", *["j"] * row)
        await pilot.pause()
        detail = str(app.screen.query_one("#cf-detail").render())
        assert "chance" in detail and "Holm p" in detail
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "failures"
        assert app.state.failures == PredictionFilter(runs=("qwen3b-base",), categories=("adjacent", "obtuse"))
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == deck.count("adjacent_any")

    drive(app, scenario)


# --- unanswered items (issue 16) ----------------------------------------------------------------

def test_unanswered_items_in_the_category_panel(app_factory, ws_with_bench, vs_items, tmp_path):
    """A run whose file (the official evaluate.py result CSV, tests.conftest.write_official_csv) leaves
    out every 7th item: the panel lists them as Unanswered, with no chance figure, and enter opens them."""
    from orienteer.data.ingest_preds import import_predictions
    from tests.conftest import write_official_csv

    replies = {i: (it["answer"][0] if i % 2 == 0 else "A" if it["answer"][0] != "A" else "B")
               for i, it in enumerate(vs_items) if i % 7}
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "g.csv", vs_items, replies), "vs", "gappy")
    missing = sum(1 for i in range(len(vs_items)) if i % 7 == 0)
    with ws_with_bench.read() as con:
        conf = confusion(con, "gappy")
    app = app_factory(ws_with_bench)
    app.state.confusion_run = "gappy"

    async def scenario(pilot):
        await _open_confusion(pilot)
        cats = app.screen.query_one("#cf-cats", DataTable)
        keys = [row.key.value for row in cats.rows.values()]
        assert keys == conf.rows and "unanswered" in keys
        row = keys.index("unanswered")
        assert [str(c).strip() for c in cats.get_row_at(row)[:2]] == ["Unanswered", str(missing)]
        assert str(cats.get_row_at(row)[3]).strip() == "–"  # not a pick: no chance figure
        title = str(app.screen.query_one("#cf-title").render())
        assert f"{len(replies)} answered" in title and f"{missing} unanswered" in title
        await pilot.press("tab")
        await pilot.pause()
        cats.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.failures == PredictionFilter(runs=("gappy",), categories=("unanswered",))
        with ws_with_bench.read() as con:
            assert count_predictions(con, app.state.failures) == missing

    drive(app, scenario)
