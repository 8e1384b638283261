"""A filter over predictions (run, task, category, source, labels, text) compiled to SQL.

The failures list, the export and the TUI's drill-downs all use this one definition, so
"open exactly those failures" means the same rows everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import duckdb

OUTCOMES = ("correct", "wrong", "unparsed", "invalid_option", "unanswered")


@dataclass(frozen=True)
class PredictionFilter:
    """Which predictions to show; ``failures_only`` keeps the incorrect ones (the default)."""

    runs: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    gold_labels: tuple[str, ...] = ()
    pred_labels: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()
    text: str | None = None
    failures_only: bool = True
    # Paired with another run of the same benchmark, or (when ``runs`` names one run) of a benchmark
    # derived from its benchmark or the one it derives from (items paired through parent_item_id):
    # keep items that run got right (True) or wrong/missed (False). "Fixed by B" = runs=(B,),
    # correct in B, versus A wrong.
    versus_run: str | None = None
    versus_correct: bool | None = None

    def with_(self, **changes: Any) -> "PredictionFilter":
        return replace(self, **changes)


@dataclass(frozen=True)
class CompiledFilter:
    """A filter as SQL over ``p`` (predictions), joining runs ``r`` and items ``i`` only when needed.

    ``source`` is ``predictions`` unless a run the filter can match misses items: then it also holds
    those items as ``unanswered`` rows (``data.unanswered``), so pages, counts and exports list them.
    """

    where: str
    params: list[Any]
    needs_items: bool
    source: str = "predictions"

    def from_sql(self, with_items: bool = False) -> str:
        sql = f"FROM {self.source} p"
        if self.needs_items or with_items:
            sql += " JOIN runs r ON r.run_id = p.run_id JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx"
        return sql


def compile_filter(con: duckdb.DuckDBPyConnection, f: PredictionFilter) -> CompiledFilter:
    """Resolve run names to ids (unknown names are an error) and build the condition.

    Conditions on ``p.run_id`` (rather than on run names) let DuckDB skip the row groups of
    other runs, which is what keeps a 10-million-row workspace fast.
    """
    from orienteer.data.catalog import get_run

    parts: list[str] = []
    params: list[Any] = []
    needs_items = False

    def any_of(column: str, values: tuple[Any, ...]) -> None:
        if values:
            parts.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)

    run_ids = tuple(get_run(con, name).run_id for name in f.runs)
    any_of("p.run_id", run_ids)
    any_of("p.task", f.tasks)
    any_of("p.category", f.categories)
    any_of("p.gold_label", f.gold_labels)
    any_of("p.pred_label", f.pred_labels)
    any_of("p.outcome", f.outcomes)
    if f.sources or f.item_ids or f.text:
        needs_items = True
        any_of("i.source", f.sources)
        any_of("i.item_id", f.item_ids)
    if f.failures_only:
        parts.append("NOT p.correct")
    if f.text:
        parts.append("(i.question ILIKE ? OR p.reply ILIKE ? OR i.item_id = ?)")
        like = f"%{f.text}%"
        params.extend([like, like, f.text])
    if f.versus_run is not None and f.versus_correct is not None:
        versus = get_run(con, f.versus_run)
        own = get_run(con, f.runs[0]) if len(f.runs) == 1 else None
        if own is None or own.bench_id == versus.bench_id:
            parts.append(
                """COALESCE((SELECT q.correct FROM predictions q WHERE q.run_id = ? AND q.item_idx = p.item_idx), FALSE) = ?"""
            )
            params.extend([versus.run_id, f.versus_correct])
        else:
            # The versus run is of a derived benchmark or its parent: pair items through parent_item_id.
            needs_items = True
            parts.append(
                """COALESCE((SELECT q.correct FROM predictions q JOIN items qi ON qi.bench_id = ? AND qi.item_idx = q.item_idx
                             WHERE q.run_id = ? AND (qi.parent_item_id = i.item_id OR qi.item_id = i.parent_item_id)
                             LIMIT 1), FALSE) = ?"""
            )
            params.extend([versus.bench_id, versus.run_id, f.versus_correct])
    source = _source(con, f, run_ids)
    if source is None:  # only unanswered rows can match, and no run of the filter misses an item
        parts.append("FALSE")
    return CompiledFilter(" AND ".join(parts) if parts else "TRUE", params, needs_items, source or "predictions")


def _source(con: duckdb.DuckDBPyConnection, f: PredictionFilter, run_ids: tuple[int, ...]) -> str | None:
    """``predictions``, or it with the unanswered items of the filter's runs that miss some.

    Unanswered rows have no reply, letter or predicted label: a filter on a predicted label, or on
    outcomes/categories that leave ``unanswered`` out, never matches them, and the stored rows are
    read as before. A filter on ``unanswered`` alone reads only the missing rows (None: there are none).
    """
    from orienteer.data.unanswered import UNANSWERED, gapped_runs, with_unanswered_sql

    if f.pred_labels or (f.outcomes and UNANSWERED not in f.outcomes) or (
            f.categories and UNANSWERED not in f.categories):
        return "predictions"
    only_missing = bool(f.outcomes or f.categories) and all(
        not values or set(values) == {UNANSWERED} for values in (f.outcomes, f.categories))
    gapped = gapped_runs(con, run_ids)
    if not gapped:
        return None if only_missing else "predictions"
    return with_unanswered_sql(gapped, answered=not only_missing)
