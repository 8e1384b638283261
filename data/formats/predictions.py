"""Prediction files, every supported format, read into one shape.

Each reader returns :class:`RawPredictions`: one row per answer with the columns
``line`` (where the row is in the file), ``key`` (the item id as written), ``reply`` (raw
text), ``letter`` (a letter the file already decided, e.g. argmax of scored options),
``gold`` (the file's own gold answer), ``verdict`` (the file's own correct/incorrect),
``probs`` (JSON {letter: p}), ``task`` and ``run`` (for files holding several runs).
Matching keys to items, checking gold answers and scoring happen later, in SQL.

Text formats are streamed: a reader yields its rows in batches of columns (``batches``), which
the importer appends to a staging table one batch at a time, so memory does not grow with the
file (2 million CSV rows would otherwise be ~4 GB of Python objects).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError
from orienteer.data.formats.common import _FALSE as _FALSE_WORDS
from orienteer.data.formats.common import _TRUE as _TRUE_WORDS
from orienteer.data.formats.common import as_text, key_text, parse_bool, pick_column, probs_json
from orienteer.data.formats.tables import iter_delimited, iter_jsonl_file, iter_rows

COLUMN_TYPES: dict[str, str] = {
    "line": "BIGINT", "key": "VARCHAR", "reply": "VARCHAR", "letter": "VARCHAR", "gold": "VARCHAR",
    "verdict": "BOOLEAN", "probs": "VARCHAR", "task": "VARCHAR", "run": "VARCHAR",
}
OFFICIAL_CSV_HEADER = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]
EXPECTED = "prediction records"
BATCH_ROWS = 32_768  # rows per batch handed to the staging table: ~15 MB of Python objects at most

ALIASES: dict[str, tuple[str, ...]] = {
    "key": ("id", "item_id", "question_id", "index", "idx", "doc_id", "uid", "ID"),
    "reply": ("pred", "prediction", "predicted_answer", "response", "reply", "output", "model_answer", "text"),
    "letter": ("letter", "pred_letter", "predicted_letter"),
    "gold": ("gt", "gold", "correct_answer", "target", "ground_truth", "answer", "gold_letter"),
    "verdict": ("correct", "is_correct", "iscorrect", "hit"),
    "probs": ("probs", "probabilities", "option_probs"),
    "task": ("task", "question_type", "category"),
    "run": ("run", "run_name", "model"),
}


@dataclass
class RawPredictions:
    """Rows of one prediction file; ``where`` is the unit ``line`` counts in ("line", "row", "record").

    Row-wise formats arrive as ``batches``: an iterable of column batches (name -> values, see
    COLUMN_TYPES), read lazily, so a bad row raises while the batches are consumed; large Parquet
    files as ``sql``, a SELECT DuckDB runs over the file itself.
    """

    path: Path
    format: str
    where: str
    batches: Iterable[dict[str, list[Any]]] | None = None
    sql: str | None = None

    def location(self, line: int) -> str:
        return f"{self.where} {line}"


FIELDS = tuple(name for name in COLUMN_TYPES if name != "line")
_TEXT_FIELDS = ("reply", "gold", "task", "run")
_VERDICT_WORDS = {**{w: True for w in _TRUE_WORDS}, **{w: False for w in _FALSE_WORDS}, "": None}
_BAD = object()


def _build(path: Path, fmt: str, unit: str, fields: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> RawPredictions:
    """Wrap an iterator of raw rows ``(line, *values of fields)`` as lazily built, checked column batches."""
    return RawPredictions(path=path, format=fmt, where=unit, batches=_batched(path, unit, fields, rows))


def _batched(path: Path, unit: str, fields: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> Iterator[dict[str, list[Any]]]:
    """Cut rows into batches and convert each batch column by column (a per-row Python function
    call costs more than parsing the CSV itself: 2M rows took 40 s that way)."""
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield _columns(path, unit, fields, batch)
            batch = []
    if batch:
        yield _columns(path, unit, fields, batch)


def _columns(path: Path, unit: str, fields: tuple[str, ...], batch: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """One batch as checked columns (COLUMN_TYPES); the first bad cell of the batch names its row."""
    columns = list(zip(*batch))
    lines = list(columns[0])
    raw = dict(zip(fields, columns[1:]))
    n = len(lines)
    errors: list[tuple[int, str]] = []  # (index in batch, message): the earliest is reported

    keys = [v if type(v) is str else key_text(v) for v in raw.get("key", [None] * n)]
    for i, k in enumerate(keys):
        if k is None or not k.strip():
            errors.append((i, "missing item id"))
            break
    out: dict[str, list[Any]] = {"line": lines, "key": keys}
    for name in _TEXT_FIELDS:
        col = raw.get(name)
        out[name] = [None] * n if col is None else [v if type(v) is str or v is None else as_text(v) for v in col]
    col = raw.get("verdict")
    if col is None:
        out["verdict"] = [None] * n
    else:
        verdicts = [_VERDICT_WORDS.get(v.strip().lower(), _BAD) if type(v) is str else _BAD for v in col]
        for i, v in enumerate(verdicts):
            if v is _BAD:
                try:
                    verdicts[i] = parse_bool(col[i])
                except ValueError as exc:
                    errors.append((i, f"verdict: {exc}"))
                    break
        out["verdict"] = verdicts
    col = raw.get("letter")
    letters = [None] * n if col is None else [_letter(v) for v in col]
    col = raw.get("probs")
    probs: list[str | None] = [None] * n
    if col is not None:
        for i, v in enumerate(col):
            if v is None or (type(v) is str and not v.strip()):
                continue
            try:
                probs[i] = text = probs_json(v)
            except (ValueError, TypeError) as exc:
                errors.append((i, f"probs: {exc}"))
                break
            if letters[i] is None and text is not None:
                scores = json.loads(text)
                letters[i] = max(scores, key=scores.__getitem__) if scores else None
    if errors:
        i, message = min(errors)
        raise InputError(path, message, where=f"{unit} {lines[i]}")
    out["letter"] = letters
    out["probs"] = probs
    return {name: out[name] for name in COLUMN_TYPES}


def _table(path: Path, expected: str) -> tuple[list[str], str, Iterator[tuple[int, Any]]]:
    """Columns, unit and (number, row) pairs; a CSV/TSV row is its list of cells (no dict per row)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header, rows = iter_delimited(path, expected, "\t" if suffix == ".tsv" else ",")
        return header, "line", rows
    return iter_rows(path, expected)


def _letter(value: Any) -> str | None:
    """A letter cell upper-cased; blank or missing is None."""
    text = value if type(value) is str else as_text(value)
    return None if text is None else (text.strip().upper() or None)


def _picked(columns: list[str], chosen: Mapping[str, str | None],
            rows: Iterator[tuple[int, Any]]) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    """The fields that have a column, and rows as ``(line, *their cells)``."""
    pairs = [(f, name) for f in FIELDS if (name := chosen.get(f))]
    fields = tuple(f for f, _ in pairs)
    names = [name for _, name in pairs]
    index = [columns.index(c) for c in names]

    def gen() -> Iterator[tuple[Any, ...]]:
        for number, row in rows:
            if type(row) is list:
                yield (number, *[row[i] for i in index])
            else:
                yield (number, *map(row.get, names))

    return fields, gen()


# --- the official ViewSpatial result CSV -----------------------------------------------------

def is_official_csv(header: list[str]) -> bool:
    return [h.strip() for h in header] == OFFICIAL_CSV_HEADER


def read_official_csv(path: Path) -> RawPredictions:
    columns, unit, rows = _table(path, f"the ViewSpatial result CSV ({','.join(OFFICIAL_CSV_HEADER)})")
    if not is_official_csv(columns):
        raise InputError(path, f"expected the header {','.join(OFFICIAL_CSV_HEADER)}, got {','.join(columns)}", where="line 1")
    chosen = {"key": "ID", "reply": "Predicted Answer", "gold": "Correct Answer", "verdict": "IsCorrect",
              "task": "Question_Type"}
    fields, picked = _picked(columns, chosen, rows)
    return _build(path, "viewspatial-csv", unit, fields, picked)


# --- per-item records: {"results": [...]}, flat JSONL, generic CSV/TSV/Parquet ----------------

def read_records(path: Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> RawPredictions:
    columns, unit, rows = _table(path, EXPECTED)
    fields, picked = _picked(columns, _resolve(path, columns, mapping or {}), rows)
    return _build(path, fmt or _records_format(path), unit, fields, picked)


def _records_format(path: Path) -> str:
    return {".json": "results-json", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}.get(
        path.suffix.lower(), path.suffix.lower().lstrip(".")
    )


def _resolve(path: Path, columns: list[str], mapping: Mapping[str, str]) -> dict[str, str | None]:
    unknown = set(mapping) - set(ALIASES)
    if unknown:
        raise InputError(path, f"--map names unknown fields {sorted(unknown)} (expected {', '.join(ALIASES)})")
    chosen: dict[str, str | None] = {}
    for name, aliases in ALIASES.items():
        chosen[name] = pick_column(columns, aliases, mapping.get(name))
        if mapping.get(name) and chosen[name] is None:
            raise InputError(path, f"--map {name}={mapping[name]}: no such column (columns are: {', '.join(columns)})")
    if chosen["gold"] is not None and chosen["gold"] == chosen["reply"]:
        chosen["gold"] = None
    if chosen["key"] is None:
        raise InputError(
            path, f"no item id column (expected one of {', '.join(ALIASES['key'])}, or --map key=COLUMN); "
            f"columns are: {', '.join(columns)}"
        )
    if chosen["reply"] is None and chosen["letter"] is None and chosen["probs"] is None:
        raise InputError(
            path,
            f"no prediction column (expected one of {', '.join(ALIASES['reply'])}, or --map reply=COLUMN); "
            f"columns are: {', '.join(columns)}",
        )
    return chosen


# --- lmms-eval *_samples_*.jsonl -----------------------------------------------------------

_LMMS_VERDICT_KEYS = ("exact_match", "accuracy", "acc", "correct", "score", "viewspatial_score")


def looks_like_lmms_eval(first: Mapping[str, Any]) -> bool:
    return "doc_id" in first and ("filtered_resps" in first or "resps" in first)


def read_lmms_eval(path: Path) -> RawPredictions:
    def rows() -> Iterator[tuple[Any, ...]]:
        for number, obj in iter_jsonl_file(path, "lmms-eval samples (one JSON object per line)"):
            if not looks_like_lmms_eval(obj):
                raise InputError(path, "expected an lmms-eval sample with doc_id and resps/filtered_resps",
                                 where=f"line {number}")
            doc = obj["doc"] if isinstance(obj.get("doc"), dict) else {}
            yield (
                number,
                obj["doc_id"],
                _first_text(obj.get("filtered_resps")) or _first_text(obj.get("resps")),
                obj.get("target") if obj.get("target") not in (None, "") else doc.get("answer"),
                _lmms_verdict(obj),
                doc.get("question_type") or doc.get("task") or doc.get("category"),
            )

    return _build(path, "lmms-eval", "line", ("key", "reply", "gold", "verdict", "task"), rows())


def _first_text(value: Any) -> str | None:
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _lmms_verdict(obj: Mapping[str, Any]) -> Any:
    for key in _LMMS_VERDICT_KEYS:
        value = obj.get(key)
        if isinstance(value, dict):
            for inner in ("correct", "is_correct", "score", "accuracy"):
                if isinstance(value.get(inner), (bool, int, float)) and value.get(inner) in (0, 1):
                    return bool(value[inner])
        elif isinstance(value, (bool, int, float)) and value in (0, 1):
            return bool(value)
    return None


# --- VLMEvalKit .xlsx / .tsv ------------------------------------------------------------------

def looks_like_vlmevalkit(columns: list[str]) -> bool:
    lower = {c.lower() for c in columns}
    return {"index", "prediction", "answer"} <= lower


def read_vlmevalkit(path: Path) -> RawPredictions:
    columns, unit, rows = _table(path, "a VLMEvalKit result table (index, question, A, B, ..., answer, prediction)")
    if not looks_like_vlmevalkit(columns):
        raise InputError(path, f"expected VLMEvalKit columns index, answer, prediction; got {', '.join(columns)}")
    lower = {c.lower(): c for c in columns}
    chosen = {"key": lower["index"], "reply": lower["prediction"], "gold": lower["answer"], "verdict": lower.get("hit"),
              "task": lower.get("category") or lower.get("question_type")}
    fields, picked = _picked(columns, chosen, rows)
    return _build(path, "vlmevalkit", unit, fields, picked)


# --- generic Parquet, read by DuckDB without going through Python rows ------------------------

def parquet_columns(path: Path) -> list[str]:
    import duckdb

    try:
        rows = duckdb.execute("SELECT name FROM parquet_schema(?) WHERE name <> 'schema'", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise InputError(path, f"unreadable Parquet file: {str(exc).splitlines()[0]}") from None
    return [r[0] for r in rows]


def read_parquet_fast(path: Path, mapping: Mapping[str, str] | None = None) -> RawPredictions:
    """Large Parquet files (millions of rows) stay in DuckDB: the reader returns a SELECT."""
    columns = parquet_columns(path)
    chosen = _resolve(path, columns, mapping or {})

    def col(field: str, cast: str = "VARCHAR") -> str:
        column = chosen[field]
        quoted = '"' + column.replace('"', '""') + '"' if column else None  # a column name is untrusted text
        return f"CAST({quoted} AS {cast})" if quoted else f"CAST(NULL AS {cast})"

    escaped = str(path).replace("'", "''")
    sql = f"""
        SELECT CAST(file_row_number + 1 AS BIGINT) AS line,
               {col('key')} AS key, {col('reply')} AS reply, NULLIF(upper(trim({col('letter')})), '') AS letter,
               {col('gold')} AS gold, {col('verdict', 'BOOLEAN')} AS verdict, NULLIF(trim({col('probs')}), '') AS probs,
               {col('task')} AS task, {col('run')} AS run
        FROM read_parquet('{escaped}', file_row_number = true)
    """
    return RawPredictions(path=path, format="parquet", where="row", sql=sql)


READERS: dict[str, Callable[..., RawPredictions]] = {
    "viewspatial-csv": lambda path, mapping=None: read_official_csv(path),
    "results-json": lambda path, mapping=None: read_records(path, mapping, "results-json"),
    "jsonl": lambda path, mapping=None: read_records(path, mapping, "jsonl"),
    "csv": lambda path, mapping=None: read_records(path, mapping, "csv"),
    "tsv": lambda path, mapping=None: read_records(path, mapping, "tsv"),
    "lmms-eval": lambda path, mapping=None: read_lmms_eval(path),
    "vlmevalkit": lambda path, mapping=None: read_vlmevalkit(path),
    "parquet": read_parquet_fast,
}
