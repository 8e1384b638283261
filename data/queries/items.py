"""Benchmark items as jobs read them (chosen by task, source, id or a run's failures) and a run's answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from orienteer.data.catalog import BenchInfo, RunInfo
from orienteer.data.items import Item
from orienteer.data.rows import RunAnswer
from orienteer.data.run_config import RunConfig

ITEM_COLUMNS = (
    "i.item_id, i.task, i.question, i.option_letters, i.option_labels, i.answer_letter, i.images, "
    "i.source, i.reference_object, i.bbox, i.parent_item_id, i.bbox_frame"
)


def _items(cursor: duckdb.DuckDBPyConnection) -> list[Item]:
    """Items built by column name from a cursor over ``ITEM_COLUMNS``."""
    names = [d[0] for d in cursor.description]
    out = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        bbox = row["bbox"]
        out.append(Item(
            item_id=row["item_id"], task=row["task"], question=row["question"],
            option_letters=list(row["option_letters"]), option_labels=list(row["option_labels"]),
            answer_letter=row["answer_letter"], images=list(row["images"]), source=row["source"],
            reference_object=row["reference_object"], bbox=list(bbox) if bbox is not None else None,
            parent_item_id=row["parent_item_id"], bbox_frame=int(row["bbox_frame"]),
        ))
    return out


def select_items(
    con: duckdb.DuckDBPyConnection, bench: BenchInfo, *, tasks: Sequence[str] = (), sources: Sequence[str] = (),
    ids: Sequence[str] | None = None, failures_of: RunInfo | None = None, limit: int | None = None,
) -> list[Item]:
    """The benchmark's items that pass every given condition, in benchmark order.

    ``failures_of``: only items that run did not get right (missing answers included).
    """
    where = ["i.bench_id = ?"]
    args: list[Any] = [bench.bench_id]
    if tasks:
        where.append("list_contains(?, i.task)")
        args.append(list(tasks))
    if sources:
        where.append("list_contains(?, i.source)")
        args.append(list(sources))
    if ids is not None:
        where.append("list_contains(?, i.item_id)")
        args.append(list(ids))
    if failures_of is not None:
        where.append(
            "NOT EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = ? AND p.item_idx = i.item_idx AND p.correct)"
        )
        args.append(failures_of.run_id)
    sql = f"SELECT {ITEM_COLUMNS} FROM items i WHERE {' AND '.join(where)} ORDER BY i.item_idx"
    if limit is not None:
        sql += f" LIMIT {max(0, int(limit))}"
    return _items(con.execute(sql, args))


def item_by_id(con: duckdb.DuckDBPyConnection, bench: BenchInfo, item_id: str) -> Item | None:
    """The item whose id is exactly ``item_id`` (no cast, no prefix, no trimming), or None."""
    found = _items(con.execute(f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.bench_id = ? AND i.item_id = ?",
                               [bench.bench_id, item_id]))
    return found[0] if found else None


@dataclass(frozen=True)
class RunSettings:
    """A run's model, notes (text for people) and settings (``RunConfig``)."""

    model: str | None
    notes: str | None
    config: RunConfig


def run_settings(con: duckdb.DuckDBPyConnection, run: RunInfo) -> RunSettings:
    cursor = con.execute(
        "SELECT model, notes, config, parser, source_format, random_weights, created_by_job FROM runs WHERE run_id = ?",
        [run.run_id])
    found = cursor.fetchone()
    assert found is not None  # ``run`` came from get_run on this connection
    row = dict(zip([d[0] for d in cursor.description], found))
    config = RunConfig.from_row(row["config"], row["parser"], row["model"], row["source_format"],
                                bool(row["random_weights"]), row["created_by_job"])
    return RunSettings(model=row["model"], notes=row["notes"], config=config)


def run_answers(con: duckdb.DuckDBPyConnection, run: RunInfo) -> dict[str, RunAnswer]:
    """The run's answers by item id."""
    rows = con.execute(
        """SELECT i.item_id, p.letter, p.correct, p.probs FROM predictions p
           JOIN items i ON i.item_idx = p.item_idx AND i.bench_id = ?
           WHERE p.run_id = ?""",
        [run.bench_id, run.run_id],
    ).fetchall()
    return {item_id: RunAnswer(letter=letter, correct=bool(correct), probs=probs)
            for item_id, letter, correct, probs in rows}
