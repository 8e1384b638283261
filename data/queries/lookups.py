"""Small lists for pickers: run names, a run's tasks, the values a filter can take."""

from __future__ import annotations

import duckdb

from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError


def run_names_of(con: duckdb.DuckDBPyConnection, bench: str | None = None) -> list[str]:
    return [r[0] for r in con.execute(
        """SELECT r.name FROM runs r JOIN benchmarks b USING (bench_id)
           WHERE ? IS NULL OR b.name = ? ORDER BY r.run_id""", [bench, bench]).fetchall()]


def tasks_of_run(con: duckdb.DuckDBPyConnection, run: str) -> list[str]:
    info = get_run(con, run)
    return [r[0] for r in con.execute(
        "SELECT DISTINCT task FROM items WHERE bench_id = ? ORDER BY task", [info.bench_id]).fetchall()]


def distinct_values(con: duckdb.DuckDBPyConnection, column: str, runs: tuple[str, ...] = ()) -> list[str]:
    """Values a filter can take (tasks, sources, labels, categories) over the given runs."""
    allowed = {"task": "p.task", "source": "i.source", "gold_label": "p.gold_label", "pred_label": "p.pred_label",
               "category": "p.category"}
    if column not in allowed:
        raise WorkspaceError(f"cannot list values of {column!r}")
    expr = allowed[column]
    if column == "source":
        rows = con.execute(
            "SELECT DISTINCT source FROM items WHERE source IS NOT NULL ORDER BY 1").fetchall()
        return [r[0] for r in rows]
    run_ids = [get_run(con, r).run_id for r in runs]
    rows = con.execute(
        f"""SELECT DISTINCT {expr} FROM predictions p
            WHERE {expr} IS NOT NULL AND (len(?::INTEGER[]) = 0 OR list_contains(?, p.run_id)) ORDER BY 1""",
        [run_ids, run_ids],
    ).fetchall()
    return [r[0] for r in rows]
