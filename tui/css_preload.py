"""Register the default CSS of every widget the app will mount, once, while the app is idle.

Textual adds a widget class's ``DEFAULT_CSS`` to the stylesheet the first time an instance is
mounted, and the next style lookup then re-parses the *whole* stylesheet: every source, Textual's
own included (about 6,000 tokens here). So the first visit of each view paid that parse again
(about a quarter of the 270-390 ms first visits measured by ``bench/bench_tui.py``). Adding every
source up front and parsing once, in the idle time after the first paint, makes those later
registrations no-ops: ``Stylesheet.add_source`` returns early for a source it already holds.

The CSS a class contributes, and where it is recorded, is exactly what Textual itself adds when
it registers a widget (``textual_compat.default_css``), so the parsed rules are the same as on the
lazy path. Outside the tested Textual versions nothing is preloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from textual.css.stylesheet import Stylesheet
from textual.widget import Widget

from orienteer.tui import textual_compat


def widget_classes(modules: Iterable[ModuleType]) -> list[type[Widget]]:
    """Every widget (and screen) class that the given modules define or import.

    With the modules of the widgets Textual mounts on its own (``textual_compat.TEXTUAL_WIDGET_MODULES``):
    the views never name them, yet each would trigger the same re-parse when first shown.
    """
    extras = textual_compat.textual_widget_modules()
    seen: dict[type[Widget], None] = {}
    for module in [*modules, *extras]:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Widget):
                seen.setdefault(value, None)
    return list(seen)


def preload_css(stylesheet: Stylesheet, classes: Iterable[type[Widget]]) -> int:
    """Add the default CSS of ``classes`` that ``stylesheet`` lacks and parse once; the number added.

    Nothing is added (and nothing parsed) when every source is already there. A parse error is
    left for Textual to report as it would on the lazy path: the sources are then removed again.
    Nothing is added either on Textual's stock path (``textual_compat.enabled()`` false).
    """
    if not textual_compat.enabled():
        return 0
    added: list[tuple[str, str]] = []
    for cls in classes:
        for read_from, css, tie_breaker, scope in textual_compat.default_css(cls):
            if not stylesheet.has_source(*read_from):
                stylesheet.add_source(css, read_from=read_from, is_default_css=True, tie_breaker=tie_breaker, scope=scope)
                added.append(read_from)
    if added:
        try:
            stylesheet.parse()
        except Exception:  # noqa: BLE001 - leave it to Textual's own path, which reports it properly
            for read_from in added:
                stylesheet.source.pop(read_from, None)
            stylesheet.parse()
            return 0
    return len(added)
