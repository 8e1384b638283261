"""Writing scored runs into the workspace: one transaction, replacing a run atomically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from orienteer.data.workspace import Workspace

from orienteer.data.errors import WorkspaceError
from orienteer.data.single import single_value

RUN_TABLES = ("predictions", "run_task_stats", "artifacts", "runs")
PREDICTION_COLUMNS = (
    "run_id, item_idx, task, reply, given_letter, letter, outcome, correct, gold_label, "
    "pred_label, category, probs, file_verdict, source_line"
)


@dataclass(frozen=True)
class RunSpec:
    """Metadata of one run about to be written; ``name`` matches ``scored.run``."""

    name: str
    model: str | None
    notes: str | None
    parser: str
    source_path: str | None
    source_format: str | None
    created_by_job: str | None = None


def existing_runs(con: duckdb.DuckDBPyConnection, names: list[str], catalog: str) -> dict[str, int]:
    rows = con.execute(
        f"SELECT name, run_id FROM {catalog}.runs WHERE list_contains(?, name)", [names]
    ).fetchall()
    return dict(rows)


def write_runs(
    con: duckdb.DuckDBPyConnection, bench_id: int, specs: list[RunSpec], replace: bool, catalog: str = "ws"
) -> dict[str, int]:
    """Insert the staged ``scored`` rows as runs; must run inside the caller's transaction.

    Returns run name -> new run id. Existing runs of the same names are removed first when
    ``replace`` is set, else the call refuses and nothing is written. New runs get
    consecutive ids, and rows are inserted in the file's order (grouped by run in practice),
    so DuckDB's zone maps can skip other runs when a query filters on ``run_id``.
    """
    names = [s.name for s in specs]
    existing = existing_runs(con, names, catalog)
    if existing and not replace:
        listed = ", ".join(sorted(existing))
        raise WorkspaceError(f"run {listed} already exists; pass --replace to replace it")
    if existing:
        old = list(existing.values())
        for table in RUN_TABLES:
            con.execute(f"DELETE FROM {catalog}.{table} WHERE list_contains(?, run_id)", [old])
    next_id = single_value(con, f"SELECT COALESCE(max(run_id), 0) + 1 FROM {catalog}.runs")
    ids = {spec.name: next_id + i for i, spec in enumerate(specs)}
    con.execute(
        f"""INSERT INTO {catalog}.runs (run_id, name, bench_id, model, created_by_job, notes, parser,
                                        source_path, source_format, n_rows, created_at)
            SELECT unnest($1::INTEGER[]), unnest($2::VARCHAR[]), $3, unnest($4::VARCHAR[]), unnest($5::VARCHAR[]),
                   unnest($6::VARCHAR[]), unnest($7::VARCHAR[]), unnest($8::VARCHAR[]), unnest($9::VARCHAR[]), 0, now()""",
        [[ids[s.name] for s in specs], names, bench_id, [s.model for s in specs], [s.created_by_job for s in specs],
         [s.notes for s in specs], [s.parser for s in specs], [s.source_path for s in specs],
         [s.source_format for s in specs]],
    )
    load_run_map(con, ids)
    con.execute(
        f"""INSERT INTO {catalog}.predictions ({PREDICTION_COLUMNS})
            SELECT m.run_id, s.item_idx, s.task, s.reply, s.given_letter, s.letter, s.outcome, s.correct,
                   s.gold_label, s.pred_label, s.category, s.probs, s.file_verdict, s.source_line
            FROM scored s JOIN run_map m USING (run)"""
    )
    refresh_stats(con, list(ids.values()), bench_id, catalog)
    return ids


def load_run_map(con: duckdb.DuckDBPyConnection, ids: dict[str, int]) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE run_map AS SELECT unnest($1::VARCHAR[]) AS run, unnest($2::INTEGER[]) AS run_id",
        [list(ids), list(ids.values())],
    )


def refresh_stats(con: duckdb.DuckDBPyConnection, run_ids: list[int], bench_id: int, catalog: str = "ws") -> None:
    """Recompute the cached per-(run, task) counts the reports read, and each run's row count.

    ``correct_bits`` has bit k set when the run answered the task's k-th item (in item order)
    correctly: paired comparisons of any two runs are then a popcount of an AND over a few
    hundred bytes, instead of a join over millions of predictions.
    """
    if not run_ids:
        return
    db = f"{catalog}." if catalog else ""
    low, high = min(run_ids), max(run_ids)
    width = single_value(
        con,
        f"SELECT COALESCE(max(n), 1) FROM (SELECT count(*) AS n FROM {db}items WHERE bench_id = ? GROUP BY task)",
        [bench_id],
    )
    con.execute(f"DELETE FROM {db}run_task_stats WHERE run_id BETWEEN ? AND ? AND list_contains(?, run_id)",
                [low, high, run_ids])
    con.execute(
        f"""INSERT INTO {db}run_task_stats
                (run_id, task, n_items, answered, correct, unparsed, invalid_option, correct_bits)
            WITH ranked AS (
                SELECT item_idx, (row_number() OVER (PARTITION BY task ORDER BY item_idx) - 1)::INTEGER AS task_rank
                FROM {db}items WHERE bench_id = ?
            )
            SELECT r.run_id, t.task, t.n_items,
                   COALESCE(p.answered, 0), COALESCE(p.correct, 0), COALESCE(p.unparsed, 0), COALESCE(p.invalid, 0),
                   COALESCE(p.bits, bitstring('0', {width}))
            FROM (SELECT unnest(?::INTEGER[]) AS run_id) r
            CROSS JOIN (SELECT task, count(*)::INTEGER AS n_items FROM {db}items WHERE bench_id = ? GROUP BY task) t
            LEFT JOIN (SELECT run_id, task, count(*)::INTEGER AS answered,
                              count(*) FILTER (WHERE correct)::INTEGER AS correct,
                              count(*) FILTER (WHERE outcome = 'unparsed')::INTEGER AS unparsed,
                              count(*) FILTER (WHERE outcome = 'invalid_option')::INTEGER AS invalid,
                              bitstring_agg(CASE WHEN correct THEN k.task_rank END, 0, {width - 1}) AS bits
                       FROM {db}predictions JOIN ranked k USING (item_idx)
                       WHERE run_id BETWEEN ? AND ? AND list_contains(?, run_id)
                       GROUP BY run_id, task) p
              ON p.run_id = r.run_id AND p.task = t.task""",
        [bench_id, run_ids, bench_id, low, high, run_ids],
    )
    con.execute(
        f"""UPDATE {db}runs SET n_rows = s.answered
            FROM (SELECT run_id, sum(answered)::INTEGER AS answered FROM {db}run_task_stats
                  WHERE list_contains(?, run_id) GROUP BY run_id) s
            WHERE runs.run_id = s.run_id""",
        [run_ids],
    )


def delete_runs(ws: "Workspace", names: list[str]) -> None:
    """Remove runs by name, all or nothing."""
    from orienteer.data.catalog import get_run

    with ws.write() as con:
        ids = [get_run(con, name).run_id for name in names]
        for table in RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [ids])
