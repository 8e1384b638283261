"""4 · Compare: two runs of one benchmark, per task, with what B fixed and what it broke.

fixed = A wrong, B right; broken = A right, B wrong (an item a run did not answer counts as
wrong). Δ is B minus A, starred when the exact McNemar test on the pairs gives p < 0.05 after
Holm correction across the rows (the tasks and overall).
Enter on a row opens its fixed or broken items (by the cursor's column; broken elsewhere).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Header, Static

from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.compare import CompareRow
from orienteer.data.queries.report import OVERALL
from orienteer.tui.labels import short_task
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.widgets.bars import delta_text
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.pickers import PickerScreen
from orienteer.tui.widgets.table import FastTable

BAR_HALF = 5
COLUMNS = (("task", "task"), ("n", "n"), ("acc_a", "A %"), ("acc_b", "B %"), ("delta", "Δ"),
           ("fixed", "fixed"), ("broken", "broken"), ("p", "p Holm"), ("bar", "brk │ fix"))


def fixed_filter(run_a: str, run_b: str, tasks: tuple[str, ...] = ()) -> PredictionFilter:
    """Items B answers correctly that A got wrong (or did not answer)."""
    return PredictionFilter(runs=(run_b,), tasks=tasks, failures_only=False, outcomes=("correct",),
                            versus_run=run_a, versus_correct=False)


def broken_filter(run_a: str, run_b: str, tasks: tuple[str, ...] = ()) -> PredictionFilter:
    """Items B gets wrong that A answered correctly."""
    return PredictionFilter(runs=(run_b,), tasks=tasks, failures_only=True, versus_run=run_a, versus_correct=True)


def p_text(p: float) -> str:
    """A p-value in at most six characters: 0.0139, 3e-04."""
    return f"{p:.3g}" if p >= 0.001 else f"{p:.0e}"


def split_bar(fixed: int, broken: int, peak: int, half: int = BAR_HALF) -> Text:
    """A diverging bar scaled to ``peak``: broken grows left of the axis in red, fixed right in green."""
    def share(n: int) -> float:
        return min(1.0, n / peak) if peak > 0 else 0.0

    def cells(n: int) -> tuple[int, int]:
        halves = round(2 * half * share(n))  # half-cell resolution on both sides, so equal counts look equal
        return divmod(max(halves, 1) if n else 0, 2)

    full, rest = cells(broken)
    text = Text(" " * (half - full - rest) + ("▐" if rest else "") + "█" * full, style="red")
    text.append("│", style="dim")
    full, rest = cells(fixed)
    text.append(("█" * full + ("▌" if rest else "")).ljust(half), style="green")
    return text


class CompareScreen(OrienteerScreen):
    TITLE_TEXT = "4 Compare"
    BINDINGS = [
        Binding("enter", "open_row", "Open fixed/broken items"),
        Binding("a", "pick_a", "Choose run A"),
        Binding("b", "pick_b", "Choose run B"),
        Binding("x", "swap", "Swap A and B"),
    ]

    DEFAULT_CSS = """
    CompareScreen #cmp-table {
        height: 1fr;
    }
    CompareScreen #cmp-detail {
        max-height: 4;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[CompareRow] = []
        self.bench: str | None = None
        self._bench_seen: str | None = None
        self._loaded = False
        self._filled = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="cmp-title", classes="screen-title")
        yield FastTable(id="cmp-table", cursor_type="cell", zebra_stripes=True, fixed_columns=1)
        yield Static(id="cmp-detail", classes="detail")
        yield KeyBar()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#cmp-table", DataTable)

    # --- data ---------------------------------------------------------------------------------

    def reload(self) -> None:
        self.rows = []
        try:
            self._pick_defaults()
            state = self.oapp.state
            if state.compare_a is not None and state.compare_b is not None:
                self.rows = self.service.compare(state.compare_a, state.compare_b)
        except OrienteerError as exc:
            self.oapp.report_error(exc)
        self._fill()

    def _pick_defaults(self) -> None:
        """A = the baseline (or the first run), B = the last run, of the current benchmark."""
        state = self.oapp.state
        service = self.service
        all_runs = service.run_names()
        # after the first load, a new current benchmark (key n on the runs screen) resets the choice
        bench_moved = self._loaded and state.bench != self._bench_seen
        self._loaded = True
        self._bench_seen = state.bench
        bench = state.bench
        if bench is None and state.compare_a in all_runs:
            bench = service.run_info(state.compare_a).bench_name
        runs = service.run_names(bench) if bench else all_runs
        if not runs:
            state.compare_a = state.compare_b = None
            self.bench = bench
            return
        if bench_moved and (state.compare_a not in runs or state.compare_b not in runs):
            state.compare_a = state.compare_b = None
        if state.compare_a not in all_runs:
            state.compare_a = state.baseline if state.baseline in runs and state.baseline != runs[-1] else runs[0]
        if state.compare_b not in all_runs:
            others = [r for r in runs if r != state.compare_a]
            state.compare_b = others[-1] if others else state.compare_a
        self.bench = service.run_info(state.compare_a).bench_name

    # --- drawing --------------------------------------------------------------------------------

    def _fill(self) -> None:
        state = self.oapp.state
        title = self.query_one("#cmp-title", Static)
        table = self.table
        keep = table.cursor_coordinate
        table.clear(columns=True)
        if state.compare_a is None or state.compare_b is None:
            title.update("No runs yet. Import predictions with [b]orienteer import preds[/b], "
                         "or build the demo: [b]orienteer demo[/b].")
            self._show_detail()
            return
        head = Text()
        head.append("A ", style="dim")
        head.append(visible(state.compare_a), style="bold")
        head.append(" vs B ", style="dim")
        head.append(visible(state.compare_b), style="bold")
        if self.bench:
            head.append(f" on {visible(self.bench)}", style="dim")
        head.append(" · ")
        head.append("fixed", style="green")
        head.append(" A✗→B✓ · ")
        head.append("broken", style="red")
        head.append(" A✓→B✗ · * Holm p<0.05")
        if state.compare_a == state.compare_b:
            head.append("  (A = B: press a or b to pick another run)", style="yellow")
        title.update(head)
        if not self.rows:
            self._show_detail()
            return
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        # task rows share one scale; the overall row (their sum) gets its own
        peak = max((max(r.fixed, r.broken) for r in self.rows if r.task != OVERALL), default=0)
        for row in self.rows:
            overall = row.task == OVERALL
            significant = row.significant
            style = "bold" if overall else ""
            table.add_row(
                Text("Overall" if overall else visible(short_task(row.task)), style=style),
                Text(str(row.n), justify="right"),
                Text(f"{100 * row.accuracy_a:5.1f}", justify="right"),
                Text(f"{100 * row.accuracy_b:5.1f}", justify="right"),
                delta_text(row.accuracy_b - row.accuracy_a, significant),
                Text(str(row.fixed), style="green" + (" bold" if overall else ""), justify="right"),
                Text(str(row.broken), style="red" + (" bold" if overall else ""), justify="right"),
                Text(p_text(row.p_holm), style="bold" if significant else "dim"),
                split_bar(row.fixed, row.broken, max(row.fixed, row.broken) if overall else peak),
                key=row.task,
            )
        if self._filled and keep.row < table.row_count and keep.column < len(COLUMNS):
            table.cursor_coordinate = keep
        else:
            table.cursor_coordinate = Coordinate(0, self.column_index("broken"))
        self._filled = True
        self._show_detail()

    @staticmethod
    def column_index(key: str) -> int:
        return [k for k, _ in COLUMNS].index(key)

    def _selected(self) -> tuple[CompareRow, str] | None:
        if not self.rows or self.table.row_count == 0:
            return None
        row, column = self.table.cursor_coordinate
        return self.rows[min(row, len(self.rows) - 1)], COLUMNS[min(column, len(COLUMNS) - 1)][0]

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#cmp-detail", Static)
        picked = self._selected()
        if picked is None:
            detail.update("")
            return
        row, column = picked
        state = self.oapp.state
        verdict = "significant" if row.significant else "not significant"
        text = Text()
        text.append("all tasks" if row.task == OVERALL else visible(row.task), style="bold")
        text.append(f": A {100 * row.accuracy_a:.1f}% → B {100 * row.accuracy_b:.1f}% "
                    f"({100 * (row.accuracy_b - row.accuracy_a):+.1f} points, {row.n} items); ")
        text.append(f"fixed {row.fixed}", style="green")
        text.append(", ")
        text.append(f"broken {row.broken}", style="red")
        text.append(f", net {row.fixed - row.broken:+d}; McNemar p = {row.p_value:.3g}, Holm-corrected across the "
                    f"tasks {row.p_holm:.3g} ({verdict})")
        which = "fixed" if column == "fixed" else "broken"
        count = row.fixed if which == "fixed" else row.broken
        text.append(f"\nenter: the {count} {which} items ({visible(state.compare_b)} "
                    f"{'right' if which == 'fixed' else 'wrong'}, {visible(state.compare_a)} "
                    f"{'wrong' if which == 'fixed' else 'right'})", style="dim")
        detail.update(text)

    # --- actions --------------------------------------------------------------------------------

    def filter_for(self, row: CompareRow, column: str) -> PredictionFilter:
        """Fixed items on the fixed column, broken items on any other."""
        state = self.oapp.state
        assert state.compare_a is not None and state.compare_b is not None
        tasks = () if row.task == OVERALL else (row.task,)
        if column == "fixed":
            return fixed_filter(state.compare_a, state.compare_b, tasks)
        return broken_filter(state.compare_a, state.compare_b, tasks)

    def action_open_row(self) -> None:
        picked = self._selected()
        if picked is None:
            return
        row, column = picked
        self.oapp.open_failures(self.filter_for(row, column))

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self.action_open_row()

    def _choices(self) -> list[str]:
        state = self.oapp.state
        bench = self.bench or state.bench
        # Runs of this benchmark and of benchmarks derived from it (flipped, box-prompted), paired by parent id.
        return self.service.comparable_runs(bench)

    def action_pick_a(self) -> None:
        self._pick("compare_a", "Run A (before)")

    def action_pick_b(self) -> None:
        self._pick("compare_b", "Run B (after)")

    def _pick(self, side: str, title: str) -> None:
        """Choose the run on one side (``compare_a`` or ``compare_b`` of the shared state)."""
        try:
            runs = self._choices()
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            return
        if runs:
            current = getattr(self.oapp.state, side)
            self.app.push_screen(PickerScreen(title, runs, current), lambda run: self._chosen(side, run))

    def _chosen(self, side: str, run: str | None) -> None:
        if run is not None and run != getattr(self.oapp.state, side):
            setattr(self.oapp.state, side, run)
            self.reload()

    def action_swap(self) -> None:
        state = self.oapp.state
        state.compare_a, state.compare_b = state.compare_b, state.compare_a
        self.reload()
