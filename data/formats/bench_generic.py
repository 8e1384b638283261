"""Generic benchmarks: JSONL, JSON lists, CSV/TSV and Parquet with mappable columns.

Columns are found by common names (``id``/``item_id``, ``task``/``question_type``, ``options``
or one column per letter, ``answer`` as a letter, "A. label" or a label, ``images``...);
``--map field=column`` overrides any of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orienteer.core.answers import parse_choices, split_option_line
from orienteer.data.errors import InputError
from orienteer.data.formats.common import as_text, is_missing, pick_column
from orienteer.data.formats.tables import Row, read_rows
from orienteer.data.items import Item, infer_source, parse_bbox_frame, validate_items

FORMAT = "items"

ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("item_id", "id", "question_id", "index", "idx", "uid"),
    "task": ("task", "question_type", "category", "type", "subtask"),
    "question": ("question", "prompt", "query"),
    "options": ("options", "choices"),
    "answer": ("answer", "answer_letter", "gt", "gold", "label", "target"),
    "images": ("images", "image_paths", "image_path", "image", "img"),
    "source": ("source", "dataset"),
    "reference_object": ("reference_object", "reference", "ref_object"),
    "bbox": ("bbox", "box", "reference_bbox"),
    "bbox_frame": ("bbox_frame", "box_frame"),
    "parent_item_id": ("parent_item_id", "parent_id"),
}
REQUIRED = ("task", "question", "answer", "images")
LETTERS = "ABCDEFGH"


def read_generic_bench(path: Path, mapping: Mapping[str, str] | None = None) -> list[Item]:
    columns, rows = read_rows(path, "benchmark items, one per row")
    chosen = resolve_columns(path, columns, mapping or {})
    letter_columns = [c for c in columns if c.strip() in LETTERS] if chosen["options"] is None else []
    if chosen["options"] is None and len(letter_columns) < 2:
        raise InputError(
            path,
            f"no options column (expected one of {', '.join(ALIASES['options'])}, or columns A, B, C, ...); "
            f"columns are: {', '.join(columns)}",
        )
    items = [_item(path, index, where, row, chosen, letter_columns) for index, (where, row) in enumerate(rows)]
    validate_items(path, items)
    return items


def resolve_columns(path: Path, columns: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str | None]:
    unknown = set(mapping) - set(ALIASES)
    if unknown:
        raise InputError(path, f"--map names unknown fields {sorted(unknown)} (expected {', '.join(ALIASES)})")
    chosen: dict[str, str | None] = {}
    for name, aliases in ALIASES.items():
        chosen[name] = pick_column(columns, aliases, mapping.get(name))
        if mapping.get(name) and chosen[name] is None:
            raise InputError(path, f"--map {name}={mapping[name]}: no such column (columns are: {', '.join(columns)})")
    missing = [name for name in REQUIRED if chosen[name] is None]
    if missing:
        expected = " or ".join(ALIASES[missing[0]])
        raise InputError(
            path, f"no {missing[0]} column (expected {expected}, or --map {missing[0]}=COLUMN); columns are: {', '.join(columns)}"
        )
    return chosen


def _item(path: Path, index: int, where: str, row: Row, chosen: dict[str, str | None], letter_columns: list[str]) -> Item:
    def cell(field: str) -> Any:
        column = chosen[field]
        return None if column is None else row.get(column)

    try:
        options = _options(cell("options")) if chosen["options"] else _letter_options(row, letter_columns)
        answer_letter = _answer_letter(cell("answer"), options)
        images = _string_list(cell("images"))
        bbox = _bbox(cell("bbox"))
        bbox_frame = parse_bbox_frame(cell("bbox_frame"), text=path.suffix.lower() in (".csv", ".tsv"))
    except ValueError as exc:
        raise InputError(path, str(exc), where=where) from None
    item_id = as_text(cell("item_id"))
    return Item(
        item_id=item_id if item_id is not None else str(index),
        task=as_text(cell("task")) or "",
        question=as_text(cell("question")) or "",
        option_letters=list(options),
        option_labels=list(options.values()),
        answer_letter=answer_letter,
        images=images,
        source=as_text(cell("source")) or infer_source(images),
        reference_object=as_text(cell("reference_object")),
        bbox=bbox,
        parent_item_id=as_text(cell("parent_item_id")),
        where=where,
        bbox_frame=bbox_frame,
    )


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON in cell: {exc.msg}") from None
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _options(value: Any) -> dict[str, str]:
    value = _maybe_json(value)
    if isinstance(value, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    if isinstance(value, str):
        return parse_choices(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            try:
                return dict(split_option_line(v) for v in value)
            except ValueError:
                return {LETTERS[i]: v.strip() for i, v in enumerate(value)}
    raise ValueError(f"options must be an object {{letter: label}}, a list of labels or 'A. label' lines, got {value!r}")


def _letter_options(row: Row, letter_columns: list[str]) -> dict[str, str]:
    return {c.strip(): str(row[c]).strip() for c in letter_columns if not is_missing(row[c]) and str(row[c]).strip()}


def _answer_letter(value: Any, options: Mapping[str, str]) -> str:
    text = as_text(value)
    if text is None or not text.strip():
        raise ValueError("missing answer")
    text = text.strip()
    if text in options:
        return text
    try:
        letter, label = split_option_line(text)
    except ValueError:
        letter, label = "", ""
    if letter in options and options[letter].casefold() == label.casefold():
        return letter
    matches = [k for k, v in options.items() if v.casefold() == text.casefold()]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"answer {text!r} is neither an option letter ({', '.join(options)}) nor an option label")


def _string_list(value: Any) -> list[str]:
    value = _maybe_json(value)
    if is_missing(value) if not isinstance(value, list) else False:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(";") if p.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ValueError(f"images must be a list of paths, got {value!r}")


def _bbox(value: Any) -> list[float] | None:
    value = _maybe_json(value)
    if not isinstance(value, list) and is_missing(value):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        value = value.split(",")
    try:
        box = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be 4 numbers [x0, y0, x1, y1], got {value!r}") from None
    return box
