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

import glob
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError
from orienteer.data.formats.common import _FALSE as _FALSE_WORDS
from orienteer.data.formats.common import _TRUE as _TRUE_WORDS
from orienteer.data.formats.common import as_text, key_text, parse_bool, pick_column, probs_json, shown
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
    # Which field of the file held the reply that is scored, with its rows (e.g. {"filtered_resps": 200}):
    # a reader that picks it per record (lmms-eval) fills it while the batches are read.
    scored: dict[str, int] = field(default_factory=dict)

    def location(self, line: int) -> str:
        return f"{self.where} {line}"

    def scored_field(self) -> str | None:
        """The field(s) scored, for the import summary: "filtered_resps", or "filtered_resps (150 rows), resps (50 rows)"."""
        if not self.scored:
            return None
        if len(self.scored) == 1:
            return next(iter(self.scored))
        return ", ".join(f"{name} ({n} rows)" for name, n in self.scored.items())


FIELDS = tuple(name for name in COLUMN_TYPES if name != "line")
_TEXT_FIELDS = ("reply", "gold", "task", "run")
_VERDICT_WORDS = {**{w: True for w in _TRUE_WORDS}, **{w: False for w in _FALSE_WORDS}, "": None}
_BAD = object()


def _build(path: Path, fmt: str, unit: str, fields: tuple[str, ...], rows: Iterable[tuple[Any, ...]],
           chosen: Mapping[str, str | None] | None = None) -> RawPredictions:
    """Wrap an iterator of raw rows ``(line, *values of fields)`` as lazily built, checked column batches;
    ``chosen`` (field -> column) says which column is scored."""
    return RawPredictions(path=path, format=fmt, where=unit, batches=_batched(path, unit, fields, rows),
                          scored=_scored_columns(chosen or {}))


def _scored_columns(chosen: Mapping[str, str | None]) -> dict[str, int]:
    """The column the answer comes from, first found of letter, probabilities, reply (the order a row's
    letter is decided in; a row without the first falls to the next)."""
    names = [chosen[f] for f in ("letter", "probs", "reply") if chosen.get(f)]
    return {" then ".join(str(n) for n in names): 0} if names else {}


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


def read_official_csv(path: Path, mapping: Mapping[str, str] | None = None) -> RawPredictions:
    columns, unit, rows = _table(path, f"the ViewSpatial result CSV ({','.join(OFFICIAL_CSV_HEADER)})")
    if not is_official_csv(columns):
        raise InputError(path, f"expected the header {','.join(OFFICIAL_CSV_HEADER)}, got {','.join(columns)}", where="line 1")
    chosen = _mapped(path, columns, {"key": "ID", "reply": "Predicted Answer", "gold": "Correct Answer",
                                     "verdict": "IsCorrect", "task": "Question_Type"}, mapping)
    fields, picked = _picked(columns, chosen, rows)
    return _build(path, "viewspatial-csv", unit, fields, picked, chosen)


# --- per-item records: {"results": [...]}, flat JSONL, generic CSV/TSV/Parquet ----------------

_HEAD_BYTES = 4096
_LMMS_AGGREGATE_KEYS = ('"configs"', '"versions"', '"n-samples"', '"higher_is_better"', '"n-shot"', '"group_subtasks"')


def _head_text(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(_HEAD_BYTES).decode("utf-8-sig", errors="replace")
    except OSError:
        return ""


def _listed(names: list[str]) -> str:
    return ", ".join(shown(n, 80) for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def summary_file_error(path: Path, columns: list[str] | None = None) -> None:
    """Refuse a tool's score summary, which holds no items, naming the per-item file beside it.

    lmms-eval writes ``<date>_results.json`` (aggregate metrics; ``results.json`` before v0.3) next
    to ``<date>_samples_<task>.jsonl`` (per item, with --log_samples). VLMEvalKit writes
    ``<model>_<dataset>_acc.csv`` (accuracy per split and category; ``_acc.json`` with EVAL_FORMAT=json)
    from ``<model>_<dataset>.xlsx`` (``eval_file.replace('.xlsx', '_acc.csv')``; ``.tsv``/``.json`` with
    PRED_FORMAT, vlmeval/smp/file.py).
    ``columns`` given: only a table without an item id column is taken for a summary.
    """
    name = path.name
    lower = name.lower()
    if columns is None and lower.endswith("results.json"):
        head = _head_text(path).lstrip()
        if head.startswith("{") and '"results"' in head and any(k in head for k in _LMMS_AGGREGATE_KEYS):
            prefix = name[: -len("_results.json")] if lower.endswith("_results.json") else ""
            found = sorted(p.name for p in path.parent.glob(f"{glob.escape(prefix)}_samples_*.jsonl")) if prefix else []
            found = found or sorted(p.name for p in path.parent.glob("*_samples_*.jsonl"))
            where = (f"import the samples file beside it: {_listed(found)}" if found else
                     "import its samples file, <date>_samples_<task>.jsonl (<task>.json before v0.3; none beside "
                     "it: run lmms-eval with --log_samples to write one)")
            raise InputError(path, "is lmms-eval's aggregate results file (scores per task, no items); " + where)
        return
    stem, dot, suffix = name.rpartition(".")
    if columns is not None and dot and stem.lower().endswith("_acc") and suffix.lower() in ("csv", "tsv", "xlsx", "json"):
        if pick_column(columns, ALIASES["key"]) is None:
            base = stem[: -len("_acc")]
            found = [f"{base}.{ext}" for ext in ("xlsx", "tsv", "json", "csv") if (path.parent / f"{base}.{ext}").is_file()]
            where = (f"import the predictions file beside it: {_listed(found)}" if found else
                     f"import the predictions file VLMEvalKit wrote with it ({shown(base + '.xlsx', 80)} or .tsv; "
                     "none beside it)")
            raise InputError(path, "is VLMEvalKit's accuracy summary (one row per split, no items); " + where)


def read_records(path: Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> RawPredictions:
    summary_file_error(path)
    columns, unit, rows = _table(path, EXPECTED)
    if path.suffix.lower() == ".json" and looks_like_lmms_eval(dict.fromkeys(columns)):
        return _lmms_records(path, unit, rows, mapping)  # lmms-eval before v0.3 wrote its samples as <task>.json
    try:
        chosen = _resolve(path, columns, mapping or {})
    except InputError:
        summary_file_error(path, columns)
        raise
    fields, picked = _picked(columns, chosen, rows)
    return _build(path, fmt or _records_format(path), unit, fields, picked, chosen)


def _records_format(path: Path) -> str:
    return {".json": "results-json", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}.get(
        path.suffix.lower(), path.suffix.lower().lstrip(".")
    )


def _check_fields(path: Path, mapping: Mapping[str, str]) -> None:
    """``--map`` may only name Orienteer's fields (key, reply, ...)."""
    unknown = set(mapping) - set(ALIASES)
    if unknown:
        raise InputError(path, f"--map names unknown fields {sorted(unknown)} (expected {', '.join(ALIASES)})")


def _mapped(path: Path, columns: list[str], chosen: dict[str, str | None],
            mapping: Mapping[str, str] | None) -> dict[str, str | None]:
    """A fixed format's columns with ``--map`` applied: a mapped column must exist (why: a typo
    would otherwise silently score the format's own column instead)."""
    mapping = mapping or {}
    _check_fields(path, mapping)
    for name, column in mapping.items():
        if column not in columns:
            raise InputError(path, f"--map {name}={column}: no such column (columns are: {', '.join(columns)})")
    return {**chosen, **mapping}


def _resolve(path: Path, columns: list[str], mapping: Mapping[str, str]) -> dict[str, str | None]:
    _check_fields(path, mapping)
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
#
# How lmms-eval writes a sample (lmms_eval/evaluator.py and loggers/evaluation_tracker.py,
# v0.3 to v0.7.2): ``resps`` is the model's raw output, ``filtered_resps`` what the task's filters
# (and, with --reasoning_tags, the <think> stripping) made of it; process_results scores
# ``filtered_resps`` only. v0.4+ drops ``resps`` when it equals ``filtered_resps``; v0.7 flattens
# one-request samples (``"filtered_resps": "B"`` instead of ``["B"]``). So ``filtered_resps``,
# when present, IS the answer, even when empty (the model never closed its thinking: lmms-eval
# scores that item wrong); only a record without it (other writers, older files) falls back to
# ``resps``. The task's metrics follow, under the names its process_results returns.

# Keys lmms-eval writes about the sample itself; every other key is one of the task's metrics.
_LMMS_SAMPLE_KEYS = frozenset({
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "raw_filtered_resps", "doc_hash",
    "prompt_hash", "target_hash", "input", "token_counts", "input_media", "filter", "metrics",
})
# Metric names that are per-item verdicts, tried first (viewspatial: overall_accuracy {"score": ...}).
_LMMS_VERDICT_KEYS = ("overall_accuracy", "exact_match", "accuracy", "acc", "correct", "score", "viewspatial_score")
_LMMS_INNER_KEYS = ("correct", "is_correct", "score", "accuracy", "acc", "exact_match")
_LMMS_FIELDS = ("key", "reply", "letter", "gold", "verdict", "probs", "task", "run")


def looks_like_lmms_eval(first: Mapping[str, Any]) -> bool:
    return "doc_id" in first and ("filtered_resps" in first or "resps" in first)


def read_lmms_eval(path: Path, mapping: Mapping[str, str] | None = None) -> RawPredictions:
    """lmms-eval's per-sample log; ``mapping`` names the JSON key to read a field from instead
    (``--map reply=resps`` scores the raw output on purpose)."""
    _check_fields(path, mapping or {})
    summary_file_error(path)
    if path.suffix.lower() == ".json":  # lmms-eval before v0.3: <task>.json, {"args", "model_configs", "logs": [...]}
        _, unit, records = iter_rows(path, "lmms-eval samples (a JSON object with a \"logs\" list)")
    else:
        unit, records = "line", iter_jsonl_file(path, "lmms-eval samples (one JSON object per line)")
    return _lmms_records(path, unit, records, mapping)


def _lmms_records(path: Path, unit: str, records: Iterator[tuple[int, Mapping[str, Any]]],
                  mapping: Mapping[str, str] | None) -> RawPredictions:
    """Samples ``(number, object)`` read as rows (see the notes above)."""
    mapping = dict(mapping or {})
    _check_fields(path, mapping)
    raw = RawPredictions(path=path, format="lmms-eval", where=unit)
    scored = raw.scored

    def rows() -> Iterator[tuple[Any, ...]]:
        first = True
        for number, obj in records:
            if first:
                missing = [f"{name}={key}" for name, key in mapping.items() if key not in obj]
                if missing:
                    keys = [str(k) for k in obj]
                    listed = ", ".join(keys[:30]) + (f" and {len(keys) - 30} more" if len(keys) > 30 else "")
                    raise InputError(path, f"--map {missing[0]}: no such key (keys are: {listed})",
                                     where=f"{unit} {number}")
                first = False
            if not looks_like_lmms_eval(obj):
                raise InputError(path, "expected an lmms-eval sample with doc_id and resps/filtered_resps",
                                 where=f"{unit} {number}")
            doc = obj["doc"] if isinstance(obj.get("doc"), dict) else {}
            if "reply" in mapping:
                source = mapping["reply"]
                reply = _first_text(obj.get(source))
            elif "filtered_resps" in obj:
                source, reply = "filtered_resps", _first_text(obj["filtered_resps"])
            else:
                source, reply = "resps", _first_text(obj.get("resps"))
            scored[source] = scored.get(source, 0) + 1
            values = {
                "key": obj["doc_id"],
                "reply": reply,
                "letter": None,
                "gold": obj.get("target") if obj.get("target") not in (None, "") else doc.get("answer"),
                "verdict": lmms_verdict(obj),
                "probs": None,
                "task": doc.get("question_type") or doc.get("task") or doc.get("category") or _metric_task(obj),
                "run": None,
            }
            for name, key in mapping.items():
                if name == "reply":
                    continue
                value = obj.get(key)
                values[name] = _verdict_value(value) if name == "verdict" else (
                    value if name == "probs" else _first_text(value) if isinstance(value, list) else value)
            yield (number, *(values[name] for name in _LMMS_FIELDS))

    raw.batches = _batched(path, unit, _LMMS_FIELDS, rows())
    return raw


def _first_text(value: Any) -> str | None:
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _verdict_value(value: Any) -> bool | None:
    """A metric's value as a per-item verdict: 0/1 (or true/false), or a dict holding one (``{"score": 1.0}``)."""
    if isinstance(value, Mapping):
        for inner in _LMMS_INNER_KEYS:
            found = _verdict_value(value.get(inner)) if not isinstance(value.get(inner), Mapping) else None
            if found is not None:
                return found
        return None
    if isinstance(value, (bool, int, float)) and value in (0, 1):
        return bool(value)
    return None


def lmms_verdict(obj: Mapping[str, Any]) -> bool | None:
    """The task's own verdict on the item, read from its metric fields.

    Known verdict names come first (viewspatial's ``overall_accuracy``); otherwise every other
    metric that holds a 0/1 value must agree (a task with a graded score has no verdict)."""
    for key in _LMMS_VERDICT_KEYS:
        found = _verdict_value(obj.get(key))
        if found is not None:
            return found
    seen = {v for k, value in obj.items() if k not in _LMMS_SAMPLE_KEYS and (v := _verdict_value(value)) is not None}
    return seen.pop() if len(seen) == 1 else None


def _metric_task(obj: Mapping[str, Any]) -> str | None:
    """The item's question type as a metric records it (viewspatial's per-type metrics carry
    ``question_type``; v0.4+ samples have no ``doc``); "unknown" is lmms-eval's placeholder."""
    for key, value in obj.items():
        if key not in _LMMS_SAMPLE_KEYS and isinstance(value, Mapping):
            task = value.get("question_type")
            if isinstance(task, str) and task.strip() and task != "unknown":
                return task
    return None


# --- VLMEvalKit .xlsx / .tsv ------------------------------------------------------------------

def looks_like_vlmevalkit(columns: list[str]) -> bool:
    lower = {c.lower() for c in columns}
    return {"index", "prediction", "answer"} <= lower


def read_vlmevalkit(path: Path, mapping: Mapping[str, str] | None = None) -> RawPredictions:
    columns, unit, rows = _table(path, "a VLMEvalKit result table (index, question, A, B, ..., answer, prediction)")
    if not looks_like_vlmevalkit(columns):
        summary_file_error(path, columns)
        raise InputError(path, f"expected VLMEvalKit columns index, answer, prediction; got {', '.join(columns)}")
    lower = {c.lower(): c for c in columns}
    chosen = _mapped(path, columns, {"key": lower["index"], "reply": lower["prediction"], "gold": lower["answer"],
                                     "verdict": lower.get("hit"),
                                     "task": lower.get("category") or lower.get("question_type")}, mapping)
    fields, picked = _picked(columns, chosen, rows)
    return _build(path, "vlmevalkit", unit, fields, picked, chosen)


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

    def col(name: str, cast: str = "VARCHAR") -> str:
        column = chosen[name]
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
    return RawPredictions(path=path, format="parquet", where="row", sql=sql, scored=_scored_columns(chosen))


READERS: dict[str, Callable[..., RawPredictions]] = {
    "viewspatial-csv": read_official_csv,
    "results-json": lambda path, mapping=None: read_records(path, mapping, "results-json"),
    "jsonl": lambda path, mapping=None: read_records(path, mapping, "jsonl"),
    "csv": lambda path, mapping=None: read_records(path, mapping, "csv"),
    "tsv": lambda path, mapping=None: read_records(path, mapping, "tsv"),
    "lmms-eval": read_lmms_eval,
    "vlmevalkit": read_vlmevalkit,
    "parquet": read_parquet_fast,
}
