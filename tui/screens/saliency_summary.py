"""``s`` on the runs screen: the saliency summary of the run under the cursor, the CLI's figures in a modal."""

from __future__ import annotations

from rich.console import Group
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from orienteer.data.saliency_summary import SaliencySummary
from orienteer.tui.saliency_tables import summary_renderables


class SaliencySummaryScreen(ModalScreen[None]):
    """Read-only: escape (or ``s`` again) closes it."""

    DEFAULT_CSS = """
    SaliencySummaryScreen {
        align: center middle;
    }
    SaliencySummaryScreen > #saliency-box {
        width: 100%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    SaliencySummaryScreen #saliency-summary {
        width: 100%;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape,s", "dismiss", "Close")]

    def __init__(self, summary: SaliencySummary) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="saliency-box"):
            yield Static(Group(*summary_renderables(self.summary, app=True)), id="saliency-summary")
