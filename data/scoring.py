"""Scoring staged predictions in DuckDB with the parsers and the taxonomy from ``core``.

The rules live in ``orienteer.core``; this module only makes them fast at scale: each
distinct reply (or reply x options, for parsers that read the options) is parsed once in
Python, each (gold label, option label) pair of the benchmark is categorised once, and
DuckDB joins the answers onto millions of rows in one streaming query (the view
``scored``), which the writer inserts straight into the workspace.
"""

from __future__ import annotations

import duckdb

from orienteer.core.answers import PARSER_NEEDS_OPTIONS, get_parser
from orienteer.core.directions import Category, categorize
from orienteer.data.staging import load_columns

# Staged tables this module reads: ``items`` (item_idx, task, option_letters, option_labels,
# answer_letter, answer_label) and ``keyed`` (run, item_idx, reply, given_letter, probs,
# verdict, line). It defines the view ``scored``, shaped like the workspace's predictions.


def _stage_parsed(con: duckdb.DuckDBPyConnection, parser: str) -> str:
    """Parse each distinct reply once; returns the join condition onto ``keyed k``."""
    parse = get_parser(parser)
    if PARSER_NEEDS_OPTIONS[parser]:
        pairs = con.execute(
            """SELECT DISTINCT k.reply, k.item_idx, i.option_letters, i.option_labels
               FROM keyed k JOIN items i USING (item_idx)
               WHERE k.reply IS NOT NULL AND k.given_letter IS NULL"""
        ).fetchall()
        columns = {
            "reply": [p[0] for p in pairs],
            "item_idx": [p[1] for p in pairs],
            "parsed": [parse(p[0], dict(zip(p[2], p[3]))) for p in pairs],
        }
        load_columns(con, "parsed", columns, {"reply": "VARCHAR", "item_idx": "INTEGER", "parsed": "VARCHAR"})
        return "p.reply = k.reply AND p.item_idx = k.item_idx"
    replies = [r[0] for r in con.execute(
        "SELECT DISTINCT reply FROM keyed WHERE reply IS NOT NULL AND given_letter IS NULL"
    ).fetchall()]
    load_columns(con, "parsed", {"reply": replies, "parsed": [parse(r, {}) for r in replies]},
                 {"reply": "VARCHAR", "parsed": "VARCHAR"})
    return "p.reply = k.reply"


def _stage_pair_categories(con: duckdb.DuckDBPyConnection) -> None:
    """The category of every (gold label, other option label) pair the benchmark can produce."""
    pairs = con.execute(
        """SELECT DISTINCT answer_label, label FROM (SELECT answer_label, unnest(option_labels) AS label FROM items)
           WHERE label <> answer_label"""
    ).fetchall()
    load_columns(
        con,
        "pair_categories",
        {"gold_label": [g for g, _ in pairs], "pred_label": [p for _, p in pairs],
         "category": [categorize(g, p).value for g, p in pairs]},
        {"gold_label": "VARCHAR", "pred_label": "VARCHAR", "category": "VARCHAR"},
    )


def score_staged(con: duckdb.DuckDBPyConnection, parser: str) -> None:
    """Define the view ``scored`` over ``keyed`` and ``items`` with the named parser."""
    join = _stage_parsed(con, parser)
    _stage_pair_categories(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW scored AS
        WITH lettered AS (
            SELECT k.run, k.item_idx, k.reply, k.given_letter, k.probs, k.verdict, k.line,
                   COALESCE(k.given_letter, p.parsed) AS letter
            FROM keyed k LEFT JOIN parsed p ON {join}
        ), judged AS (
            SELECT l.*, i.task, i.answer_label AS gold_label,
                   CASE WHEN l.letter IS NULL THEN 'unparsed'
                        WHEN NOT list_contains(i.option_letters, l.letter) THEN 'invalid_option'
                        WHEN l.letter = i.answer_letter THEN 'correct'
                        ELSE 'wrong' END AS outcome,
                   i.option_labels[list_position(i.option_letters, l.letter)] AS pred_label
            FROM lettered l JOIN items i USING (item_idx)
        )
        SELECT j.run, j.item_idx, j.task, j.reply, j.given_letter, j.letter, j.outcome,
               j.outcome = 'correct' AS correct, j.gold_label, j.pred_label,
               CASE j.outcome WHEN 'wrong' THEN c.category
                              WHEN 'unparsed' THEN '{Category.UNPARSED.value}'
                              WHEN 'invalid_option' THEN '{Category.INVALID_OPTION.value}' END AS category,
               j.probs, j.verdict AS file_verdict, j.line AS source_line
        FROM judged j
        LEFT JOIN pair_categories c ON j.outcome = 'wrong' AND c.gold_label = j.gold_label AND c.pred_label = j.pred_label
        """
    )
