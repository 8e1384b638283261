"""Register the default CSS of every widget the app will mount, once, while the app is idle.

Textual adds a widget class's ``DEFAULT_CSS`` to the stylesheet the first time an instance is
mounted, and the next style lookup then re-parses the *whole* stylesheet: every source, Textual's
own included (about 6,000 tokens here). So the first visit of each view paid that parse again
(about a quarter of the 270-390 ms first visits measured by ``bench/bench_tui.py``). Adding every
source up front and parsing once, in the idle time after the first paint, makes those later
registrations no-ops: ``Stylesheet.add_source`` returns early for a source it already holds.

The CSS a class contributes, and where it is recorded, is exactly what Textual's own
``Widget._post_register`` adds, so the parsed rules are the same as on the lazy path.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from textual.css.stylesheet import Stylesheet
from textual.widget import Widget

# Modules of widgets that Textual mounts on its own (notifications, scroll bars, tooltips, the
# command palette and what it composes): the views never name them, yet each would trigger the same
# re-parse when first shown. Scanned like the views' modules.
TEXTUAL_MODULES = ("textual.widgets._toast", "textual.scrollbar", "textual.widgets._tooltip", "textual.command")


def widget_classes(modules: Iterable[ModuleType]) -> list[type[Widget]]:
    """Every widget (and screen) class that the given modules (and ``TEXTUAL_MODULES``) define or import."""
    import importlib

    extras = []
    for name in TEXTUAL_MODULES:
        try:
            extras.append(importlib.import_module(name))
        except ImportError:  # a later Textual moved it: that widget is then parsed lazily, as before
            continue
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
    """
    added: list[tuple[str, str]] = []
    for cls in classes:
        # _get_default_css reads nothing but the class (via _node_bases): an uninitialised instance will do
        node = cls.__new__(cls)
        for read_from, css, tie_breaker, scope in node._get_default_css():
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
