"""Training datasets: canonical example files in the workspace, a catalog row each, import and export.

A dataset is a JSONL file of *examples*, one per line, in the generic item format plus what
training needs::

    {"item_id", "task", "question", "options": {"A": "left", ...}, "answer": "A",
     "images": [ABSOLUTE paths], "source", "reference_object", "bbox", "bbox_frame", "parent_item_id",
     "target": "A. left", "origin": "original" | "hard" | "flipped" | "replay" | "cot" ...}

``target`` is the assistant reply to learn (by default ``"{letter}. {label}"``). An example may
be *free-form* (not multiple choice): ``options`` empty, ``answer`` null, ``question`` holding
the whole prompt and ``target`` the reply; imports of conversations with any other prompt shape
give such examples. A *multi-turn* example also carries ``turns`` (every user and assistant turn, as
imported: ``formats/sharegpt.py``); imports count them in the composition (``multi_turn``).
Extra keys (``system``, a CoT ``rationale``...) are kept. The prompt template an
example trains on is ``prompt`` (a ``core.prompts`` style name), else its own ``prompt_suffix``
(question, newline, choices, suffix: older files and CoT), else ``official`` (``formats/sharegpt.example_prompt``).
Item ids may repeat: an over-sampled item is the same item several times.

Files live at ``<workspace>/datasets/<name>.jsonl`` (or ``<name>~HEX.jsonl`` after a replace: a new
version never overwrites the file the catalog names) with a row in the ``datasets`` table.
Imports and exports also speak the ShareGPT (LLaMA-Factory) and LLaVA conversation styles
(``formats/sharegpt.py``); an export of those writes LLaMA-Factory's ``dataset_info.json`` entry, and
``--bundle`` a folder that travels (``data/bundle.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from orienteer.core.answers import split_option_line
from orienteer.data import names
from orienteer.data.errors import FileAccessError, InputError, OrienteerError, WorkspaceError
from orienteer.data.faults import pause_point
from orienteer.data.fileio import os_reason, output_target
from orienteer.data.formats import sharegpt
from orienteer.data.formats.common import iter_jsonl, load_json, read_text, require_nonempty
from orienteer.data.items import Item, parse_bbox_frame
from orienteer.data.job_outputs import atomic_file
from orienteer.data.single import single_value
from orienteer.data.workspace import Workspace

ITEMS = "items"
FORMATS = (ITEMS, sharegpt.SHAREGPT, sharegpt.LLAVA)
_EXPECTED = "one JSON object per line: item format (question, options, answer, images, target) or a conversation"


@dataclass(frozen=True)
class DatasetInfo:
    """One catalog row; ``path`` is the canonical JSONL in the workspace."""

    dataset_id: int
    name: str
    path: Path
    n_examples: int
    composition: dict[str, Any]
    source_format: str | None
    notes: str | None
    created_by_job: str | None
    created_at: datetime | None
    images_missing: int | None = None
    """Set by ``import_dataset`` only: example images not found on this machine (the import still goes ahead)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id, "name": self.name, "path": str(self.path), "n_examples": self.n_examples,
            "composition": self.composition, "source_format": self.source_format, "notes": self.notes,
            "created_by_job": self.created_by_job,
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds") if self.created_at else None,
        }


# ---------------------------------------------------------------- examples


def default_target(letter: str, label: str) -> str:
    """The reply a multiple-choice example teaches: ``"A. back-left"``."""
    return f"{letter}. {label}"


def item_record(item: Item) -> dict[str, Any]:
    """An item as one line of the generic item format (what a ``BenchmarkOutput`` file holds)."""
    return {
        "item_id": item.item_id, "task": item.task, "question": item.question, "options": item.options,
        "answer": item.answer_letter, "images": list(item.images), "source": item.source,
        "reference_object": item.reference_object, "bbox": item.bbox, "bbox_frame": item.bbox_frame,
        "parent_item_id": item.parent_item_id,
    }


def example_from_item(item: Item, images: Sequence[str | Path], origin: str, target: str | None = None,
                      bench: str | None = None) -> dict[str, Any]:
    """A training example for ``item`` with the given absolute image paths; ``bench`` is the benchmark
    the item came from (recorded so a train job can tell test items from pool items by more than id)."""
    record = item_record(item)
    record["images"] = [str(p) for p in images]
    record["target"] = target if target is not None else default_target(item.answer_letter, item.answer_label)
    record["origin"] = origin
    if bench is not None:
        record["bench"] = bench
    return record


def normalize_example(
    raw: Mapping[str, Any], path: Path, where: str, index: int, image_root: Path | None = None
) -> dict[str, Any]:
    """Check one raw example and return it in canonical form (key order, types, absolute images).

    Relative image paths are resolved against ``image_root`` (left relative when it is None).
    Raises InputError naming ``path`` and ``where``.
    """
    def fail(message: str) -> InputError:
        return InputError(path, message, where=where)

    item_id = raw.get("item_id", raw.get("id"))
    if item_id is None or (isinstance(item_id, str) and not item_id.strip()):
        item_id = str(index)
    if not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
        raise fail(f"item_id must be text, got {item_id!r}")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise fail("expected a non-empty 'question' text")
    try:
        options = _options(raw.get("options"))
        answer = _answer(raw.get("answer"), options)
    except ValueError as exc:
        raise fail(str(exc)) from None
    images = raw.get("images", raw.get("image"))
    if images is None:
        images = []
    elif isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or not all(isinstance(p, str) and p for p in images):
        raise fail(f"expected 'images' to be a list of paths, got {images!r}")
    if image_root is not None:
        images = [p if os.path.isabs(p) else str((image_root / p).resolve()) for p in images]
    target = raw.get("target")
    if target is None and answer is not None:
        target = default_target(answer, options[answer])
    if not isinstance(target, str) or not target.strip():
        raise fail("expected a non-empty 'target' (the reply to learn) or an 'answer' letter to derive it from")
    prompt_error = _prompt_keys_error(raw)
    if prompt_error:
        raise fail(prompt_error)
    if raw.get("turns") is not None:
        turns_error = sharegpt.check_turns(raw["turns"], len(images))
        if turns_error:
            raise fail(turns_error)
    origin = raw.get("origin") or "original"
    if not isinstance(origin, str):
        raise fail(f"origin must be text, got {origin!r}")
    bbox = raw.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise fail(f"bbox must be 4 numbers [x1, y1, x2, y2] or null, got {bbox!r}")
        bbox = [float(v) for v in bbox]
    try:
        bbox_frame = parse_bbox_frame(raw.get("bbox_frame"))
    except ValueError as exc:
        raise fail(str(exc)) from None
    if bbox is None and bbox_frame:
        raise fail(f"bbox_frame {bbox_frame} given but the example has no bbox (expected a bbox with it)")
    if bbox is not None and bbox_frame >= max(1, len(images)):
        raise fail(f"bbox_frame {bbox_frame} but the example has {len(images)} image(s) "
                   f"(expected 0 to {max(0, len(images) - 1)})")
    text_fields: dict[str, str | None] = {}
    for key in ("task", "source", "reference_object", "parent_item_id"):
        value = raw.get(key)
        if value is not None and not isinstance(value, (str, int)):
            raise fail(f"{key} must be text or null, got {value!r}")
        text_fields[key] = None if value is None else str(value)
    if raw.get("bench") is not None and not isinstance(raw.get("bench"), str):
        raise fail(f"bench (the benchmark the example came from) must be text or null, got {raw.get('bench')!r}")
    example: dict[str, Any] = {
        "item_id": str(item_id), "task": text_fields["task"], "question": question, "options": options,
        "answer": answer, "images": images, "source": text_fields["source"],
        "reference_object": text_fields["reference_object"], "bbox": bbox, "bbox_frame": bbox_frame,
        "parent_item_id": text_fields["parent_item_id"], "target": target, "origin": origin,
    }
    for key, value in raw.items():
        if key not in example and key not in ("id", "image"):
            example[key] = value
    return example


def _prompt_keys_error(raw: Mapping[str, Any]) -> str | None:
    """What is wrong with an example's template keys (``prompt``, ``prompt_suffix``, ``prompt_separator``),
    or None: training must not find out at its first batch that a file names an unknown style."""
    from orienteer.core.prompts import PROMPT_NAMES

    style = raw.get("prompt")
    if style is not None and style not in PROMPT_NAMES:
        return f"unknown prompt {style!r} (expected one of {', '.join(PROMPT_NAMES)})"
    for key in ("prompt_suffix", "prompt_separator"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            return f"{key} must be text, got {raw[key]!r}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _options(value: Any) -> dict[str, str]:
    """Options as {letter: label}: an object, a list of "A. label" lines or labels, or choices text."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out = {}
        for letter, label in value.items():
            if not isinstance(label, str) or not label.strip() or not str(letter).strip():
                raise ValueError(f"options must map letters to non-empty labels, got {dict(value)!r}")
            out[str(letter).strip()] = label.strip()
        return out
    if isinstance(value, str):
        value = [line for line in value.split("\n") if line.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        try:
            pairs = [split_option_line(v) for v in value]
        except ValueError:
            pairs = [(chr(ord("A") + i), v.strip()) for i, v in enumerate(value)]
        letters = [p[0] for p in pairs]
        if len(set(letters)) != len(letters):
            raise ValueError(f"duplicate option letters in {value!r}")
        return dict(pairs)
    raise ValueError(f"options must be an object {{letter: label}} or a list of 'A. label' lines, got {value!r}")


def _answer(value: Any, options: Mapping[str, str]) -> str | None:
    """The answer letter; also accepts "A. label" or a label. None only for free-form examples."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not options:
        raise ValueError(f"answer {value!r} given but the example has no options")
    if not isinstance(value, str):
        raise ValueError(f"answer must be an option letter, got {value!r}")
    text = value.strip()
    if text in options:
        return text
    try:
        letter, label = split_option_line(text)
        if options.get(letter, "").casefold() == label.casefold():
            return letter
    except ValueError:
        pass
    matches = [k for k, v in options.items() if v.casefold() == text.casefold()]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"answer {text!r} is not one of the option letters {', '.join(options)}")


# ---------------------------------------------------------------- files


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise OrienteerError(f"unknown dataset format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _raw_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """(where, object) for each record: JSONL lines, or the elements of a JSON list (a ``.json`` file)."""
    text = read_text(path)
    require_nonempty(path, text, _EXPECTED)
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        data = load_json(path, text)
        for number, value in enumerate(data, start=1):
            if not isinstance(value, dict):
                raise InputError(path, f"expected a JSON object, got {type(value).__name__}", where=f"record {number}")
            yield f"record {number}", value
        return
    for number, value in iter_jsonl(path, text):
        yield f"line {number}", value


def read_examples(path: Path, fmt: str | None = None, image_root: Path | None = None) -> list[dict[str, Any]]:
    """Every example of a dataset file, checked and in canonical form.

    ``fmt`` is detected when None. Relative image paths are resolved against ``image_root``
    (default: the file's folder), so the examples always carry absolute paths. Records in one
    file must share one format.
    """
    return _read_examples(Path(path), fmt, image_root)[1]


def _read_examples(path: Path, fmt: str | None, image_root: Path | None) -> tuple[str, list[dict[str, Any]]]:
    """(format, examples) in one pass over the file; when ``fmt`` is None, the first record's style
    (``sharegpt``, ``llava``, else ``items``) is the file's format."""
    if fmt is not None:
        _check_format(fmt)
    root = (image_root or path.resolve().parent).resolve()
    examples = []
    for index, (where, record) in enumerate(_raw_records(path)):
        style = sharegpt.record_style(record)
        if fmt is None:
            fmt = style or ITEMS
        if fmt == ITEMS and style is not None:
            raise InputError(path, f"a {style} conversation record in an item-format file (expected {ITEMS} records)",
                             where=where)
        if fmt != ITEMS:
            if style is None:
                key = "messages" if fmt == sharegpt.SHAREGPT else "conversations"
                raise InputError(path, f"expected a conversation record with {key!r} (the file is {fmt})", where=where)
            try:
                record = sharegpt.from_record(record)
            except ValueError as exc:
                raise InputError(path, str(exc), where=where) from None
        examples.append(normalize_example(record, path, where, index, root))
    if fmt is None:
        raise InputError(path, f"empty file (expected {_EXPECTED})")
    if not examples:
        raise InputError(path, f"no examples found (expected {_EXPECTED})")
    return fmt, examples


def write_examples(path: Path, examples: Iterable[Mapping[str, Any]], fmt: str = ITEMS, *,
                   array: bool = False) -> int:
    """Write examples in ``fmt``, atomically (temporary file, then rename); returns the count.

    JSON Lines by default; ``array`` writes one JSON array instead (what a ``.json`` file must hold for
    tools that read it with ``json.load``, such as qwen-vl-finetune and LLaMA-Factory).
    """
    _check_format(fmt)
    count = 0
    with atomic_file(Path(path)) as fh:
        if array:
            fh.write("[")
        for example in examples:
            record = dict(example) if fmt == ITEMS else sharegpt.to_record(example, fmt)
            line = json.dumps(record, ensure_ascii=False)
            if array:
                fh.write(("\n" if count == 0 else ",\n") + line)
            else:
                fh.write(line + "\n")
            count += 1
        if array:
            fh.write("\n]\n")
    return count


def is_array_file(path: Path) -> bool:
    """A ``.json`` export holds one JSON array; any other name (``.jsonl``...) JSON Lines."""
    return Path(path).suffix.lower() == ".json"


# ---------------------------------------------------------------- catalog


def check_name(name: str) -> str:
    """A dataset name (it becomes a file name) under the one name rule of ``data.names``."""
    return names.check_name(name, "dataset")


def dataset_file(ws: Workspace, name: str) -> Path:
    """The plain file name of dataset ``name``; a replaced version may live at ``<name>~HEX.jsonl``
    (``dataset_version_file``), so readers take ``DatasetInfo.path`` from the catalog."""
    return ws.dir("datasets") / f"{check_name(name)}.jsonl"


_COLUMNS = "dataset_id, name, path, n_examples, composition, source_format, notes, created_by_job, created_at"


def _info(row: Sequence[Any]) -> DatasetInfo:
    composition = json.loads(row[4]) if row[4] else {}
    return DatasetInfo(int(row[0]), row[1], Path(row[2]), int(row[3]), composition, row[5], row[6], row[7], row[8])


def _names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM datasets ORDER BY dataset_id").fetchall()]


def _find(con: duckdb.DuckDBPyConnection, name: str, prefix: str = "") -> DatasetInfo | None:
    """The catalog row of ``name`` on an open connection (``prefix``: an attached catalog plus a dot)."""
    row = con.execute(f"SELECT {_COLUMNS} FROM {prefix}datasets WHERE name = ?", [name]).fetchone()
    return _info(row) if row else None


def list_datasets(ws: Workspace) -> list[DatasetInfo]:
    """Every dataset in the catalog, oldest first (none when the workspace does not exist yet)."""
    if not ws.exists():
        return []
    with ws.read() as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM datasets ORDER BY dataset_id").fetchall()
    return [_info(r) for r in rows]


def get_dataset(ws: Workspace, name: str) -> DatasetInfo:
    """The catalog row of ``name``; the error lists the datasets that do exist."""
    if not ws.exists():
        raise WorkspaceError(f"no dataset named {name!r}: there is no workspace at {ws.root} yet")
    with ws.read() as con:
        info = _find(con, name)
        names = _names(con) if info is None else []
    if info is None:
        listing = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        known = f"datasets are: {listing}" if names else "there are no datasets yet"
        raise WorkspaceError(f"no dataset named {name!r}; {known}")
    return info


def _insert(
    con: duckdb.DuckDBPyConnection, prefix: str, dataset_id: int, name: str, path: Path, n: int,
    composition: Mapping[str, Any] | None, source_format: str, notes: str | None, created_by_job: str | None,
) -> None:
    con.execute(
        f"""INSERT INTO {prefix}datasets ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())""",
        [dataset_id, name, str(path), n, json.dumps(dict(composition or {}), sort_keys=True), source_format, notes,
         created_by_job],
    )


def _next_id(con: duckdb.DuckDBPyConnection, prefix: str) -> int:
    return int(single_value(con, f"SELECT COALESCE(max(dataset_id), 0) + 1 FROM {prefix}datasets"))


def dataset_version_file(con: duckdb.DuckDBPyConnection, ws: Workspace, name: str, prefix: str = "") -> Path:
    """A file for a new version of dataset ``name`` that no catalog row names: ``<name>.jsonl`` when that
    is free, else ``<name>~<8 hex>.jsonl`` (``~`` is not allowed in names, so it is nobody else's).

    A version is never written over the file the catalog points at, so a kill at any moment leaves
    the catalog naming a whole file. Call it, and write the file, while holding the write lock: the
    orphan sweep in ``Workspace.ensure`` runs under the same lock.
    """
    folder = ws.dir("datasets")
    named = {Path(p).name for (p,) in con.execute(f"SELECT path FROM {prefix}datasets").fetchall() if p}
    plain = folder / f"{check_name(name)}.jsonl"
    if plain.name not in named:
        return plain
    while True:
        candidate = folder / f"{name}~{uuid.uuid4().hex[:8]}.jsonl"
        if candidate.name not in named and not candidate.exists():
            return candidate


def _drop_unless_cataloged(ws: Workspace, path: Path) -> None:
    """Remove ``path`` after a failed store unless the catalog names it (a COMMIT that raised may still have
    committed); when the catalog cannot be read, leave it to the next orphan sweep."""
    try:
        with ws.read() as con:
            named = {Path(p).name for (p,) in con.execute("SELECT path FROM datasets").fetchall() if p}
    except Exception:
        return
    if path.name not in named:
        path.unlink(missing_ok=True)


def import_dataset(
    ws: Workspace,
    path: Path,
    name: str,
    fmt: str | None = None,
    replace: bool = False,
    *,
    images: Path | None = None,
    notes: str | None = None,
) -> DatasetInfo:
    """Import a dataset file (items, ShareGPT or LLaVA; detected when ``fmt`` is None) as ``name``.

    Everything is checked before the workspace is touched; the canonical JSONL is written to a
    temporary file, and the catalog row and the file's move into place happen together: a failed
    import leaves the catalog and the ``datasets`` folder as they were. Relative image paths are
    resolved against ``images`` (default: the file's folder); missing images are counted in
    ``images_missing``, not refused (a dataset may be built on one machine and trained on another).
    """
    check_name(name)
    path = Path(path)
    if images is not None and not Path(images).is_dir():
        raise OrienteerError(f"images root {images} does not exist or is not a folder "
                             "(expected the folder the image paths are relative to)")
    fmt, examples = _read_examples(path, fmt, images)
    missing = sum(1 for ex in examples for p in ex["images"] if not os.path.isfile(p))
    composition = {"imported_from": str(path.resolve()), "format": fmt, "n_examples": len(examples),
                   "multi_turn": count_multi_turn(examples)}
    benches = example_benches(examples)
    if benches:
        composition["benches"] = benches
    store_dataset(ws, name, examples, composition, fmt, notes, replace)
    return dataclasses.replace(get_dataset(ws, name), images_missing=missing)


def store_dataset(
    ws: Workspace, name: str, examples: Sequence[Mapping[str, Any]], composition: Mapping[str, Any],
    source_format: str, notes: str | None, replace: bool = False,
) -> None:
    """Write checked ``examples`` as dataset ``name`` so that a kill at any moment leaves the old dataset
    or the new one whole, never the catalog of one and the file of the other.

    In order: (1) under the write lock, the examples go to a file no catalog row names
    (``dataset_version_file``; written whole, fsynced, renamed); (2) the catalog row points at it and
    commits; (3) the old version's file is deleted. Killed before (2) commits, the catalog still names
    the old file and the new one is an orphan; killed after, the old file is. ``Workspace.ensure``
    removes orphans the next time any process opens the workspace for writing.
    """
    check_name(name)
    new_path: Path | None = None
    old_path: Path | None = None
    body_done = False
    try:
        with ws.write() as con:
            existing = _find(con, name)
            if existing is not None and not replace:
                raise WorkspaceError(f"dataset {name!r} already exists; pass --replace to replace it")
            new_path = dataset_version_file(con, ws, name)
            write_examples(new_path, examples)
            pause_point("dataset-file-written")
            if existing is not None:
                con.execute("DELETE FROM datasets WHERE name = ?", [name])
                old_path = new_path.parent / existing.path.name  # this workspace's copy, even if it was moved
            dataset_id = existing.dataset_id if existing else _next_id(con, "")
            _insert(con, "", dataset_id, name, new_path, len(examples), composition, source_format, notes, None)
            pause_point("dataset-before-commit")
            body_done = True
    except BaseException:
        if new_path is not None:
            if body_done:
                _drop_unless_cataloged(ws, new_path)  # the COMMIT itself failed: it may have happened
            else:
                new_path.unlink(missing_ok=True)  # rolled back: nothing names the new file
        raise
    pause_point("dataset-committed")
    if old_path is not None and old_path.name != new_path.name:
        old_path.unlink(missing_ok=True)


def count_multi_turn(examples: Iterable[Mapping[str, Any]]) -> int:
    """How many examples are multi-turn conversations (recorded in a composition, so a listing can say)."""
    return sum(1 for ex in examples if sharegpt.is_multi_turn(ex))


def example_benches(examples: Iterable[Mapping[str, Any]]) -> list[str]:
    """The benchmarks the examples say they came from (their ``bench``), sorted."""
    return sorted({ex["bench"] for ex in examples if isinstance(ex.get("bench"), str)})


def concat_datasets(ws: Workspace, parts: Sequence[str], name: str, notes: str | None = None,
                    replace: bool = False) -> DatasetInfo:
    """Dataset ``name`` = the examples of ``parts`` in order (e.g. originals + their flipped copies).

    The composition records each part (name and count), how many item ids occur in more than one
    part, and the union of the parts' source benchmarks, so the train job's test-overlap check still
    sees where every example came from.
    """
    check_name(name)
    if len(parts) < 2:
        raise OrienteerError(f"dataset concat: give at least two datasets to join, got {len(parts)}")
    twice = sorted({p for p in parts if list(parts).count(p) > 1})
    if twice:
        raise OrienteerError(f"dataset concat: {', '.join(repr(p) for p in twice)} named more than once")
    if name in parts:
        raise OrienteerError(f"dataset concat: the result {name!r} cannot be one of its parts")
    examples: list[dict[str, Any]] = []
    recorded: list[dict[str, Any]] = []
    benches: set[str] = set()
    seen: dict[str, str] = {}
    shared: set[str] = set()
    for part in parts:
        info = get_dataset(ws, part)
        if not info.path.is_file():
            raise WorkspaceError(f"dataset {part!r}: its file {info.path} is missing from the workspace")
        mine = read_examples(info.path, ITEMS)
        for example in mine:
            owner = seen.setdefault(example["item_id"], part)
            if owner != part:
                shared.add(example["item_id"])
        examples.extend(mine)
        recorded.append({"dataset": part, "n_examples": len(mine)})
        benches.update(b for b in info.composition.get("benches", []) if isinstance(b, str))
        benches.update(example_benches(mine))
    composition = {"concat": recorded, "n_examples": len(examples), "shared_item_ids": len(shared),
                   "benches": sorted(benches)}
    store_dataset(ws, name, examples, composition, ITEMS, notes or f"concat of {', '.join(parts)}", replace)
    return get_dataset(ws, name)


@dataclass(frozen=True)
class ExportResult:
    """What ``export_dataset_files`` wrote: the dataset file, the ``dataset_info.json`` it wrote or
    updated (conversation formats), and for a bundle its folder and how its images got there."""

    n_examples: int
    path: Path
    dataset_info: Path | None = None
    bundle: Path | None = None
    n_images: int = 0
    n_linked: int = 0
    replaced_entry: Any = None
    """The ``dataset_info.json`` entry of this name that the export replaced (it said something else)."""


def export_dataset(ws: Workspace, name: str, path: Path, fmt: str = ITEMS, force: bool = False) -> int:
    """Write dataset ``name`` to ``path`` in ``fmt`` (items, sharegpt, llava); returns the number of examples.

    ``export_dataset_files`` with no bundle: see there.
    """
    return export_dataset_files(ws, name, path, fmt, force).n_examples


def export_dataset_files(ws: Workspace, name: str, path: Path | None, fmt: str = ITEMS, force: bool = False,
                         bundle: Path | None = None) -> ExportResult:
    """Write dataset ``name`` in ``fmt`` for a fine-tuning tool.

    ``.json`` gets one JSON array, any other name JSON Lines. For the conversation formats a
    ``dataset_info.json`` entry named after the dataset is written beside the file (merged into one
    already there; an entry of the same name is replaced and returned), so LLaMA-Factory reads it
    unedited. Without ``bundle``: an existing ``path`` is refused unless ``force``; the file appears
    whole or not at all; a symbolic link is written through to its target, a folder, device or FIFO
    refused even with ``force`` (``fileio.output_target``).
    With ``bundle`` (a folder): ``path`` is the file's name inside it (default ``<name>.json``, or
    ``.jsonl`` for items) and ``data.bundle.write_bundle`` writes file, images and entry together.
    """
    from orienteer.data import bundle as bundles

    _check_format(fmt)
    if bundle is not None:
        file_name = bundles.bundle_file_name(name, fmt, path)
        bundles.check_bundle_target(Path(bundle), force)
        examples = _stored_examples(ws, name)
        return bundles.write_bundle(Path(bundle), name, file_name, examples, fmt, force)
    if path is None:
        raise OrienteerError("dataset export: give an output file, or --bundle DIR")
    path = Path(path)
    output_target(path, force)
    info_file = path.parent / bundles.DATASET_INFO if fmt != ITEMS else None
    if info_file is not None:
        bundles.merged_dataset_info(info_file, name, bundles.dataset_info_entry(fmt, path.name))  # readable?
    examples = _stored_examples(ws, name)
    target = output_target(path, force)  # again: the target may have changed while the dataset was read
    try:
        n = write_examples(target, examples, fmt, array=is_array_file(path))
        old = None
        if info_file is not None:
            entry = bundles.dataset_info_entry(fmt, path.name)
            old = bundles.write_dataset_info(info_file, name, entry)
            old = old if old != entry else None
    except OSError as exc:
        raise FileAccessError(path, os_reason(exc)) from None
    return ExportResult(n, path, info_file, replaced_entry=old)


def _stored_examples(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """The examples of dataset ``name`` as stored in the workspace."""
    info = get_dataset(ws, name)
    if not info.path.is_file():
        raise WorkspaceError(f"dataset {name!r}: its file {info.path} is missing from the workspace")
    return read_examples(info.path, ITEMS)


def register_dataset(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    name: str,
    src_file: Path,
    composition: Mapping[str, Any] | None,
    notes: str | None,
    created_by_job: str | None,
    catalog: str = "ws",
    *,
    examples: list[dict[str, Any]] | None = None,
) -> DatasetInfo:
    """Catalog a job's dataset file, inside the caller's open transaction on ``con``.

    Reads and checks ``src_file`` (canonical item format; relative image paths are taken relative
    to its folder) unless the caller passes its ``examples``, read with
    ``read_examples(src_file, ITEMS)`` before it took the lock; refuses a name already in the
    catalog, inserts the row, then writes the examples (temporary name, rename) to a file in
    ``<ws>/datasets`` that no catalog row names (``dataset_version_file``). The job's own file is
    left where it is, so a re-ingest can always read it again.

    Rollback: the row goes with the caller's transaction, the file does not. On the caller's
    failure path call ``discard_registered(info, ws)``; if that is skipped (a kill), the file has no
    catalog row, nothing reads it, and the next ``Workspace.ensure`` removes it.
    """
    check_name(name)
    prefix = f"{catalog}." if catalog else ""
    if examples is None:
        examples = read_examples(Path(src_file), ITEMS)
    if _find(con, name, prefix) is not None:
        raise OrienteerError(f"dataset {name!r} already exists; choose another name (or delete the old one first)")
    final = dataset_version_file(con, ws, name, prefix)
    dataset_id = _next_id(con, prefix)
    _insert(con, prefix, dataset_id, name, final, len(examples), composition, ITEMS, notes, created_by_job)
    write_examples(final, examples)  # temporary file + rename: readers never see half a file
    return DatasetInfo(dataset_id, name, final, len(examples), dict(composition or {}), ITEMS, notes, created_by_job, None)


def discard_registered(info: DatasetInfo, ws: Workspace | None = None) -> None:
    """Remove the file ``register_dataset`` put in place, after the caller's transaction rolled back.

    With ``ws``, the catalog is asked first: a COMMIT that raised may have committed after all, and
    then the file is the dataset's.
    """
    if ws is not None:
        _drop_unless_cataloged(ws, info.path)
    else:
        info.path.unlink(missing_ok=True)
