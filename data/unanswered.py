"""Unanswered items: benchmark items a run's file has no row for, as failure rows computed on read.

A file that misses items is scored as upstream scores it: each missing item counts wrong (accuracy
is correct / items, and ``run_task_stats`` keeps ``answered`` < ``n_items``). ``predictions`` holds
only what the file answered (coverage = answered / items stays exact), so the failures list, its
counts and the export add the missing (run, item) pairs here, shaped like ``predictions`` rows with
outcome and category ``unanswered``. Only runs whose cached counts show a gap are looked at: a run
with full coverage never pays for the anti-join.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from orienteer.core.directions import Category
from orienteer.data.store import PREDICTION_COLUMNS

UNANSWERED = Category.UNANSWERED.value


def gapped_runs(con: duckdb.DuckDBPyConnection, run_ids: Iterable[int] = ()) -> list[int]:
    """Runs (of ``run_ids``, or of the whole workspace when empty) that miss at least one item.

    Read from the per-(run, task) cache (a few thousand rows), never from ``predictions``.
    """
    wanted = sorted(set(run_ids))
    rows = con.execute(
        """SELECT DISTINCT run_id FROM run_task_stats
           WHERE answered < n_items AND (len($1::INTEGER[]) = 0 OR list_contains($1, run_id)) ORDER BY run_id""",
        [wanted],
    ).fetchall()
    return [int(r[0]) for r in rows]


def unanswered_count(con: duckdb.DuckDBPyConnection, run_id: int, task: str | None = None) -> int:
    """How many of the run's items (of one task, or all) the file did not answer, from the cache."""
    row = con.execute(
        """SELECT COALESCE(sum(n_items - answered), 0) FROM run_task_stats
           WHERE run_id = ? AND (?::VARCHAR IS NULL OR task = ?)""",
        [run_id, task, task],
    ).fetchone()
    return int(row[0]) if row else 0


def unanswered_rows_sql(run_ids: list[int]) -> str:
    """SELECT of the missing (run, item) rows of ``run_ids``, in ``PREDICTION_COLUMNS`` order.

    Run ids are integers from the workspace, written as literals so the caller's parameters keep
    their positions. The answered pairs are read with ``run_id IN (...)`` so DuckDB's zone maps
    skip every other run's rows.
    """
    ids = ", ".join(str(int(r)) for r in run_ids) or "NULL"
    return f"""SELECT r.run_id, i.item_idx, i.task, NULL::VARCHAR AS reply, NULL::VARCHAR AS given_letter,
               NULL::VARCHAR AS letter, '{UNANSWERED}' AS outcome, FALSE AS correct, i.answer_label AS gold_label,
               NULL::VARCHAR AS pred_label, '{UNANSWERED}' AS category, NULL::VARCHAR AS probs,
               NULL::BOOLEAN AS file_verdict, NULL::INTEGER AS source_line
        FROM runs r JOIN items i ON i.bench_id = r.bench_id
        ANTI JOIN (SELECT run_id, item_idx FROM predictions WHERE run_id IN ({ids})) q
             ON q.run_id = r.run_id AND q.item_idx = i.item_idx
        WHERE r.run_id IN ({ids})"""


def with_unanswered_sql(run_ids: list[int], *, answered: bool = True) -> str:
    """A table expression (for ``FROM ... p``): the stored predictions plus the missing rows of
    ``run_ids``; ``answered=False`` gives the missing rows alone (a filter that matches only them)."""
    missing = unanswered_rows_sql(run_ids)
    if not answered:
        return f"({missing})"
    return f"(SELECT {PREDICTION_COLUMNS} FROM predictions UNION ALL {missing})"
