"""The benchmark item as Orienteer stores it, and the checks every benchmark reader shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orienteer.core.directions import is_direction
from orienteer.data.errors import InputError

VIEWSPATIAL_TASKS: tuple[str, ...] = (
    "Camera perspective - Relative Direction",
    "Camera perspective - Object View Orientation",
    "Person perspective - Object View Orientation",
    "Person perspective - Relative Direction",
    "Person perspective - Scene Simulation Relative Direction",
)


@dataclass
class Item:
    """One benchmark question; ``where`` says where it came from, for error messages only."""

    item_id: str
    task: str
    question: str
    option_letters: list[str]
    option_labels: list[str]
    answer_letter: str
    images: list[str]
    source: str | None = None
    reference_object: str | None = None
    bbox: list[float] | None = None
    parent_item_id: str | None = None
    where: str = field(default="", compare=False)
    bbox_frame: int = 0
    """Which of ``images`` the box is drawn on / measured in (multi-frame items); 0 without a box."""

    @property
    def answer_label(self) -> str:
        return self.option_labels[self.option_letters.index(self.answer_letter)]

    @property
    def options(self) -> dict[str, str]:
        return dict(zip(self.option_letters, self.option_labels))


_SOURCE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"scannet", re.I), "scannet"),
    (re.compile(r"val2017|train2017|coco", re.I), "coco"),
)


def infer_source(images: Sequence[str]) -> str | None:
    """The dataset an item's images come from, read off their paths (ScanNet, MS-COCO)."""
    for image in images:
        for pattern, name in _SOURCE_PATTERNS:
            if pattern.search(image):
                return name
    return None


_FRAME_TEXT = re.compile(r"[0-9]+")


def parse_bbox_frame(value: Any, *, text: bool = False) -> int:
    """A ``bbox_frame`` cell, strictly: a non-negative whole number; digits as text only when ``text``
    (CSV/TSV cells are all text; JSON and Parquet have real integers).

    Missing (None, NaN, empty text) reads as 0, the first frame. A bool, a float (even ``2.0``) or
    any other text raises ValueError saying what was expected: a frame index that is not exact is
    a broken file, not something to round.
    """
    from orienteer.data.formats.common import is_missing

    if isinstance(value, str):
        digits = value.strip()
        if text and not digits:
            return 0
        if text and _FRAME_TEXT.fullmatch(digits):
            return int(digits)
    elif value is None or (not isinstance(value, (bool, int)) and is_missing(value)):
        return 0
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    elif type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind in "iu":
        if int(value) >= 0:
            return int(value)
    raise ValueError(f"bbox_frame must be a whole number >= 0 (the index of the frame the box is on), got {value!r}")


def validate_items(
    path: Path,
    items: Sequence[Item],
    *,
    known_tasks: Sequence[str] | None = None,
    require_directions: bool = False,
) -> None:
    """Refuse the whole file at the first item that is not a usable benchmark question."""
    if not items:
        raise InputError(path, "no items found (expected at least one benchmark item)")
    seen: dict[str, str] = {}
    for item in items:
        where = item.where or f"item {item.item_id}"
        if item.item_id in seen:
            raise InputError(path, f"duplicate item id {item.item_id!r} (first at {seen[item.item_id]})", where=where)
        seen[item.item_id] = where
        if not item.task:
            raise InputError(path, "missing task", where=where)
        if known_tasks is not None and item.task not in known_tasks:
            expected = "; ".join(known_tasks)
            raise InputError(path, f"unknown task {item.task!r} (expected one of: {expected})", where=where)
        if not item.question:
            raise InputError(path, "missing question", where=where)
        if len(item.option_letters) < 2:
            raise InputError(path, "expected at least two options", where=where)
        if len(set(item.option_letters)) != len(item.option_letters):
            raise InputError(path, f"duplicate option letters {item.option_letters}", where=where)
        if item.answer_letter not in item.option_letters:
            raise InputError(
                path,
                f"answer letter {item.answer_letter!r} is not among the options {''.join(item.option_letters)}",
                where=where,
            )
        if require_directions:
            for letter, label in zip(item.option_letters, item.option_labels):
                if not is_direction(label):
                    raise InputError(path, f"option {letter} {label!r} is not a direction label", where=where)
        if not item.images or not all(isinstance(p, str) and p for p in item.images):
            raise InputError(path, "expected a non-empty list of image paths", where=where)
        if item.bbox is not None and len(item.bbox) != 4:
            raise InputError(path, f"bbox must have 4 numbers [x0, y0, x1, y1], got {item.bbox}", where=where)
        frame = item.bbox_frame
        if type(frame) is not int or frame < 0:
            raise InputError(path, f"bbox_frame must be a whole number >= 0, got {frame!r}", where=where)
        if item.bbox is None and frame != 0:
            raise InputError(path, f"bbox_frame {frame} given but the item has no bbox (expected a bbox with it)",
                             where=where)
        if frame >= len(item.images):
            n = len(item.images)
            raise InputError(path, f"bbox_frame {frame} but the item has {n} image(s) (expected 0 to {n - 1})", where=where)
