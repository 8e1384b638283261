"""Placeholder: being written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class CaseScreen(Screen[None]):
    def __init__(self, run: str, item_id: str, siblings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.run, self.item_id, self.siblings = run, item_id, siblings

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.run} {self.item_id}")
        yield Footer()
