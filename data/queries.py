"""The read side of the workspace: every table, report and page the CLI and the TUI show.

Each function takes an open connection and returns plain dataclasses or dicts, so the CLI
prints them with rich or as JSON and the TUI renders them without knowing SQL. The queries
are shaped for millions of predictions: reports read the cached per-(run, task) counts,
per-run queries filter on ``run_id`` (predictions are stored in run order, so DuckDB's zone
maps skip other runs), and pages are fetched with LIMIT from the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime
from typing import Any

import duckdb

from orienteer.core.chance import FINE, ChanceRow, chance_from_counts, check_grouping, fold, key_order, members
from orienteer.core.directions import CATEGORY_ORDER
from orienteer.core.stats import holm, holm_rejects, mcnemar_bounds, mcnemar_exact, wilson_interval
from orienteer.data.catalog import get_run
from orienteer.data.chance import offer_counts
from orienteer.data.errors import WorkspaceError
from orienteer.data.filters import CompiledFilter, PredictionFilter, compile_filter
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
                  r.source_format, r.created_at, r.random_weights, r.config
           FROM runs r JOIN benchmarks b USING (bench_id) JOIN run_task_stats s USING (run_id)
           WHERE ? IS NULL OR b.name = ?
           GROUP BY r.run_id, r.name, b.name, r.parser, r.model, r.source_format, r.created_at, r.random_weights, r.config
           ORDER BY r.run_id""",
        [bench, bench],
    ).fetchall()
    return [
        RunRow(run=name, benchmark=bname, items=int(n), answered=int(a), coverage=a / n if n else 0.0, correct=int(c),
               accuracy=c / n if n else 0.0, parser=parser, model=model, source_format=fmt, created=created,
               random_weights=bool(rw), config=RunConfig.from_row(config, parser, model, fmt, bool(rw)).as_json())
        for name, bname, n, a, c, parser, model, fmt, created, rw, config in rows
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
                  r.parser, r.model, r.source_format
           FROM run_task_stats s JOIN runs r USING (run_id) JOIN benchmarks b USING (bench_id)
           WHERE (? IS NULL OR b.name = ?) AND (? IS NULL OR list_contains(?, r.name))
           ORDER BY b.bench_id, r.run_id, s.task""",
        [bench, bench, runs, runs],
    ).fetchall()
    by_bench: dict[str, dict[int, RunReport]] = {}
    order: dict[str, list[str]] = {}
    run_ids: dict[str, int] = {}
    for bname, run_id, rname, task, n, correct, answered, random_weights, config, parser, model, fmt in rows:
        reports = by_bench.setdefault(bname, {})
        report = reports.get(run_id)
        if report is None:
            report = reports[run_id] = RunReport(rname, bname, {}, Cell.of(0, 0, 0), random_weights=bool(random_weights),
                                                 config=RunConfig.from_row(config, parser, model, fmt,
                                                                           bool(random_weights)))
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


@dataclass
class Confusion:
    """One run's gold x predicted counts and its error categories, each category against chance.

    ``categories`` counts every wrong answer (unparsed and invalid included) under the keys of
    ``grouping``; ``chance`` reads the answered wrong ones (a wrong option picked) against what a
    uniform wrong pick would give on the same items (``core.chance``), under the same keys.
    """

    run: str
    task: str | None
    categories: dict[str, int]
    matrix: list[dict[str, Any]]
    labels: list[str]
    errors: int
    answered: int
    grouping: str = FINE
    chance: dict[str, ChanceRow] = field(default_factory=dict)

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
                                      "unparsed and invalid replies are not picks",
                "matrix": self.matrix, "labels": self.labels, "errors": self.errors, "answered": self.answered}


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
        matrix=[{"gold": g, "pred": p, "n": int(n)} for g, p, n in rows],
        labels=labels, errors=sum(categories.values()), answered=sum(int(n) for _, _, n in rows),
        grouping=grouping, chance=chance_from_counts(offer_counts(con, info.run_id, info.bench_id, task, grouping), grouping),
    )


_LABEL_ORDER = ("front", "front-right", "right", "back-right", "back", "back-left", "left", "front-left",
                "above", "above-right", "above-left", "front-up", "back-up", "down", "down-right", "down-left",
                "front-down", "back-down")


def _label_sort_key(label: str) -> tuple[int, str]:
    return (_LABEL_ORDER.index(label), label) if label in _LABEL_ORDER else (len(_LABEL_ORDER), label)


# --- the failures list -------------------------------------------------------------------------

# Each sort orders by its leading column(s), then run and item: a stable, total order.
SORTS: dict[str, tuple[str, ...]] = {
    "item": (),
    "task": ("p.task",),
    "category": ("p.category",),
    "gold": ("p.gold_label",),
    "pred": ("p.pred_label",),
}
DEEP_OFFSET = 5_000

ROW_COLUMNS = """r.name AS run, i.item_id, p.item_idx, p.task, i.source, i.question, p.gold_label,
                 i.answer_letter AS gold_letter, p.letter AS pred_letter, p.pred_label, p.outcome, p.category,
                 p.reply, p.correct"""

ITEM_JOIN = """FROM predictions p JOIN runs r ON r.run_id = p.run_id
               JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx"""


def predictions_page(
    con: duckdb.DuckDBPyConnection, filt: PredictionFilter, *, sort: str = "item", limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of predictions matching the filter (failures by default), in the sort's order.

    The page's keys come from ``predictions`` alone; only its rows are joined to items and runs.
    Deep offsets are found without sorting everything before them: rows are counted per
    (sort value, run), the bucket holding the offset is located, and only it is read.
    """
    if sort not in SORTS:
        raise WorkspaceError(f"unknown sort {sort!r} (expected one of {', '.join(SORTS)})")
    cf = compile_filter(con, filt)
    lead = SORTS[sort]
    if offset >= DEEP_OFFSET:
        keys = _deep_page_keys(con, cf, lead, limit, offset, filt)
    elif lead:
        keys = _keys_by_value(con, cf, lead[0], limit, offset, filt)
    else:
        keys = con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} ORDER BY p.run_id, p.item_idx LIMIT ? OFFSET ?",
            cf.params + [limit, offset],
        ).fetchall()
    return rows_for_keys(con, keys)


def _keys_by_value(
    con: duckdb.DuckDBPyConnection, cf: CompiledFilter, column: str, limit: int, offset: int, filt: PredictionFilter
) -> list[tuple[int, int]]:
    """A page in (column, run, item) order without sorting every matching row.

    Sorting millions of failures by a text column to keep 100 of them costs 150-300 ms; instead the
    sort values are walked in order (the next one is a ``min`` over the filter, or comes from the
    per-(run, task) cache for tasks) and only rows holding the current value are read, in
    (run, item) order, which DuckDB's zone maps make cheap. NULLs come last, as in ``ORDER BY``.
    """
    values = _task_values(con, filt) if column == "p.task" else None
    keys: list[tuple[int, int]] = []
    skip = offset
    previous: Any = None
    index = 0
    while len(keys) < limit:
        if values is not None:
            value = values[index] if index < len(values) else None
            index += 1
        else:
            after = f" AND {column} > ?" if previous is not None else ""
            value = con.execute(
                f"SELECT min({column}) {cf.from_sql()} WHERE {cf.where}{after}",
                cf.params + ([previous] if previous is not None else []),
            ).fetchone()[0]
        same = f"{column} IS NULL" if value is None else f"{column} = ?"
        args = cf.params + ([] if value is None else [value])
        if skip:
            n = con.execute(f"SELECT count(*) {cf.from_sql()} WHERE {cf.where} AND {same}", args).fetchone()[0]
            if skip >= n:
                skip -= n
                if value is None:
                    break
                previous = value
                continue
        keys += con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} AND {same} "
            "ORDER BY p.run_id, p.item_idx LIMIT ? OFFSET ?",
            args + [limit - len(keys), skip],
        ).fetchall()
        skip = 0
        if value is None:
            break
        previous = value
    return keys


def _task_values(con: duckdb.DuckDBPyConnection, filt: PredictionFilter) -> list[str]:
    """The tasks the filter can match, in order, from the per-(run, task) summary."""
    run_ids = [get_run(con, name).run_id for name in filt.runs]
    tasks = [r[0] for r in con.execute(
        """SELECT DISTINCT task FROM run_task_stats
           WHERE len($1::INTEGER[]) = 0 OR list_contains($1, run_id) ORDER BY task""", [run_ids]).fetchall()]
    return [t for t in tasks if not filt.tasks or t in filt.tasks]


def _cached_buckets(
    con: duckdb.DuckDBPyConnection, filt: PredictionFilter, lead: tuple[str, ...]
) -> list[tuple[Any, ...]] | None:
    """Rows per ([task,] run) from ``run_task_stats`` when the filter is one the cache can count:
    failures (or all answers), optionally of some runs and tasks, in item or task order."""
    if lead not in ((), ("p.task",)) or (filt.categories or filt.gold_labels or filt.pred_labels or filt.outcomes
                                        or filt.sources or filt.item_ids or filt.text or filt.versus_run is not None):
        return None
    run_ids = [get_run(con, name).run_id for name in filt.runs]
    n = "s.answered - s.correct" if filt.failures_only else "s.answered"
    groups = "s.task, s.run_id" if lead else "s.run_id"
    return con.execute(
        f"""SELECT {groups}, sum({n}) FROM run_task_stats s
            WHERE (len($1::INTEGER[]) = 0 OR list_contains($1, s.run_id))
              AND (len($2::VARCHAR[]) = 0 OR list_contains($2, s.task))
            GROUP BY {groups} ORDER BY {groups}""",
        [run_ids, list(filt.tasks)],
    ).fetchall()


def _deep_page_keys(
    con: duckdb.DuckDBPyConnection, cf: CompiledFilter, lead: tuple[str, ...], limit: int, offset: int,
    filt: PredictionFilter | None = None,
) -> list[tuple[int, int]]:
    groups = ", ".join([*lead, "p.run_id"])
    buckets = _cached_buckets(con, filt, lead) if filt is not None else None
    if buckets is None:
        buckets = con.execute(
            f"SELECT {groups}, count(*) {cf.from_sql()} WHERE {cf.where} GROUP BY {groups} ORDER BY {groups}", cf.params
        ).fetchall()
    keys: list[tuple[int, int]] = []
    skip = offset
    for *values, run_id, n in buckets:
        if skip >= n:
            skip -= n
            continue
        same = " AND ".join([*(f"{c} IS NOT DISTINCT FROM ?" for c in lead), "p.run_id = ?"])
        keys += con.execute(
            f"SELECT p.run_id, p.item_idx {cf.from_sql()} WHERE {cf.where} AND {same} ORDER BY p.item_idx LIMIT ? OFFSET ?",
            cf.params + values + [run_id, limit - len(keys), skip],
        ).fetchall()
        skip = 0
        if len(keys) >= limit:
            break
    return keys


def rows_for_keys(con: duckdb.DuckDBPyConnection, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Full display rows for (run_id, item_idx) keys, in the keys' order."""
    if not keys:
        return []
    cursor = con.execute(
        f"""WITH k AS (SELECT unnest($1::INTEGER[]) AS run_id, unnest($2::INTEGER[]) AS item_idx,
                              unnest(range(len($1::INTEGER[]))) AS ord)
            SELECT {ROW_COLUMNS} FROM k JOIN predictions p ON p.run_id = k.run_id AND p.item_idx = k.item_idx
            JOIN runs r ON r.run_id = p.run_id JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx
            WHERE p.run_id BETWEEN $3 AND $4
            ORDER BY k.ord""",
        [[k[0] for k in keys], [k[1] for k in keys], min(k[0] for k in keys), max(k[0] for k in keys)],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def count_predictions(con: duckdb.DuckDBPyConnection, filt: PredictionFilter) -> int:
    cf = compile_filter(con, filt)
    return int(con.execute(f"SELECT count(*) {cf.from_sql()} WHERE {cf.where}", cf.params).fetchone()[0])


def filtered_item_ids(con: duckdb.DuckDBPyConnection, filt: PredictionFilter, run: str, limit: int = 10_000) -> list[str]:
    """Item ids of ``run``'s rows that pass ``filt``, in benchmark order: what a job launched from
    the failures screen works on when no rows are marked."""
    cf = compile_filter(con, filt.with_(runs=(run,)))
    rows = con.execute(
        f"SELECT i.item_id {cf.from_sql(with_items=True)} WHERE {cf.where} ORDER BY p.item_idx LIMIT {int(limit)}",
        cf.params,
    ).fetchall()
    return [r[0] for r in rows]


# --- audit and comparison ----------------------------------------------------------------------

def audit(con: duckdb.DuckDBPyConnection, run: str, limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Items where the file's own verdict disagrees with Orienteer's scoring: (with a verdict, rows)."""
    info = get_run(con, run)
    checked = con.execute(
        "SELECT count(*) FROM predictions WHERE run_id = ? AND file_verdict IS NOT NULL", [info.run_id]
    ).fetchone()[0]
    cursor = con.execute(
        f"""SELECT {ROW_COLUMNS}, p.file_verdict, p.source_line {ITEM_JOIN}
            WHERE p.run_id = ? AND p.file_verdict IS NOT NULL AND p.file_verdict <> p.correct
            ORDER BY p.item_idx LIMIT ?""",
        [info.run_id, limit if limit is not None else 2**62],
    )
    names = [d[0] for d in cursor.description]
    return int(checked), [dict(zip(names, row)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class CompareRow:
    """One task (or overall) of a paired comparison; ``p_holm`` is McNemar's p Holm-corrected across the rows."""

    task: str
    n: int
    accuracy_a: float
    accuracy_b: float
    fixed: int
    broken: int
    p_value: float
    p_holm: float = 1.0

    @property
    def significant(self) -> bool:
        return self.p_holm < 0.05


def alignment(con: duckdb.DuckDBPyConnection, bench_a: int, bench_b: int) -> str:
    """How items of two benchmarks line up: ``same``, ``b_from_a`` (B derived from A: B's
    ``parent_item_id`` is A's ``item_id``), ``a_from_b``, or ``none``."""
    if bench_a == bench_b:
        return "same"
    parents = dict(con.execute(
        "SELECT bench_id, parent_bench_id FROM benchmarks WHERE list_contains(?, bench_id)", [[bench_a, bench_b]]
    ).fetchall())
    if parents.get(bench_b) == bench_a:
        return "b_from_a"
    if parents.get(bench_a) == bench_b:
        return "a_from_b"
    return "none"


def compare_runs(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> list[CompareRow]:
    """Per task: items fixed (A wrong, B right) and broken (A right, B wrong), plus overall.

    Runs of one benchmark pair by item. A run of a derived benchmark (flipped, box-prompted) pairs
    with a run of its parent through ``parent_item_id``; only items present in both count.
    """
    a, b = get_run(con, run_a), get_run(con, run_b)
    how = alignment(con, a.bench_id, b.bench_id)
    if how == "none":
        raise WorkspaceError(
            f"runs {run_a!r} ({a.bench_name}) and {run_b!r} ({b.bench_name}) are of unrelated benchmarks "
            "(neither is derived from the other)"
        )
    if how == "same":
        pairs = "SELECT item_idx AS ia, item_idx AS ib, task FROM items WHERE bench_id = ?"
        params: list[Any] = [a.bench_id]
    else:  # o: the original's items, d: the derived benchmark's; the task is the original's
        ia, ib = ("o", "d") if how == "b_from_a" else ("d", "o")
        pairs = f"""SELECT {ia}.item_idx AS ia, {ib}.item_idx AS ib, o.task FROM items o
                    JOIN items d ON d.bench_id = ? AND d.parent_item_id = o.item_id WHERE o.bench_id = ?"""
        params = [b.bench_id, a.bench_id] if how == "b_from_a" else [a.bench_id, b.bench_id]
    rows = con.execute(
        f"""WITH i AS ({pairs}),
                pa AS (SELECT item_idx, correct FROM predictions WHERE run_id = ?),
                pb AS (SELECT item_idx, correct FROM predictions WHERE run_id = ?)
           SELECT i.task, count(*) AS n,
                  count(*) FILTER (WHERE COALESCE(pa.correct, FALSE)) AS ca,
                  count(*) FILTER (WHERE COALESCE(pb.correct, FALSE)) AS cb,
                  count(*) FILTER (WHERE NOT COALESCE(pa.correct, FALSE) AND COALESCE(pb.correct, FALSE)) AS fixed,
                  count(*) FILTER (WHERE COALESCE(pa.correct, FALSE) AND NOT COALESCE(pb.correct, FALSE)) AS broken
           FROM i LEFT JOIN pa ON pa.item_idx = i.ia LEFT JOIN pb ON pb.item_idx = i.ib
           GROUP BY i.task ORDER BY i.task""",
        [*params, a.run_id, b.run_id],
    ).fetchall()
    out = [CompareRow(t, n, ca / n, cb / n, f, br, mcnemar_exact(f, br)) for t, n, ca, cb, f, br in rows]
    if out:
        n = sum(r.n for r in out)
        ca = sum(r.accuracy_a * r.n for r in out)
        cb = sum(r.accuracy_b * r.n for r in out)
        f = sum(r.fixed for r in out)
        br = sum(r.broken for r in out)
        out.append(CompareRow(OVERALL, n, ca / n, cb / n, f, br, mcnemar_exact(f, br)))
    return [replace(row, p_holm=p) for row, p in zip(out, holm([row.p_value for row in out]))]


def comparable_runs(con: duckdb.DuckDBPyConnection, bench: str | None) -> list[str]:
    """Runs of ``bench`` and of the benchmarks derived from it or it from (for the compare pickers)."""
    if bench is None:
        return run_names_of(con, None)
    return [r[0] for r in con.execute(
        """WITH me AS (SELECT bench_id, parent_bench_id FROM benchmarks WHERE name = ?)
           SELECT r.name FROM runs r JOIN benchmarks b USING (bench_id), me
           WHERE b.bench_id = me.bench_id OR b.parent_bench_id = me.bench_id OR b.bench_id = me.parent_bench_id
           ORDER BY r.run_id""", [bench]).fetchall()]


# --- one item, for the case view ----------------------------------------------------------------

@dataclass
class CaseDetail:
    """Everything the case view shows about one item of one run."""

    run: str
    benchmark: str
    item_id: str
    item_idx: int
    task: str
    question: str
    options: list[tuple[str, str]]
    answer_letter: str
    images: list[str]
    image_root: str | None
    source: str | None
    reference_object: str | None
    bbox: list[float] | None
    reply: str | None
    letter: str | None
    pred_label: str | None
    outcome: str | None
    category: str | None
    probs: dict[str, float] | None
    model: str | None
    other_runs: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    bbox_frame: int = 0  # which of ``images`` the box is on


def case_detail(con: duckdb.DuckDBPyConnection, run: str, item_id: str) -> CaseDetail:
    import json

    info = get_run(con, run)
    row = con.execute(
        """SELECT i.item_idx, i.task, i.question, i.option_letters, i.option_labels, i.answer_letter, i.images,
                  b.image_root, i.source, i.reference_object, i.bbox, p.reply, p.letter, p.pred_label, p.outcome,
                  p.category, p.probs, r.model || CASE WHEN r.random_weights THEN ' [RANDOM WEIGHTS: numbers mean nothing]' ELSE '' END,
                  i.bbox_frame
           FROM items i JOIN benchmarks b USING (bench_id) JOIN runs r ON r.bench_id = b.bench_id AND r.run_id = ?
           LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = i.item_idx
           WHERE i.bench_id = ? AND i.item_id = ?""",
        [info.run_id, info.bench_id, item_id],
    ).fetchone()
    if row is None:
        raise WorkspaceError(f"benchmark {info.bench_name!r} has no item {item_id!r}")
    (item_idx, task, question, letters, labels, answer, images, root, source, ref, bbox, reply, letter, pred_label,
     outcome, category, probs, model, bbox_frame) = row
    others = con.execute(
        """SELECT r.name AS run, p.letter, p.pred_label, p.outcome, p.category, p.correct
           FROM runs r LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = ?
           WHERE r.bench_id = ? AND r.run_id <> ? ORDER BY r.run_id LIMIT 200""",
        [item_idx, info.bench_id, info.run_id],
    )
    names = [d[0] for d in others.description]
    other_runs = [dict(zip(names, r)) for r in others.fetchall()]
    arts = con.execute(
        "SELECT kind, path, frame, metrics FROM artifacts WHERE run_id = ? AND item_idx = ? ORDER BY kind, frame",
        [info.run_id, item_idx],
    ).fetchall()
    artifacts = [{"kind": k, "path": p, "frame": f, "metrics": json.loads(m) if m else {}} for k, p, f, m in arts]
    return CaseDetail(
        run=run, benchmark=info.bench_name, item_id=item_id, item_idx=item_idx, task=task, question=question,
        options=list(zip(letters, labels)), answer_letter=answer, images=list(images), image_root=root, source=source,
        reference_object=ref, bbox=list(bbox) if bbox else None, reply=reply, letter=letter, pred_label=pred_label,
        outcome=outcome, category=category, probs=json.loads(probs) if probs else None, model=model,
        other_runs=other_runs, artifacts=artifacts, bbox_frame=bbox_frame,
    )


def run_names_of(con: duckdb.DuckDBPyConnection, bench: str | None = None) -> list[str]:
    return [r[0] for r in con.execute(
        """SELECT r.name FROM runs r JOIN benchmarks b USING (bench_id)
           WHERE ? IS NULL OR b.name = ? ORDER BY r.run_id""", [bench, bench]).fetchall()]


def tasks_of_run(con: duckdb.DuckDBPyConnection, run: str) -> list[str]:
    info = get_run(con, run)
    return [r[0] for r in con.execute(
        "SELECT DISTINCT task FROM items WHERE bench_id = ? ORDER BY task", [info.bench_id]).fetchall()]


def distinct_values(con: duckdb.DuckDBPyConnection, column: str, runs: tuple[str, ...] = ()) -> list[str]:
    """Values a filter can take (tasks, sources, labels, categories) over the given runs."""
    allowed = {"task": "p.task", "source": "i.source", "gold_label": "p.gold_label", "pred_label": "p.pred_label",
               "category": "p.category"}
    if column not in allowed:
        raise WorkspaceError(f"cannot list values of {column!r}")
    expr = allowed[column]
    if column == "source":
        rows = con.execute(
            "SELECT DISTINCT source FROM items WHERE source IS NOT NULL ORDER BY 1").fetchall()
        return [r[0] for r in rows]
    run_ids = [get_run(con, r).run_id for r in runs]
    rows = con.execute(
        f"""SELECT DISTINCT {expr} FROM predictions p
            WHERE {expr} IS NOT NULL AND (len(?::INTEGER[]) = 0 OR list_contains(?, p.run_id)) ORDER BY 1""",
        [run_ids, run_ids],
    ).fetchall()
    return [r[0] for r in rows]
