"""Which pixels a drawn reference box covers: the border box-prompt paints and the interior inside it.

Plain arithmetic, shared by the drawing (``jobs.model.boxes``), the saliency numbers (which leave
the border's ring out of the box) and the app's overlay of that ring, so all three agree to the
pixel. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def line_width(size: tuple[int, int]) -> int:
    """A border that stays visible after the model's resize: about 0.6% of the shorter side, 2 px at least."""
    return max(2, round(min(size) / 160))


def clamp_box(bbox: Sequence[float], size: tuple[int, int]) -> list[float]:
    """The box kept inside the image (detectors may overshoot by a pixel or two)."""
    width, height = size
    x1, y1, x2, y2 = (float(v) for v in bbox)
    x1, x2 = sorted((min(max(x1, 0.0), width - 1.0), min(max(x2, 0.0), width - 1.0)))
    y1, y2 = sorted((min(max(y1, 0.0), height - 1.0), min(max(y2, 0.0), height - 1.0)))
    return [x1, y1, x2, y2]


@dataclass(frozen=True)
class DrawnBox:
    """The pixels ``draw_box`` paints for a box: columns ``x1..x2`` and rows ``y1..y2`` (inclusive), a
    border ``ring`` pixels wide drawn inward from that edge. Saliency measures the same region, so
    the red lines are never counted as the object, whether or not they were drawn."""

    x1: int
    y1: int
    x2: int
    y2: int
    ring: int

    @property
    def interior(self) -> tuple[int, int, int, int] | None:
        """``(x1, y1, x2, y2)`` inclusive of what the border leaves inside; None when it fills the box."""
        x1, y1, x2, y2 = self.x1 + self.ring, self.y1 + self.ring, self.x2 - self.ring, self.y2 - self.ring
        return (x1, y1, x2, y2) if x1 <= x2 and y1 <= y2 else None


def drawn_box(bbox: Sequence[float], size: tuple[int, int], width: int | None = None) -> DrawnBox:
    """Where ``draw_box`` draws ``bbox`` on an image of ``size``: clamped, rounded, ``line_width`` thick."""
    x1, y1, x2, y2 = (round(v) for v in clamp_box(bbox, size))
    return DrawnBox(x1, y1, x2, y2, width if width is not None else line_width(size))
