"""The key bar at the bottom of every screen: one widget drawing one line of text.

Textual's ``Footer`` recomposes one widget per key (each styled through the stylesheet)
every time the bindings change, which is on every focus change and every screen switch:
about 50 ms per switch on a 2-core machine. This bar computes the same list from
``screen.active_bindings`` (so a focused widget's keys win, as in the Footer) and only
repaints when the list changed.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

KeyList = tuple[tuple[str, str, str, bool], ...]  # (key, shown key, description, enabled)


class KeyBar(Widget, can_focus=False):
    """The keys of the active bindings that have ``show=True``, and the command palette key on the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--palette"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    KeyBar > .keybar--palette {
        color: $foreground 20%;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: KeyList = ()
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each item, for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._keys = self._collect(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen or not self.is_attached:
            return
        keys = self._collect(screen)
        if keys != self._keys:
            self._keys = keys
            self.refresh()

    def _collect(self, screen: Screen[object]) -> KeyList:
        seen: set[str] = set()
        out: list[tuple[str, str, str, bool]] = []
        palette = self.app.COMMAND_PALETTE_BINDING if self.app.ENABLE_COMMAND_PALETTE else None
        for _node, binding, enabled, _tooltip in screen.active_bindings.values():
            if not binding.show or binding.key == palette or binding.action in seen:
                continue
            seen.add(binding.action)  # one entry per action, like the Footer
            out.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        if palette is not None and palette in screen.active_bindings:
            _node, binding, enabled, _tooltip = screen.active_bindings[palette]
            out.append((binding.key, self.app.get_key_display(binding), "\0" + binding.description, enabled))
        return tuple(out)

    @property
    def keys(self) -> KeyList:
        """What the bar shows (for tests): (key, shown key, description, enabled)."""
        return self._keys

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        desc_style = self.get_component_rich_style("keybar--description")
        width = self.size.width
        left = Text(no_wrap=True, overflow="crop")
        right = Text(no_wrap=True)
        spans: list[tuple[int, int, str]] = []
        for key, shown, description, enabled in self._keys:
            dim = Style(dim=True) if not enabled else Style()
            if description.startswith("\0"):
                right.append("▏", style=self.get_component_rich_style("keybar--palette"))
                right.append(f"{shown} ", style=key_style + dim)
                right.append(f"{description[1:]} ", style=desc_style + dim)
                spans.append((width - len(shown) - len(description) - 2, width, key))
                continue
            start = len(left)
            left.append(f" {shown} ", style=key_style + dim)
            left.append(f"{description} ", style=desc_style + dim)
            spans.append((start, len(left), key))
        room = max(0, width - right.cell_len)
        left.truncate(room, pad=True)
        self._spans = [s for s in spans if s[0] < room or s[1] == width]
        return left + right

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
