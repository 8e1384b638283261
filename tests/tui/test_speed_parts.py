"""The pieces that make key presses fast: FastTable's cell layout and caches, the key bar, the prefetcher."""

from __future__ import annotations

import io
import threading
import time

import pytest
from rich.console import Console
from rich.padding import Padding
from rich.style import Style
from rich.text import Text
from textual.renderables.styled import Styled

from orienteer.tui.prefetch import CasePrefetcher
from orienteer.tui.widgets.bars import bar, delta_text
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.table import FastTable, fast_cell_lines

from .pilot import drive


def _runs_cell() -> Text:
    text = Text("36.8 ")
    text.append_text(bar(0.368, 4, style="cyan"))
    text.append("\n")
    text.append_text(delta_text(-0.05, False))
    return text


CELLS = [
    Text("abc"), Text("abc", style="bold red"), Text("12", style="green", justify="right"),
    Text("12  ", style="green", justify="right"), Text("x", justify="center", style="on red"),
    Text("a\nb"), Text.from_markup("[b]run[/b] x\n[dim]±3[/dim]"), Text(""), Text("abc\n"), Text("é漢字"),
    bar(0.5, 4), delta_text(0.1, True), Text("left", justify="left", style="underline"), _runs_cell(),
]


def _chars(lines):
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


@pytest.mark.parametrize("cell", CELLS, ids=[repr(c.plain) for c in CELLS])
def test_fast_cell_lines_match_rich(cell: Text) -> None:
    """Character for character and style for style what DataTable gets from Rich (when the text fits)."""
    console = Console(file=io.StringIO(), width=200, color_system="truecolor")
    pre = Style(bgcolor="grey11", color="white") + Style.from_meta({"row": 1, "column": 2})
    compared = 0
    for width in (8, 10, 14):
        for height in (1, 2, 3):
            for pad in (0, 1):
                for post in (Style(bgcolor="blue"), Style.null()):
                    fast = fast_cell_lines(cell, width, height, pad, pre, post, console)
                    if fast is None:
                        continue
                    options = console.options.update_dimensions(width, height)
                    if height == 1:
                        options = options.update(no_wrap=True)
                    slow = console.render_lines(Styled(Padding(cell, (0, pad)), pre_style=pre, post_style=post), options)
                    assert _chars(fast) == _chars(slow), (width, height, pad)
                    compared += 1
    assert compared > 0


def test_fast_cell_lines_leave_overflowing_text_to_rich() -> None:
    console = Console(file=io.StringIO(), width=200)
    assert fast_cell_lines(Text("far too long for this"), 8, 1, 1, Style(), Style(), console) is None
    assert fast_cell_lines("not a Text", 8, 1, 1, Style(), Style(), console) is None


def test_table_keeps_rendered_cells_across_screen_switches(app_factory) -> None:
    """Going 1 -> 3 -> 1 re-applies CSS to the runs screen; its rendered cells must survive that."""
    app = app_factory(image_mode="none")

    async def scenario(pilot):
        await pilot.pause()
        table = app.screen.query_one("#runs-table", FastTable)
        assert len(table._cell_render_cache) > 0
        before = {key: table._cell_render_cache.get(key) for key in table._cell_render_cache.keys()}
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        assert app.screen.query_one("#runs-table", FastTable) is table
        # the very same rendered lines: a re-render would store new ones under the same keys
        kept = [key for key, lines in before.items() if table._cell_render_cache.get(key) is lines]
        assert kept, "the runs table re-rendered every cell after coming back"

    drive(app, scenario)


def test_key_bar_lists_the_screens_keys(app_factory) -> None:
    app = app_factory(image_mode="none")

    async def scenario(pilot):
        await pilot.pause()
        bar_ = app.screen.query_one(KeyBar)
        descriptions = [d for _k, _s, d, _e in bar_.keys]
        assert "Baseline = this run" in descriptions and "Confusion" in descriptions
        assert descriptions[-1] == "\0palette"  # the command palette, drawn on the right
        await pilot.press("3")
        await pilot.pause()
        descriptions = [d for _k, _s, d, _e in app.screen.query_one(KeyBar).keys]
        assert "Search" in descriptions and "Baseline = this run" not in descriptions

    drive(app, scenario)


def test_case_screen_is_reused_and_cases_are_prefetched(app_factory) -> None:
    app = app_factory(image_mode="none")

    async def scenario(pilot):
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        first = app.screen
        assert type(first).__name__ == "CaseScreen"
        # n needs the next case: the case view asked for it in the background
        deadline = time.monotonic() + 10
        next_case = first.case_list[first.index + 1]
        while not app.cases.cached(app.case_key(*next_case)) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.cases.cached(app.case_key(*next_case))
        await pilot.press("n")
        await pilot.pause()
        assert (first.run, first.item_id) == next_case
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("j", "enter")
        await pilot.pause()
        assert app.screen is first  # the same screen, showing the row now under the cursor
        assert first.index == 1

    drive(app, scenario)


def test_prefetcher_waits_for_a_fetch_in_flight_instead_of_repeating_it(tmp_path, monkeypatch) -> None:
    calls: list[tuple[str, str]] = []
    release = threading.Event()

    class Service:  # stands in for WorkspaceService: a case fetch that waits until released
        def case_detail(self, run: str, item_id: str) -> str:
            calls.append((run, item_id))
            release.wait(5)
            return f"{run}/{item_id}"

        def release_if_idle(self) -> bool:
            return False

        def interrupt(self) -> None:
            pass

        def close(self) -> None:
            pass

    cases = CasePrefetcher(Service())  # type: ignore[arg-type]
    try:
        cases.want([(0, "r", "1")])
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        threading.Timer(0.1, release.set).start()
        got = cases.get((0, "r", "1"), lambda: pytest.fail("fetched twice"))
        assert got == "r/1" and calls == [("r", "1")] and cases.fetched_ahead == 1
        assert cases.get((1, "r", "1"), lambda: "fresh") == "fresh"  # another data generation: not the cached one
    finally:
        cases.close()
