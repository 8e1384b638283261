"""3 · Failures: the filtered list of predictions, paged from the database, marked and exported.

The filter is ``app.state.failures`` (drill-downs from the other screens set it) and the sort
``app.state.failures_sort``. Rows come from ``predictions_page`` 100 at a time; the next page
is fetched when the cursor nears the end of the loaded rows, so the screen costs the same on
a workspace of ten million predictions as on the demo. The total comes from
the service's cancellable count in a worker (a text search over ten million replies takes
seconds to count, but its first page comes at once) and arrives as a ``CountDone`` message;
starting a count for a newer filter interrupts the stale one inside the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Static

from orienteer.core.directions import Category
from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.failures import SORTS
from orienteer.data.rows import PredictionRow
from orienteer.data.service import Cancellable, CountResult
from orienteer.tui.labels import category_name, short_task
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.screens.export_dialog import ExportDialog
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.pickers import PickerScreen
from orienteer.tui.widgets.table import FastTable

UNANSWERED = Category.UNANSWERED.value  # items the run's file has no row for (``data.unanswered``)

PAGE_SIZE = 100
PREFETCH_AFTER_S = 0.25  # fetch the case under the cursor once it rested this long (enter opens it)
PREFETCH = 10  # fetch the next page when the cursor is this close to the last loaded row
REPLY_WIDTH = 72  # the reply column's width: the terminal's width less the other columns, at least this
ANY = "any"
MARK = "●"

# distinct_values column (or "run") -> (PredictionFilter field, picker title)
PICKERS: dict[str, tuple[str, str]] = {
    "run": ("runs", "Run"),
    "task": ("tasks", "Task"),
    "category": ("categories", "Error category"),
    "source": ("sources", "Source"),
    "gold_label": ("gold_labels", "Gold label"),
    "pred_label": ("pred_labels", "Predicted label"),
}


def one_line(text: str | None, width: int = REPLY_WIDTH) -> str:
    """A reply on one line: newlines shown as ⏎, every other control character as an escape
    (``\\r``, ``\\x1b``: it came from a file), cut to ``width`` characters with an ellipsis."""
    if not text:
        return ""
    flat = visible(text.strip("\n"), multiline=True).replace("\n", "⏎")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def short_category(value: str | None) -> str:
    """The category's display name without its parenthesis ("Horizontal (L<->R)" -> "Horizontal")."""
    return category_name(value).split(" (")[0]


def filter_chips(filt: PredictionFilter) -> list[tuple[str, str]]:
    """The active filters as (name, value) pairs, in a fixed order, values readable."""
    chips: list[tuple[str, str]] = []

    def add(name: str, values: tuple[str, ...], show: Any = str) -> None:
        if values:
            text = ", ".join(visible(show(v)) for v in values[:3])
            chips.append((name, text + (f" +{len(values) - 3:,} more" if len(values) > 3 else "")))

    add("run", filt.runs)
    add("task", filt.tasks, short_task)
    add("category", filt.categories, category_name)
    add("source", filt.sources)
    add("gold", filt.gold_labels)
    add("pred", filt.pred_labels)
    add("outcome", filt.outcomes, lambda v: v.replace("_", " "))
    if filt.item_ids:
        chips.append(("items", visible(filt.item_ids[0]) if len(filt.item_ids) == 1 else f"{len(filt.item_ids):,} chosen"))
    if filt.text:
        chips.append(("text", visible(repr(filt.text))))
    if filt.versus_run is not None and filt.versus_correct is not None:
        chips.append(("vs", f"{visible(filt.versus_run)} {'right' if filt.versus_correct else 'wrong'}"))
    return chips


class FailuresScreen(OrienteerScreen):
    class CountDone(Message):
        """The total of a filter, counted in a worker (or why there is none: cancelled, failed)."""

        def __init__(self, token: Cancellable, result: CountResult) -> None:
            super().__init__()
            self.token = token
            self.result = result

    TITLE_TEXT = "3 Failures"
    DEFAULT_CSS = """
    FailuresScreen #failures-head {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    FailuresScreen #failures-search {
        height: 3;
    }
    FailuresScreen #failures-table {
        height: 1fr;
    }
    FailuresScreen #failures-detail {
        height: 4;
        padding: 0 1;
        border-top: solid $primary;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """
    BINDINGS = [
        Binding("enter", "open_case", "Case"),
        Binding("slash", "search", "Search"),
        Binding("space", "toggle_mark", "Mark"),
        Binding("ctrl+s", "export", "Export"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("a", "toggle_all", "Failures/all"),
        Binding("x", "clear_filters", "Clear filters"),
        # Capital letters start background jobs on these rows (marked ones, or all filtered ones).
        Binding("A", "launch('flip,hard-negatives')", "Augment"),
        Binding("S", "launch('saliency')", "Saliency"),
        Binding("E", "launch('eval')", "Evaluate", show=False),
        Binding("r", "pick('run')", "Filter: run", show=False),
        Binding("t", "pick('task')", "Filter: task", show=False),
        Binding("c", "pick('category')", "Filter: category", show=False),
        Binding("s", "pick('source')", "Filter: source", show=False),
        Binding("g", "pick('gold_label')", "Filter: gold label", show=False),
        Binding("p", "pick('pred_label')", "Filter: predicted label", show=False),
        Binding("escape", "escape", "Back / close search", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PredictionRow] = []
        self.total: int | None = 0  # None: not known (still counting, or the count failed)
        self.counting = False
        self.exhausted = True
        self.marked: set[tuple[str, str]] = set()
        self.shown_filter: PredictionFilter | None = None
        self.shown_sort = ""
        self.show_run = True
        self.reply_width = REPLY_WIDTH
        self._count_token: Cancellable | None = None  # the count whose answer is awaited
        self._counted_filter: PredictionFilter | None = None
        self._prefetch_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="failures-head")
        yield Input(id="failures-search", placeholder="text in question or reply, or an item id; enter applies, escape cancels")
        yield FastTable(id="failures-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="failures-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        # Textual then runs OrienteerScreen.on_mount too (handlers run along the MRO): it loads.
        self.search.display = False
        self.table.focus()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#failures-table", DataTable)

    @property
    def filt(self) -> PredictionFilter:
        return self.oapp.state.failures

    @property
    def sort(self) -> str:
        sort = self.oapp.state.failures_sort
        return sort if sort in SORTS else "item"

    # --- loading ----------------------------------------------------------------------------

    def _stale_key(self) -> object:
        state = self.oapp.state
        return state.generation, state.failures_generation

    def reload(self) -> None:
        """Shared state moved (a drill-down, new data): fetch the first page and count again."""
        self._load(recount=True)

    def _load(self, recount: bool) -> None:
        filt, sort = self.filt, self.sort
        if filt != self.shown_filter:
            self.marked.clear()  # marks outside the filter could not be exported anyway
        try:
            rows = self.service.predictions_page(filt, sort=sort, limit=PAGE_SIZE, offset=0)
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            rows = []
        self.shown_filter, self.shown_sort = filt, sort
        self.rows = rows
        self.exhausted = len(rows) < PAGE_SIZE
        if self.exhausted:  # one page holds every row: that is the count
            self._stop_count()
            self.total, self._counted_filter = len(rows), filt
        elif recount or filt != self._counted_filter or (self.total is None and not self.counting):
            self._stop_count()
            self._start_count(filt)
        self._fill()

    # --- the count, off the UI thread -------------------------------------------------------

    def _start_count(self, filt: PredictionFilter) -> None:
        self.total, self.counting = None, True
        token = self._count_token = self.service.start_count()  # interrupts the count before it
        self._counted_filter = filt
        self.run_worker(lambda: self._count(filt, token), group="count", thread=True, exit_on_error=False)

    def _count(self, filt: PredictionFilter, token: Cancellable) -> None:
        """Runs in a worker thread; the answer comes back to the UI thread as a message."""
        try:
            result = self.service.count_cancellable(filt, token)
        except Exception as exc:  # noqa: BLE001 - shown as an error, the screen keeps working
            result = CountResult(filt, None, error=f"counting failed: {exc}")
        self.post_message(self.CountDone(token, result))

    def _stop_count(self) -> None:
        """Interrupt a running count (its filter is no longer shown)."""
        if self._count_token is not None:
            self._count_token.cancel()
            self._count_token = None
        self._counted_filter = None
        self.counting = False

    def on_failures_screen_count_done(self, message: CountDone) -> None:
        if message.token is not self._count_token:
            return  # a count for a filter no longer shown
        result = message.result
        self._count_token = None
        self.counting = False
        self.total = result.total
        if result.total is None:
            self._counted_filter = None
        if result.error is not None:
            self.oapp.report_error(OrienteerError(result.error))
        self._show_head()

    def on_unmount(self) -> None:
        self._stop_count()

    def load_more(self) -> bool:
        """Fetch the next page after the loaded rows; returns True when rows were added."""
        if self.exhausted:
            return False
        filt, sort, offset = self.shown_filter or self.filt, self.shown_sort or self.sort, len(self.rows)
        try:
            page = self.service.predictions_page(filt, sort=sort, limit=PAGE_SIZE, offset=offset)
        except OrienteerError as exc:
            self.exhausted = True
            self.oapp.report_error(exc)
            return False
        self.exhausted = len(page) < PAGE_SIZE
        self.rows.extend(page)
        if self.exhausted and self.total is None:  # every row is loaded: no need to wait for the count
            self._stop_count()
            self.total, self._counted_filter = len(self.rows), filt
        self.table.add_rows([self._cells(row) for row in page])
        self._show_head()
        return bool(page)

    # --- drawing ----------------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.table
        table.clear(columns=True)
        self.show_run = len(self.filt.runs) != 1
        self.reply_width = max(REPLY_WIDTH, self.app.size.width - (100 if self.show_run else 86))
        table.add_column(" ", key="mark", width=1)
        if self.show_run:
            table.add_column("run", key="run")
        # Task after the error columns, so that at 80 columns the verdict is what stays on screen.
        for key in ("item", "gold", "pred", "category", "task", "reply"):
            table.add_column(key, key=key)
        table.add_rows([self._cells(row) for row in self.rows])
        if self.rows:
            table.move_cursor(row=0, column=0, animate=False)
        self._show_head()
        self._show_detail()
        self.call_after_refresh(self._prefetch_case)  # after the rows are on screen

    def _prefetch_case(self) -> None:
        """Fetch the case under the cursor in the background: enter is the likely next key."""
        self._prefetch_timer = None
        row = self.current_row()
        if row is not None and self.is_attached:
            self.oapp.prefetch_cases([row.key])

    def _cells(self, row: PredictionRow) -> list[Text]:
        marked = row.key in self.marked
        cells = [Text(MARK if marked else " ", style="bold yellow")]
        if self.show_run:
            cells.append(Text(visible(row.run)))
        correct = bool(row.correct)
        outcome = row.outcome
        if outcome == UNANSWERED:  # the file has no row for this item
            pred = Text("(no answer)", style="dim")
        elif outcome == "unparsed":
            pred = Text("(unparsed)", style="dim")
        elif outcome == "invalid_option":
            pred = Text(visible(f"{row.pred_letter or '?'} (invalid)"), style="dim")
        else:
            pred = Text(visible(f"{row.pred_letter}. {row.pred_label}"), style="green" if correct else "")
        category = Text("correct", style="green") if correct else Text(visible(short_category(row.category)))
        cells += [
            Text(visible(row.item_id)),
            Text(visible(f"{row.gold_letter}. {row.gold_label}")),
            pred,
            category,
            Text(visible(short_task(row.task))),
            Text(one_line(row.reply, self.reply_width)),
        ]
        return cells

    def _show_head(self) -> None:
        filt = self.filt
        head = Text()
        chips = filter_chips(filt)
        if chips:
            for n, (name, value) in enumerate(chips):
                if n:
                    head.append(" · ", style="dim")
                head.append(f"{name}: ", style="dim")
                head.append(value, style="bold")
        else:
            head.append("no filters", style="dim")
        head.append("  [")
        head.append("failures only" if filt.failures_only else "all answers", style="bold")
        head.append("]\n")
        if self.total is None:
            head.append(f"rows 1–{len(self.rows):,} of ")
            head.append("counting…" if self.counting else "?", style="dim italic")
        elif self.total:
            head.append(f"rows 1–{len(self.rows):,} of {self.total:,}")
        else:
            head.append("no predictions match" + ("; x clears the filters" if chips else ""), style="yellow")
        head.append(f" · sort: {self.sort}", style="dim")
        if self.marked:
            head.append(f" · {len(self.marked):,} marked", style="bold yellow")
        self.query_one("#failures-head", Static).update(head)

    def _show_detail(self) -> None:
        row = self.current_row()
        detail = self.query_one("#failures-detail", Static)
        if row is None:
            detail.update(Text("/ search · r t c s g p: filter by run, task, category, source, gold, pred · "
                               "a: all answers · x: clear filters", style="dim"), layout=False)
            return
        lines = []
        empty = "(none: the file has no row for this item)" if row.outcome == UNANSWERED else "(empty)"
        for label, value in (("reply", one_line(row.reply, 1000) or empty),
                             ("Q", one_line(row.question, 1000))):
            line = Text()
            line.append(f"{label}: ", style="dim")
            line.append(value)
            lines.append(line)
        where = Text()
        where.append(visible(f"{row.run} · {row.item_id} · {row.task}"), style="bold")
        if row.category:
            where.append(f" · {visible(category_name(row.category))}")
        if row.source:
            where.append(f" · {visible(row.source)}", style="dim")
        lines.append(where)
        detail.update(Text("\n").join(lines), layout=False)  # a fixed height: no relayout per cursor move

    def current_row(self) -> PredictionRow | None:
        if not self.rows:
            return None
        row = self.table.cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= len(self.rows) - PREFETCH:
            self.load_more()
        self._show_detail()
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        self._prefetch_timer = self.set_timer(PREFETCH_AFTER_S, self._prefetch_case)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_case()

    # --- filter changes -----------------------------------------------------------------------

    def set_filter(self, filt: PredictionFilter) -> None:
        """Change the shared filter from this screen (other screens need not reload)."""
        self.oapp.state.failures = filt
        self._load(recount=True)

    def action_pick(self, dimension: str) -> None:
        field, title = PICKERS[dimension]
        filt = self.filt
        try:
            if dimension == "run":
                values = self.service.run_names()
            else:
                values = self.service.distinct_values(dimension, runs=filt.runs)
                if dimension == "category" and UNANSWERED not in values and self._has_unanswered(filt.runs):
                    values = [*values, UNANSWERED]
        except OrienteerError as exc:
            self.oapp.report_error(exc)
            return
        shown = {category_name(v) if dimension == "category" else v: v for v in values}
        current_values: tuple[str, ...] = getattr(filt, field)
        current = ANY
        if len(current_values) == 1:
            current = next((label for label, v in shown.items() if v == current_values[0]), current_values[0])

        def chosen(label: str | None) -> None:
            if label is None:
                return
            value = () if label == ANY else (shown.get(label, label),)
            if value != getattr(self.filt, field):
                self.set_filter(self.filt.with_(**{field: value}))

        self.app.push_screen(PickerScreen(title, [ANY, *shown], current), chosen)

    def _has_unanswered(self, runs: tuple[str, ...]) -> bool:
        """Whether these runs (all when none) miss items: the stored predictions never hold an
        unanswered row, so the picker's category values come without it. Cheap: a run that misses
        nothing is known from the cached per-task counts."""
        return self.service.count(PredictionFilter(runs=runs, categories=(UNANSWERED,))) > 0

    def action_toggle_all(self) -> None:
        self.set_filter(self.filt.with_(failures_only=not self.filt.failures_only))

    def action_clear_filters(self) -> None:
        self.set_filter(PredictionFilter(failures_only=self.filt.failures_only))

    def action_cycle_sort(self) -> None:
        keys = list(SORTS)
        self.oapp.state.failures_sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self._load(recount=False)
        self.notify(f"sorted by {self.sort}", timeout=2)

    # --- text search --------------------------------------------------------------------------

    @property
    def search(self) -> Input:
        return self.query_one("#failures-search", Input)

    def action_search(self) -> None:
        search = self.search
        search.value = self.filt.text or ""
        search.display = True
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "failures-search":
            return
        event.stop()
        text = event.value.strip() or None
        self._close_search()
        if text != self.filt.text:
            self.set_filter(self.filt.with_(text=text))

    def _close_search(self) -> None:
        self.search.display = False
        self.table.focus()

    def action_escape(self) -> None:
        if self.search.display:
            self._close_search()
        else:
            self.oapp.action_back()

    # --- rows ---------------------------------------------------------------------------------



    def action_launch(self, kinds: str) -> None:
        """A job form for these rows: the marked ones, else every row of the filter (one run's)."""
        from orienteer.tui.screens.launch import run_context, write_selection

        row = self.current_row()
        run = self.filt.runs[0] if len(self.filt.runs) == 1 else (row.run if row else None)
        if run is None:
            self.notify("no run here: filter by a run (r) or move to a row", severity="warning")
            return
        context = run_context(self.oapp, run)
        marked = sorted(item for r, item in self.marked if r == run)
        if marked:
            context["selection"] = write_selection(self.oapp, marked)
        else:
            ids = self.service.filtered_item_ids(self.filt, run)
            if not ids:
                self.notify("no rows to start a job on", severity="warning")
                return
            context["selection"] = write_selection(self.oapp, ids)
        self.oapp.launch_jobs(context, kinds.split(","), title=f"Start a job on {visible(run)}'s rows")

    def action_toggle_mark(self) -> None:
        row = self.current_row()
        if row is None:
            return
        key = row.key
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.add(key)
        table = self.table
        table.update_cell_at(Coordinate(table.cursor_row, 0), Text(MARK if key in self.marked else " ", style="bold yellow"))
        self._show_head()
        table.action_cursor_down()

    def action_open_case(self) -> None:
        row = self.current_row()
        if row is None:
            return
        siblings = [r.key for r in self.rows]
        self.oapp.open_case(row.run, row.item_id, siblings)

    # --- export -------------------------------------------------------------------------------

    def default_export_name(self) -> str:
        runs = self.filt.runs
        stem = runs[0] if len(runs) == 1 else "all"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem)
        return f"failures-{safe}.csv"

    def action_export(self) -> None:
        filt = self.filt
        keys = sorted(self.marked) if self.marked else None
        if keys:
            what = f"{len(keys):,} marked row{'s' if len(keys) != 1 else ''}"
        elif self.total is None:
            what = "all filtered rows"
        else:
            what = f"all {self.total:,} filtered row{'s' if self.total != 1 else ''}"

        service = self.service

        def write(path: Path, force: bool) -> int:
            # Called from the dialog's worker thread; the service writes on a connection of its own.
            return service.export_predictions(filt, path, force=force, item_keys=keys)

        def done(result: tuple[Path, int] | None) -> None:
            if result is not None:
                path, n = result
                self.notify(f"wrote {n:,} rows to {visible(path)}", title="Export", timeout=6, markup=False)

        self.app.push_screen(ExportDialog(self.default_export_name(), what, write), done)
