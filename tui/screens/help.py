"""``?``: every key of the screen underneath, and the app's own keys."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from orienteer.tui.screens.base import screen_bindings


def _rows(bindings: Sequence[Binding | tuple[str, ...]]) -> list[tuple[str, str]]:
    rows = []
    for entry in bindings:
        b = Binding(entry[0], entry[1], entry[2] if len(entry) > 2 else "") if isinstance(entry, tuple) else entry
        if b.description:
            keys = ", ".join(k.strip() for k in b.key.split(","))
            rows.append((_pretty_keys(keys), b.description))
    return rows


_KEY_NAMES = {"question_mark": "?", "slash": "/", "left_square_bracket": "[", "right_square_bracket": "]",
              "space": "space", "enter": "enter", "escape": "escape"}


def _pretty_keys(keys: str) -> str:
    return ", ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        table = Table(title=f"Keys: {getattr(self.under, 'TITLE_TEXT', '') or 'this screen'}", box=None, expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("action")
        for key, text in _rows(screen_bindings(self.under)):
            table.add_row(key, text)
        table.add_section()
        for key, text in _rows(list(self.app.BINDINGS)):
            table.add_row(key, text)
        table.add_row("ctrl+p", "Command palette: every action by name")
        if not any("escape" in key for key, _ in _rows(screen_bindings(self.under))):
            table.add_row("escape", "Back")
        self.table = table
        with VerticalScroll(id="help-box"):
            yield Static(table)

    def plain_text(self, width: int = 100) -> str:
        """The help as plain text (for tests and for copying)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO())
        console.print(self.table)
        return console.export_text()
