"""2 · Confusion: gold x predicted labels of one run, and its error categories against chance, with drill-down.

Rows are gold labels, columns predicted labels (abbreviated: F, FR, R, ...) plus the
``unp`` / ``inv`` pseudo-columns for unparsed replies and letters that are not options.
Off-diagonal cells are shaded by their share of the largest off-diagonal cell, the diagonal
(correct answers) in green. Enter on a cell opens exactly the items counted in it.

The category panel sets each count beside what a uniform wrong pick would give on the same
items (``core.chance``): a raw count shows what the option sets offered as much as what the
model did. ``g`` switches between the fine categories and the deck grouping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.widgets import DataTable, Header, Static

from orienteer.core.chance import DECK, FINE, members
from orienteer.core.directions import categorize, is_direction
from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.confusion import INVALID_LABEL, UNPARSED_LABEL, Confusion
from orienteer.tui.labels import category_name, short_task
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.widgets.bars import bar
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.pickers import PickerScreen
from orienteer.tui.widgets.table import FastTable

ALL_TASKS = "all tasks"
WIDE = 120
GOLD_COLUMN = "__gold__"
TOTAL_COLUMN = "__total__"
PSEUDO = (UNPARSED_LABEL, INVALID_LABEL)
_SPLIT = re.compile(r"[-_\s]+")


def abbreviate(label: str) -> str:
    """Short column header: a direction's initials (front-right -> FR, down-left -> DL), else a prefix."""
    if label == UNPARSED_LABEL:
        return "unp"
    if label == INVALID_LABEL:
        return "inv"
    if is_direction(label):
        cleaned = label.strip().removesuffix(".").lower()
        return "".join(token[0].upper() for token in _SPLIT.split(cleaned) if token)
    return label.strip()[:4] or "?"


def column_headers(labels: list[str]) -> list[str]:
    """``abbreviate`` for every label, falling back to longer prefixes where two would collide."""
    headers = [abbreviate(label) for label in labels]
    for index, header in enumerate(headers):
        if headers.count(header) > 1:
            width = 4
            while width < len(labels[index]) and [lab[:width] for lab in labels].count(labels[index][:width]) > 1:
                width += 1
            headers[index] = labels[index][:width]
    return headers


# --- colours: a continuous ramp instead of four steps ------------------------------------------------

_ERROR_RAMP = ((0.0, (58, 58, 58)), (0.33, (175, 135, 0)), (0.66, (215, 95, 0)), (1.0, (200, 0, 0)))
_GOOD_RAMP = ((0.0, (0, 70, 0)), (1.0, (0, 170, 60)))


def _ramp(stops: tuple[tuple[float, tuple[int, int, int]], ...], level: float) -> tuple[int, int, int]:
    level = min(1.0, max(0.0, level))
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if level <= x1:
            t = (level - x0) / (x1 - x0) if x1 > x0 else 0.0
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return stops[-1][1]


def heat(count: int, peak: int, correct: bool = False) -> Style:
    """Background for a matrix cell: errors grey -> amber -> red by share of ``peak``, correct in green."""
    if count <= 0 or peak <= 0:
        return Style(dim=True)
    rgb = _ramp(_GOOD_RAMP if correct else _ERROR_RAMP, count / peak)
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    ink = Color.from_rgb(0, 0, 0) if luminance > 140 else Color.from_rgb(255, 255, 255)
    return Style(bgcolor=Color.from_rgb(*rgb), color=ink, bold=count == peak)


def category_detail(conf: Confusion, cat: str) -> Text:
    """One line on a category: its count, and against chance what it was computed on and whether it survives Holm."""
    n = conf.count(cat)
    share = n / conf.errors if conf.errors else 0.0
    text = Text.assemble((visible(category_name(cat)), "bold"), f": {n} of {conf.errors} errors ({100 * share:.1f}%)")
    row = conf.chance.get(cat)
    if row is None:
        text.append(" · not a pick among the options, so no chance figure")
    else:
        rate = "" if row.rate_when_offered is None else f", picked in {100 * row.rate_when_offered:.0f}% of them"
        verdict = "more than chance" if (row.ratio or 0) > 1 else "less than chance"
        text.append(f" · chance {row.expected:.1f}; offered by {row.offered} of {conf.wrong_picks} wrong picks{rate}; "
                    f"Holm p = {row.p_holm:.2g} ")
        text.append(verdict if row.significant else "(no tendency beyond chance)", style="bold" if row.significant else "")
    text.append("  enter: open them", style="dim")
    return text


@dataclass
class _View:
    """What the screen shows: the run's confusion plus the column order."""

    conf: Confusion
    gold: list[str]
    columns: list[str]
    counts: dict[tuple[str, str], int]
    peak_error: int
    peak_correct: int


class ConfusionScreen(OrienteerScreen):
    TITLE_TEXT = "2 Confusion"
    BINDINGS = [
        Binding("enter", "drill", "Open these items"),
        Binding("r", "pick_run", "Choose run"),
        Binding("t", "pick_task", "Choose task"),
        Binding("g", "toggle_grouping", "Fine / deck categories"),
        Binding("tab", "toggle_focus", "Matrix / categories"),
    ]

    DEFAULT_CSS = """
    ConfusionScreen #cf-body {
        height: 1fr;
        layout: vertical;
    }
    ConfusionScreen #cf-body.wide {
        layout: horizontal;
    }
    ConfusionScreen #cf-matrix-box {
        height: 1fr;
        width: 1fr;
    }
    ConfusionScreen #cf-cats-box {
        height: auto;
        max-height: 45%;
        width: 1fr;
    }
    ConfusionScreen #cf-body.wide #cf-cats-box {
        height: 1fr;
        max-height: 100%;
        width: 56;
        border-left: solid $primary;
    }
    ConfusionScreen #cf-cats {
        height: auto;
        max-height: 100%;
    }
    ConfusionScreen #cf-body.wide #cf-cats {
        height: 1fr;
    }
    ConfusionScreen .cf-caption {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    ConfusionScreen #cf-cats-caption {
        height: auto;
    }
    ConfusionScreen #cf-detail {
        max-height: 3;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.view: _View | None = None
        self._bench_seen: str | None = None
        self._loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="cf-title", classes="screen-title")
        with Container(id="cf-body"):
            with Vertical(id="cf-matrix-box"):
                yield FastTable(id="cf-matrix", cursor_type="cell", fixed_columns=1, cursor_background_priority="css")
            with Vertical(id="cf-cats-box"):
                yield Static(id="cf-cats-caption", classes="cf-caption")
                yield FastTable(id="cf-cats", cursor_type="row", cursor_background_priority="css")
        yield Static(id="cf-detail", classes="detail")
        yield KeyBar()

    def on_mount(self) -> None:
        # Textual also runs OrienteerScreen.on_mount (handlers run along the MRO): it loads the data.
        self._layout(self.app.size.width)
        self.matrix.focus()

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        self.query_one("#cf-body").set_class(width >= WIDE, "wide")

    @property
    def matrix(self) -> DataTable[Text]:
        return self.query_one("#cf-matrix", DataTable)

    @property
    def cats(self) -> DataTable[Text]:
        return self.query_one("#cf-cats", DataTable)

    # --- data ---------------------------------------------------------------------------------

    def reload(self) -> None:
        try:
            self.view = self._load()
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            self.view = None
        self._fill()

    def _load(self) -> _View | None:
        state = self.oapp.state
        service = self.service
        all_runs = service.run_names()
        if not all_runs:
            return None
        bench_runs = service.run_names(state.bench) if state.bench else all_runs
        # after the first load, a new current benchmark (key n on the runs screen) resets the choice
        bench_moved = self._loaded and state.bench != self._bench_seen
        self._loaded = True
        self._bench_seen = state.bench
        if state.confusion_run not in all_runs or (bench_moved and bench_runs and state.confusion_run not in bench_runs):
            state.confusion_run = (bench_runs or all_runs)[0]
        run = state.confusion_run
        if state.confusion_task is not None and state.confusion_task not in service.tasks_of_run(run):
            state.confusion_task = None
        conf = service.confusion(run, state.confusion_task, state.confusion_grouping)
        return self._view(conf)

    @staticmethod
    def _view(conf: Confusion) -> _View:
        counts = {(m.gold, m.pred): m.n for m in conf.matrix}
        gold = [label for label in conf.labels if any(g == label for g, _ in counts)]
        gold += sorted({g for g, _ in counts} - set(gold), key=str)
        preds = {p for _, p in counts}
        columns = list(conf.labels) + [p for p in PSEUDO if p in preds]
        errors = [n for (g, p), n in counts.items() if g != p]
        correct = [n for (g, p), n in counts.items() if g == p]
        return _View(conf, gold, columns, counts, max(errors, default=0), max(correct, default=0))

    # --- drawing --------------------------------------------------------------------------------

    def _fill(self) -> None:
        self._fill_title()
        self._fill_matrix()
        self._fill_categories()
        self._show_detail()

    def _fill_title(self) -> None:
        title = self.query_one("#cf-title", Static)
        view = self.view
        if view is None:
            title.update("No runs yet. Import predictions with [b]orienteer import preds[/b], "
                         "or build the demo: [b]orienteer demo[/b].")
            return
        conf = view.conf
        wrong = conf.errors - conf.unanswered  # of the answered items; unanswered ones are counted apart
        share = wrong / conf.answered if conf.answered else 0.0
        text = Text()
        text.append(visible(conf.run), style="bold")
        text.append(" · ")
        text.append(visible(short_task(conf.task)) if conf.task else ALL_TASKS, style="bold")
        text.append(f" · {conf.answered} answered · {wrong} wrong ({100 * share:.1f}%) ")
        if conf.unanswered:
            text.append(f"· {conf.unanswered} unanswered ", style="bold")
        text.append(" ok ", style=heat(1, 1, correct=True))
        text.append(" few ", style=heat(1, 10))
        text.append(" many ", style=heat(1, 1))
        title.update(text)

    def _fill_matrix(self) -> None:
        table = self.matrix
        keep = table.cursor_coordinate
        table.clear(columns=True)
        view = self.view
        if view is None:
            return
        table.add_column(Text("gold╲pred", style="dim"), key=GOLD_COLUMN)
        for label, header in zip(view.columns, column_headers(view.columns)):
            table.add_column(Text(visible(header), style="bold"), key=label)
        table.add_column(Text("n", style="dim"), key=TOTAL_COLUMN)
        width = max(2, *(len(str(n)) for n in view.counts.values()))
        for gold in view.gold:
            cells: list[Text] = [Text(visible(gold), style="bold")]
            total = 0
            for column in view.columns:
                n = view.counts.get((gold, column), 0)
                total += n
                correct = column == gold
                if n == 0:
                    cells.append(Text("·".rjust(width), style="dim"))
                else:
                    cells.append(Text(str(n).rjust(width), style=heat(n, view.peak_correct if correct else view.peak_error,
                                                                   correct=correct)))
            cells.append(Text(str(total), style="dim"))
            table.add_row(*cells, key=gold)
        if keep.row < table.row_count and 0 < keep.column < len(table.columns):
            table.cursor_coordinate = keep
        elif table.row_count:
            table.cursor_coordinate = Coordinate(min(keep.row, table.row_count - 1), 1)

    def _fill_categories(self) -> None:
        table = self.cats
        keep = table.cursor_row
        table.clear(columns=True)
        view = self.view
        caption = self.query_one("#cf-cats-caption", Static)
        if view is None:
            caption.update("")
            return
        conf = view.conf
        other = FINE if conf.grouping == DECK else DECK
        caption.update(Text.assemble(
            (f"Error categories vs chance ({conf.grouping}; g: {other})", "bold"),
            f" · exp. = a uniform wrong pick on the same {conf.wrong_picks} answered wrong items"
            " · * Holm p < 0.05"))
        table.add_column("category", key="category")
        table.add_column("n", key="n")
        table.add_column("share", key="share")
        table.add_column("exp.", key="expected")
        table.add_column("obs/exp", key="ratio")
        table.add_column("", key="bar")
        top = max(conf.categories.values(), default=0)
        for cat in conf.rows:
            n = conf.count(cat)
            share = n / conf.errors if conf.errors else 0.0
            row = conf.chance.get(cat)
            if row is None:  # unparsed / invalid option / unanswered: not a pick, no chance figure
                expected, ratio = Text("–", style="dim", justify="right"), Text("–", style="dim", justify="right")
            else:
                expected = Text(f"{row.expected:.1f}", justify="right")
                ratio = Text("–" if row.ratio is None else f"{row.ratio:.2f}×", justify="right",
                             style=("bold green" if (row.ratio or 0) > 1 else "bold red") if row.significant else "dim")
                ratio.append("*" if row.significant else " ")
            table.add_row(
                Text(visible(category_name(cat))),
                Text(str(n), justify="right"),
                Text(f"{100 * share:5.1f}%", justify="right"),
                expected,
                ratio,
                bar(n / top if top else 0.0, 8, style="red"),
                key=cat,
            )
        if 0 <= keep < table.row_count:
            table.move_cursor(row=keep, animate=False)

    # --- the highlighted cell ---------------------------------------------------------------------

    def _matrix_cell(self) -> tuple[str, str] | None:
        """(gold, column key) under the matrix cursor."""
        view = self.view
        table = self.matrix
        if view is None or table.row_count == 0:
            return None
        row, column = table.cursor_coordinate
        gold = view.gold[min(row, len(view.gold) - 1)]
        keys = [GOLD_COLUMN, *view.columns, TOTAL_COLUMN]
        return gold, keys[min(column, len(keys) - 1)]

    def _category(self) -> str | None:
        view = self.view
        if view is None or not view.conf.rows:
            return None
        cats = view.conf.rows
        return cats[min(self.cats.cursor_row, len(cats) - 1)]

    def filter_for_cell(self, gold: str, column: str) -> PredictionFilter:
        """The failures (or, on the diagonal, the correct answers) counted in one matrix cell."""
        assert self.view is not None
        base = PredictionFilter(runs=(self.view.conf.run,), tasks=self._tasks(), gold_labels=(gold,))
        if column in (GOLD_COLUMN, TOTAL_COLUMN):
            return base
        if column == UNPARSED_LABEL:
            return base.with_(outcomes=("unparsed",))
        if column == INVALID_LABEL:
            return base.with_(outcomes=("invalid_option",))
        if column == gold:
            return base.with_(pred_labels=(column,), failures_only=False)
        return base.with_(pred_labels=(column,))

    def filter_for_category(self, category: str) -> PredictionFilter:
        assert self.view is not None
        return PredictionFilter(runs=(self.view.conf.run,), tasks=self._tasks(), categories=members(category))

    def _tasks(self) -> tuple[str, ...]:
        assert self.view is not None
        return (self.view.conf.task,) if self.view.conf.task else ()

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_descendant_focus(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#cf-detail", Static)
        view = self.view
        if view is None:
            detail.update("")
            return
        if self.focused is self.cats:
            cat = self._category()
            if cat is None:
                detail.update("No errors in this selection.")
                return
            detail.update(category_detail(view.conf, cat))
            return
        picked = self._matrix_cell()
        if picked is None:
            detail.update("")
            return
        gold, column = picked
        row_total = sum(n for (g, _), n in view.counts.items() if g == gold)
        if column in (GOLD_COLUMN, TOTAL_COLUMN):
            wrong = row_total - view.counts.get((gold, gold), 0)
            detail.update(Text.assemble("gold ", (visible(gold), "bold"), f": {row_total} answered, {wrong} wrong",
                                        ("  enter: open the wrong ones", "dim")))
            return
        n = view.counts.get((gold, column), 0)
        share = f" ({100 * n / row_total:.1f}% of gold {visible(gold)})" if row_total else ""
        if column == gold:
            kind = "correct"
        elif column in PSEUDO:
            kind = "unparsed reply" if column == UNPARSED_LABEL else "letter not among the options"
        else:
            kind = category_name(categorize(gold, column).value)
        text = Text.assemble("gold ", (visible(gold), "bold"), " → pred ", (visible(column), "bold"),
                             f": {n}{share} · {visible(kind)}")
        if n:
            text.append("  enter: open them", style="dim")
        detail.update(text)

    # --- actions --------------------------------------------------------------------------------

    def action_drill(self) -> None:
        if self.focused is self.cats:
            self._open_category()
        else:
            self._open_cell()

    def _open_cell(self) -> None:
        picked = self._matrix_cell()
        if picked is None or self.view is None:
            return
        gold, column = picked
        if column not in (GOLD_COLUMN, TOTAL_COLUMN) and not self.view.counts.get((gold, column)):
            self.notify("no items in this cell")
            return
        self.oapp.open_failures(self.filter_for_cell(gold, column))

    def _open_category(self) -> None:
        cat = self._category()
        if cat is None or self.view is None:
            return
        if not self.view.conf.count(cat):
            self.notify("no errors in this category: it was offered but never picked")
            return
        self.oapp.open_failures(self.filter_for_category(cat))

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self._open_cell()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._open_category()

    def action_toggle_grouping(self) -> None:
        state = self.oapp.state
        state.confusion_grouping = DECK if state.confusion_grouping == FINE else FINE
        self.reload()
        self.notify(f"categories: {state.confusion_grouping}"
                    + (" (Horizontal, Vertical flip, Orthogonal, Adjacent = not 90/180, Other 180)"
                       if state.confusion_grouping == DECK else ""))

    def action_toggle_focus(self) -> None:
        (self.cats if self.focused is self.matrix else self.matrix).focus()

    def action_pick_run(self) -> None:
        state = self.oapp.state

        try:
            mine = self.service.run_names(state.bench) if state.bench else []
            runs = mine + [r for r in self.service.run_names() if r not in mine]
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            return
        if not runs:
            return
        self.app.push_screen(PickerScreen("Run", runs, state.confusion_run), self._run_chosen)

    def _run_chosen(self, run: str | None) -> None:
        state = self.oapp.state
        if run is None or run == state.confusion_run:
            return
        try:
            bench = self.service.run_info(run).bench_name
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            return
        state.confusion_run = run
        if state.bench is not None and bench != state.bench:
            # A run of another benchmark: that benchmark becomes the current one everywhere.
            state.bench = bench
            state.baseline = None
            state.generation += 1
            self._seen_generation = self._stale_key()
        self._bench_seen = state.bench
        self.reload()

    def action_pick_task(self) -> None:
        state = self.oapp.state
        if state.confusion_run is None:
            return
        try:
            tasks = self.service.tasks_of_run(state.confusion_run)
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            return
        current = state.confusion_task or ALL_TASKS
        self.app.push_screen(PickerScreen("Task", [ALL_TASKS, *tasks], current), self._task_chosen)

    def _task_chosen(self, task: str | None) -> None:
        if task is None:
            return
        state = self.oapp.state
        state.confusion_task = None if task == ALL_TASKS else task
        self.reload()

    def cursor_target(self) -> DataTable[Text]:
        return self._active()

    def _active(self) -> DataTable[Text]:
        return self.cats if self.focused is self.cats else self.matrix
