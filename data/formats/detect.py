"""Pick a reader for a file: by extension first, then by a look at the content."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from orienteer.data.errors import InputError
from orienteer.data.formats import bench_generic, bench_viewspatial
from orienteer.data.formats import predictions as preds

_HEAD = 65_536  # bytes read to tell a format: detection never reads a whole (possibly huge) file


def _head(path: Path) -> str:
    """The file's first bytes as text (BOM dropped; a cut or bad UTF-8 sequence is replaced: the
    readers themselves report bad bytes with their line)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_HEAD)
    except OSError:
        return ""
    return raw.decode("utf-8-sig", errors="replace")


BENCH_FORMATS = (bench_viewspatial.FORMAT, bench_generic.FORMAT)
PRED_FORMATS = tuple(preds.READERS)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")


def detect_bench_format(path: Path) -> str:
    _check_exists(path)
    if path.suffix.lower() == ".json":
        head = _head(path).lstrip()[:4096]
        if head.startswith("[") and '"question_type"' in head and '"choices"' in head:
            return bench_viewspatial.FORMAT
    return bench_generic.FORMAT


def detect_pred_format(path: Path) -> str:
    _check_exists(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header = _first_line(path)
        return "viewspatial-csv" if preds.is_official_csv(header) else "csv"
    if suffix == ".tsv":
        return "vlmevalkit" if preds.looks_like_vlmevalkit(_first_line(path, "\t")) else "tsv"
    if suffix in (".xlsx", ".xls"):
        return "vlmevalkit"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".jsonl":
        first = _first_json_line(path)
        return "lmms-eval" if first is not None and preds.looks_like_lmms_eval(first) else "jsonl"
    if suffix == ".json":
        head = _head(path)[:_HEAD]
        # lmms-eval before v0.3: <task>.json holding {"args": ..., "logs": [{"doc_id", "resps", ...}]}
        if '"logs"' in head and '"doc_id"' in head and ('"filtered_resps"' in head or '"resps"' in head):
            return "lmms-eval"
        return "results-json"
    raise InputError(
        path, f"cannot tell the format of a {suffix or 'suffix-less'} file "
        "(expected .csv, .json, .jsonl, .tsv, .xlsx or .parquet; or pass --format)"
    )


def _first_line(path: Path, delimiter: str = ",") -> list[str]:
    text = _head(path)
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error):
        return []


def _first_json_line(path: Path) -> dict | None:
    from orienteer.data.formats.tables import iter_lines

    try:
        first = next(((n, t) for n, t in iter_lines(path) if t.strip()), None)
    except InputError:
        return None
    for line in [first[1]] if first else []:
        if line.strip():
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
