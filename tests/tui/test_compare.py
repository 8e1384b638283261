"""Screen 4, compare: rows equal compare_runs, fixed/broken drill-downs open exactly their items, swap, pickers."""

from __future__ import annotations

from textual.widgets import DataTable

from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.compare import compare_runs
from orienteer.data.queries.failures import count_predictions
from orienteer.data.queries.lookups import run_names_of
from orienteer.data.queries.report import OVERALL
from orienteer.data.workspace import Workspace
from orienteer.tui.labels import short_task
from orienteer.tui.screens.compare import COLUMNS, CompareScreen, p_text, split_bar
from orienteer.tui.widgets.pickers import PickerScreen
from tests.conftest import random_replies, write_official_csv
from tests.tui.pilot import drive

KEYS = [key for key, _ in COLUMNS]


def _table(app) -> DataTable:
    return app.screen.query_one("#cmp-table", DataTable)


def _shown(table: DataTable) -> list[list[str]]:
    return [[str(table.get_cell_at((r, c))).strip() for c in range(len(KEYS) - 1)] for r in range(table.row_count)]


def _unanswered_broken(con, a: str, b: str, task: str | None = None) -> int:
    """Items A got right that B has no prediction for: broken, yet no row of B can list them."""
    return con.execute(
        """SELECT count(*) FROM predictions pa JOIN runs ra USING (run_id) JOIN items i
                  ON i.bench_id = ra.bench_id AND i.item_idx = pa.item_idx
           WHERE ra.name = ? AND pa.correct AND (? IS NULL OR i.task = ?)
             AND NOT EXISTS (SELECT 1 FROM predictions pb JOIN runs rb USING (run_id)
                             WHERE rb.name = ? AND pb.item_idx = pa.item_idx)""", [a, task, task, b]).fetchone()[0]


def _as_shown(rows) -> list[list[str]]:
    out = []
    for r in rows:
        delta = f"{100 * (r.accuracy_b - r.accuracy_a):+.1f}" + ("*" if r.p_holm < 0.05 else "")
        out.append(["Overall" if r.task == OVERALL else short_task(r.task), str(r.n), f"{100 * r.accuracy_a:.1f}",
                    f"{100 * r.accuracy_b:.1f}", delta, str(r.fixed), str(r.broken), p_text(r.p_holm)])
    return out


async def _open_compare(pilot) -> None:
    await pilot.press("4")
    await pilot.pause()
    assert isinstance(pilot.app.screen, CompareScreen)


def test_split_bar_is_symmetric_and_fixed_width():
    assert split_bar(34, 34, 68).plain == "  ▐██│██▌  "
    assert split_bar(0, 10, 10).plain == "█████│     "
    assert split_bar(1, 0, 100).plain == "     │▌    "
    assert len(split_bar(80, 3, 80)) == 11


def test_rows_equal_compare_runs_for_the_default_pair(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        runs = run_names_of(con, "demo")
        rows = compare_runs(con, runs[0], runs[-1])

    async def scenario(pilot):
        await _open_compare(pilot)
        assert (app.state.compare_a, app.state.compare_b) == (runs[0], runs[-1])
        assert _shown(_table(app)) == _as_shown(rows)
        title = str(app.screen.query_one("#cmp-title").render())
        assert runs[0] in title and runs[-1] in title

    drive(app, scenario)


def test_enter_on_fixed_and_broken_opens_exactly_those_items(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        a, *_, b = run_names_of(con, "demo")
        rows = compare_runs(con, a, b)
    task_row = 2
    task = rows[task_row].task

    async def scenario(pilot):
        await _open_compare(pilot)
        table = _table(app)
        # fixed cell of a task row, by keyboard from the starting cell (row 0, column "broken")
        assert table.cursor_coordinate == (0, KEYS.index("broken"))
        await pilot.press(*(["j"] * task_row), "h")
        await pilot.pause()
        assert table.cursor_coordinate == (task_row, KEYS.index("fixed"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "failures"
        assert app.state.failures == PredictionFilter(runs=(b,), tasks=(task,), failures_only=False,
                                                      outcomes=("correct",), versus_run=a, versus_correct=False)
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == rows[task_row].fixed
        # broken of the overall row
        await _open_compare(pilot)
        table = _table(app)
        table.cursor_coordinate = (len(rows) - 1, KEYS.index("broken"))
        await pilot.pause()
        detail = str(app.screen.query_one("#cmp-detail").render())
        assert f"the {rows[-1].broken} broken items" in detail and "not listed" not in detail  # unanswered ones too
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.failures == PredictionFilter(runs=(b,), tasks=(), failures_only=True, versus_run=a,
                                                      versus_correct=True)
        with demo_ws.read() as con:
            # the demo's box-prompt run skipped 10 items, 3 of them right in A: listed as Unanswered failures
            assert _unanswered_broken(con, a, b) == 3
            assert count_predictions(con, app.state.failures) == rows[-1].broken
        # any other column opens the broken items too
        await _open_compare(pilot)
        _table(app).cursor_coordinate = (0, KEYS.index("delta"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.failures == PredictionFilter(runs=(b,), tasks=(rows[0].task,), failures_only=True,
                                                      versus_run=a, versus_correct=True)
        with demo_ws.read() as con:
            assert _unanswered_broken(con, a, b, rows[0].task) == 0
            assert count_predictions(con, app.state.failures) == rows[0].broken

    drive(app, scenario)


def test_x_swaps_and_pickers_choose_runs(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        runs = run_names_of(con, "demo")
        swapped = compare_runs(con, runs[-1], runs[0])
        chosen = compare_runs(con, runs[1], runs[0])

    async def scenario(pilot):
        await _open_compare(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert (app.state.compare_a, app.state.compare_b) == (runs[-1], runs[0])
        assert _shown(_table(app)) == _as_shown(swapped)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen) and app.screen.options == runs
        await pilot.press("k", "enter")  # from the last run up to the middle one
        await pilot.pause()
        assert app.state.compare_a == runs[1]
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("escape")  # cancel changes nothing
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen) and app.state.compare_b == runs[0]
        assert _shown(_table(app)) == _as_shown(chosen)
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("j", "j", "enter")
        await pilot.pause()
        assert app.state.compare_b == runs[2]

    drive(app, scenario, size=(80, 24))


def test_runs_of_different_benchmarks_show_the_error(app_factory, tmp_path, vs_bench_file, vs_items):
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.ingest_preds import import_predictions

    ws = Workspace(tmp_path / "two")
    import_benchmark(ws, vs_bench_file, "vs")
    import_benchmark(ws, vs_bench_file, "vs2")
    csv = write_official_csv(tmp_path / "r.csv", vs_items, random_replies(vs_items, seed=1))
    import_predictions(ws, csv, "vs", "run-one")
    import_predictions(ws, csv, "vs2", "run-two")
    app = app_factory(ws)

    async def scenario(pilot):
        app.state.compare_a, app.state.compare_b = "run-one", "run-two"
        await _open_compare(pilot)
        messages = [n.message for n in app._notifications]
        # the data layer names them "unrelated" since derived benchmarks can be compared with their parent
        assert any("unrelated benchmarks" in m and "run-one" in m for m in messages), messages
        assert _table(app).row_count == 0

    drive(app, scenario)
