"""A filter over predictions (run, task, category, source, labels, text) compiled to SQL.

The failures list, the export and the TUI's drill-downs all use this one definition, so
"open exactly those failures" means the same rows everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orienteer.core.directions import category_from_name

OUTCOMES = ("correct", "wrong", "unparsed", "invalid_option")


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
    # Paired with another run of the same benchmark: keep items that run got right (True) or
    # wrong/missed (False). "Fixed by B" = runs=(B,), correct in B, versus A wrong.
    versus_run: str | None = None
    versus_correct: bool | None = None

    def with_(self, **changes: Any) -> "PredictionFilter":
        return replace(self, **changes)

    @staticmethod
    def normalise_categories(names: tuple[str, ...]) -> tuple[str, ...]:
        """Accept display names and aliases ("mirror", "90") as well as the stored values."""
        return tuple(category_from_name(n).value for n in names)


def where_clause(f: PredictionFilter) -> tuple[str, list[Any]]:
    """SQL condition over ``p`` (predictions), ``i`` (items), ``r`` (runs) with its parameters."""
    parts: list[str] = []
    params: list[Any] = []

    def any_of(column: str, values: tuple[Any, ...]) -> None:
        if values:
            parts.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)

    any_of("r.name", f.runs)
    any_of("p.task", f.tasks)
    any_of("p.category", f.categories)
    any_of("i.source", f.sources)
    any_of("p.gold_label", f.gold_labels)
    any_of("p.pred_label", f.pred_labels)
    any_of("p.outcome", f.outcomes)
    any_of("i.item_id", f.item_ids)
    if f.failures_only:
        parts.append("NOT p.correct")
    if f.text:
        parts.append("(i.question ILIKE ? OR p.reply ILIKE ? OR i.item_id = ?)")
        like = f"%{f.text}%"
        params.extend([like, like, f.text])
    if f.versus_run is not None and f.versus_correct is not None:
        parts.append(
            """COALESCE((SELECT q.correct FROM predictions q JOIN runs rv ON rv.run_id = q.run_id
                         WHERE rv.name = ? AND q.item_idx = p.item_idx), FALSE) = ?"""
        )
        params.extend([f.versus_run, f.versus_correct])
    return (" AND ".join(parts) if parts else "TRUE"), params
