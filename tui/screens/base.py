"""Behaviour every top-level screen shares: reload when the shared state moved, back on escape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from textual.binding import Binding
from textual.screen import Screen

if TYPE_CHECKING:
    from orienteer.tui.app import OrienteerApp

T = TypeVar("T")


def screen_bindings(screen: object) -> list[Binding]:
    """A screen's bindings including inherited ones, the subclass's first (as Textual resolves them)."""
    seen: set[str] = set()
    out: list[Binding] = []
    for cls in type(screen).__mro__:
        for raw in cls.__dict__.get("BINDINGS", []):
            binding = raw if isinstance(raw, Binding) else Binding(*raw)
            if binding.key not in seen:
                seen.add(binding.key)
                out.append(binding)
    return out


class OrienteerScreen(Screen[None]):
    """A top-level screen (a mode). Subclasses implement ``reload``."""

    BINDINGS = [
        Binding("escape", "app.back", "Back", show=False),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
        Binding("h", "cursor('left')", "Left", show=False),
        Binding("l", "cursor('right')", "Right", show=False),
    ]
    TITLE_TEXT = ""
    _seen_generation: object = -1

    @property
    def oapp(self) -> "OrienteerApp":
        return self.app  # type: ignore[return-value]

    def db(self, query: Any) -> Any:
        return self.oapp.db(query)

    def on_mount(self) -> None:
        self.sub_title = self.TITLE_TEXT
        self._reload_if_stale(force=True)

    def on_screen_resume(self) -> None:
        self._reload_if_stale()

    def _stale_key(self) -> object:
        """What this screen's content depends on in the shared state (it reloads when this moved)."""
        return self.oapp.state.generation

    def _reload_if_stale(self, force: bool = False) -> None:
        generation = self._stale_key()
        if force or generation != self._seen_generation:
            self._seen_generation = generation
            self.reload()

    def cursor_target(self) -> Any:
        """The widget that j/k/h/l move in (the focused table by default)."""
        return self.focused

    def action_cursor(self, direction: str) -> None:
        move = getattr(self.cursor_target(), f"action_cursor_{direction}", None)
        if move is not None:
            move()

    def reload(self) -> None:  # pragma: no cover - every screen overrides it
        raise NotImplementedError
