"""Drawing the visual prompt: a red rectangle on a copy of the image, saved losslessly.

Kept apart from detection so the drawing (what the model will see) is tested on its own: the
box lands exactly on the detector's pixel coordinates, the original file is never touched, and
PNG keeps the red pure (a JPEG would smear it). Which pixels a box covers, border included, is
``core.box_geometry``'s, shared with saliency and the app's overlay.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from orienteer.core.box_geometry import DrawnBox, clamp_box, drawn_box, line_width
from orienteer.data.images import to_rgb

__all__ = ["RED", "DrawnBox", "clamp_box", "draw_box", "drawn_box", "line_width", "save_png"]

RED = (255, 0, 0)


def draw_box(image: Image.Image, bbox: Sequence[float], color: tuple[int, int, int] = RED,
             width: int | None = None) -> Image.Image:
    """A copy of ``image`` (RGB as the model loads it, ``data.images.to_rgb``) with a rectangle whose
    outer edge runs along ``bbox`` (x1, y1, x2, y2)."""
    out = to_rgb(image)
    box = drawn_box(bbox, out.size, width)
    corners = (box.x1, box.y1, box.x2, box.y2)
    if box.interior is None:  # a border that fills the box: Pillow would paint its outline past the box's edge
        ImageDraw.Draw(out).rectangle(corners, fill=color)
    else:
        ImageDraw.Draw(out).rectangle(corners, outline=color, width=box.ring)
    return out


def save_png(image: Image.Image, path: Path) -> Path:
    """Save as PNG (lossless), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
