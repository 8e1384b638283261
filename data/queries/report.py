"""Runs and the per-task report: accuracy with Wilson intervals, paired deltas against a baseline with
McNemar p Holm-corrected across the table."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import duckdb

from orienteer.core.stats import (
    holm,
    holm_rejects,
    mcnemar_bounds,
    mcnemar_exact,
    wilson_interval,
)
from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError
from orienteer.data.run_config import RunConfig

OVERALL = "overall"


@dataclass(frozen=True)
class RunRow:
    run: str
    benchmark: str
    items: int
    answered: int
    coverage: float
    correct: int
    accuracy: float
    parser: str
    model: str | None
    source_format: str | None
    created: datetime
    random_weights: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    """The run's settings and columns (``RunConfig.as_json``), as ``runs --json`` prints them."""


def list_runs(con: duckdb.DuckDBPyConnection, bench: str | None = None) -> list[RunRow]:
    rows = con.execute(
        """SELECT r.name, b.name, sum(s.n_items), sum(s.answered), sum(s.correct), r.parser, r.model,
                  r.source_format, r.created_at, r.random_weights, r.config, r.created_by_job
           FROM runs r JOIN benchmarks b USING (bench_id) JOIN run_task_stats s USING (run_id)
           WHERE ? IS NULL OR b.name = ?
           GROUP BY r.run_id, r.name, b.name, r.parser, r.model, r.source_format, r.created_at, r.random_weights, r.config,
                    r.created_by_job
           ORDER BY r.run_id""",
        [bench, bench],
    ).fetchall()
    return [
        RunRow(run=name, benchmark=bname, items=int(n), answered=int(a), coverage=a / n if n else 0.0, correct=int(c),
               accuracy=c / n if n else 0.0, parser=parser, model=model, source_format=fmt, created=created,
               random_weights=bool(rw), config=RunConfig.from_row(config, parser, model, fmt, bool(rw), job).as_json())
        for name, bname, n, a, c, parser, model, fmt, created, rw, config, job in rows
    ]


@dataclass(frozen=True)
class Cell:
    """Accuracy of one run on one task (or overall): missing answers count as wrong."""

    n: int
    correct: int
    answered: int

    @classmethod
    def of(cls, n: int, correct: int, answered: int) -> "Cell":
        return cls(n, correct, answered)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @cached_property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval, computed when first shown (a report may hold thousands of cells)."""
        return wilson_interval(self.correct, self.n)

    @property
    def ci_low(self) -> float:
        return self.interval[0]

    @property
    def ci_high(self) -> float:
        return self.interval[1]


@dataclass(frozen=True)
class Delta:
    """Run minus baseline on the same items, with the exact McNemar test on the pairs.

    ``family`` is every delta cell of the report's table (each run after the baseline x each task
    it answered, and overall): ``significant`` and ``p_holm`` read McNemar's p Holm-corrected
    across it, so a star survives multiple testing. A task the run has no answer in (not run) is
    no test: no family, never significant, ``p_holm`` None.
    """

    delta: float
    fixed: int
    broken: int
    family: DeltaFamily | None = field(default=None, compare=False, repr=False)
    index: int = field(default=-1, compare=False, repr=False)

    @cached_property
    def p_value(self) -> float:
        return mcnemar_exact(self.fixed, self.broken)

    @property
    def p_holm(self) -> float | None:
        return None if self.family is None else self.family.adjusted[self.index]

    @property
    def significant(self) -> bool:
        return self.family is not None and self.family.significant[self.index]

    def as_json(self) -> dict[str, Any]:
        return {"delta": self.delta, "fixed": self.fixed, "broken": self.broken, "p": self.p_value,
                "p_holm": self.p_holm, "p_value": self.p_value, "significant": self.significant}


class DeltaFamily:
    """The delta cells of one report table, tested together (Holm).

    Stars need only Holm's decisions, which ``holm_rejects`` takes from cheap bounds and the exact
    p of the few borderline cells (a table of 1,750 runs has 10,000 cells); the adjusted values, which
    need every exact p, are computed when first read (JSON, a cell's detail line).
    """

    def __init__(self) -> None:
        self.cells: list[Delta] = []

    @cached_property
    def significant(self) -> list[bool]:
        return holm_rejects([mcnemar_bounds(d.fixed, d.broken) for d in self.cells], lambda i: self.cells[i].p_value)

    @cached_property
    def adjusted(self) -> list[float]:
        return holm([d.p_value for d in self.cells])


@dataclass
class RunReport:
    run: str
    benchmark: str
    tasks: dict[str, Cell]
    overall: Cell
    deltas: dict[str, Delta] = field(default_factory=dict)
    random_weights: bool = False
    config: RunConfig = field(default_factory=RunConfig)
    """The run's settings as data (``data.run_config``)."""


@dataclass
class Report:
    benchmark: str
    tasks: list[str]
    baseline: str | None
    runs: list[RunReport]


def task_report(
    con: duckdb.DuckDBPyConnection,
    runs: list[str] | None = None,
    bench: str | None = None,
    baseline: str | None = None,
) -> list[Report]:
    """Per-task accuracy for runs, grouped by benchmark; deltas against the baseline run.

    The baseline is ``baseline`` when given (it must be one of the benchmark's runs), else
    the first run of each benchmark in the selection.
    """
    for name in runs or []:
        get_run(con, name)
    rows = con.execute(
        """SELECT b.name, r.run_id, r.name, s.task, s.n_items, s.correct, s.answered, r.random_weights, r.config,
                  r.parser, r.model, r.source_format, r.created_by_job
           FROM run_task_stats s JOIN runs r USING (run_id) JOIN benchmarks b USING (bench_id)
           WHERE (? IS NULL OR b.name = ?) AND (? IS NULL OR list_contains(?, r.name))
           ORDER BY b.bench_id, r.run_id, s.task""",
        [bench, bench, runs, runs],
    ).fetchall()
    by_bench: dict[str, dict[int, RunReport]] = {}
    order: dict[str, list[str]] = {}
    run_ids: dict[str, int] = {}
    for bname, run_id, rname, task, n, correct, answered, random_weights, config, parser, model, fmt, job in rows:
        reports = by_bench.setdefault(bname, {})
        report = reports.get(run_id)
        if report is None:
            report = reports[run_id] = RunReport(rname, bname, {}, Cell.of(0, 0, 0), random_weights=bool(random_weights),
                                                 config=RunConfig.from_row(config, parser, model, fmt,
                                                                           bool(random_weights), job))
            run_ids[rname] = run_id
        report.tasks[task] = Cell.of(n, correct, answered)
        order.setdefault(bname, [])
        if task not in order[bname]:
            order[bname].append(task)
    result: list[Report] = []
    for bname, reports in by_bench.items():
        run_reports = list(reports.values())
        for rr in run_reports:
            rr.overall = Cell.of(
                sum(c.n for c in rr.tasks.values()),
                sum(c.correct for c in rr.tasks.values()),
                sum(c.answered for c in rr.tasks.values()),
            )
        base_name = baseline if baseline is not None else run_reports[0].run
        if baseline is not None and baseline not in {r.run for r in run_reports}:
            base_info = get_run(con, baseline)
            if base_info.bench_name != bname:
                raise WorkspaceError(f"baseline {baseline!r} is a run of {base_info.bench_name!r}, not of {bname!r}")
            raise WorkspaceError(f"baseline {baseline!r} is not among the selected runs")
        if len(run_reports) > 1:
            _add_deltas(con, run_ids[base_name], [r for r in run_reports if r.run != base_name], run_ids, reports)
            _holm_across_table(run_reports)
        tasks = sorted(order[bname])
        result.append(Report(bname, tasks, base_name if len(run_reports) > 1 else None, run_reports))
    return result


def _add_deltas(
    con: duckdb.DuckDBPyConnection,
    base_id: int,
    others: list[RunReport],
    run_ids: dict[str, int],
    reports: dict[int, RunReport],
) -> None:
    """Paired counts of every run against the baseline, per task, from the cached correct-item bitstrings.

    Missing answers count as wrong, so with both_right = items both runs got right:
    fixed = run's correct - both_right and broken = baseline's correct - both_right.
    """
    base = reports[base_id]
    ids = [run_ids[r.run] for r in others]
    both = con.execute(
        """SELECT o.run_id, o.task, bit_count(o.correct_bits & b.correct_bits)
           FROM run_task_stats o JOIN run_task_stats b ON b.run_id = ? AND b.task = o.task
           WHERE list_contains(?::INTEGER[], o.run_id)""",
        [base_id, ids],
    ).fetchall()
    both_right = {(run_id, task): n for run_id, task, n in both}
    for rr in others:
        rid = run_ids[rr.run]
        total_fixed = total_broken = 0
        for task, cell in rr.tasks.items():
            shared = both_right.get((rid, task), 0)
            fixed, broken = cell.correct - shared, base.tasks[task].correct - shared
            total_fixed += fixed
            total_broken += broken
            rr.deltas[task] = Delta(cell.accuracy - base.tasks[task].accuracy, fixed, broken)
        rr.deltas[OVERALL] = Delta(rr.overall.accuracy - base.overall.accuracy, total_fixed, total_broken)


HOLM_FAMILY = ("McNemar p Holm-corrected across every delta cell of one benchmark's table: each run after the "
               "baseline x each task it answered, and overall")


def _holm_across_table(run_reports: list[RunReport]) -> None:
    """Put every delta cell one report table shows (tasks and overall, every run) in one Holm family.

    A task a run has no answer in at all reads "not run" and is no test, so it stays out.
    """
    family = DeltaFamily()
    for rr in run_reports:
        for task, d in rr.deltas.items():
            if (rr.overall if task == OVERALL else rr.tasks[task]).answered > 0:
                rr.deltas[task] = replace(d, family=family, index=len(family.cells))
                family.cells.append(rr.deltas[task])


def report_json(reports: list[Report]) -> dict[str, Any]:
    """The ``orienteer report --json`` document (accuracies as fractions)."""
    runs = []
    for report in reports:
        for rr in report.runs:
            entry: dict[str, Any] = {
                "run": rr.run,
                "benchmark": rr.benchmark,
                "n": rr.overall.n,
                "correct": rr.overall.correct,
                "answered": rr.overall.answered,
                "accuracy": rr.overall.accuracy,
                "ci95": [rr.overall.ci_low, rr.overall.ci_high],
                "tasks": {t: _cell_json(c) for t, c in rr.tasks.items()},
                "random_weights": rr.random_weights,
                "config": rr.config.as_json(),
                "truncated": rr.config.truncated,
            }
            if rr.deltas:
                entry["baseline"] = report.baseline
                entry["delta"] = {t: d.as_json() for t, d in rr.deltas.items()}
            runs.append(entry)
    return {"runs": runs, "p_holm": HOLM_FAMILY}


def _cell_json(cell: Cell) -> dict[str, Any]:
    return {"n": cell.n, "correct": cell.correct, "answered": cell.answered, "accuracy": cell.accuracy,
            "ci95": [cell.ci_low, cell.ci_high]}
