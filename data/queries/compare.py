"""The audit (the file's own verdicts against Orienteer's scoring) and paired comparison of two runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import duckdb

from orienteer.core.stats import (
    holm,
    mcnemar_exact,
)
from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError
from orienteer.data.queries.failures import ITEM_JOIN, ROW_COLUMNS
from orienteer.data.queries.lookups import run_names_of
from orienteer.data.queries.report import OVERALL
from orienteer.data.single import single_value


def audit(con: duckdb.DuckDBPyConnection, run: str, limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Items where the file's own verdict disagrees with Orienteer's scoring: (with a verdict, rows)."""
    info = get_run(con, run)
    checked = single_value(con, "SELECT count(*) FROM predictions WHERE run_id = ? AND file_verdict IS NOT NULL",
                           [info.run_id])
    cursor = con.execute(
        f"""SELECT {ROW_COLUMNS}, p.file_verdict, p.source_line {ITEM_JOIN}
            WHERE p.run_id = ? AND p.file_verdict IS NOT NULL AND p.file_verdict <> p.correct
            ORDER BY p.item_idx LIMIT ?""",
        [info.run_id, limit if limit is not None else 2**62],
    )
    names = [d[0] for d in cursor.description]
    return int(checked), [dict(zip(names, row)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class CompareRow:
    """One task (or overall) of a paired comparison; ``p_holm`` is McNemar's p Holm-corrected across the rows."""

    task: str
    n: int
    accuracy_a: float
    accuracy_b: float
    fixed: int
    broken: int
    p_value: float
    p_holm: float = 1.0

    @property
    def significant(self) -> bool:
        return self.p_holm < 0.05


def alignment(con: duckdb.DuckDBPyConnection, bench_a: int, bench_b: int) -> str:
    """How items of two benchmarks line up: ``same``, ``b_from_a`` (B derived from A: B's
    ``parent_item_id`` is A's ``item_id``), ``a_from_b``, or ``none``."""
    if bench_a == bench_b:
        return "same"
    parents = dict(con.execute(
        "SELECT bench_id, parent_bench_id FROM benchmarks WHERE list_contains(?, bench_id)", [[bench_a, bench_b]]
    ).fetchall())
    if parents.get(bench_b) == bench_a:
        return "b_from_a"
    if parents.get(bench_a) == bench_b:
        return "a_from_b"
    return "none"


def compare_runs(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> list[CompareRow]:
    """Per task: items fixed (A wrong, B right) and broken (A right, B wrong), plus overall.

    Runs of one benchmark pair by item. A run of a derived benchmark (flipped, box-prompted) pairs
    with a run of its parent through ``parent_item_id``; only items present in both count.
    """
    a, b = get_run(con, run_a), get_run(con, run_b)
    how = alignment(con, a.bench_id, b.bench_id)
    if how == "none":
        raise WorkspaceError(
            f"runs {run_a!r} ({a.bench_name}) and {run_b!r} ({b.bench_name}) are of unrelated benchmarks "
            "(neither is derived from the other)"
        )
    if how == "same":
        pairs = "SELECT item_idx AS ia, item_idx AS ib, task FROM items WHERE bench_id = ?"
        params: list[Any] = [a.bench_id]
    else:  # o: the original's items, d: the derived benchmark's; the task is the original's
        ia, ib = ("o", "d") if how == "b_from_a" else ("d", "o")
        pairs = f"""SELECT {ia}.item_idx AS ia, {ib}.item_idx AS ib, o.task FROM items o
                    JOIN items d ON d.bench_id = ? AND d.parent_item_id = o.item_id WHERE o.bench_id = ?"""
        params = [b.bench_id, a.bench_id] if how == "b_from_a" else [a.bench_id, b.bench_id]
    rows = con.execute(
        f"""WITH i AS ({pairs}),
                pa AS (SELECT item_idx, correct FROM predictions WHERE run_id = ?),
                pb AS (SELECT item_idx, correct FROM predictions WHERE run_id = ?)
           SELECT i.task, count(*) AS n,
                  count(*) FILTER (WHERE COALESCE(pa.correct, FALSE)) AS ca,
                  count(*) FILTER (WHERE COALESCE(pb.correct, FALSE)) AS cb,
                  count(*) FILTER (WHERE NOT COALESCE(pa.correct, FALSE) AND COALESCE(pb.correct, FALSE)) AS fixed,
                  count(*) FILTER (WHERE COALESCE(pa.correct, FALSE) AND NOT COALESCE(pb.correct, FALSE)) AS broken
           FROM i LEFT JOIN pa ON pa.item_idx = i.ia LEFT JOIN pb ON pb.item_idx = i.ib
           GROUP BY i.task ORDER BY i.task""",
        [*params, a.run_id, b.run_id],
    ).fetchall()
    out = [CompareRow(t, n, ca / n, cb / n, f, br, mcnemar_exact(f, br)) for t, n, ca, cb, f, br in rows]
    if out:
        n = sum(r.n for r in out)
        ca = sum(r.accuracy_a * r.n for r in out)
        cb = sum(r.accuracy_b * r.n for r in out)
        f = sum(r.fixed for r in out)
        br = sum(r.broken for r in out)
        out.append(CompareRow(OVERALL, n, ca / n, cb / n, f, br, mcnemar_exact(f, br)))
    return [replace(row, p_holm=p) for row, p in zip(out, holm([row.p_value for row in out]))]


def comparable_runs(con: duckdb.DuckDBPyConnection, bench: str | None) -> list[str]:
    """Runs of ``bench`` and of the benchmarks derived from it or it from (for the compare pickers)."""
    if bench is None:
        return run_names_of(con, None)
    return [r[0] for r in con.execute(
        """WITH me AS (SELECT bench_id, parent_bench_id FROM benchmarks WHERE name = ?)
           SELECT r.name FROM runs r JOIN benchmarks b USING (bench_id), me
           WHERE b.bench_id = me.bench_id OR b.parent_bench_id = me.bench_id OR b.bench_id = me.parent_bench_id
           ORDER BY r.run_id""", [bench]).fetchall()]
