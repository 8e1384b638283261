"""The ViewSpatial-Bench JSON: a list of {question_type, image_path, question, answer, choices}.

There is no id in the file: an item's 0-based index is its identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orienteer.core.answers import parse_choices, split_option_line
from orienteer.data.errors import InputError
from orienteer.data.formats.common import load_json, read_text, require_nonempty
from orienteer.data.items import VIEWSPATIAL_TASKS, Item, infer_source, validate_items

FORMAT = "viewspatial-json"
KEYS = ("question_type", "image_path", "question", "answer", "choices")


def looks_like(document: Any) -> bool:
    return isinstance(document, list) and bool(document) and isinstance(document[0], dict) and all(
        key in document[0] for key in ("question_type", "choices", "answer")
    )


def read_viewspatial_bench(path: Path, document: Any | None = None) -> list[Item]:
    if document is None:
        text = read_text(path)
        require_nonempty(path, text, "a JSON list of ViewSpatial-Bench items")
        document = load_json(path, text)
    if not isinstance(document, list):
        raise InputError(path, f"expected a JSON list of items, got a JSON {type(document).__name__}")
    items = [_item(path, index, raw) for index, raw in enumerate(document)]
    validate_items(path, items, known_tasks=VIEWSPATIAL_TASKS, require_directions=True)
    return items


def _item(path: Path, index: int, raw: Any) -> Item:
    where = f"item {index} (record {index + 1})"  # ViewSpatial's item id is its 0-based index
    if not isinstance(raw, dict):
        raise InputError(path, f"expected an object, got {type(raw).__name__}", where=where)
    missing = [key for key in KEYS if key not in raw]
    if missing:
        raise InputError(path, f"missing key {missing[0]!r} (expected keys {', '.join(KEYS)})", where=where)
    try:
        options = parse_choices(str(raw["choices"]))
        answer_letter, answer_label = split_option_line(str(raw["answer"]))
    except ValueError as exc:
        raise InputError(path, str(exc), where=where) from None
    if options.get(answer_letter) != answer_label:
        raise InputError(
            path, f"answer {raw['answer']!r} does not match choice {answer_letter}: {options.get(answer_letter)!r}", where=where
        )
    images = raw["image_path"]
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list):
        raise InputError(path, "image_path must be a list of paths", where=where)
    return Item(
        item_id=str(index),
        task=str(raw["question_type"]),
        question=str(raw["question"]),
        option_letters=list(options),
        option_labels=list(options.values()),
        answer_letter=answer_letter,
        images=[str(p) for p in images],
        source=infer_source([str(p) for p in images]),
        where=where,
    )
