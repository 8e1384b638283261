"""One typed door to a workspace's data for the CLI, the app and the jobs.

Callers ask for what they show (a report, a page of failures, a case, a benchmark's items)
and get frozen dataclasses back; no caller outside ``data/`` sees a connection or SQL. Reads
go through one ``WorkspaceReader`` (a read-only connection held only while busy, so writers
in other processes get the file when the app is idle). The failures total, which can take
seconds on ten million predictions, runs on a short connection of its own under a
``Cancellable``: starting a new count interrupts the one before, inside this module.

The queries themselves live in ``data/queries`` (one module per view, benchmarked); this
module only turns their results into typed rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from orienteer.data import catalog
from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.reader import WorkspaceReader
from orienteer.data.rows import Audit, AuditRow, BenchmarkRow, PredictionPage, PredictionRow, RunAnswer, RunModel
from orienteer.data.workspace import Workspace

if TYPE_CHECKING:
    from orienteer.data.items import Item
    from orienteer.data.models import ModelInfo
    from orienteer.data.queries.case import CaseDetail
    from orienteer.data.queries.compare import CompareRow
    from orienteer.data.queries.confusion import Confusion
    from orienteer.data.queries.items import RunSettings
    from orienteer.data.queries.report import Report, RunRow
    from orienteer.data.run_errors import WrongAnswer
    from orienteer.data.saliency_summary import SaliencySummary


class Cancellable:
    """A token for one long query: ``cancel()`` stops it (DuckDB's ``interrupt()``) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._con is not None:
                try:
                    self._con.interrupt()
                except duckdb.Error:  # already finished or closed
                    pass

    def _attach(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Note the connection the query runs on; False when cancelled already (do not start)."""
        with self._lock:
            if self._cancelled:
                return False
            self._con = con
            return True

    def _detach(self) -> None:
        with self._lock:
            self._con = None


@dataclass(frozen=True)
class CountResult:
    """A finished count: ``total`` None when it was cancelled or failed (``error`` says why)."""

    filt: PredictionFilter
    total: int | None
    error: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class RunDetail:
    """What a job that starts from a run needs: its benchmark, model, notes, settings and answers."""

    run: str
    bench: str
    model: str | None
    notes: str | None
    config: Any  # RunConfig
    answers: dict[str, RunAnswer]


class WorkspaceService:
    """Every read of one workspace, typed. Thread-safe: the reader serialises queries on its connection."""

    def __init__(self, ws: Workspace, idle_s: float = 2.0) -> None:
        self.ws = ws
        self.reader = WorkspaceReader(ws, idle_s=idle_s)
        self._count_lock = threading.Lock()
        self._count: Cancellable | None = None

    # --- the connection's life -------------------------------------------------------------------

    def release_if_idle(self) -> bool:
        """Let go of the database when idle (called from the UI's timer; never waits)."""
        return self.reader.release_if_idle()

    def interrupt(self) -> None:
        """Stop the query running on the reader now, if any (closing the app mid-query)."""
        self.reader.interrupt()

    def close(self) -> None:
        self.cancel_count()
        self.reader.close()

    def __enter__(self) -> WorkspaceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- catalog ---------------------------------------------------------------------------------

    def bench_names(self) -> list[str]:
        return self.reader.run(catalog.bench_names)

    def benchmarks(self) -> list[BenchmarkRow]:
        """Every benchmark with its size, task count, format and image root, in import order."""
        def query(con: duckdb.DuckDBPyConnection) -> list[BenchmarkRow]:
            cursor = con.execute(
                """SELECT b.name, b.n_items AS items, count(DISTINCT i.task) AS tasks, b.source_format AS format,
                          b.image_root, b.created_at AS created
                   FROM benchmarks b JOIN items i USING (bench_id)
                   GROUP BY b.bench_id, b.name, b.n_items, b.source_format, b.image_root, b.created_at
                   ORDER BY b.bench_id""")
            names = [d[0] for d in cursor.description]
            return [BenchmarkRow(**dict(zip(names, r))) for r in cursor.fetchall()]

        return self.reader.run(query)

    def name_taken(self, table: str, name: str) -> bool:
        """Whether ``table`` (runs, benchmarks, datasets or models) has an entry called ``name``."""
        from orienteer.data.names_taken import name_in

        return bool(self._once(lambda con: name_in(con, table, name)))

    def first_table_with(self, tables: tuple[str, ...], name: str) -> str | None:
        """The first of ``tables`` holding ``name``, or None."""
        from orienteer.data.names_taken import first_table_with

        return self._once(lambda con: first_table_with(con, tables, name))

    def wrong_answers(self, run: str) -> tuple[str, list[WrongAnswer]]:
        """(the run's benchmark, its wrong answered items with gold, predicted label and category)."""
        from orienteer.data.run_errors import wrong_answers

        return self._once(lambda con: wrong_answers(con, run))

    def run_names(self, bench: str | None = None) -> list[str]:
        """Run names in import order, of one benchmark or all."""
        from orienteer.data.queries.lookups import run_names_of

        return self.reader.run(lambda con: run_names_of(con, bench))

    def run_info(self, run: str) -> catalog.RunInfo:
        """A run's id, benchmark and parser; a WorkspaceError naming the runs that exist when unknown."""
        return self.reader.run(lambda con: catalog.get_run(con, run))

    def bench_info(self, bench: str) -> catalog.BenchInfo:
        return self.reader.run(lambda con: catalog.get_bench(con, bench))

    def run_model(self, run: str) -> RunModel:
        """The run's benchmark and model, in one trip to the database."""
        from orienteer.data.queries.items import run_settings

        def query(con: duckdb.DuckDBPyConnection) -> RunModel:
            info = catalog.get_run(con, run)
            return RunModel(run=info.name, bench=info.bench_name, model=run_settings(con, info).model)

        return self.reader.run(query)

    def tasks_of_run(self, run: str) -> list[str]:
        from orienteer.data.queries.lookups import tasks_of_run

        return self.reader.run(lambda con: tasks_of_run(con, run))

    def distinct_values(self, column: str, runs: tuple[str, ...] = ()) -> list[str]:
        """Values a filter can take (task, source, gold_label, pred_label, category) over these runs."""
        from orienteer.data.queries.lookups import distinct_values

        return self.reader.run(lambda con: distinct_values(con, column, runs))

    def comparable_runs(self, bench: str | None) -> list[str]:
        from orienteer.data.queries.compare import comparable_runs

        return self.reader.run(lambda con: comparable_runs(con, bench))

    def models(self) -> list[ModelInfo]:
        from orienteer.data.models import list_models

        return self.reader.run(list_models)

    def list_runs(self, bench: str | None = None) -> list[RunRow]:
        from orienteer.data.queries.report import list_runs

        return self.reader.run(lambda con: list_runs(con, bench))

    # --- reports ---------------------------------------------------------------------------------

    def task_report(self, runs: list[str] | None = None, bench: str | None = None,
                    baseline: str | None = None) -> list[Report]:
        from orienteer.data.queries.report import task_report

        return self.reader.run(lambda con: task_report(con, runs, bench, baseline))

    def confusion(self, run: str, task: str | None = None, grouping: str = "fine") -> Confusion:
        from orienteer.data.queries.confusion import confusion

        return self.reader.run(lambda con: confusion(con, run, task, grouping))

    def compare(self, run_a: str, run_b: str) -> list[CompareRow]:
        from orienteer.data.queries.compare import compare_runs

        return self.reader.run(lambda con: compare_runs(con, run_a, run_b))

    def audit(self, run: str, limit: int | None = None) -> Audit:
        from orienteer.data.queries.compare import audit

        checked, rows = self.reader.run(lambda con: audit(con, run, limit))
        return Audit(run=run, checked=checked, rows=[AuditRow.of(r) for r in rows])

    def saliency_summary(self, run: str, vs: str | None = None) -> SaliencySummary:
        from orienteer.data.saliency_summary import saliency_summary

        return self.reader.run(lambda con: saliency_summary(con, run, vs))

    # --- failures: pages and counts --------------------------------------------------------------

    def predictions_page(self, filt: PredictionFilter, *, sort: str = "item", limit: int = 50,
                         offset: int = 0) -> list[PredictionRow]:
        from orienteer.data.queries.failures import predictions_page

        rows = self.reader.run(lambda con: predictions_page(con, filt, sort=sort, limit=limit, offset=offset))
        return [PredictionRow.of(r) for r in rows]

    def page_with_total(self, filt: PredictionFilter, *, sort: str = "item", limit: int = 50,
                        offset: int = 0) -> PredictionPage:
        """A page and the total, on one connection (the CLI's ``failures``)."""
        from orienteer.data.queries.failures import count_predictions, predictions_page

        total, rows = self.reader.run(lambda con: (
            count_predictions(con, filt), predictions_page(con, filt, sort=sort, limit=limit, offset=offset)))
        return PredictionPage(total=total, offset=offset, rows=[PredictionRow.of(r) for r in rows])

    def count(self, filt: PredictionFilter) -> int:
        """How many predictions pass ``filt``, on the shared reader (quick counts: a picker, a drill-down)."""
        from orienteer.data.queries.failures import count_predictions

        return self.reader.run(lambda con: count_predictions(con, filt))

    def filtered_item_ids(self, filt: PredictionFilter, run: str, limit: int = 10_000) -> list[str]:
        """Ids of ``run``'s items that pass ``filt``, in benchmark order (what a job on a filter works on)."""
        from orienteer.data.queries.failures import filtered_item_ids

        return self.reader.run(lambda con: filtered_item_ids(con, filt, run, limit))

    def start_count(self) -> Cancellable:
        """A token for a new count; the count started before it, if still running, is interrupted."""
        token = Cancellable()
        with self._count_lock:
            previous, self._count = self._count, token
        if previous is not None:
            previous.cancel()
        return token

    def cancel_count(self) -> None:
        """Interrupt the running count, if any (its filter is no longer shown)."""
        with self._count_lock:
            previous, self._count = self._count, None
        if previous is not None:
            previous.cancel()

    def count_cancellable(self, filt: PredictionFilter, token: Cancellable) -> CountResult:
        """Count on a short connection of its own, so pages on the shared reader are not held up.

        Blocking: call it from a worker thread. ``token.cancel()`` (or a newer ``start_count``)
        interrupts it; the result then says ``cancelled``.
        """
        from orienteer.data.queries.failures import count_predictions

        try:
            with self.ws.read() as con:
                if not token._attach(con):
                    return CountResult(filt, None, cancelled=True)
                try:
                    total = count_predictions(con, filt)
                finally:
                    token._detach()
        except duckdb.InterruptException:
            return CountResult(filt, None, cancelled=True)
        except OrienteerError as exc:
            return CountResult(filt, None, error=str(exc))
        except duckdb.Error as exc:
            if token.cancelled:  # interrupted while opening or closing
                return CountResult(filt, None, cancelled=True)
            return CountResult(filt, None, error=f"counting failed: {exc}")
        return CountResult(filt, total, cancelled=token.cancelled)

    def export_predictions(self, filt: PredictionFilter, path: Path, *, force: bool = False,
                           item_keys: list[tuple[str, str]] | None = None) -> int:
        """Write the filtered rows to a file, on a connection of its own (an export can take a while and
        must not hold the shared reader, whose idle check runs on the UI thread)."""
        from orienteer.data.export import export_predictions

        with self.ws.read() as con:
            return export_predictions(con, filt, path, force=force, item_keys=item_keys)

    # --- one item --------------------------------------------------------------------------------

    def case_detail(self, run: str, item_id: str) -> CaseDetail:
        from orienteer.data.queries.case import case_detail

        return self.reader.run(lambda con: case_detail(con, run, item_id))

    # --- items for jobs --------------------------------------------------------------------------

    def load_items(self, bench: str, *, tasks: tuple[str, ...] = (), sources: tuple[str, ...] = (),
                   ids: tuple[str, ...] | None = None, failures_of: str | None = None,
                   limit: int | None = None) -> tuple[list[Item], Path]:
        """The benchmark's items passing every condition, in benchmark order, and its image root."""
        from orienteer.data.queries.items import select_items

        def query(con: duckdb.DuckDBPyConnection) -> tuple[list[Item], Path]:
            info = catalog.get_bench(con, bench)
            run = None
            if failures_of is not None:
                run = catalog.get_run(con, failures_of)
                if run.bench_id != info.bench_id:
                    raise OrienteerError(f"item filter failures:{run.name}: that run is on benchmark "
                                         f"{run.bench_name!r}, not {bench!r}")
            items = select_items(con, info, tasks=tasks, sources=sources, ids=ids, failures_of=run, limit=limit)
            return items, self._image_root(info)

        return self._once(query)

    def load_item(self, bench: str, item_id: str) -> tuple[Item | None, Path]:
        """The item whose id is exactly ``item_id``, or None, and the benchmark's image root."""
        from orienteer.data.queries.items import item_by_id

        def query(con: duckdb.DuckDBPyConnection) -> tuple[Item | None, Path]:
            info = catalog.get_bench(con, bench)
            return item_by_id(con, info, item_id), self._image_root(info)

        return self._once(query)

    def run_detail(self, run: str) -> RunDetail:
        """A run's benchmark, model, notes, settings and answers by item id."""
        from orienteer.data.queries.items import run_answers, run_settings

        def query(con: duckdb.DuckDBPyConnection) -> RunDetail:
            info = catalog.get_run(con, run)
            settings: RunSettings = run_settings(con, info)
            return RunDetail(run=info.name, bench=info.bench_name, model=settings.model, notes=settings.notes,
                             config=settings.config, answers=run_answers(con, info))

        return self._once(query)

    def _image_root(self, info: catalog.BenchInfo) -> Path:
        return Path(info.image_root) if info.image_root else self.ws.root

    def _once(self, query: Any) -> Any:
        """Run on the reader and let go of the database at once (jobs and the CLI read once, then write)."""
        try:
            return self.reader.run(query)
        finally:
            self.reader.close()

