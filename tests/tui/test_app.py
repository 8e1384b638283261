"""The app shell: number keys, escape history, help, command palette, the runs screen and its drill-down."""

from __future__ import annotations

import json
import subprocess
import sys

from textual.widgets import DataTable, Static

from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.failures import count_predictions
from orienteer.data.queries.report import OVERALL, task_report
from tests.tui.pilot import drive


def test_number_keys_switch_screens_and_escape_goes_back(app_factory):
    app = app_factory()

    async def scenario(pilot):
        assert app.current_mode == "runs"
        for key, mode in (("2", "confusion"), ("3", "failures"), ("4", "compare"), ("1", "runs")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "compare"
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "failures"

    drive(app, scenario)


def test_runs_screen_matches_report(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        [report] = task_report(con)

    async def scenario(pilot):
        table = app.screen.query_one("#runs-table", DataTable)
        assert table.row_count == len(report.runs)
        assert len(table.columns) == len(report.tasks) + 2
        for row, rr in enumerate(report.runs):
            for col, task in enumerate([*report.tasks, OVERALL], start=1):
                cell = rr.overall if task == OVERALL else rr.tasks[task]
                assert str(table.get_cell_at((row, col))).startswith(f"{100 * cell.accuracy:4.1f}")
                delta = rr.deltas.get(task)
                if delta is not None:
                    assert f"{100 * delta.delta:+.1f}" in str(table.get_cell_at((row, col))).replace("+-", "-")

    drive(app, scenario)


def test_enter_on_a_cell_opens_exactly_its_failures(app_factory, demo_ws):
    app = app_factory()
    with demo_ws.read() as con:
        [report] = task_report(con)

    async def scenario(pilot):
        await pilot.press("down", "right", "right")  # second run, second task
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        run, task = report.runs[1].run, report.tasks[1]
        assert app.current_mode == "failures"
        assert app.state.failures == PredictionFilter(runs=(run,), tasks=(task,))
        cell = report.runs[1].tasks[task]
        with demo_ws.read() as con:
            assert count_predictions(con, app.state.failures) == cell.n - cell.correct

    drive(app, scenario)


def test_baseline_key_recomputes_deltas(app_factory):
    app = app_factory()

    async def scenario(pilot):
        await pilot.press("down", "down", "b")
        await pilot.pause()
        assert app.state.baseline == "box-prompt"
        assert "box-prompt" in app.screen.title_text
        table = app.screen.query_one("#runs-table", DataTable)
        # the baseline's own row carries no delta; the others do
        assert "*" in str(table.get_cell_at((0, 3))) or "-" in str(table.get_cell_at((0, 3)))

    drive(app, scenario)


def test_help_lists_the_keys_of_the_current_screen(app_factory):
    app = app_factory()

    async def scenario(pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        text = app.screen.plain_text()
        for fragment in ("Failures of cell", "Baseline = this run", "Confusion", "Command palette"):
            assert fragment in text
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "RunsScreen"

    drive(app, scenario)


def test_command_palette_offers_every_screen_action(app_factory):
    app = app_factory()

    async def scenario(pilot):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in ("Failures of cell", "Baseline = this run", "Runs", "Confusion", "Failures", "Compare", "Keys"):
            assert expected in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert "CommandPalette" in type(app.screen).__name__
        await pilot.press(*"compare")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.current_mode == "compare"

    drive(app, scenario)


def test_q_quits(app_factory):
    app = app_factory()

    async def scenario(pilot):
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(app, scenario)


def test_app_start_imports_no_ml_packages():
    code = ("import sys, json; import orienteer.tui.app, orienteer.tui.cli.main\n"
            "import orienteer.tui.screens.runs, orienteer.tui.screens.confusion, orienteer.tui.screens.failures\n"
            "import orienteer.tui.screens.compare, orienteer.tui.screens.case, orienteer.tui.widgets.item_image\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch','transformers','peft','ultralytics'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_tasks_a_run_never_saw_show_as_not_run(app_factory, tmp_path, vs_bench_file, vs_items):
    """An eval of a subset (the launch form prefills the task under the cursor) leaves the other tasks
    without predictions: their cells say so instead of showing 0% and a 'significant' drop."""
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.ingest_preds import import_predictions
    from orienteer.data.workspace import Workspace
    from tests.conftest import random_replies, write_official_csv

    ws = Workspace(tmp_path / "partial")
    import_benchmark(ws, vs_bench_file, "vs")
    replies = random_replies(vs_items, seed=1)
    import_predictions(ws, write_official_csv(tmp_path / "all.csv", vs_items, replies), "vs", "full")
    task = vs_items[0]["question_type"]
    subset = {i: r for i, r in replies.items() if vs_items[i]["question_type"] == task}
    import_predictions(ws, write_official_csv(tmp_path / "part.csv", vs_items, subset), "vs", "part")
    app = app_factory(ws)
    with ws.read() as con:
        [report] = task_report(con)
    row = [rr.run for rr in report.runs].index("part")
    seen_column = [*report.tasks, OVERALL].index(task) + 1

    async def scenario(pilot):
        table = app.screen.query_one("#runs-table", DataTable)
        for col, name in enumerate([*report.tasks, OVERALL], start=1):
            text = str(table.get_cell_at((row, col)))
            if name in (task, OVERALL):
                cell = report.runs[row].overall if name == OVERALL else report.runs[row].tasks[name]
                assert text.startswith(f"{100 * cell.accuracy:4.1f}") and "not run" not in text
            else:
                assert text == "  —\nnot run"
        table.cursor_coordinate = (row, seen_column + 1 if seen_column < len(report.tasks) else 1)
        await pilot.pause()
        detail = str(app.screen.query_one("#runs-detail", Static).render())
        assert "not run: no predictions for these" in detail and f"covers {len(subset)} of {len(vs_items)}" in detail
        table.cursor_coordinate = (row, len(report.tasks) + 1)  # Overall: partly answered
        await pilot.pause()
        detail = str(app.screen.query_one("#runs-detail", Static).render())
        assert f"the {len(vs_items) - len(subset)} unanswered count as wrong" in detail

    drive(app, scenario)
