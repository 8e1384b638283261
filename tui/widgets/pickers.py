"""A small modal "pick one of these values" list.

Usage::

    def chosen(value: str | None) -> None:
        if value is not None:
            ...

    self.app.push_screen(PickerScreen("Run", ["run-a", "run-b"], current="run-a"), chosen)

The screen dismisses with the chosen string (enter or click) or ``None`` (escape). The
cursor starts on ``current`` (marked with a dot) when it is one of the options; j/k and the
arrows move. Options are names from files: shown with control characters visible, returned exact.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from orienteer.tui.safe_text import visible


class PickerScreen(ModalScreen[str | None]):
    """Choose one of ``options``; dismisses with the value, or None on escape."""

    DEFAULT_CSS = """
    PickerScreen {
        align: center middle;
    }
    PickerScreen > #picker-box {
        width: auto;
        min-width: 30;
        max-width: 90%;
        height: auto;
        max-height: 80%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    PickerScreen #picker-title {
        width: 100%;
        text-style: bold;
        padding: 0 0 1 0;
    }
    PickerScreen OptionList, PickerScreen OptionList:focus {
        width: auto;
        min-width: 28;
        height: auto;
        max-height: 20;
        border: none;
        padding: 0;
        background: $surface;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, title: str, options: list[str], current: str | None = None) -> None:
        super().__init__()
        self.picker_title = title
        self.options = list(options)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(visible(self.picker_title), id="picker-title", markup=False)
            marked = [
                Option(Text(("● " if value == self.current else "  ") + visible(value)), id=str(index))
                for index, value in enumerate(self.options)
            ]
            yield OptionList(*marked, id="picker-list")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        if self.current in self.options:
            option_list.highlighted = self.options.index(self.current)
        elif self.options:
            option_list.highlighted = 0
        option_list.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        self.dismiss(self.options[index] if 0 <= index < len(self.options) else None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()
