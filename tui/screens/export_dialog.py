"""The export dialog: a path (its extension picks CSV, JSONL or Parquet), overwrite, inline errors.

The caller passes ``write(path, force) -> rows written``; the dialog runs it in a thread so a
large export does not freeze the screen, shows an ``OrienteerError`` inline (for an existing
file it asks once more before overwriting), and dismisses with ``(path, rows)`` on success or
``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static
from textual.worker import Worker, WorkerState

from orienteer.data.errors import OrienteerError
from orienteer.tui.safe_text import visible

WriteFn = Callable[[Path, bool], int]


class ExportDialog(ModalScreen[tuple[Path, int] | None]):
    DEFAULT_CSS = """
    ExportDialog {
        align: center middle;
    }
    ExportDialog > #export-box {
        width: 90%;
        max-width: 90;
        height: auto;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    ExportDialog #export-title {
        text-style: bold;
        padding-bottom: 1;
    }
    ExportDialog #export-path {
        width: 100%;
    }
    ExportDialog #export-error {
        color: $error;
        height: auto;
    }
    ExportDialog #export-status {
        color: $text-muted;
        height: auto;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "toggle_overwrite", "Overwrite on/off"),
    ]

    def __init__(self, default_path: str, what: str, write: WriteFn) -> None:
        super().__init__()
        self.default_path = default_path
        self.what = what
        self.write = write
        self.confirm_path: Path | None = None  # an existing file the user was asked about once
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(visible(f"Export {self.what}"), id="export-title", markup=False)
            yield Input(self.default_path, id="export-path", placeholder="file.csv, file.jsonl or file.parquet")
            yield Checkbox("Overwrite an existing file", id="export-overwrite")
            yield Static("", id="export-error", markup=False)
            yield Static("enter: write · ctrl+o: overwrite on/off · escape: cancel · .csv .jsonl .parquet",
                         id="export-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @property
    def path_input(self) -> Input:
        return self.query_one("#export-path", Input)

    @property
    def overwrite(self) -> Checkbox:
        return self.query_one("#export-overwrite", Checkbox)

    def _error(self, message: str) -> None:
        """Errors quote paths and file content: control characters shown as escapes."""
        self.query_one("#export-error", Static).update(visible(message))

    def _status(self, message: str) -> None:
        self.query_one("#export-status", Static).update(visible(message))

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.confirm_path is not None:
            self.confirm_path = None
            self._error("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_write()

    def action_toggle_overwrite(self) -> None:
        self.overwrite.toggle()

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def action_write(self) -> None:
        if self.busy:
            return
        raw = self.path_input.value.strip()
        if not raw:
            self._error("type a file name ending in .csv, .jsonl or .parquet")
            return
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        force = self.overwrite.value or self.confirm_path == path
        self.busy = True
        self._error("")
        self._status(f"writing {path} …")
        self.run_worker(lambda: self._write(path, force), thread=True, exit_on_error=False, group="export")

    def _write(self, path: Path, force: bool) -> tuple[Path, int | None, str | None]:
        try:
            return path, self.write(path, force), None
        except OrienteerError as exc:
            return path, None, str(exc)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "export" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.busy = False
        if event.state == WorkerState.ERROR:
            self._status("enter: try again · escape: cancel")
            self._error(f"export failed: {event.worker.error}")
            return
        result: tuple[Path, int | None, str | None] = event.worker.result  # type: ignore[assignment]
        path, n, error = result
        if error is None:
            if n is not None:
                self.dismiss((path, n))
            return
        if "already exists" in error:
            self.confirm_path = path
            self._error(f"{path} already exists.")
            self._status("enter: overwrite it · or change the name · escape: cancel")
        else:
            self._error(error)
            self._status("enter: try again · escape: cancel")
