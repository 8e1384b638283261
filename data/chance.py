"""The answered-wrong items of a run, counted for ``core.chance``: what each item offered and what was picked.

DuckDB does the per-item work: each wrong option of each answered-wrong item gets its category
(from a table of the benchmark's few hundred (gold, option) label pairs, categorised once in
Python by ``core.directions.categorize``), folded into the grouping's keys, counted per item,
and the items are then counted per (key, k of m wrong options in it, picked in it or not). A
run's thousands of items arrive as a few dozen ``OfferCount`` rows.
"""

from __future__ import annotations

import duckdb

from orienteer.core.chance import OfferCount, fold
from orienteer.core.directions import Category, categorize


def offer_counts(con: duckdb.DuckDBPyConnection, run_id: int, bench_id: int, task: str | None,
                 grouping: str) -> list[OfferCount]:
    """``OfferCount`` rows over the run's *answered wrong* items (a wrong option picked), folded into ``grouping``.

    Unparsed replies and letters that are not options are not picks and stay out, as do items the
    run did not answer. The picked category is the stored one (so ``observed`` agrees with the
    category counts shown beside it), or the pair's when none was stored (an option repeating the
    gold label).
    """
    pairs = con.execute(
        """SELECT DISTINCT answer_label, label FROM (
               SELECT answer_label, unnest(option_labels) AS label FROM items WHERE bench_id = ?)""",
        [bench_id],
    ).fetchall()
    gold, label = [g for g, _ in pairs], [x for _, x in pairs]
    pair_key = [fold(categorize(g, x).value, grouping) for g, x in pairs]
    fine = [c.value for c in Category]
    rows = con.execute(
        """WITH pairs AS (SELECT unnest($gold::VARCHAR[]) AS gold, unnest($label::VARCHAR[]) AS label,
                                 unnest($pair_key::VARCHAR[]) AS key),
                folds AS (SELECT unnest($fine::VARCHAR[]) AS category, unnest($folded::VARCHAR[]) AS key),
                wrong AS (
                    SELECT p.item_idx, i.answer_label AS gold, p.pred_label, p.category, i.answer_letter,
                           i.option_letters, i.option_labels
                    FROM predictions p JOIN items i ON i.bench_id = $bench AND i.item_idx = p.item_idx
                    WHERE p.run_id = $run AND p.outcome = 'wrong' AND ($task IS NULL OR p.task = $task)),
                options AS (
                    SELECT item_idx, gold, answer_letter, unnest(option_letters) AS letter,
                           unnest(option_labels) AS label, len(option_letters) - 1 AS m
                    FROM wrong),
                per_item AS (
                    SELECT o.item_idx, pr.key, count(*) AS k, any_value(o.m) AS m
                    FROM options o JOIN pairs pr ON pr.gold = o.gold AND pr.label = o.label
                    WHERE o.letter <> o.answer_letter
                    GROUP BY o.item_idx, pr.key),
                picked AS (
                    SELECT w.item_idx, coalesce(f.key, pr.key) AS key
                    FROM wrong w LEFT JOIN folds f ON f.category = w.category
                    LEFT JOIN pairs pr ON pr.gold = w.gold AND pr.label = w.pred_label)
           SELECT pi.key, pi.k, pi.m, count(*) AS items, count(*) FILTER (WHERE pk.key = pi.key) AS hits
           FROM per_item pi JOIN picked pk USING (item_idx)
           GROUP BY ALL ORDER BY ALL""",
        {"gold": gold, "label": label, "pair_key": pair_key, "fine": fine,
         "folded": [fold(c, grouping) for c in fine], "bench": bench_id, "run": run_id, "task": task},
    ).fetchall()
    return [OfferCount(key, int(k), int(m), int(items), int(hits)) for key, k, m, items, hits in rows]
