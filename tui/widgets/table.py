"""``FastTable``: Textual's DataTable with two costs removed that dominate this app's key presses.

1. **Screen switches threw every rendered cell away.** Textual re-applies the stylesheet to a
   screen when it comes back (``ScreenResume``), and ``DataTable.notify_style_update`` then clears
   all its render caches, so switching to a screen whose table did not change re-rendered every
   visible cell (100-300 ms for a 40-row table on a 2-core machine). Here the caches are cleared
   only when the table's own style, its pseudo classes or its component styles really changed
   (a theme switch, focus); otherwise the rendered lines stay valid.
2. **Each cell went through Rich's generic render pipeline** (``Styled(Padding(Text))`` ->
   ``console.render_lines``), about 0.3 ms a cell. A cell that is a ``rich.text.Text`` whose
   lines all fit the column (every cell of this app: columns are sized to their content) is laid
   out here directly, with the same segments and styles Rich produces: the text's lines, justified
   as ``Lines.justify`` does, padded with unstyled spaces to the cell width, then the row's style
   under and the cursor's style over every segment. Anything else takes Textual's path.
3. **Column widths measured each cell through ``console.options``** (a new ConsoleOptions per
   cell): a ``Text`` is measured here from its lines, as ``Text.__rich_measure__`` does.
"""

from __future__ import annotations

from typing import Any

from rich.containers import Lines
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from rich.cells import cell_len
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets import _data_table
from textual.widgets._data_table import CellCacheKey  # type: ignore[attr-defined]

_NULL = Style.null()
_textual_measure = _data_table.measure


def _measure(console: Any, renderable: Any, default: int, *, container_width: int | None = None) -> int:
    """Textual's ``measure`` with a shortcut for ``Text``: its widest line (what Rich measures as maximum)."""
    if type(renderable) is Text:
        lines = renderable.plain.splitlines()
        return max(map(cell_len, lines)) if lines else 0
    return _textual_measure(console, renderable, default, container_width=container_width)


# The DataTable measures every new cell with the module's ``measure``; only this app draws tables.
_data_table.measure = _measure


def fast_cell_lines(cell: object, width: int, height: int, padding: int, pre_style: Style, post_style: Style,
                    console: Any) -> list[list[Segment]] | None:
    """The lines of a ``Text`` cell exactly as Textual's DataTable renders them, or None when it does not fit.

    ``width`` includes ``padding`` on both sides; ``height`` is the row's height (>= 1).
    """
    if type(cell) is not Text or height < 1 or "\t" in cell.plain:
        return None
    inner = width - 2 * padding
    if inner < 0:
        return None
    lines = cell.split("\n", allow_blank=True)
    for line in lines:
        if line.cell_len > inner:
            return None  # needs wrapping, folding or an ellipsis: Rich's path
    justify = cell.justify or "default"
    if justify not in ("default", "left", "right", "center"):
        return None
    if justify != "default":
        Lines(lines).justify(console, inner, justify=justify, overflow=cell.overflow or "fold")
    get_style = console.get_style
    pad = Segment(" " * padding, _NULL) if padding else None
    out: list[list[Segment]] = []
    for line in list(lines)[:height]:
        if line._spans:
            body = list(line.render(console))
        else:
            # Rich styles a span-less line with its base style (Text.join turns it into a span)
            body = [Segment(line.plain, get_style(line.style, default=_NULL) if line.style else None)]
        body = [seg for seg in body if seg.text]
        fill = inner - line.cell_len
        segments = [pad] if pad else []
        segments += body
        if fill > 0:
            segments.append(Segment(" " * fill, _NULL))
        if pad:
            segments.append(pad)
        out.append(segments)
    while len(out) < height:
        out.append(([pad] if pad else []) + [Segment(" " * inner, _NULL)] + ([pad] if pad else []))
    return [list(Segment.apply_style(line, style=pre_style, post_style=post_style)) for line in out]


class FastTable(DataTable):  # type: ignore[type-arg]
    """A DataTable that keeps its rendered cells across screen switches and lays out text cells itself."""

    DEFAULT_CSS = """
    FastTable {
        height: 1fr;
    }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style_key: object = None
        self._seen_components: list[tuple[str, Any]] | None = None

    # --- 1. keep the caches when the style did not change ------------------------------------------

    def _own_style_key(self) -> object:
        styles = self.styles
        return (dict(styles._base_styles._rules), dict(styles._inline_styles._rules),  # type: ignore[attr-defined]
                self.rich_style, frozenset(self.get_pseudo_classes()))

    def _clear_render_caches(self) -> None:
        self._row_render_cache.clear()
        self._cell_render_cache.clear()
        self._row_renderable_cache.clear()
        self._line_cache.clear()
        self._styles_cache.clear()
        self._get_styles_to_render_cell.cache_clear()

    def notify_style_update(self) -> None:
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
        components = sorted(self._component_styles.items())
        if components != self._seen_components:
            if self._seen_components is not None:
                self._clear_render_caches()
            self._seen_components = components
        return super().render_lines(crop)

    # --- 2. text cells without Rich's generic pipeline ---------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        is_header_cell = row_index == -1
        is_row_label_cell = column_index == -1
        if is_header_cell:
            row_key = self._header_row_key
        else:
            row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cell_cache_key: CellCacheKey = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
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
            lines = fast_cell_lines(cell, width, height, self.cell_padding, pre_style, post_style, self.app.console)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_render_cache[cell_cache_key] = lines
        return lines
