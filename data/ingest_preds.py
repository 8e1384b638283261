"""Importing a predictions file as one or more runs of a benchmark.

Everything that can fail is checked in an in-memory DuckDB before the workspace is
touched: the file's format, its item ids, duplicates, tasks and gold answers. The
workspace is then attached once, for a single transaction that writes the run(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orienteer.core.answers import PARSERS, split_option_line
from orienteer.data.catalog import BenchInfo, get_bench
from orienteer.data.errors import InputError, OrienteerError
from orienteer.data.formats.common import probs_json, shown
from orienteer.data.formats.detect import PRED_FORMATS, detect_pred_format
from orienteer.data.formats.predictions import COLUMN_TYPES, READERS, RawPredictions
from orienteer.data.names import check_name
from orienteer.data.scoring import score_staged
from orienteer.data.single import single_value
from orienteer.data.staging import stage_batches
from orienteer.data.store import RunSpec, write_runs
from orienteer.data.workspace import Workspace

# A key names an item in exactly one of three ways, tried in this order: the item's id as written;
# a 0-based index in plain decimal digits ("123"; no sign, space, underscore, exponent or fraction);
# or a padded index behind the prefix stored with the benchmark ("viewspatial_test_000123").
# Anything else is refused: no lenient cast ("1.5", "1e3", "0x10", "1_000") and no guessed prefix.
_DIGITS = "[0-9]{1,18}"


@dataclass(frozen=True)
class RunImport:
    name: str
    run_id: int
    rows: int
    correct: int
    n_items: int
    ids: dict[str, int] = field(default_factory=dict)  # rows per id form: item_id, index, padded
    gold_rows: int = 0  # rows whose gold answer was checked against the benchmark
    warning: str | None = None  # e.g. ids read by position with no gold answer to confirm them
    # The file's field (column, JSON key) whose answers were scored, e.g. "filtered_resps" for an
    # lmms-eval log (untrusted text from the file: show it escaped); None if the reader cannot say.
    scored_field: str | None = None


def read_predictions(path: Path, fmt: str | None = None, mapping: Mapping[str, str] | None = None) -> RawPredictions:
    fmt = fmt or detect_pred_format(path)
    if fmt not in READERS:
        raise OrienteerError(f"unknown predictions format {fmt!r} (expected one of {', '.join(PRED_FORMATS)})")
    return READERS[fmt](path, mapping)


@dataclass(frozen=True)
class PredictionOptions:
    """How one predictions file is read and recorded (the CLI's import flags; a job's run output)."""

    fmt: str | None = None  # None: detected from the file
    parser: str = "viewspatial"
    replace: bool = False
    model: str | None = None
    notes: str | None = None
    mapping: Mapping[str, str] | None = None  # field -> column, for files whose columns are named otherwise
    created_by_job: str | None = None


def import_predictions(
    ws: Workspace,
    path: Path,
    bench: str,
    run: str | None = None,
    *,
    fmt: str | None = None,
    parser: str = "viewspatial",
    replace: bool = False,
    model: str | None = None,
    notes: str | None = None,
    mapping: Mapping[str, str] | None = None,
    created_by_job: str | None = None,
) -> list[RunImport]:
    """Import a predictions file as run(s) of ``bench`` in one transaction (keywords: :class:`PredictionOptions`)."""
    options = PredictionOptions(fmt=fmt, parser=parser, replace=replace, model=model, notes=notes, mapping=mapping,
                                created_by_job=created_by_job)
    with ws.staging() as con:
        prepared = prepare_predictions(con, ws, path, bench, run, options)
        with ws.attach_for_write(con):
            return write_prepared(con, prepared)


@dataclass(frozen=True)
class PreparedRuns:
    """Predictions parsed, checked and scored in a staging database, ready to be written."""

    bench: str
    bench_id: int
    n_items: int
    names: list[str]
    specs: list[RunSpec]
    replace: bool
    ids: dict[str, int] = field(default_factory=dict)
    gold_rows: int = 0
    warning: str | None = None
    scored_field: str | None = None


def prepare_predictions(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    path: Path,
    bench: str,
    run: str | None = None,
    options: PredictionOptions = PredictionOptions(),
) -> PreparedRuns:
    """Everything that can fail about a predictions file, done on the staging connection ``con``."""
    parser, replace = options.parser, options.replace
    if parser not in PARSERS:
        raise OrienteerError(f"unknown parser {parser!r} (expected one of {', '.join(PARSERS)})")
    if run is not None:
        check_name(run, "run")
    raw = read_predictions(path, options.fmt, options.mapping)
    info = _stage(con, ws, raw, bench)
    names = _run_names(con, raw, run)
    ids = _resolve_keys(con, raw, bench, run, info)
    gold_rows = _check_gold(con, raw, bench)
    _check_tasks(con, raw, bench)
    score_staged(con, parser)
    clash = [n for n in names if n in info.run_names]
    if clash and not replace:
        raise OrienteerError(f"run {', '.join(clash)} already exists; pass --replace to replace it")
    specs = [
        RunSpec(name=n, model=options.model, notes=options.notes, parser=parser, source_path=str(path.resolve()),
                source_format=raw.format, created_by_job=options.created_by_job)
        for n in names
    ]
    return PreparedRuns(bench, info.bench_id, info.n_items, names, specs, replace, ids, gold_rows,
                        _position_warning(ids, gold_rows, bench), raw.scored_field())


def _position_warning(ids: dict[str, int], gold_rows: int, bench: str) -> str | None:
    """Ids that only give a position (an index, a padded index, or a benchmark whose item ids are
    its indexes) with no gold answer in the file: nothing shows that the file answers this benchmark."""
    positional = ids.get("index", 0) + ids.get("padded", 0) + ids.get("position_id", 0)
    if not positional or gold_rows:
        return None
    return (f"ids are positions (0-based indexes) and the file has no gold answers to check them against: "
            f"make sure it answers benchmark {bench!r}, in its order")


def write_prepared(con: duckdb.DuckDBPyConnection, prepared: PreparedRuns) -> list[RunImport]:
    """Write prepared runs inside the caller's transaction on the attached workspace ``ws``."""
    get_bench(con, prepared.bench, catalog="ws")
    ids = write_runs(con, prepared.bench_id, prepared.specs, replace=prepared.replace)
    summary = con.execute(
        """SELECT run_id, sum(answered), sum(correct) FROM ws.run_task_stats
           WHERE list_contains(?, run_id) GROUP BY run_id""",
        [list(ids.values())],
    ).fetchall()
    counts = {run_id: (int(n), int(c)) for run_id, n, c in summary}
    forms: dict[str, int] = {}
    for k, v in prepared.ids.items():  # an item id that is the item's index (ViewSpatial JSON) reads as an index
        forms["index" if k == "position_id" else k] = forms.get("index" if k == "position_id" else k, 0) + v
    return [RunImport(n, ids[n], counts[ids[n]][0], counts[ids[n]][1], prepared.n_items, forms, prepared.gold_rows,
                      prepared.warning, prepared.scored_field) for n in prepared.names]


@dataclass(frozen=True)
class _Target:
    bench_id: int
    n_items: int
    run_names: frozenset[str]
    id_prefix: str | None


def _stage(con: duckdb.DuckDBPyConnection, ws: Workspace, raw: RawPredictions, bench: str) -> _Target:
    """Copy the benchmark's items from the workspace and the file's rows into the staging database."""
    with ws.attach_read(con, "src"):
        info: BenchInfo = get_bench(con, bench, catalog="src")
        con.execute(
            """CREATE TEMP TABLE items AS
               SELECT item_idx, item_id, task, option_letters, option_labels, answer_letter, answer_label
               FROM src.items WHERE bench_id = ? ORDER BY item_idx""",
            [info.bench_id],
        )
        run_names = frozenset(r[0] for r in con.execute("SELECT name FROM src.runs").fetchall())
        id_prefix = single_value(con, "SELECT id_prefix FROM src.benchmarks WHERE bench_id = ?", [info.bench_id])
    if raw.batches is not None:
        stage_batches(con, "raw", raw.batches, COLUMN_TYPES)
    else:
        try:
            con.execute(f"CREATE TEMP VIEW raw AS {raw.sql}")
        except duckdb.Error as exc:
            raise InputError(raw.path, f"unreadable: {str(exc).splitlines()[0]}") from None
        _check_sql_probs(con, raw)
    if single_value(con, "SELECT count(*) FROM raw") == 0:
        raise InputError(raw.path, "no prediction records found")
    return _Target(info.bench_id, info.n_items, run_names, id_prefix or None)


def _check_sql_probs(con: duckdb.DuckDBPyConnection, raw: RawPredictions) -> None:
    """Probabilities of a file read by DuckDB (Parquet) obey the same rule as the streamed formats'."""
    bad = con.execute(
        """SELECT line, probs FROM raw WHERE probs IS NOT NULL AND NOT COALESCE(
               json_valid(probs) AND json_type(probs::JSON) = 'OBJECT'
               AND list_bool_and(list_transform(map_values(TRY_CAST(probs::JSON AS MAP(VARCHAR, DOUBLE))),
                                                lambda x: x IS NOT NULL AND isfinite(x) AND x >= 0)), FALSE)
           ORDER BY line LIMIT 1"""
    ).fetchone()
    if bad:
        try:
            probs_json(bad[1])
            reason = "expected a JSON object of finite probabilities >= 0"
        except (ValueError, TypeError) as exc:
            reason = str(exc)
        raise InputError(raw.path, f"probs: {reason}", where=raw.location(bad[0]))


def _run_names(con: duckdb.DuckDBPyConnection, raw: RawPredictions, run: str | None) -> list[str]:
    in_file = [r[0] for r in con.execute("SELECT DISTINCT run FROM raw WHERE run IS NOT NULL ORDER BY run").fetchall()]
    missing = single_value(con, "SELECT min(line) FROM raw WHERE run IS NULL")
    if run is not None:
        if len(in_file) > 1:
            raise InputError(raw.path, f"holds {len(in_file)} runs ({', '.join(shown(n, 30) for n in in_file[:5])}...); "
                                       "leave out --run to import each")
        return [run]
    if not in_file:
        raise OrienteerError(f"{raw.path}: name the run with --run NAME")
    if missing is not None:
        raise InputError(raw.path, "no run name on this row (the file names runs in a run column)", where=raw.location(missing))
    for name in in_file:
        try:
            check_name(name, "run")
        except OrienteerError as exc:
            line = single_value(con, "SELECT min(line) FROM raw WHERE run = ?", [name])
            raise InputError(raw.path, str(exc), where=raw.location(line)) from None
    return in_file


def _sql_literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _resolve_keys(
    con: duckdb.DuckDBPyConnection, raw: RawPredictions, bench: str, run: str | None, target: _Target
) -> dict[str, int]:
    """Map keys to items and define ``keyed`` (a view over the file's rows); refuse unknown and duplicate ids.

    Keys repeat across runs (1,750 runs x 5,712 items share 5,712 keys), so each distinct key
    is resolved once into the small table ``keymap`` and the rows are never copied.
    ``run`` names every row's run when given. Returns the rows per id form (``position_id``:
    an exact item id that is also the item's index, as in the ViewSpatial JSON).
    """
    missing = single_value(con, "SELECT min(line) FROM raw WHERE key IS NULL OR trim(key) = ''")
    if missing is not None:
        raise InputError(raw.path, "missing item id", where=raw.location(missing))
    # Item ids that are numbers other than their own index make a bare number ambiguous: no index then.
    index_ok = not single_value(
        con,
        f"SELECT count(*) FROM items WHERE regexp_full_match(item_id, '{_DIGITS}') AND item_id <> item_idx::VARCHAR"
    )
    prefix = target.id_prefix
    con.execute(
        f"""
        CREATE TEMP TABLE keymap AS
        WITH k AS (SELECT DISTINCT key FROM raw),
        c AS (
            SELECT k.key, a.item_idx AS exact_idx, a.item_id = a.item_idx::VARCHAR AS exact_is_position,
                   CASE WHEN {str(index_ok).upper()} AND regexp_full_match(k.key, '{_DIGITS}')
                        THEN k.key::BIGINT END AS index_idx,
                   CASE WHEN $prefix IS NOT NULL AND starts_with(k.key, $prefix)
                             AND regexp_full_match(substr(k.key, length($prefix) + 1), '{_DIGITS}')
                        THEN substr(k.key, length($prefix) + 1)::BIGINT END AS padded_idx
            FROM k LEFT JOIN items a ON a.item_id = k.key
        )
        SELECT c.key,
               COALESCE(c.exact_idx, b.item_idx, p.item_idx) AS item_idx,
               CASE WHEN c.exact_idx IS NOT NULL THEN (CASE WHEN c.exact_is_position THEN 'position_id' ELSE 'item_id' END)
                    WHEN b.item_idx IS NOT NULL THEN 'index'
                    WHEN p.item_idx IS NOT NULL THEN 'padded' END AS form
        FROM c LEFT JOIN items b ON c.exact_idx IS NULL AND b.item_idx = c.index_idx
        LEFT JOIN items p ON c.exact_idx IS NULL AND p.item_idx = c.padded_idx
        """,
        {"prefix": prefix},
    )
    unknown = con.execute(
        """SELECT r.line, r.key FROM raw r JOIN keymap m USING (key) WHERE m.item_idx IS NULL ORDER BY r.line LIMIT 1"""
    ).fetchone()
    if unknown:
        n = single_value(con, "SELECT count(*) FROM raw r JOIN keymap m USING (key) WHERE m.item_idx IS NULL")
        raise InputError(
            raw.path,
            f"id {shown(unknown[1])} matches no item of benchmark {bench!r} "
            f"(expected {_id_forms(con, target.n_items, index_ok, prefix)}); {n} row(s) like this",
            where=raw.location(unknown[0]),
        )
    con.execute(
        f"""
        CREATE TEMP VIEW keyed AS
        SELECT r.line, COALESCE({_sql_literal(run)}, r.run) AS run, m.item_idx, r.key, r.reply,
               r.letter AS given_letter, r.gold, r.verdict, r.probs, r.task
        FROM raw r JOIN keymap m USING (key)
        """
    )
    dup = con.execute(
        """SELECT run, item_idx FROM keyed GROUP BY run, item_idx HAVING count(*) > 1 ORDER BY min(line) LIMIT 1"""
    ).fetchone()
    if dup:
        lines = [r[0] for r in con.execute(
            "SELECT line FROM keyed WHERE run IS NOT DISTINCT FROM ? AND item_idx = ? ORDER BY line LIMIT 2", list(dup)
        ).fetchall()]
        raise InputError(
            raw.path,
            f"duplicate id: {raw.where}s {lines[0]} and {lines[1]} both answer item {dup[1]}"
            + (f" of run {dup[0]!r}" if dup[0] else ""),
            where=raw.location(lines[1]),
        )
    forms = con.execute("SELECT m.form, count(*) FROM raw r JOIN keymap m USING (key) GROUP BY m.form").fetchall()
    return {form: int(n) for form, n in forms}


def _id_forms(con: duckdb.DuckDBPyConnection, n_items: int, index_ok: bool, prefix: str | None) -> str:
    """What the benchmark's ids look like, for an error line."""
    first = con.execute("SELECT item_id FROM items ORDER BY item_idx LIMIT 1").fetchone()
    forms = [f"an item id like {shown(first[0])}" if first else "an item id"]
    if index_ok:
        forms.append(f"an index 0-{n_items - 1} in plain digits")
    if prefix:
        forms.append(f"a padded id like {prefix}{0:06d}")
    return ", ".join(forms[:-1]) + " or " + forms[-1] if len(forms) > 1 else forms[0]


def _check_tasks(con: duckdb.DuckDBPyConnection, raw: RawPredictions, bench: str) -> None:
    bad = con.execute(
        """SELECT k.line, k.task, i.task, i.item_id FROM keyed k JOIN items i USING (item_idx)
           WHERE k.task IS NOT NULL AND trim(k.task) <> '' AND trim(k.task) <> i.task ORDER BY k.line LIMIT 1"""
    ).fetchone()
    if bad:
        raise InputError(
            raw.path,
            f"task {bad[1]!r} is not the task of item {bad[3]} in benchmark {bench!r} (expected {bad[2]!r})",
            where=raw.location(bad[0]),
        )


def gold_agrees(gold: str, letters: list[str], labels: list[str], answer_letter: str) -> bool:
    """Whether a file's gold cell ("A", "A. right", "(A)", "right") names the item's answer."""
    text = gold.strip()
    answer_label = labels[letters.index(answer_letter)]
    bare = text.strip("()").rstrip(".").strip()
    if len(bare) == 1 and bare.isalpha():
        return bare.upper() == answer_letter
    try:
        letter, label = split_option_line(text)
        return letter == answer_letter and label.casefold() == answer_label.casefold()
    except ValueError:
        return text.casefold() == answer_label.casefold()


def _check_gold(con: duckdb.DuckDBPyConnection, raw: RawPredictions, bench: str) -> int:
    """Refuse gold answers that disagree with the benchmark; returns the rows whose gold was checked."""
    combos = con.execute(
        """WITH g AS (SELECT gold, item_idx, min(line) AS line FROM keyed
                      WHERE gold IS NOT NULL AND trim(gold) <> '' GROUP BY gold, item_idx)
           SELECT g.gold, i.item_id, i.option_letters, i.option_labels, i.answer_letter, i.answer_label, g.line
           FROM g JOIN items i USING (item_idx)"""
    ).fetchall()
    bad = [c for c in combos if not gold_agrees(c[0], c[2], c[3], c[4])]
    if bad:
        first = min(bad, key=lambda c: c[6])
        raise InputError(
            raw.path,
            f"gold answer {first[0]!r} disagrees with item {first[1]} of benchmark {bench!r} "
            f"({first[4]}. {first[5]}); {len(bad)} of {len(combos)} answered items disagree: "
            "is this file for another benchmark?",
            where=raw.location(first[6]),
        )
    return int(single_value(con, "SELECT count(*) FROM keyed WHERE gold IS NOT NULL AND trim(gold) <> ''"))
