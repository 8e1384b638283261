"""Row-wise readers for tabular files (CSV, TSV, JSONL, JSON lists, Parquet, Excel).

Every reader yields ``(where, row)`` pairs, ``where`` being "line N" (text formats, the line
the row starts on) or "row N" (Parquet/Excel, 1-based), so errors can point at the row.

CSV, TSV and JSONL are streamed (:func:`iter_rows`): the file is read one physical line at a
time, so a reader holds one line, not the file (a 2-million-row CSV would otherwise cost GBs
as Python objects). Text is decoded line by line, so a bad byte is named by its line.

CSV/TSV are parsed with Python's ``csv`` module in ``strict`` mode rather than DuckDB's
``read_csv``: every row must be tied to the exact line it starts on (a record of the official
result CSV spans three lines, and errors and ``source_line`` name that line), which DuckDB's
reader does not report; and ``csv`` in strict mode refuses what DuckDB's sniffer would repair.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError
from orienteer.data.formats.common import jsonl_object, load_json, read_text, require_nonempty

Row = dict[str, Any]

# The longest physical line (bytes) and CSV field (characters) a file may have: replies far longer
# than csv's default 131,072-character field limit are accepted, but one line cannot exhaust memory.
MAX_LINE = 16 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
_BOM = b"\xef\xbb\xbf"
_COLUMN_SAMPLE = 1000  # JSONL: columns are the keys of the first rows


def read_rows(path: Path, expected: str) -> tuple[list[str], list[tuple[str, Row]]]:
    """Columns and rows of a tabular file, chosen by extension (all rows in memory)."""
    columns, unit, rows = iter_rows(path, expected)
    return columns, [(f"{unit} {n}", row) for n, row in rows]


def iter_rows(path: Path, expected: str) -> tuple[list[str], str, Iterator[tuple[int, Row]]]:
    """Columns, the unit rows are counted in ("line", "record", "row") and an iterator of (number, row).

    CSV/TSV/JSONL rows are read lazily (errors in them surface while iterating); the other
    formats are read whole.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header, cells = iter_delimited(path, expected, "\t" if suffix == ".tsv" else ",")
        return header, "line", ((n, dict(zip(header, row))) for n, row in cells)
    if suffix == ".jsonl":
        rows = iter_jsonl_file(path, expected)
        head = list(islice(rows, _COLUMN_SAMPLE))
        return _columns([("", r) for _, r in head]), "line", chain(head, rows)
    if suffix == ".json":
        columns, records = _json_list(path, expected)
        return columns, "record", ((int(w.split(" ")[1]), r) for w, r in records)
    if suffix in (".parquet", ".pq"):
        columns, records = _frame(path, _read_parquet(path))
    elif suffix in (".xlsx", ".xls"):
        columns, records = _frame(path, _read_excel(path))
    else:
        raise InputError(path, f"unsupported file type {suffix!r} (expected .json, .jsonl, .csv, .tsv, .parquet or .xlsx)")
    return columns, "row", ((int(w.split(" ")[1]), r) for w, r in records)


_CHUNK = 1 << 20
_NL = b"\n"


def iter_text(path: Path) -> Iterator[str]:
    """Each physical line of the file (split on \\n only, ending kept), read 1 MiB at a time.

    A block of lines is checked and decoded at once (~0.2 us a line); a UTF-8 BOM is dropped; a
    NUL byte, a line that is not UTF-8, or one longer than MAX_LINE bytes is an error naming it.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, expected a file") from None
    with fh:
        done = 0  # lines yielded so far
        rest = b""
        first = True
        while True:
            chunk = fh.read(_CHUNK)
            data = rest + chunk if rest else chunk
            if first and data[:3] == _BOM:
                data = data[3:]
            first = first and not data
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            block, rest = data[:cut], data[cut:]
            if len(rest) > MAX_LINE:
                raise InputError(path, f"line longer than {MAX_LINE // (1024 * 1024)} MiB (expected at most that per line)",
                                 where=f"line {done + block.count(_NL) + 1}")
            if block:
                if b"\x00" in block:
                    line = done + block.count(b"\n", 0, block.index(b"\x00")) + 1
                    raise InputError(path, "NUL byte in a text file (expected text; is it binary?)", where=f"line {line}")
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError as exc:
                    line = done + block.count(b"\n", 0, exc.start) + 1
                    raise InputError(path, "not valid UTF-8 text", where=f"line {line}") from None
                lines = text.split("\n")
                last = lines.pop()  # "" when the block ends with a newline (always, but at the end of the file)
                for line_text in lines:
                    yield line_text + "\n"
                done += len(lines)
                if last:
                    yield last
                    done += 1
            if not chunk:
                return


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each physical line, numbered from 1 (see :func:`iter_text`)."""
    return enumerate(iter_text(path), start=1)


def iter_delimited(path: Path, expected: str, delimiter: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and a lazy iterator of (line the record starts on, cells), parsed strictly.

    A quote still open at the end of the file, text after a closing quote, or a row whose field
    count differs from the header's is an error naming the line; blank lines are skipped.
    """
    reader = csv.reader(iter_text(path), delimiter=delimiter, strict=True)

    def fail(exc: csv.Error, start: int) -> InputError:
        if "unexpected end of data" in str(exc):
            return InputError(path, "a quoted field is still open at the end of the file "
                                    "(a stray \" in this record? expected a closing quote)", where=f"line {start}")
        return InputError(path, f"malformed CSV: {exc}", where=f"line {reader.line_num or start}")

    header: list[str] | None = None
    start = 1
    while header is None:
        try:
            cells = next(reader)
        except StopIteration:
            raise InputError(path, f"empty file (expected {expected})") from None
        except csv.Error as exc:
            raise fail(exc, start) from None
        if cells and any(c.strip() for c in cells):
            header = [h.strip() for h in cells]
            header_line = start
        start = reader.line_num + 1
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputError(path, f"duplicate column names {dupes}", where=f"line {header_line}")

    def rows(first: int) -> Iterator[tuple[int, list[str]]]:
        start = first
        width = len(header)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise fail(exc, start) from None
            if "".join(cells).strip():  # a blank line (or one of empty cells only) is skipped
                if len(cells) != width:
                    raise InputError(
                        path, f"expected {width} fields ({', '.join(header)}), got {len(cells)}", where=f"line {start}"
                    )
                yield start, cells
            start = reader.line_num + 1

    return header, rows(start)


def iter_jsonl_file(path: Path, expected: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line, streamed; each line must be a JSON object."""
    seen = False
    for number, line in iter_lines(path):
        value = jsonl_object(path, number, line)
        if value is None:
            continue
        seen = True
        yield number, value
    if not seen:
        raise InputError(path, f"empty file (expected {expected})")


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
    for number, value in enumerate(document, start=1):  # numbered from 1, like lines and rows everywhere
        if not isinstance(value, dict):
            raise InputError(path, f"expected an object, got {type(value).__name__}", where=f"record {number}")
        rows.append((f"record {number}", value))
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
