"""Prediction files, every supported format, read into one shape.

Each reader returns :class:`RawPredictions`: one row per answer with the columns
``line`` (where the row is in the file), ``key`` (the item id as written), ``reply`` (raw
text), ``letter`` (a letter the file already decided, e.g. argmax of scored options),
``gold`` (the file's own gold answer), ``verdict`` (the file's own correct/incorrect),
``probs`` (JSON {letter: p}), ``task`` and ``run`` (for files holding several runs).
Matching keys to items, checking gold answers and scoring happen later, in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError
from orienteer.data.formats.common import as_text, iter_jsonl, parse_bool, pick_column, probs_json, read_text, require_nonempty
from orienteer.data.formats.tables import read_rows

COLUMN_TYPES: dict[str, str] = {
    "line": "BIGINT", "key": "VARCHAR", "reply": "VARCHAR", "letter": "VARCHAR", "gold": "VARCHAR",
    "verdict": "BOOLEAN", "probs": "VARCHAR", "task": "VARCHAR", "run": "VARCHAR",
}
OFFICIAL_CSV_HEADER = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]
EXPECTED = "prediction records"

ALIASES: dict[str, tuple[str, ...]] = {
    "key": ("id", "item_id", "question_id", "index", "idx", "doc_id", "uid", "ID"),
    "reply": ("pred", "prediction", "predicted_answer", "response", "reply", "output", "model_answer", "text"),
    "letter": ("letter", "pred_letter", "predicted_letter"),
    "gold": ("gt", "gold", "correct_answer", "target", "ground_truth", "answer"),
    "verdict": ("correct", "is_correct", "iscorrect", "hit"),
    "probs": ("probs", "probabilities", "option_probs"),
    "task": ("task", "question_type", "category"),
    "run": ("run", "run_name", "model"),
}


@dataclass
class RawPredictions:
    """Rows of one prediction file; ``where`` is the unit ``line`` counts in ("line", "row", "record").

    Small files arrive as Python ``columns`` (name -> values, see COLUMN_TYPES); large Parquet
    files as ``sql``, a SELECT DuckDB runs over the file itself.
    """

    path: Path
    format: str
    where: str
    columns: dict[str, list[Any]] | None = None
    sql: str | None = None

    def location(self, line: int) -> str:
        return f"{self.where} {line}"


def _build(path: Path, fmt: str, where: str, records: list[dict[str, Any]]) -> RawPredictions:
    if not records:
        raise InputError(path, f"no {EXPECTED} found")
    columns = {name: [r[name] for r in records] for name in COLUMN_TYPES}
    return RawPredictions(path=path, format=fmt, where=where, columns=columns)


def _line_number(where: str) -> int:
    return int(where.rsplit(" ", 1)[1])


def _record(path: Path, where: str, **fields: Any) -> dict[str, Any]:
    try:
        verdict = parse_bool(fields.get("verdict"))
    except ValueError as exc:
        raise InputError(path, f"verdict: {exc}", where=where) from None
    try:
        probs = probs_json(fields.get("probs"))
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"probs: {exc}", where=where) from None
    key = as_text(fields.get("key"))
    if key is None or not key.strip():
        raise InputError(path, "missing item id", where=where)
    letter = as_text(fields.get("letter"))
    if letter is None and probs is not None:
        scores = json.loads(probs)
        letter = max(scores, key=scores.__getitem__) if scores else None
    return {
        "line": _line_number(where),
        "key": key.strip(),
        "reply": as_text(fields.get("reply")),
        "letter": letter.strip().upper() if letter else None,
        "gold": as_text(fields.get("gold")),
        "verdict": verdict,
        "probs": probs,
        "task": as_text(fields.get("task")),
        "run": as_text(fields.get("run")),
    }


# --- the official ViewSpatial result CSV -----------------------------------------------------

def is_official_csv(header: list[str]) -> bool:
    return [h.strip() for h in header] == OFFICIAL_CSV_HEADER


def read_official_csv(path: Path) -> RawPredictions:
    columns, rows = read_rows(path, f"the ViewSpatial result CSV ({','.join(OFFICIAL_CSV_HEADER)})")
    if not is_official_csv(columns):
        raise InputError(path, f"expected the header {','.join(OFFICIAL_CSV_HEADER)}, got {','.join(columns)}", where="line 1")
    records = [
        _record(
            path,
            where,
            key=row["ID"],
            reply=row["Predicted Answer"],
            gold=row["Correct Answer"],
            verdict=row["IsCorrect"],
            task=row["Question_Type"],
        )
        for where, row in rows
    ]
    return _build(path, "viewspatial-csv", "line", records)


# --- per-item records: {"results": [...]}, flat JSONL, generic CSV/TSV/Parquet ----------------

def read_records(path: Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> RawPredictions:
    columns, rows = read_rows(path, EXPECTED)
    chosen = _resolve(path, columns, mapping or {})
    records = [_record(path, where, **{f: (row.get(c) if c else None) for f, c in chosen.items()}) for where, row in rows]
    unit = rows[0][0].split(" ")[0]
    return _build(path, fmt or _records_format(path), unit, records)


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
            path, f"no item id column (expected one of {', '.join(ALIASES['key'])}, or --map key=COLUMN); columns are: {', '.join(columns)}"
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
    text = read_text(path)
    require_nonempty(path, text, "lmms-eval samples (one JSON object per line)")
    records = []
    for number, obj in iter_jsonl(path, text):
        where = f"line {number}"
        if not looks_like_lmms_eval(obj):
            raise InputError(path, "expected an lmms-eval sample with doc_id and resps/filtered_resps", where=where)
        doc = obj.get("doc") if isinstance(obj.get("doc"), dict) else {}
        records.append(
            _record(
                path,
                where,
                key=obj["doc_id"],
                reply=_first_text(obj.get("filtered_resps")) or _first_text(obj.get("resps")),
                gold=obj.get("target") if obj.get("target") not in (None, "") else doc.get("answer"),
                verdict=_lmms_verdict(obj),
                task=doc.get("question_type") or doc.get("task") or doc.get("category"),
            )
        )
    return _build(path, "lmms-eval", "line", records)


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
    columns, rows = read_rows(path, "a VLMEvalKit result table (index, question, A, B, ..., answer, prediction)")
    if not looks_like_vlmevalkit(columns):
        raise InputError(path, f"expected VLMEvalKit columns index, answer, prediction; got {', '.join(columns)}")
    lower = {c.lower(): c for c in columns}
    records = [
        _record(
            path,
            where,
            key=row[lower["index"]],
            reply=row[lower["prediction"]],
            gold=row[lower["answer"]],
            verdict=row.get(lower.get("hit", ""), None),
            task=row.get(lower.get("category", ""), None) or row.get(lower.get("question_type", ""), None),
        )
        for where, row in rows
    ]
    unit = rows[0][0].split(" ")[0]
    return _build(path, "vlmevalkit", unit, records)


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
        return f'CAST("{column}" AS {cast})' if column else f"CAST(NULL AS {cast})"

    escaped = str(path).replace("'", "''")
    sql = f"""
        SELECT CAST(file_row_number + 1 AS BIGINT) AS line,
               trim({col('key')}) AS key, {col('reply')} AS reply, upper(trim({col('letter')})) AS letter,
               {col('gold')} AS gold, {col('verdict', 'BOOLEAN')} AS verdict, {col('probs')} AS probs,
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
