"""Behaviour every top-level screen shares: reload when the shared state moved, back on escape.

Screens read the workspace through ``self.service`` (``data.service.WorkspaceService``): typed
rows, no connections, no SQL. A query that can take a while runs in a worker and comes back
as a Textual message (the failures total: ``FailuresScreen.CountDone``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from orienteer.data.errors import OrienteerError

if TYPE_CHECKING:
    from orienteer.data.service import WorkspaceService
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

    @property
    def service(self) -> "WorkspaceService":
        """The app's typed door to the workspace."""
        return self.oapp.service

    def fetch(self, query: Callable[[], T], done: Callable[[T | None, OrienteerError | None], Message],
              group: str) -> None:
        """Run ``query`` (a call on ``self.service``) in a worker thread and post the message ``done`` makes of
        its answer, or of its error, back to this screen: the UI stays responsive while the database works."""

        def work() -> None:
            try:
                result, error = query(), None
            except OrienteerError as exc:
                result, error = None, exc
            self.post_message(done(result, error))

        self.run_worker(work, thread=True, group=group, exit_on_error=False)

    def on_mount(self) -> None:
        self.sub_title = self.TITLE_TEXT
        self.reload_if_stale(force=True)

    def on_screen_resume(self) -> None:
        self.reload_if_stale()

    def _stale_key(self) -> object:
        """What this screen's content depends on in the shared state (it reloads when this moved).

        Subclasses override it to depend on more (the failures filter, the jobs' generation).
        """
        return self.oapp.state.generation

    def reload_if_stale(self, force: bool = False) -> None:
        """Reload when what the screen shows depends on state that moved since it last loaded.

        The app calls it on the current screen when new data arrives (a job's outputs), on ctrl+r
        and when a number key asks for the view already shown; screens call it after changing
        the shared state themselves. ``force`` reloads regardless.
        """
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
