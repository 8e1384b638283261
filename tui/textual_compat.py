"""Every use of a private Textual name, behind one version check.

Textual has no public hooks for the speed-ups this app's key presses rely on: keeping a table's
rendered cells across screen switches, laying out text cells without Rich's generic pipeline,
measuring text cells cheaply (``widgets/table.py``), registering the views' CSS in one parse
(``css_preload.py``) and marking a new mode screen as already styled (``app.py``). They reach into
Textual's internals, so they are all here, and they are used only with the Textual versions they
were tested with (``TESTED``). With any other version, or with ``ORIENTEER_TEXTUAL_INTERNALS=off``,
each falls back to Textual's stock behaviour (a plain ``DataTable``, no CSS preload): slower,
never broken. That is logged once, to Textual's log (devtools), never to the terminal.

A test (``tests/tui/test_textual_compat.py``) fails when a private Textual name is used anywhere
else under ``tui/``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import textual
from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.logging import TextualHandler
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable

TESTED_FROM = (8, 2)  # the Textual versions these internals were read from and tested with: 8.2.x
TESTED_BELOW = (8, 3)
TESTED = f">={TESTED_FROM[0]}.{TESTED_FROM[1]},<{TESTED_BELOW[0]}.{TESTED_BELOW[1]}"
SWITCH = "ORIENTEER_TEXTUAL_INTERNALS"  # "off" forces the stock path (to rule the speed-ups out of a bug)

log = logging.getLogger(__name__)
# Inside the app the warning goes to Textual's log; outside it, nowhere (never onto the terminal,
# which Python's last-resort handler would do for a logger without handlers). Still propagates,
# so a host application's (or pytest's) handlers see it.
log.addHandler(TextualHandler(stderr=False, stdout=False))

# Modules of widgets that Textual mounts on its own (notifications, scroll bars, tooltips, the
# command palette and what it composes): the views never name them, yet each first showing would
# re-parse the stylesheet. ``css_preload`` scans them like the views' modules.
TEXTUAL_WIDGET_MODULES = ("textual.widgets._toast", "textual.scrollbar", "textual.widgets._tooltip", "textual.command")


def textual_version() -> str:
    """The installed Textual's version (a function, so a test can pretend another one)."""
    return textual.__version__


def supported(version: str) -> bool:
    """Whether ``version`` lies in the tested range ``TESTED``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and TESTED_FROM <= (int(match[1]), int(match[2])) < TESTED_BELOW


@functools.cache
def enabled() -> bool:
    """Whether the speed-ups that use Textual's internals are on; decided (and a fallback logged) once.

    ``enabled.cache_clear()`` decides again (tests).
    """
    version = textual_version()
    if os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "no", "false"):
        reason = f"{SWITCH} is off"
    elif not supported(version):
        reason = f"Textual {version} is outside the tested range {TESTED}"
    else:
        return True
    log.warning(f"{reason}: using Textual's stock DataTable and CSS loading (correct, slower key presses)")
    return False


# --- the app and its stylesheet ------------------------------------------------------------------


def mark_styled(screen: Screen[Any], app: App[Any]) -> None:
    """Mark a new mode screen as styled by the app's current CSS (it is, once mounted).

    Unmarked, ``switch_mode`` takes a brand-new screen for one that missed a CSS change and
    re-parses the whole stylesheet twice (about 120 ms of each view's first visit).
    """
    if enabled() and isinstance(getattr(app, "_css_update_count", None), int):
        screen._css_update_count = app._css_update_count


def textual_widget_modules() -> list[ModuleType]:
    """The modules of ``TEXTUAL_WIDGET_MODULES`` that this Textual has (none on the stock path)."""
    if not enabled():
        return []
    found = []
    for name in TEXTUAL_WIDGET_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ImportError:  # moved in this Textual: that widget's CSS is then parsed lazily, as before
            continue
    return found


def default_css(cls: type[Widget]) -> list[tuple[tuple[str, str], str, int, str]]:
    """What Textual's ``Widget._post_register`` adds to the stylesheet for ``cls``: (location, css, tie, scope).

    ``_get_default_css`` reads nothing but the class (via ``_node_bases``): an uninitialised
    instance will do.
    """
    node = cls.__new__(cls)
    return node._get_default_css()


def terminal_app_running() -> bool:
    """Whether a Textual app runs on a real terminal now (then nothing else may probe the terminal).

    Not a speed-up, so not switched off outside ``TESTED``: the active app is a context variable
    Textual has kept for years. Should a later Textual move it, this says True, the safe answer.
    """
    try:
        from textual._context import active_app
    except ImportError:
        return True
    app = active_app.get(None)
    return app is not None and not app.is_headless


# --- the table -----------------------------------------------------------------------------------

_NULL = Style.null()
_stock_measure: Callable[..., int] | None = None


def _measure(console: Any, renderable: Any, default: int, *, container_width: int | None = None) -> int:
    """Textual's ``measure`` with a shortcut for ``Text``: its widest line (what Rich measures as maximum)."""
    assert _stock_measure is not None
    if type(renderable) is Text and enabled():
        lines = renderable.plain.splitlines()
        return max(map(cell_len, lines)) if lines else 0
    return _stock_measure(console, renderable, default, container_width=container_width)


def _install_measure() -> None:
    """Measure new cells through ``_measure``: the DataTable calls its module's ``measure`` (only this app draws tables)."""
    global _stock_measure
    from textual.widgets import _data_table

    if _stock_measure is None:
        _stock_measure = _data_table.measure
        _data_table.measure = _measure


class TunedDataTable(DataTable):
    """A DataTable that keeps its rendered cells across screen switches and lets a subclass lay out cells.

    ``text_cell_lines`` is the hook: the finished lines of one cell, or None for Textual's own path.
    On the stock path (``enabled()`` false when the table is made) every method is DataTable's.
    """

    _tuned = False
    _style_key: object = None
    _seen_components: list[tuple[str, Any]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tuned = enabled()
        if self._tuned:
            _install_measure()
            # On the instance, not as an override: DataTable calls ``self._render_cell`` for every cell
            # it renders, and the stock path then keeps DataTable's method with no dispatch in between.
            self._render_cell = self._tuned_render_cell  # type: ignore[method-assign]

    def text_cell_lines(self, cell: object, width: int, height: int, padding: int, pre_style: Style,
                        post_style: Style, console: Any) -> list[list[Any]] | None:
        """The rendered lines of a cell, or None to let Textual render it (the default)."""
        return None

    # --- keep the caches when the style did not change -------------------------------------------

    def _own_style_key(self) -> object:
        styles = self.styles
        return (dict(styles._base_styles._rules), dict(styles._inline_styles._rules),
                self.rich_style, frozenset(self.get_pseudo_classes()))

    def _clear_render_caches(self) -> None:
        """What DataTable's own ``notify_style_update`` clears."""
        self._row_render_cache.clear()
        self._cell_render_cache.clear()
        self._row_renderable_cache.clear()
        self._line_cache.clear()
        self._styles_cache.clear()
        self._get_styles_to_render_cell.cache_clear()

    def notify_style_update(self) -> None:
        # Textual re-applies the stylesheet to a screen that comes back (ScreenResume) and the stock
        # DataTable then throws every rendered cell away; here only a real change of the table's
        # style, pseudo classes (theme, focus) does.
        if not self._tuned:
            super().notify_style_update()
            return
        Widget.notify_style_update(self)  # the widget's own style caches: cheap, always
        key = self._own_style_key()
        if key == self._style_key:
            return
        self._style_key = key
        self._clear_render_caches()
        self.refresh()

    def render_lines(self, crop: Any) -> Any:
        # Component styles (cursor, header...) are re-read after notify_style_update; when they
        # changed, Textual refreshes the widget and the rendered cells must go.
        if self._tuned:
            components = sorted(self._component_styles.items())
            if components != self._seen_components:
                if self._seen_components is not None:
                    self._clear_render_caches()
                self._seen_components = components
        return super().render_lines(crop)

    # --- cells through text_cell_lines (bound as ``_render_cell`` in ``__init__``) -------------------

    def _tuned_render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                           cursor: bool = False, hover: bool = False) -> Any:
        """DataTable's ``_render_cell`` (Textual 8.2), with ``text_cell_lines`` tried first (see ``__init__``)."""
        is_header_cell = row_index == -1
        is_row_label_cell = column_index == -1
        row_key: Any
        if is_header_cell:
            row_key = self._header_row_key
        else:
            row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cell_cache_key: Any = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
                          self._update_count, self._pseudo_class_state)
        cached = self._cell_render_cache.get(cell_cache_key)
        if cached is not None:
            return cached
        lines = None
        if is_header_cell:
            height = self.header_height
        else:
            row = self.rows[row_key]
            height = 0 if row.auto_height and row.height == 0 else row.height
        if height > 0 and not is_row_label_cell:
            is_fixed_style_cell = not is_header_cell and (row_index < self.fixed_rows
                                                          or column_index < self.fixed_columns)
            _label, row_cells = self._get_row_renderables(row_index)
            cell = row_cells[column_index]
            component_style, post_style = self._get_styles_to_render_cell(
                is_header_cell, is_row_label_cell, is_fixed_style_cell, hover, cursor, self.show_cursor,
                self._show_hover_cursor, self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css",
            )
            pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            lines = self.text_cell_lines(cell, width, height, self.cell_padding, pre_style, post_style,
                                         self.app.console)
        if lines is None:
            return DataTable._render_cell(self, row_index, column_index, base_style, width, cursor, hover)
        self._cell_render_cache[cell_cache_key] = lines
        return lines
