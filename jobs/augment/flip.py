"""Horizontal flip of an item and of its images: the mirrored question with the mirrored answer.

A left-right flip changes the scene's left and right and nothing else, so the item stays a
correct question if every label is x-negated (``directions.mirror_label``), the question text
and reference object swap left/right (``mirror.mirror_text``), and the box is mirrored
(``mirror.mirror_bbox``, in the pixels of the frame it is on, ``bbox_frame``, which stays). Flipping
twice gives the item back: ``flip_item(flip_item(x))`` has x's id, question, options, answer, box and
box frame, and the pixels of a twice-flipped image are the original's as the model loads them
(``data.images.open_rgb``: raw pixels, no EXIF rotation, RGB; flipped images are written as RGB PNG,
lossless, with no EXIF, so no viewer rotates them; a JPEG source is decoded once, so the round trip
is exact for its pixels).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from orienteer.core.directions import mirror_label
from orienteer.core.mirror import mirror_bbox, mirror_text
from orienteer.data.images import open_rgb, path_problem, resolve_image
from orienteer.data.items import Item
from orienteer.data.job_outputs import atomic_file

FLIP_SUFFIX = "#flip"


def flip_item(item: Item, image_width: float | None = None, images: Sequence[str] | None = None) -> Item:
    """The item for the left-right mirrored images (``images``: their paths; default: unchanged).

    ``image_width`` (of the image the box is on, ``item.images[item.bbox_frame]``: frames may differ
    in width) is needed only when the item has a bbox. The flip of
    ``x`` is ``x#flip`` with parent ``x``; the flip of ``x#flip`` (whose parent is ``x``) is ``x``
    again. That item's own parent cannot be known from the flipped one, so it comes back as None:
    the round trip is exact for items without a parent (every benchmark original).
    """
    labels = [mirror_label(label) for label in item.option_labels]
    # mirror_label is a bijection, so distinct labels stay distinct; a failure here is a bug.
    assert len(set(labels)) == len(set(item.option_labels)), f"mirroring merged options of {item.item_id}: {labels}"
    if item.item_id.endswith(FLIP_SUFFIX) and item.parent_item_id == item.item_id[: -len(FLIP_SUFFIX)]:
        item_id, parent = item.parent_item_id, None
    else:
        item_id, parent = item.item_id + FLIP_SUFFIX, item.item_id
    bbox = None
    if item.bbox is not None:
        if image_width is None:
            raise ValueError(
                f"item {item.item_id} has a bbox: the width of its frame {item.bbox_frame} is needed to mirror it")
        bbox = mirror_bbox(item.bbox, image_width)
    return dataclasses.replace(
        item,
        item_id=item_id,
        question=mirror_text(item.question),
        option_labels=labels,
        images=list(images) if images is not None else list(item.images),
        reference_object=mirror_text(item.reference_object) if item.reference_object else item.reference_object,
        bbox=bbox,
        parent_item_id=parent,
    )


def flip_image_file(src: Path, dst: Path) -> int:
    """Write ``src`` mirrored left-right to ``dst`` as an RGB PNG (atomically); returns the image width.

    The flip is of the pixels the model sees (``open_rgb``: stored pixels, EXIF orientation not
    applied, as upstream's evaluation loads them), and the PNG carries no EXIF: an orientation tag
    copied from the source would make viewers turn a picture the model sees unturned.
    """
    from PIL import Image

    flipped = open_rgb(src).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    flipped.info.clear()  # no exif (nor anything else of the source's) rides along into the PNG
    with atomic_file(dst, "wb", fsync=False) as fh:
        flipped.save(fh, format="PNG", compress_level=1)  # ~1.5x faster than the default 6, ~8% larger
    return flipped.width


def image_width(path: Path) -> int:
    """Width of the stored pixels (EXIF orientation ignored, as the model loads them), from the header only."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size[0]


def flipped_name(relative: str) -> str:
    """Where the flip of an image goes, relative to the flipped images' folder: same path, ``.png``.

    Absolute paths lose their root and ``..`` becomes ``__``, so every name stays inside the folder.
    """
    parts = [("__" if p == ".." else p) for p in PurePosixPath(relative.replace("\\", "/")).parts if p not in ("/", ".")]
    if not parts:
        raise ValueError(f"empty image path {relative!r}")
    path = PurePosixPath(*parts)
    return str(path.with_suffix(".png")) if path.suffix else str(path) + ".png"


class MissingImage(Exception):
    """An item's image file is not where its benchmark says; ``path`` is where it was expected and
    ``reason`` why it is not there (``not found``, ``symlink loop``, ``a folder``...)."""

    def __init__(self, item_id: str, path: Path, reason: str = "not found") -> None:
        self.item_id = item_id
        self.path = path
        self.reason = reason
        super().__init__(f"item {item_id}: image {reason} at {path}")


class UnreadableImage(Exception):
    """An item's image file is there but is not an image Pillow can read (a text file, a truncated JPEG)."""

    def __init__(self, item_id: str, path: Path, reason: str) -> None:
        self.item_id = item_id
        self.path = path
        self.reason = reason
        super().__init__(f"item {item_id}: cannot read image {path}: {reason}")


class ImageFlipper:
    """Flips images of one benchmark into a folder, once each, resuming where an earlier run stopped.

    Images go to ``work_dir`` (e.g. a job's resume folder, so a killed job re-run picks them up;
    files are written atomically, so any file there is complete) and are moved to their final
    folder with ``publish``. Items sharing an image (ScanNet frames) share its flip.
    """

    def __init__(self, image_root: Path, work_dir: Path) -> None:
        self.image_root = Path(image_root)
        self.work_dir = Path(work_dir)
        self._names: dict[str, str] = {}  # source path -> name under work_dir
        self._sources: dict[str, str] = {}  # name -> source path
        self._widths: dict[str, int] = {}
        self.flipped = 0
        self.reused = 0

    def source(self, relative: str) -> Path:
        return resolve_image(self.image_root, relative)

    def missing(self, item: Item) -> Path | None:
        """The first image of ``item`` that is not a readable file, or None."""
        absent = self.problem(item)
        return absent[0] if absent is not None else None

    def problem(self, item: Item) -> tuple[Path, str] | None:
        """The first image of ``item`` that is not a readable file and why (``data.images.path_problem``)."""
        for relative in item.images:
            path = self.source(relative)
            reason = path_problem(path)
            if reason is not None:
                return path, reason
        return None

    def _name(self, relative: str, src: Path) -> str:
        key = str(src)
        if key in self._names:
            return self._names[key]
        name = flipped_name(relative)
        if self._sources.get(name, key) != key:  # a.jpg and a.png both exist: keep them apart
            name = str(PurePosixPath(name).with_suffix("")) + PurePosixPath(relative).suffix + ".png"
        self._names[key] = name
        self._sources[name] = key
        return name

    def flip_image(self, relative: str) -> tuple[str, int]:
        """(name under ``work_dir``, width) of the flipped image; flips it unless already there."""
        src = self.source(relative)
        name = self._name(relative, src)
        if name not in self._widths:
            dst = self.work_dir / name
            if dst.is_file():
                self._widths[name] = image_width(dst)
                self.reused += 1
            else:
                self._widths[name] = flip_image_file(src, dst)
                self.flipped += 1
        return name, self._widths[name]

    def flip(self, item: Item) -> Item:
        """The flipped item, its images named relative to the flipped images' folder.

        Raises MissingImage (with the expected path and why) when one of its images is absent, and
        UnreadableImage when one is there but is not an image: either skips this item, never the job.
        """
        absent = self.problem(item)
        if absent is not None:
            raise MissingImage(item.item_id, *absent)
        flipped = []
        for relative in item.images:
            try:
                flipped.append(self.flip_image(relative))
            except (OSError, ValueError, SyntaxError, ImportError) as exc:
                # PIL's UnidentifiedImageError is an OSError; where ultralytics was imported, its Image.open
                # patch turns one into an ImportError (it tries to load pi-heif for the file).
                raise UnreadableImage(item.item_id, self.source(relative), _image_error(exc)) from None
        width = flipped[item.bbox_frame][1] if item.bbox is not None else None
        return flip_item(item, width, [name for name, _ in flipped])

    def publish(self, target: Path) -> None:
        """Move the flipped images into ``target`` (a rename when ``target`` does not exist yet)."""
        if not self.work_dir.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            return
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.work_dir, target)
            return
        for src in sorted(self.work_dir.rglob("*")):
            if src.is_file() and not src.name.endswith(".tmp"):
                dst = target / src.relative_to(self.work_dir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _image_error(exc: BaseException) -> str:
    """Pillow's complaint in a few words, without the path it repeats (the caller names it)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, (UnidentifiedImageError, ImportError)):
        return "not an image Pillow can read"
    return " ".join(str(exc).split())[:200] or type(exc).__name__
