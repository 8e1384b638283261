"""``FastTable``: Textual's DataTable with the costs removed that dominated this app's key presses.

1. **Screen switches threw every rendered cell away.** Textual re-applies the stylesheet to a
   screen when it comes back (``ScreenResume``), and ``DataTable.notify_style_update`` then clears
   all its render caches, so switching to a screen whose table did not change re-rendered every
   visible cell (100-300 ms for a 40-row table on a 2-core machine). The caches are now cleared
   only when the table's own style, its pseudo classes or its component styles really changed
   (a theme switch, focus); otherwise the rendered lines stay valid.
2. **Each cell went through Rich's generic render pipeline** (``Styled(Padding(Text))`` ->
   ``console.render_lines``), about 0.3 ms a cell. A cell that is a ``rich.text.Text`` whose
   lines all fit the column (every cell of this app: columns are sized to their content) is laid
   out here directly (``fast_cell_lines``), with the same segments and styles Rich produces: the
   text's lines, justified as ``Lines.justify`` does, padded with unstyled spaces to the cell
   width, then the row's style under and the cursor's style over every segment. Anything else
   takes Textual's path.
3. **Column widths measured each cell through ``console.options``** (a new ConsoleOptions per
   cell): a ``Text`` is measured from its lines, as ``Text.__rich_measure__`` does.

1 and 3, and the hook that 2 plugs into, need Textual's internals: they live in
``textual_compat.TunedDataTable``, which falls back to a plain DataTable outside the tested
Textual versions. The cell layout itself is plain Rich and stays here.
"""

from __future__ import annotations

from typing import Any

from rich.containers import Lines
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from orienteer.tui.textual_compat import TunedDataTable

_NULL = Style.null()


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
        if line.spans:
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


class FastTable(TunedDataTable):
    """A DataTable that keeps its rendered cells across screen switches and lays out text cells itself."""

    DEFAULT_CSS = """
    FastTable {
        height: 1fr;
    }
    """

    def text_cell_lines(self, cell: object, width: int, height: int, padding: int, pre_style: Style,
                        post_style: Style, console: Any) -> list[list[Segment]] | None:
        return fast_cell_lines(cell, width, height, padding, pre_style, post_style, console)
