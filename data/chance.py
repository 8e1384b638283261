"""The answered-wrong items of a run, shaped for ``core.chance``: what each item offered and what was picked.

Items are read grouped by (gold letter, option letters, option labels, picked category), so a
benchmark's few thousand items arrive as a few hundred distinct option sets, and each
(gold, option) label pair is categorised once (``categorize`` is cached).
"""

from __future__ import annotations

import duckdb

from orienteer.core.chance import WrongPick
from orienteer.core.directions import categorize


def wrong_picks(con: duckdb.DuckDBPyConnection, run_id: int, task: str | None = None) -> list[WrongPick]:
    """One record per distinct option set of the run's *answered wrong* items (a wrong option picked).

    Unparsed replies and letters that are not options are not picks and stay out, as do items
    the run did not answer. The picked category is the stored one, so ``observed`` agrees with
    the category counts shown beside it.
    """
    rows = con.execute(
        """SELECT i.answer_letter, i.option_letters, i.option_labels, p.pred_label, p.category, count(*)
           FROM predictions p JOIN runs r ON r.run_id = p.run_id
           JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx
           WHERE p.run_id = ? AND p.outcome = 'wrong' AND (? IS NULL OR p.task = ?)
           GROUP BY ALL""",
        [run_id, task, task],
    ).fetchall()
    picks = []
    for answer, letters, labels, pred_label, category, n in rows:
        gold = labels[letters.index(answer)]
        offered = tuple(categorize(gold, label).value for letter, label in zip(letters, labels) if letter != answer)
        picks.append(WrongPick(offered, category or categorize(gold, pred_label).value, int(n)))
    return picks
