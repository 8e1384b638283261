"""A run's wrong answers that name an option: the (gold -> predicted) pairs a confusion is made of.

Unparsed and invalid answers name no label to confuse with, so they are left out. hard-negatives
over-samples the commonest of these pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from orienteer.data.catalog import get_run


@dataclass(frozen=True)
class WrongAnswer:
    item_id: str
    gold: str
    pred: str
    category: str


def wrong_answers(con: duckdb.DuckDBPyConnection, run: str) -> tuple[str, list[WrongAnswer]]:
    """The run's benchmark name and its wrong answers with a valid predicted label, in item order."""
    info = get_run(con, run)
    rows = con.execute(
        """SELECT i.item_id, p.gold_label, p.pred_label, p.category
           FROM predictions p JOIN items i ON i.bench_id = ? AND i.item_idx = p.item_idx
           WHERE p.run_id = ? AND NOT p.correct AND p.pred_label IS NOT NULL
           ORDER BY p.item_idx""",
        [info.bench_id, info.run_id],
    ).fetchall()
    return info.bench_name, [WrongAnswer(*row) for row in rows]
