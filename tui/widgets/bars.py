"""Text bars and colours that read at a glance on dark and light terminals."""

from __future__ import annotations

from rich.text import Text

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int, style: str = "cyan") -> Text:
    """A horizontal bar of ``width`` cells filled to ``fraction`` (eighth-cell resolution)."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    body = "█" * full + (BLOCKS[rest] if rest else "")
    return Text(body.ljust(width), style=style)


def delta_text(delta: float, significant: bool) -> Text:
    """A signed difference in points; bold and coloured only when McNemar says it is real."""
    sign = "+" if delta >= 0 else ""
    if significant:
        return Text(f"{sign}{100 * delta:.1f}*", style="bold green" if delta > 0 else "bold red")
    return Text(f"{sign}{100 * delta:.1f}", style="dim")


def shade(count: int, peak: int) -> str:
    """Background style for a confusion cell, by its share of the largest off-diagonal count."""
    if count <= 0 or peak <= 0:
        return ""
    level = count / peak
    if level > 0.66:
        return "bold white on red3"
    if level > 0.33:
        return "black on dark_orange"
    if level > 0.1:
        return "black on yellow3"
    return "on grey30"
