"""An item's frames: finding and loading them, and the size each frame reaches the model at.

Two resize modes (``--resize``):

- ``upstream`` (``UpstreamResize``): exactly ViewSpatial-Bench ``evaluate.py``'s Qwen path. Each
  frame goes through ``qwen_vl_utils.fetch_image`` with ``resized_height=280, resized_width=420``
  (whatever its shape or the number of frames), then through the processor with
  ``min_pixels=256*28*28, max_pixels=1280*28*28``, which scales it up to 392x560: 280 tokens a frame.
- ``budget`` (``PixelBudget``): Orienteer's aspect-preserving budget. Scene-simulation items carry 2
  to 32 frames; giving each the single-image budget would make one item thousands of tokens long,
  so ``frame_pixels`` splits a per-item budget across the frames, never above the per-image cap
  and never below the processor's minimum.

Both answer the same questions (``prepare`` the decoded frames, the processor's ``size_kwargs``,
``frame_size`` from a header), so batching, saliency and ``orienteer prompt`` take either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

from orienteer.data.errors import OrienteerError
from orienteer.data.images import open_rgb, resolve_image
from orienteer.data.items import Item

# The resize names live in jobs.settings (the kinds' options offer them without loading this package).
from orienteer.jobs.settings import BUDGET as BUDGET
from orienteer.jobs.settings import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS
from orienteer.jobs.settings import RESIZE_MODES as RESIZE_MODES
from orienteer.jobs.settings import UPSTREAM as UPSTREAM
from orienteer.jobs.settings import default_resize as default_resize

PATCH_FACTOR = 28  # patch 14 x spatial merge 2: processed sides are multiples of this
MIN_PIXELS = 28 * 28 * 4  # Qwen2-VL's floor (56 x 56)
UPSTREAM_HEIGHT, UPSTREAM_WIDTH = 280, 420  # evaluate.py's resized_height / resized_width
UPSTREAM_MIN_PIXELS = 256 * 28 * 28  # evaluate.py's processor min_pixels (200,704)
UPSTREAM_MAX_PIXELS = 1280 * 28 * 28  # and max_pixels (1,003,520)


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

    mode: ClassVar[str] = BUDGET

    def prepare(self, frames: Sequence[Any]) -> list[Any]:
        """The frames as the processor gets them: unchanged (the processor does the resize)."""
        return list(frames)

    def frame_size(self, height: int, width: int, n_frames: int) -> tuple[int, int]:
        """(height, width) of one frame after the processor, from its original size."""
        return processed_size(height, width, self.frame_pixels(n_frames), self.min_pixels)

    def config(self) -> dict[str, Any]:
        """What a run records of this sizing (``runs.config``)."""
        out: dict[str, Any] = {"resize": BUDGET, "max_pixels": self.max_pixels}
        if self.item_pixels is not None:
            out["item_pixels"] = self.item_pixels
        return out


@dataclass(frozen=True)
class UpstreamResize:
    """ViewSpatial ``evaluate.py``'s frame sizing: ``fetch_image`` to 280x420, then the processor
    between ``min_pixels`` and ``max_pixels`` (392x560 for every frame)."""

    resized_height: int = UPSTREAM_HEIGHT
    resized_width: int = UPSTREAM_WIDTH
    min_pixels: int = UPSTREAM_MIN_PIXELS
    max_pixels: int = UPSTREAM_MAX_PIXELS

    mode: ClassVar[str] = UPSTREAM

    def prepare(self, frames: Sequence[Any]) -> list[Any]:
        """Each frame through ``qwen_vl_utils.fetch_image`` (its ``to_rgb`` and PIL resize), as upstream."""
        from qwen_vl_utils import fetch_image

        return [fetch_image({"image": frame, "resized_height": self.resized_height,
                             "resized_width": self.resized_width}) for frame in frames]

    def size_kwargs(self, n_frames: int) -> dict[str, int]:
        """The processor's ``size``: upstream's ``min_pixels``/``max_pixels``, the same for every frame."""
        return {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}

    def frame_size(self, height: int, width: int, n_frames: int) -> tuple[int, int]:
        """(height, width) after fetch_image and the processor; the same for any original size."""
        from qwen_vl_utils import smart_resize

        fetched = smart_resize(self.resized_height, self.resized_width, factor=PATCH_FACTOR)
        return processed_size(fetched[0], fetched[1], self.max_pixels, self.min_pixels)

    def config(self) -> dict[str, Any]:
        """What a run records of this sizing (``runs.config``)."""
        return {"resize": UPSTREAM, "resized_height": self.resized_height, "resized_width": self.resized_width,
                "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}


FrameSizing = Union[PixelBudget, UpstreamResize]


def frame_sizing(resize: str, max_pixels: int = DEFAULT_MAX_PIXELS, item_pixels: int | None = None) -> FrameSizing:
    """The sizing named by ``resize``; ``max_pixels``/``item_pixels`` apply to ``budget`` only."""
    if resize == UPSTREAM:
        return UpstreamResize()
    if resize == BUDGET:
        return PixelBudget(max_pixels, item_pixels)
    raise OrienteerError(f"--resize expects one of {', '.join(RESIZE_MODES)}, got {resize!r}")


def processed_frame(sizing: FrameSizing, processor: Any, frame: Any, n_frames: int = 1) -> tuple[int, int, int]:
    """(height, width, tokens) of one decoded frame as the processor really makes it under ``sizing``."""
    image_proc = processor.image_processor
    prepared = sizing.prepare([frame])
    grid = image_proc(images=prepared, size=sizing.size_kwargs(n_frames), return_tensors="pt")["image_grid_thw"]
    t, gh, gw = (int(v) for v in grid[0].tolist())
    patch = int(getattr(image_proc, "patch_size", 14))
    return gh * patch, gw * patch, t * gh * gw // int(image_proc.merge_size) ** 2


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
    """The files ``paths`` (of item ``item_id``) as RGB PIL images (``data.images.open_rgb``: raw pixels,
    as upstream loads them); ``MissingImage`` names the first absent one, an unreadable one is an
    ``OrienteerError``."""
    frames = []
    for path in paths:
        if not path.is_file():
            raise MissingImage(item_id, path)
        try:
            frames.append(open_rgb(path))
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
