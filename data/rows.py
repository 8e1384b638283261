"""Typed rows that ``WorkspaceService`` returns where a query gives plain dicts or tuples.

The queries in ``data/queries`` stay shaped for speed (they are benchmarked) and keep
returning dicts of named columns; these frozen dataclasses are built from those dicts by
name (``PredictionRow.of(row)``), never by position, so adding a column to a query cannot
shift a value into the wrong field. ``as_json`` gives the dict the CLI has always printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


def _json(row: object) -> dict[str, Any]:
    """A row as a dict in field order (what ``--json`` prints)."""
    return {f.name: getattr(row, f.name) for f in fields(row)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One prediction as the failures list and ``orienteer failures`` show it (``ROW_COLUMNS``)."""

    run: str
    item_id: str
    item_idx: int
    task: str
    source: str | None
    question: str
    gold_label: str | None
    gold_letter: str | None
    pred_letter: str | None
    pred_label: str | None
    outcome: str | None
    category: str | None
    reply: str | None
    correct: bool | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> PredictionRow:
        return cls(**row)

    @property
    def key(self) -> tuple[str, str]:
        """(run, item id): what marks and the case view use to name a row."""
        return self.run, self.item_id

    def as_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True, slots=True)
class AuditRow(PredictionRow):
    """A prediction whose file's own verdict disagrees with Orienteer's scoring."""

    file_verdict: bool | None = None
    source_line: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AuditRow:
        return cls(**row)


@dataclass(frozen=True)
class Audit:
    """``orienteer audit``: how many answers carry a verdict of their own, and the disagreeing ones."""

    run: str
    checked: int
    rows: list[AuditRow]

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run, "checked": self.checked, "disagreements": len(self.rows),
                "rows": [r.as_json() for r in self.rows]}


@dataclass(frozen=True)
class PredictionPage:
    """A page of the failures list and the total it is part of (``orienteer failures``)."""

    total: int
    offset: int
    rows: list[PredictionRow]

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "offset": self.offset, "rows": [r.as_json() for r in self.rows]}


@dataclass(frozen=True)
class BenchmarkRow:
    """One benchmark of ``orienteer benchmarks``."""

    name: str
    items: int
    tasks: int
    format: str | None
    image_root: str | None
    created: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"benchmark": self.name, "items": self.items, "tasks": self.tasks, "format": self.format,
                "image_root": self.image_root, "created": self.created}


@dataclass(frozen=True)
class RunModel:
    """The benchmark and model of a run: what a job form launched on that run starts from."""

    run: str
    bench: str
    model: str | None


@dataclass(frozen=True, slots=True)
class RunAnswer:
    """A run's answer to one item, as jobs that start from a run (saliency) read it."""

    letter: str | None
    correct: bool
    probs: str | None
