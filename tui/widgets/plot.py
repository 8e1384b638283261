"""A line plot drawn with Braille dots: the training loss against steps, readable in any terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

# Braille dot bits for (column 0..1, row 0..3) within one character cell.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def braille_plot(xs: Sequence[float], ys: Sequence[float], width: int = 60, height: int = 8,
                 style: str = "cyan", label: str = "loss") -> Text:
    """``ys`` against ``xs`` in ``width`` x ``height`` cells, with the y range on the left and x range below."""
    points = [(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]  # no NaN, no inf
    if not points:
        return Text(f"no {label} values yet", style="dim")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1e-9
    cols, rows = width * 2, height * 4
    grid = [[0] * width for _ in range(height)]
    previous: tuple[int, int] | None = None
    for x, y in points:
        cx = round((x - x0) / (x1 - x0) * (cols - 1))
        cy = round((y1 - y) / (y1 - y0) * (rows - 1))
        for px, py in _line(previous, (cx, cy)):
            grid[py // 4][px // 2] |= _DOTS[py % 4][px % 2]
        previous = (cx, cy)
    gutter = max(len(f"{y1:.3g}"), len(f"{y0:.3g}"))
    text = Text()
    for r, row in enumerate(grid):
        tick = f"{y1:.3g}" if r == 0 else f"{y0:.3g}" if r == height - 1 else ""
        text.append(tick.rjust(gutter) + " ┤", style="dim")
        text.append("".join(chr(0x2800 + bits) for bits in row), style=style)
        text.append("\n")
    axis = f"{x0:g}".ljust(width // 2) + f"{x1:g}".rjust(width - width // 2)
    text.append(" " * (gutter + 2) + axis, style="dim")
    text.append(f"\n{label} against step; last {points[-1][1]:.4g} at step {points[-1][0]:g}", style="dim")
    return text


def _line(a: tuple[int, int] | None, b: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots from ``a`` to ``b`` (Bresenham), so the curve is connected."""
    if a is None:
        return [b]
    (xa, ya), (xb, yb) = a, b
    dx, dy = abs(xb - xa), -abs(yb - ya)
    sx, sy = (1 if xa < xb else -1), (1 if ya < yb else -1)
    err = dx + dy
    out = []
    while True:
        out.append((xa, ya))
        if (xa, ya) == (xb, yb):
            return out
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            xa += sx
        if e2 <= dx:
            err += dx
            ya += sy
