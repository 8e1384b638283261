"""Placeholder: being written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from orienteer.tui.screens.base import OrienteerScreen


class FailuresScreen(OrienteerScreen):
    TITLE_TEXT = "failures"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("failures")
        yield Footer()

    def reload(self) -> None:
        pass
