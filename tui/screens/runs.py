"""1 · Runs and tasks: accuracy per run and task, deltas against a baseline, drill into failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Header, Static

from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.queries.report import OVERALL, Cell, Delta, Report
from orienteer.tui.labels import settings_line, short_task
from orienteer.tui.safe_text import text as safe_text
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.widgets.bars import bar, delta_text
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.table import FastTable

if TYPE_CHECKING:
    from orienteer.data.saliency_summary import SaliencySummary

RUNS_PAGE = 100  # rows added to the table at a time: 1,750 runs x 6 cells measured up front cost seconds
RUNS_PREFETCH = 10  # add the next page when the cursor is this close to the last added row


class RunsScreen(OrienteerScreen):
    class SaliencySummaryReady(Message):
        """The saliency summary asked for with ``s`` (read in a worker: it scans every map's numbers)."""

        def __init__(self, summary: SaliencySummary | None, error: OrienteerError | None) -> None:
            super().__init__()
            self.summary = summary
            self.error = error

    TITLE_TEXT = "1 Runs and tasks"
    BINDINGS = [
        Binding("enter", "open_cell", "Failures of cell"),
        Binding("b", "set_baseline", "Baseline = this run"),
        Binding("n", "next_bench", "Next benchmark"),
        Binding("s", "saliency_summary", "Saliency summary of this run", show=False),
        # Capital letters start background jobs (lower-case keys only change the view).
        Binding("E", "launch('eval')", "Evaluate"),
        Binding("T", "launch('train')", "Train"),
        Binding("S", "launch('saliency')", "Saliency"),
        Binding("B", "launch('box-prompt')", "Box-prompt"),
        Binding("A", "launch('flip,hard-negatives')", "Augment", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: Report | None = None
        self.columns: list[str] = []
        self.title_text = ""
        self._shown = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="runs-title", classes="screen-title")
        yield FastTable(id="runs-table", cursor_type="cell", zebra_stripes=True)
        yield Static(id="runs-detail", classes="detail")
        yield KeyBar()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#runs-table", DataTable)

    def reload(self) -> None:
        state = self.oapp.state
        try:
            reports = self.service.task_report(bench=state.bench, baseline=state.baseline)
        except OrienteerError as exc:
            if state.baseline is not None:
                state.baseline = None
                return self.reload()
            self.oapp.report_error(exc)
            reports = []
        self.report = reports[0] if reports else None
        if self.report is not None:
            state.bench = self.report.benchmark
        self._fill()

    def _fill(self) -> None:
        table = self.table
        keep = table.cursor_coordinate
        table.clear(columns=True)
        title = self.query_one("#runs-title", Static)
        report = self.report
        if report is None:
            self.title_text = "no runs"
            title.update("No runs yet. Import predictions with [b]orienteer import preds[/b], "
                         "or build the demo: [b]orienteer demo[/b].")
            self.query_one("#runs-detail", Static).update("")
            return
        heading = safe_text(report.benchmark, style="bold")
        heading.append(": accuracy % per task, bar = accuracy")
        if report.baseline:
            heading.append(" · Δ vs ")
            heading.append(visible(report.baseline), style="bold")
            heading.append(" (b sets the baseline; * = McNemar p < 0.05, Holm across the table)")
        self.title_text = heading.plain
        title.update(heading)
        self.columns = [*report.tasks, OVERALL]
        table.add_column("run", key="run")
        for task in self.columns:
            table.add_column("Overall" if task == OVERALL else safe_text(short_task(task)), key=task)
        self._shown = 0
        self._add_rows(max(RUNS_PAGE, keep.row + 1 + RUNS_PREFETCH))
        if keep.row < table.row_count and keep.column < len(self.columns) + 1:
            table.cursor_coordinate = keep
        else:
            table.cursor_coordinate = table.cursor_coordinate._replace(column=1)
        self._show_detail()

    def _add_rows(self, n: int) -> None:
        """Add the next ``n`` runs to the table (cells, and their p-values, are built only when added)."""
        report = self.report
        if report is None:
            return
        table = self.table
        for rr in report.runs[self._shown:self._shown + n]:
            cells = [self._cell(rr.overall if t == OVERALL else rr.tasks[t], rr.deltas.get(t)) for t in self.columns]
            label = safe_text(rr.run, style="bold" if rr.run == report.baseline else "")
            if rr.random_weights:
                label.append("\nrandom weights", style="bold red")
            table.add_row(label, *cells, key=rr.run, height=2)
        self._shown = table.row_count

    @staticmethod
    def _cell(cell: Cell, delta: Delta | None) -> Text:
        if cell.answered == 0 and cell.n:
            # a run that never saw this task (an eval of a subset): not 0%, and no delta against a baseline
            return Text("  —\nnot run", style="dim")
        text = Text(f"{100 * cell.accuracy:4.1f} ")
        text.append_text(bar(cell.accuracy, 4, style="cyan"))
        text.append("\n")
        if delta is not None:
            text.append_text(delta_text(delta.delta, delta.significant))
        else:
            text.append(f"±{50 * (cell.ci_high - cell.ci_low):.1f}", style="dim")
        return text

    def _selected(self) -> tuple[str, str] | None:
        if self.report is None or not self.report.runs:
            return None
        row, column = self.table.cursor_coordinate
        run = self.report.runs[min(row, len(self.report.runs) - 1)].run
        task = self.columns[max(0, column - 1)] if self.columns else OVERALL
        return run, task

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        if self.report is not None and event.coordinate.row >= self._shown - RUNS_PREFETCH:
            self._add_rows(RUNS_PAGE)
        self._show_detail()

    def _show_detail(self) -> None:
        picked = self._selected()
        detail = self.query_one("#runs-detail", Static)
        if picked is None or self.report is None:
            detail.update("")
            return
        run, task = picked
        rr = next(r for r in self.report.runs if r.run == run)
        cell = rr.overall if task == OVERALL else rr.tasks[task]
        settings = settings_line(rr.config)
        # Names and the settings come from files: only ever Text, never markup (safe_text).
        text = safe_text(run, style="bold")
        text.append(" · ")
        text.append(visible(task) if task != OVERALL else "all tasks")
        if settings:
            text.append(f"  {visible(settings)}", style="dim")
        text.append("\n")
        if cell.answered == 0 and cell.n:
            text.append(f"not run: no predictions for these {cell.n} items (the run covers "
                        f"{rr.overall.answered} of {rr.overall.n} items)")
            detail.update(text)
            return
        text.append(f"{cell.correct}/{cell.n} correct = ")
        text.append(f"{100 * cell.accuracy:.2f}%", style="bold")
        text.append(f" (95% CI {100 * cell.ci_low:.1f}–{100 * cell.ci_high:.1f}), answered {cell.answered}")
        if cell.answered < cell.n:
            text.append(f" (the {cell.n - cell.answered} unanswered count as wrong)", style="yellow")
        d = rr.deltas.get(task)
        if d is not None:
            holm_p = "" if d.p_holm is None else f", Holm-corrected across the table {d.p_holm:.3g}"
            text.append(f"\nvs {visible(self.report.baseline)}: {100 * d.delta:+.2f} points; fixed {d.fixed}, "
                        f"broken {d.broken}; McNemar p = {d.p_value:.3g}{holm_p} (")
            text.append("significant" if d.significant else "not significant", style="bold" if d.significant else "")
            text.append(")")
        text.append("\nenter: failures of this cell", style="dim")
        detail.update(text)

    def action_open_cell(self) -> None:
        picked = self._selected()
        if picked is None:
            return
        run, task = picked
        tasks = () if task == OVERALL else (task,)
        self.oapp.open_failures(PredictionFilter(runs=(run,), tasks=tasks))

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_open_cell()

    def action_launch(self, kinds: str) -> None:
        """A job form prefilled from the run under the cursor: its benchmark, model and failures."""
        from orienteer.tui.screens.launch import run_context

        picked = self._selected()
        context = run_context(self.oapp, picked[0] if picked else None)
        if picked is not None and picked[1] != OVERALL:
            context["task"] = picked[1]
        self.oapp.launch_jobs(context, kinds.split(","))

    def action_saliency_summary(self) -> None:
        """Share of saliency inside the box for the run under the cursor (``orienteer saliency summary``)."""
        picked = self._selected()
        if picked is None:
            return
        run = picked[0]
        self.fetch(lambda: self.service.saliency_summary(run), self.SaliencySummaryReady, group="saliency-summary")

    def on_runs_screen_saliency_summary_ready(self, message: SaliencySummaryReady) -> None:
        from orienteer.tui.screens.saliency_summary import SaliencySummaryScreen

        if message.error is not None:
            self.oapp.report_error(message.error)
        elif message.summary is not None and self.app.screen is self:  # not over a view the user moved on to
            self.app.push_screen(SaliencySummaryScreen(message.summary))

    def action_set_baseline(self) -> None:
        picked = self._selected()
        if picked is None:
            return
        self.oapp.state.baseline = picked[0]
        self.oapp.state.generation += 1
        self.reload_if_stale()
        self.notify(f"baseline: {visible(picked[0])}", markup=False)

    def action_next_bench(self) -> None:
        names = self.service.bench_names()
        if not names:
            return
        state = self.oapp.state
        current = names.index(state.bench) if state.bench in names else -1
        state.bench = names[(current + 1) % len(names)]
        state.baseline = None
        state.generation += 1
        self.reload_if_stale()
