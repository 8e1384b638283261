"""The failures list: filtered, sorted pages of predictions (deep pages by keyset), counts and item ids."""

from __future__ import annotations

from typing import Any

import duckdb

from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError
from orienteer.data.filters import CompiledFilter, PredictionFilter, compile_filter
from orienteer.data.single import single_value
from orienteer.data.unanswered import UNANSWERED

# Each sort orders by its leading column(s), then run and item: a stable, total order.
SORTS: dict[str, tuple[str, ...]] = {
    "item": (),
    "task": ("p.task",),
    "category": ("p.category",),
    "gold": ("p.gold_label",),
    "pred": ("p.pred_label",),
}
DEEP_OFFSET = 5_000

ROW_COLUMNS = """r.name AS run, i.item_id, p.item_idx, p.task, i.source, i.question, p.gold_label,
                 i.answer_letter AS gold_letter, p.letter AS pred_letter, p.pred_label, p.outcome, p.category,
                 p.reply, p.correct"""

ITEM_JOIN = """FROM predictions p JOIN runs r ON r.run_id = p.run_id
               JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx"""


def predictions_page(
    con: duckdb.DuckDBPyConnection, filt: PredictionFilter, *, sort: str = "item", limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of predictions matching the filter (failures by default), in the sort's order.

    The page's keys come from ``predictions`` alone; only its rows are joined to items and runs.
    Deep offsets are found without sorting everything before them: rows are counted per
    (sort value, run), the bucket holding the offset is located, and only it is read.
    """
    if sort not in SORTS:
        raise WorkspaceError(f"unknown sort {sort!r} (expected one of {', '.join(SORTS)})")
    cf = compile_filter(con, filt)
    lead = SORTS[sort]
    if offset >= DEEP_OFFSET:
        keys = _deep_page_keys(con, cf, lead, limit, offset, filt)
    elif lead:
        keys = _keys_by_value(con, cf, lead[0], limit, offset, filt)
    else:
        keys = con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} ORDER BY p.run_id, p.item_idx LIMIT ? OFFSET ?",
            cf.params + [limit, offset],
        ).fetchall()
    return rows_for_keys(con, keys)


def _keys_by_value(
    con: duckdb.DuckDBPyConnection, cf: CompiledFilter, column: str, limit: int, offset: int, filt: PredictionFilter
) -> list[tuple[int, int]]:
    """A page in (column, run, item) order without sorting every matching row.

    Sorting millions of failures by a text column to keep 100 of them costs 150-300 ms; instead the
    sort values are walked in order (the next one is a ``min`` over the filter, or comes from the
    per-(run, task) cache for tasks) and only rows holding the current value are read, in
    (run, item) order, which DuckDB's zone maps make cheap. NULLs come last, as in ``ORDER BY``.
    """
    values = _task_values(con, filt) if column == "p.task" else None
    keys: list[tuple[int, int]] = []
    skip = offset
    previous: Any = None
    index = 0
    while len(keys) < limit:
        if values is not None:
            value = values[index] if index < len(values) else None
            index += 1
        else:
            after = f" AND {column} > ?" if previous is not None else ""
            value = single_value(con, f"SELECT min({column}) {cf.from_sql()} WHERE {cf.where}{after}",
                                 cf.params + ([previous] if previous is not None else []))
        same = f"{column} IS NULL" if value is None else f"{column} = ?"
        args = cf.params + ([] if value is None else [value])
        if skip:
            n = single_value(con, f"SELECT count(*) {cf.from_sql()} WHERE {cf.where} AND {same}", args)
            if skip >= n:
                skip -= n
                if value is None:
                    break
                previous = value
                continue
        keys += con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} AND {same} "
            "ORDER BY p.run_id, p.item_idx LIMIT ? OFFSET ?",
            args + [limit - len(keys), skip],
        ).fetchall()
        skip = 0
        if value is None:
            break
        previous = value
    return keys


def _task_values(con: duckdb.DuckDBPyConnection, filt: PredictionFilter) -> list[str]:
    """The tasks the filter can match, in order, from the per-(run, task) summary."""
    run_ids = [get_run(con, name).run_id for name in filt.runs]
    tasks = [r[0] for r in con.execute(
        """SELECT DISTINCT task FROM run_task_stats
           WHERE len($1::INTEGER[]) = 0 OR list_contains($1, run_id) ORDER BY task""", [run_ids]).fetchall()]
    return [t for t in tasks if not filt.tasks or t in filt.tasks]


def _cached_buckets(
    con: duckdb.DuckDBPyConnection, filt: PredictionFilter, lead: tuple[str, ...]
) -> list[tuple[Any, ...]] | None:
    """Rows per ([task,] run) from ``run_task_stats`` when the filter is one the cache can count:
    failures (or all rows), optionally of some runs and tasks, in item or task order. Unanswered items
    are rows of the list (wrong, with no reply), so a run counts ``n_items`` rows, not ``answered``."""
    if lead not in ((), ("p.task",)) or (filt.categories or filt.gold_labels or filt.pred_labels or filt.outcomes
                                        or filt.sources or filt.item_ids or filt.text or filt.versus_run is not None):
        return None
    run_ids = [get_run(con, name).run_id for name in filt.runs]
    n = "s.n_items - s.correct" if filt.failures_only else "s.n_items"
    groups = "s.task, s.run_id" if lead else "s.run_id"
    return con.execute(
        f"""SELECT {groups}, sum({n}) FROM run_task_stats s
            WHERE (len($1::INTEGER[]) = 0 OR list_contains($1, s.run_id))
              AND (len($2::VARCHAR[]) = 0 OR list_contains($2, s.task))
            GROUP BY {groups} ORDER BY {groups}""",
        [run_ids, list(filt.tasks)],
    ).fetchall()


def _deep_page_keys(
    con: duckdb.DuckDBPyConnection, cf: CompiledFilter, lead: tuple[str, ...], limit: int, offset: int,
    filt: PredictionFilter | None = None,
) -> list[tuple[int, int]]:
    groups = ", ".join([*lead, "p.run_id"])
    buckets = _cached_buckets(con, filt, lead) if filt is not None else None
    if buckets is None:
        buckets = con.execute(
            f"SELECT {groups}, count(*) {cf.from_sql()} WHERE {cf.where} GROUP BY {groups} ORDER BY {groups}", cf.params
        ).fetchall()
    keys: list[tuple[int, int]] = []
    skip = offset
    for *values, run_id, n in buckets:
        if skip >= n:
            skip -= n
            continue
        same = " AND ".join([*(f"{c} IS NOT DISTINCT FROM ?" for c in lead), "p.run_id = ?"])
        keys += con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} AND {same} ORDER BY p.item_idx LIMIT ? OFFSET ?",
            cf.params + values + [run_id, limit - len(keys), skip],
        ).fetchall()
        skip = 0
        if len(keys) >= limit:
            break
    return keys


def rows_for_keys(con: duckdb.DuckDBPyConnection, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Full display rows for (run_id, item_idx) keys, in the keys' order; a key with no stored
    prediction is an unanswered item (the page's keys came from the list with those rows added)."""
    if not keys:
        return []
    rows = _stored_rows(con, keys)
    if len(rows) < len(keys):
        found = {(r["_run_id"], r["item_idx"]): r for r in rows}
        missing = [k for k in keys if (k[0], k[1]) not in found]
        found.update({(r["_run_id"], r["item_idx"]): r for r in _unanswered_rows(con, missing)})
        rows = [found[(k[0], k[1])] for k in keys if (k[0], k[1]) in found]
    for row in rows:
        del row["_run_id"]
    return rows


def _unanswered_rows(con: duckdb.DuckDBPyConnection, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Display rows of unanswered (run_id, item_idx) keys: the item's own fields, no reply or pick."""
    cursor = con.execute(
        f"""WITH k AS (SELECT unnest($1::INTEGER[]) AS run_id, unnest($2::INTEGER[]) AS item_idx)
            SELECT r.name AS run, i.item_id, i.item_idx, i.task, i.source, i.question, i.answer_label AS gold_label,
                   i.answer_letter AS gold_letter, NULL::VARCHAR AS pred_letter, NULL::VARCHAR AS pred_label,
                   '{UNANSWERED}' AS outcome, '{UNANSWERED}' AS category, NULL::VARCHAR AS reply, FALSE AS correct,
                   r.run_id AS _run_id
            FROM k JOIN runs r ON r.run_id = k.run_id JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = k.item_idx""",
        [[k[0] for k in keys], [k[1] for k in keys]],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _stored_rows(con: duckdb.DuckDBPyConnection, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    cursor = con.execute(
        f"""WITH k AS (SELECT unnest($1::INTEGER[]) AS run_id, unnest($2::INTEGER[]) AS item_idx,
                              unnest(range(len($1::INTEGER[]))) AS ord)
            SELECT {ROW_COLUMNS}, p.run_id AS _run_id FROM k JOIN predictions p ON p.run_id = k.run_id AND p.item_idx = k.item_idx
            JOIN runs r ON r.run_id = p.run_id JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx
            WHERE p.run_id BETWEEN $3 AND $4
            ORDER BY k.ord""",
        [[k[0] for k in keys], [k[1] for k in keys], min(k[0] for k in keys), max(k[0] for k in keys)],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def count_predictions(con: duckdb.DuckDBPyConnection, filt: PredictionFilter) -> int:
    cf = compile_filter(con, filt)
    return int(single_value(con, f"SELECT count(*) {cf.from_sql()} WHERE {cf.where}", cf.params))


def filtered_item_ids(con: duckdb.DuckDBPyConnection, filt: PredictionFilter, run: str, limit: int = 10_000) -> list[str]:
    """Item ids of ``run``'s rows that pass ``filt``, in benchmark order: what a job launched from
    the failures screen works on when no rows are marked."""
    cf = compile_filter(con, filt.with_(runs=(run,)))
    rows = con.execute(
        f"SELECT i.item_id {cf.from_sql(with_items=True)} WHERE {cf.where} ORDER BY p.item_idx LIMIT {int(limit)}",
        cf.params,
    ).fetchall()
    return [r[0] for r in rows]
