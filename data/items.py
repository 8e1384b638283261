"""The benchmark item as Orienteer stores it, and the checks every benchmark reader shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
