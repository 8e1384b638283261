"""Row-wise readers for tabular files (CSV, TSV, JSONL, JSON lists, Parquet, Excel).

Every reader yields ``(where, row)`` pairs, ``where`` being "line N" (text formats, the line
the row starts on) or "row N" (Parquet/Excel, 1-based), so errors can point at the row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError
from orienteer.data.formats.common import iter_jsonl, load_json, read_text, require_nonempty

Row = dict[str, Any]


def read_rows(path: Path, expected: str) -> tuple[list[str], list[tuple[str, Row]]]:
    """Columns and rows of a tabular file, chosen by extension."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _delimited(path, expected, "\t" if suffix == ".tsv" else ",")
    if suffix == ".jsonl":
        return _jsonl(path, expected)
    if suffix == ".json":
        return _json_list(path, expected)
    if suffix in (".parquet", ".pq"):
        return _frame(path, _read_parquet(path))
    if suffix in (".xlsx", ".xls"):
        return _frame(path, _read_excel(path))
    raise InputError(path, f"unsupported file type {suffix!r} (expected .json, .jsonl, .csv, .tsv, .parquet or .xlsx)")


def _delimited(path: Path, expected: str, delimiter: str) -> tuple[list[str], list[tuple[str, Row]]]:
    text = read_text(path)
    require_nonempty(path, text, expected)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InputError(path, f"unreadable header: {exc}", where="line 1") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputError(path, f"duplicate column names {dupes}", where="line 1")
    rows: list[tuple[str, Row]] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(path, f"malformed CSV: {exc}", where=f"line {start}") from None
        if cells and any(c.strip() for c in cells):
            if len(cells) != len(header):
                raise InputError(
                    path, f"expected {len(header)} fields ({', '.join(header)}), got {len(cells)}", where=f"line {start}"
                )
            rows.append((f"line {start}", dict(zip(header, cells))))
        start = reader.line_num + 1
    return header, rows


def _jsonl(path: Path, expected: str) -> tuple[list[str], list[tuple[str, Row]]]:
    text = read_text(path)
    require_nonempty(path, text, expected)
    rows = [(f"line {n}", obj) for n, obj in iter_jsonl(path, text)]
    return _columns(rows), rows


def _json_list(path: Path, expected: str) -> tuple[list[str], list[tuple[str, Row]]]:
    text = read_text(path)
    require_nonempty(path, text, expected)
    document = load_json(path, text)
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(path, "expected a JSON list of records, or an object holding one list of records")
        document = lists[0]
    if not isinstance(document, list):
        raise InputError(path, f"expected a JSON list of records, got {type(document).__name__}")
    rows: list[tuple[str, Row]] = []
    for index, value in enumerate(document):
        if not isinstance(value, dict):
            raise InputError(path, f"expected an object, got {type(value).__name__}", where=f"record {index}")
        rows.append((f"record {index}", value))
    return _columns(rows), rows


def _columns(rows: list[tuple[str, Row]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, row in rows[:1000]:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _read_parquet(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(path, f"unreadable Parquet file: {str(exc).splitlines()[0]}") from None


def _read_excel(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_excel(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as exc:
        raise InputError(path, f"unreadable Excel file: {str(exc).splitlines()[0]}") from None


def _frame(path: Path, frame: Any) -> tuple[list[str], list[tuple[str, Row]]]:
    if frame.empty:
        raise InputError(path, "no rows")
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    records = frame.to_dict(orient="records")
    return columns, [(f"row {i + 1}", r) for i, r in enumerate(records)]
