"""An item's frames: finding and loading them, and how many pixels each frame may use.

Scene-simulation items carry 2 to 32 frames; giving each the single-image budget would make one
item thousands of tokens long. ``frame_pixels`` splits a per-item budget across the frames, never
above the per-image cap and never below the processor's minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.images import resolve_image
from orienteer.data.items import Item

PATCH_FACTOR = 28  # patch 14 x spatial merge 2: processed sides are multiples of this
MIN_PIXELS = 28 * 28 * 4  # Qwen2-VL's floor (56 x 56)
DEFAULT_MAX_PIXELS = 640 * 480


class MissingImage(OrienteerError):
    """An item's image file is not where the benchmark says; the eval skips the item and reports it."""

    def __init__(self, item_id: str, path: Path) -> None:
        self.item_id = item_id
        self.path = path
        super().__init__(f"item {item_id}: image {path} does not exist")


@dataclass(frozen=True)
class PixelBudget:
    """Per-image cap and per-item total; ``item_pixels=None`` means 4 x the per-image cap."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    item_pixels: int | None = None
    min_pixels: int = MIN_PIXELS

    def frame_pixels(self, n_frames: int) -> int:
        """Pixels one frame may use when the item has ``n_frames`` frames."""
        total = self.item_pixels if self.item_pixels is not None else 4 * self.max_pixels
        share = total // max(1, n_frames)
        return max(self.min_pixels, min(self.max_pixels, share))

    def size_kwargs(self, n_frames: int) -> dict[str, int]:
        """The ``size`` argument of the Qwen2-VL image processor for one item."""
        return {"shortest_edge": self.min_pixels, "longest_edge": self.frame_pixels(n_frames)}


def image_paths(item: Item, root: Path) -> list[Path]:
    return [resolve_image(root, rel) for rel in item.images]


def first_missing(item: Item, root: Path) -> Path | None:
    """The first of the item's images that is not a file, or ``None`` when all are there."""
    for path in image_paths(item, root):
        if not path.is_file():
            return path
    return None


def load_images(item: Item, root: Path) -> list[Any]:
    """The item's frames as RGB PIL images, in order; ``MissingImage`` names the first absent one."""
    return open_frames(item.item_id, image_paths(item, root))


def open_frames(item_id: str, paths: Sequence[Path]) -> list[Any]:
    """The files ``paths`` (of item ``item_id``) as RGB PIL images; ``MissingImage`` names the first
    absent one, an unreadable one is an ``OrienteerError``."""
    from PIL import Image

    frames = []
    for path in paths:
        if not path.is_file():
            raise MissingImage(item_id, path)
        try:
            with Image.open(path) as img:
                frames.append(img.convert("RGB"))
        except OSError as exc:
            raise OrienteerError(f"item {item_id}: image {path} cannot be read ({exc})") from None
    return frames


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only (no decoding): for planning batches cheaply."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def processed_size(height: int, width: int, max_pixels: int, min_pixels: int = MIN_PIXELS) -> tuple[int, int]:
    """The (height, width) the Qwen2-VL processor resizes an image to (its ``smart_resize``)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    return smart_resize(height, width, factor=PATCH_FACTOR, min_pixels=min_pixels, max_pixels=max_pixels)


def image_tokens(height: int, width: int, max_pixels: int, min_pixels: int = MIN_PIXELS) -> int:
    """How many placeholder tokens an image of this size becomes (one per 28 x 28 block)."""
    h, w = processed_size(height, width, max_pixels, min_pixels)
    return (h // PATCH_FACTOR) * (w // PATCH_FACTOR)
