"""Placeholder: being written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from orienteer.tui.screens.base import OrienteerScreen


class ConfusionScreen(OrienteerScreen):
    TITLE_TEXT = "confusion"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("confusion")
        yield Footer()

    def reload(self) -> None:
        pass
