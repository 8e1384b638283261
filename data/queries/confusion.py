"""One run's gold x predicted counts and error categories, each against what chance would give on the same items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from orienteer.core.chance import (
    FINE,
    ChanceRow,
    chance_from_counts,
    check_grouping,
    fold,
    key_order,
    members,
)
from orienteer.core.directions import CATEGORY_ORDER
from orienteer.data.catalog import get_run
from orienteer.data.chance import offer_counts
from orienteer.data.errors import WorkspaceError
from orienteer.data.unanswered import UNANSWERED, unanswered_count


@dataclass(frozen=True, slots=True)
class MatrixCell:
    """How many answered items with gold label ``gold`` got ``pred`` (a label, "(unparsed)" or "(invalid)")."""

    gold: str
    pred: str
    n: int

    def as_json(self) -> dict[str, Any]:
        return {"gold": self.gold, "pred": self.pred, "n": self.n}


@dataclass
class Confusion:
    """One run's gold x predicted counts and its error categories, each category against chance.

    ``categories`` counts every wrong answer (unparsed and invalid included, and the items the file
    did not answer under ``unanswered``) under the keys of ``grouping``; ``chance`` reads the answered
    wrong ones (a wrong option picked) against what a uniform wrong pick would give on the same items
    (``core.chance``), under the same keys. ``answered`` and the matrix count answered items only.
    """

    run: str
    task: str | None
    categories: dict[str, int]
    matrix: list[MatrixCell]
    labels: list[str]
    errors: int
    answered: int
    grouping: str = FINE
    chance: dict[str, ChanceRow] = field(default_factory=dict)
    unanswered: int = 0  # items the file has no row for: counted wrong, listed under "unanswered"

    @property
    def rows(self) -> list[str]:
        """Keys to show: every category with errors, by count, then those offered but never picked
        (a model that avoids an error it was offered is a finding too)."""
        return [*self.categories, *(key for key in self.chance if key not in self.categories)]

    def count(self, key: str) -> int:
        return self.categories.get(key, 0)

    @property
    def wrong_picks(self) -> int:
        """Answered wrong items: what the chance figures were computed on."""
        return sum(row.observed for row in self.chance.values())

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run, "task": self.task, "grouping": self.grouping, "categories": self.categories,
                "groups": {key: list(members(key)) for key in self.rows},
                "chance": {key: row.as_json() for key, row in self.chance.items()},
                "chance_computed_on": f"{self.wrong_picks} answered wrong items (a wrong option picked); "
                                      "unparsed and invalid replies and unanswered items are not picks",
                "matrix": [m.as_json() for m in self.matrix], "labels": self.labels, "errors": self.errors,
                "answered": self.answered, "unanswered": self.unanswered}


UNPARSED_LABEL = "(unparsed)"
INVALID_LABEL = "(invalid)"


def confusion(con: duckdb.DuckDBPyConnection, run: str, task: str | None = None, grouping: str = FINE) -> Confusion:
    """Gold x predicted label counts of one run (all answered items) and its error categories,
    folded into ``grouping`` (fine or deck) and read against chance."""
    try:
        check_grouping(grouping)
    except ValueError as exc:
        raise WorkspaceError(str(exc)) from None
    info = get_run(con, run)
    if task is not None:
        tasks = [r[0] for r in con.execute("SELECT DISTINCT task FROM items WHERE bench_id = ?", [info.bench_id]).fetchall()]
        if task not in tasks:
            raise WorkspaceError(f"benchmark {info.bench_name!r} has no task {task!r}; tasks are: {'; '.join(sorted(tasks))}")
    rows = con.execute(
        f"""SELECT gold_label,
                   CASE outcome WHEN 'unparsed' THEN '{UNPARSED_LABEL}' WHEN 'invalid_option' THEN '{INVALID_LABEL}'
                                ELSE pred_label END AS pred,
                   count(*) AS n
            FROM predictions WHERE run_id = ? AND (? IS NULL OR task = ?)
            GROUP BY ALL ORDER BY gold_label, pred""",
        [info.run_id, task, task],
    ).fetchall()
    cats = dict(con.execute(
        """SELECT category, count(*) FROM predictions
           WHERE run_id = ? AND (? IS NULL OR task = ?) AND NOT correct GROUP BY category""",
        [info.run_id, task, task],
    ).fetchall())
    unanswered = unanswered_count(con, info.run_id, task)
    if unanswered:
        cats[UNANSWERED] = unanswered
    folded: dict[str, int] = {}
    for c in CATEGORY_ORDER:
        if cats.get(c.value):
            key = fold(c.value, grouping)
            folded[key] = folded.get(key, 0) + int(cats[c.value])
    order = key_order(grouping)
    categories = dict(sorted(folded.items(), key=lambda kv: (-kv[1], order.index(kv[0]))))
    labels = sorted({g for g, _, _ in rows} | {p for _, p, _ in rows if p not in (UNPARSED_LABEL, INVALID_LABEL)},
                    key=_label_sort_key)
    return Confusion(
        run=run, task=task, categories=categories,
        matrix=[MatrixCell(gold=g, pred=p, n=int(n)) for g, p, n in rows],
        labels=labels, errors=sum(categories.values()), answered=sum(int(n) for _, _, n in rows),
        grouping=grouping, chance=chance_from_counts(offer_counts(con, info.run_id, info.bench_id, task, grouping), grouping),
        unanswered=unanswered,
    )


_LABEL_ORDER = ("front", "front-right", "right", "back-right", "back", "back-left", "left", "front-left",
                "above", "above-right", "above-left", "front-up", "back-up", "down", "down-right", "down-left",
                "front-down", "back-down")


def _label_sort_key(label: str) -> tuple[int, str]:
    return (_LABEL_ORDER.index(label), label) if label in _LABEL_ORDER else (len(_LABEL_ORDER), label)
