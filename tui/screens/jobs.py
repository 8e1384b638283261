"""5 · Jobs: every background job with a live progress bar; its log, cancel, re-run, new jobs.

The table is rebuilt from the job folders once a second in a thread (file reads only). A job
that ended without its outputs in the workspace is ingested by a separate process, never by
this one, whose read-only database connection must not meet a read-write one.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from orienteer.jobs.status import ENDED_WITHOUT_SUCCESS, JobView, format_duration, tail
from orienteer.jobs.store import job_dir
from orienteer.tui.safe_text import visible
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.widgets.bars import bar
from orienteer.tui.widgets.keybar import KeyBar
from orienteer.tui.widgets.plot import braille_plot

STATUS_STYLE = {
    "running": "bold cyan", "queued": "yellow", "starting": "yellow", "done": "green",
    "failed": "bold red", "lost": "red", "cancelled": "magenta",
}
POLL_S = 1.0


def progress_text(view: JobView, width: int = 16) -> Text:
    p = view.progress
    if p.fraction is not None:
        frac = min(1.0, p.fraction)
        text = bar(frac, width, STATUS_STYLE.get(view.status, "cyan").replace("bold ", ""))
        text.append(f" {100 * frac:3.0f}%")
        return text
    if p.done:
        return Text(visible(f"{p.done} {p.unit}"), style="dim")
    return Text("")


def job_row(view: JobView) -> list[Text]:
    """One job's cells; a job that ended without success shows no rate or ETA (``status._settle``)."""
    p = view.progress
    rate = visible(f"{p.rate:.2f} {p.unit}/s") if p.rate and view.status not in ENDED_WITHOUT_SUCCESS else ""
    eta = format_duration(p.eta_s) if view.active and p.eta_s is not None else ""
    return [
        Text(visible(view.job_id)), Text(visible(view.kind)), Text(view.status, style=STATUS_STYLE.get(view.status, "")),
        progress_text(view), Text(rate, justify="right"), Text(eta, justify="right"),
        Text(format_duration(view.elapsed_s), justify="right"), Text(visible(view.where)),
    ]


def slurm_line(view: JobView) -> str:
    """A Slurm job's id, node and state, and why Slurm keeps it pending (Slurm's words: escaped); empty for a
    local job."""
    if view.runner != "slurm":
        return ""
    line = f"Slurm job {view.slurm_job_id or '(not submitted yet)'}"
    if view.node:
        line += f" on {view.node}"
    if view.status == "queued" and view.reason:
        line += f" · pending: {view.reason}"
    elif view.slurm_state:
        line += f" · {view.slurm_state}"
    return visible(line)


def dataset_notes(out_dir: Any) -> list[str]:
    """For a finished job that made a cot dataset (whatever its kind): its kept / tried / agreement
    per task, from the job's own manifest (a file read, no database); nothing for any other job."""
    from orienteer.data.errors import OrienteerError
    from orienteer.data.job_outputs import DatasetOutput, read_manifest
    from orienteer.tui.composition import cot_lines

    try:
        outputs = read_manifest(out_dir) or []
    except (OrienteerError, OSError, UnicodeDecodeError):  # a bad manifest shows nothing here; ingest reports it
        return []
    lines: list[str] = []
    for output in outputs:
        if isinstance(output, DatasetOutput):
            notes = cot_lines(output.composition)
            if notes:
                lines += [f"dataset {visible(output.name)}: {notes[0]}", *(f"  {line}" for line in notes[1:])]
    return lines


def read_metrics(path: Any, key: str = "loss") -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and key in record:
                    try:
                        x, y = float(record.get("step", len(xs) + 1)), float(record[key])
                    except (TypeError, ValueError):
                        continue  # a value that is not a number is skipped, never fatal
                    xs.append(x)
                    ys.append(y)
    except FileNotFoundError:
        pass
    return xs, ys


class JobsScreen(OrienteerScreen):
    TITLE_TEXT = "5 Jobs"
    BINDINGS = [
        Binding("enter", "open_log", "Log"),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("r", "rerun_job", "Re-run"),
        Binding("n", "new_job", "New job"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.views: list[JobView] = []
        self._polling = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="jobs-title", classes="screen-title")
        yield DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="jobs-detail", classes="jobs-detail")
        yield KeyBar()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#jobs-table", DataTable)

    def on_mount(self) -> None:
        table = self.table
        for name in ("job", "kind", "status", "progress", "rate", "ETA", "elapsed", "on"):
            table.add_column(name, key=name)
        super().on_mount()
        self.set_interval(POLL_S, self._poll)
        table.focus()

    def _stale_key(self) -> object:
        return (self.oapp.state.generation, self.oapp.jobs_generation)

    def reload(self) -> None:
        self.views = self.oapp.job_views()
        self._fill()

    def _poll(self) -> None:
        if self._polling or not self.is_current:
            return
        self._polling = True
        self.run_worker(self._poll_thread, thread=True, exclusive=True, group="jobs-poll")

    def _poll_thread(self) -> None:
        try:
            views = self.oapp.refresh_jobs()
            self.app.call_from_thread(self._apply, views)
        finally:
            self._polling = False

    def _apply(self, views: list[JobView]) -> None:
        self.views = views
        self._fill()

    def _fill(self) -> None:
        table = self.table
        title = self.query_one("#jobs-title", Static)
        active = sum(1 for v in self.views if v.active)
        title.update(
            f"[b]{len(self.views)}[/b] jobs, [b]{active}[/b] active · they keep running when the app or the SSH "
            "session closes · n starts one"
        )
        keys = [v.job_id for v in self.views]
        current = [str(k.value) for k in table.rows]
        if current == keys:
            for view in self.views:
                for column, cell in zip(("job", "kind", "status", "progress", "rate", "ETA", "elapsed", "on"), job_row(view)):
                    table.update_cell(view.job_id, column, cell, update_width=True)
        else:
            selected = self.selected_id()
            table.clear()
            for view in self.views:
                table.add_row(*job_row(view), key=view.job_id)
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        self._show_detail()

    def selected(self) -> JobView | None:
        if not self.views:
            return None
        row = self.table.cursor_row
        return self.views[row] if 0 <= row < len(self.views) else None

    def selected_id(self) -> str | None:
        view = self.selected()
        return view.job_id if view else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_log()

    def _show_detail(self) -> None:
        detail = self.query_one("#jobs-detail", Static)
        view = self.selected()
        if view is None:
            detail.update("No jobs yet. n starts one; e, t, s, b on the runs screen and a on the failures screen start "
                          "one from there.")
            return
        text = Text()
        # Everything below is read from the job's files (names, errors, log lines): visible escapes only.
        text.append(visible(view.job_id), style="bold")
        text.append(f"  {view.status}", style=STATUS_STYLE.get(view.status, ""))
        if view.progress.note:
            text.append(f"  {visible(view.progress.note)}", style="dim")
        text.append("\n$ " + visible(shlex.join(map(str, view.argv))), style="dim")
        slurm = slurm_line(view)
        if slurm:
            text.append("\n" + slurm, style="yellow" if view.status == "queued" else "dim")
        if view.error:
            text.append(f"\n{visible(view.error)}", style="red")
        if view.ingest and view.ingest.get("summary"):
            text.append("\ningested: " + visible("; ".join(map(str, view.ingest["summary"]))), style="green")
        job = job_dir(self.oapp.workspace, view.job_id)
        for line in dataset_notes(job.out_dir) if view.status == "done" else ():
            text.append("\n" + line, style="")
        xs, ys = read_metrics(job.metrics_path)
        if xs:
            width = max(20, min(70, self.size.width - 14))
            text.append("\n")
            text.append(braille_plot(xs, ys, width=width, height=6))
        for line in tail(job.log_path, 4 if xs else 6):
            text.append("\n" + visible(line)[: max(20, self.size.width - 4)], style="")
        detail.update(text)

    # --- actions ------------------------------------------------------------------------------

    def action_open_log(self) -> None:
        view = self.selected()
        if view is not None:
            from orienteer.tui.screens.launch import LogScreen

            self.app.push_screen(LogScreen(job_dir(self.oapp.workspace, view.job_id)))

    def action_cancel_job(self) -> None:
        view = self.selected()
        if view is None:
            return
        if not view.active:
            self.app.notify(f"job {visible(view.job_id)} is {view.status}, not running", markup=False)
            return
        from orienteer.tui.screens.launch import ConfirmScreen

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_worker(lambda: self._cancel_thread(view.job_id), thread=True, group="jobs-cancel")

        self.app.push_screen(ConfirmScreen(visible(f"Cancel job {view.job_id} ({view.kind})?")), confirmed)

    def _cancel_thread(self, job_id: str) -> None:
        from orienteer.jobs.api import cancel

        stopped = cancel(self.oapp.workspace, job_id)
        message = f"cancelled {visible(job_id)}" if stopped else f"{visible(job_id)} was not running"
        self.app.call_from_thread(lambda: self.app.notify(message, markup=False))

    def action_rerun_job(self) -> None:
        view = self.selected()
        if view is None:
            return
        from orienteer.tui.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(view.kind, dict(view.params), title=f"Re-run {visible(view.job_id)}"))

    def action_new_job(self) -> None:
        from orienteer.tui.screens.launch import pick_and_launch

        pick_and_launch(self.oapp, {})

    def cursor_target(self) -> Any:
        return self.table
