"""Ingest a finished job's outputs into the workspace: one transaction, exactly once per job id.

Everything that can fail is parsed and checked on a staging connection first; the workspace is then
attached for one transaction that checks ``job_ingests`` for the job id, writes every output and
records the id. DuckDB admits one writer at a time, so when two processes notice the same finished
job, the second finds the id recorded and writes nothing. A process killed mid-transaction leaves
the workspace as it was (the transaction never commits).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from orienteer.data.catalog import get_run
from orienteer.data.datasets import ITEMS, DatasetInfo, discard_registered, read_examples, register_dataset
from orienteer.data.errors import OrienteerError
from orienteer.data.formats.common import iter_jsonl, read_text
from orienteer.data.images import count_present
from orienteer.data.ingest_bench import read_benchmark, stage_items, write_benchmark
from orienteer.data.ingest_preds import PredictionOptions, PreparedRuns, prepare_predictions, write_prepared
from orienteer.data.items import Item
from orienteer.data.job_outputs import (
    ArtifactsOutput,
    BenchmarkOutput,
    DatasetOutput,
    ModelOutput,
    RunOutput,
    read_manifest,
)
from orienteer.data.single import single_value
from orienteer.data.workspace import Workspace


@dataclass
class IngestResult:
    job_id: str
    ingested: bool
    summary: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": True, "ingested": self.ingested, "summary": self.summary}


class _AlreadyIngested(Exception):
    pass


def already_ingested(ws: Workspace, job_id: str) -> bool:
    if not ws.exists():
        return False
    with ws.read() as con:
        return single_value(con, "SELECT count(*) FROM job_ingests WHERE job_id = ?", [job_id]) > 0


def ingest_job(ws: Workspace, job_id: str, kind: str, out_dir: Path) -> IngestResult:
    """Write the outputs listed in ``out_dir/manifest.json``; a job already ingested is left alone."""
    outputs = read_manifest(out_dir)
    if outputs is None:
        raise OrienteerError(f"job {job_id}: no manifest in {out_dir} (the job did not finish writing its outputs)")
    if already_ingested(ws, job_id):
        return IngestResult(job_id, ingested=False, summary=["already ingested"])
    runs = [o for o in outputs if isinstance(o, RunOutput)]
    if len(runs) > 1:
        raise OrienteerError(f"job {job_id}: more than one run in its manifest is not supported")
    benches = [o for o in outputs if isinstance(o, BenchmarkOutput)]
    names = [b.name for b in benches]
    if len(set(names)) != len(names):
        raise OrienteerError(f"job {job_id}: its manifest lists benchmark names twice ({', '.join(names)})")
    summary: list[str] = []
    registered: list[DatasetInfo] = []  # dataset files put in place, removed again if the transaction fails
    with ws.staging() as con:
        prepared: PreparedRuns | None = None
        if runs:
            r = runs[0]
            options = PredictionOptions(fmt="jsonl", parser=r.parser, model=r.model, notes=r.notes, created_by_job=job_id)
            prepared = prepare_predictions(con, ws, out_dir / r.predictions_file, r.bench, r.name, options)
        # Every benchmark is read, checked and staged (one table each) before the workspace is touched.
        staged: list[tuple[BenchmarkOutput, str, list[Item], Path, tuple[int, int], str]] = []
        for k, b in enumerate(benches):
            fmt, bench_items = read_benchmark(out_dir / b.items_file, "items")
            image_root = (out_dir / b.image_root).resolve()
            present = count_present(image_root, [i.images[0] for i in bench_items])
            stage_items(con, bench_items, bench_id=0, table=f"job_items{k}")
            staged.append((b, fmt, bench_items, image_root, present, f"job_items{k}"))
        artifacts = {id(o): _read_jsonl(out_dir / o.file) for o in outputs if isinstance(o, ArtifactsOutput)}
        examples = {id(o): read_examples(out_dir / o.file, ITEMS) for o in outputs if isinstance(o, DatasetOutput)}
        try:
            with ws.attach_for_write(con):
                if single_value(con, "SELECT count(*) FROM ws.job_ingests WHERE job_id = ?", [job_id]):
                    raise _AlreadyIngested
                for b, fmt, bench_items, image_root, present, table in staged:
                    bench_info = write_benchmark(
                        con, bench_items, b.name, source_path=out_dir / b.items_file, fmt=fmt, image_root=image_root,
                        present=present, notes=b.notes, parent=b.parent, table=table,
                    )
                    summary.append(f"benchmark {b.name} ({bench_info.n_items} items)")
                if prepared is not None:
                    for run in write_prepared(con, prepared):
                        summary.append(f"run {run.name} ({run.rows} answers, {run.correct} correct)")
                        if runs[0].random_weights:
                            con.execute("UPDATE ws.runs SET random_weights = TRUE WHERE run_id = ?", [run.run_id])
                            summary[-1] += " [random weights]"
                        if runs[0].config:
                            config = with_training_composition(con, runs[0].config)
                            con.execute("UPDATE ws.runs SET config = ? WHERE run_id = ?",
                                        [json.dumps(config, sort_keys=True), run.run_id])
                for o in outputs:
                    if isinstance(o, ArtifactsOutput):
                        n = _write_artifacts(con, ws, job_id, out_dir, o, artifacts[id(o)])
                        summary.append(f"{n} artifacts for run {o.run}")
                    elif isinstance(o, ModelOutput):
                        _write_model(con, job_id, out_dir, o)
                        summary.append(f"model {o.name} ({o.method})")
                    elif isinstance(o, DatasetOutput):
                        info = register_dataset(
                            con, ws, o.name, out_dir / o.file, composition=o.composition, notes=o.notes,
                            created_by_job=job_id, examples=examples[id(o)],
                        )
                        registered.append(info)
                        summary.append(f"dataset {o.name} ({info.n_examples} examples)")
                _fault_point(out_dir)
                con.execute(
                    "INSERT INTO ws.job_ingests (job_id, kind, outputs, ingested_at) VALUES (?, ?, ?, now())",
                    [job_id, kind, json.dumps(summary)],
                )
        except _AlreadyIngested:
            return IngestResult(job_id, ingested=False, summary=["already ingested"])
        except BaseException:
            for info in registered:
                discard_registered(info, ws)
            raise
    return IngestResult(job_id, ingested=True, summary=summary)


def _fault_point(out_dir: Path) -> None:
    """Fault injection for the crash tests: pause inside the open transaction when asked to.

    ``ORIENTEER_FAULT_INGEST_PAUSE=SECONDS`` makes the ingesting process write ``ingest-paused`` in
    the job folder and sleep there, so a test can SIGKILL it mid-transaction.
    """
    pause = os.environ.get("ORIENTEER_FAULT_INGEST_PAUSE")
    if pause:
        (out_dir.parent / "ingest-paused").touch()
        time.sleep(float(pause))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path, read_text(path))]


def with_training_composition(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings with the composition of the dataset its model was trained on (``trained_on``),
    as the workspace records it now: the run keeps what it was trained on even if the dataset is
    deleted or replaced later. Unchanged when there is no such dataset."""
    name = config.get("trained_on")
    if not isinstance(name, str):
        return config
    row = con.execute("SELECT n_examples, composition FROM ws.datasets WHERE name = ?", [name]).fetchone()
    if row is None:
        return config
    composition = json.loads(row[1]) if row[1] else {}
    return {**config, "trained_on_examples": int(row[0]), "trained_on_composition": composition}


def _write_artifacts(
    con: duckdb.DuckDBPyConnection, ws: Workspace, job_id: str, out_dir: Path, o: ArtifactsOutput,
    rows: list[dict[str, Any]],
) -> int:
    run = get_run(con, o.run, catalog="ws")
    index = dict(con.execute("SELECT item_id, item_idx FROM ws.items WHERE bench_id = ?", [run.bench_id]).fetchall())
    next_id = single_value(con, "SELECT COALESCE(max(artifact_id), 0) + 1 FROM ws.artifacts")
    records: list[tuple[Any, ...]] = []
    for row in rows:
        item_id = str(row.get("item_id"))
        if item_id not in index:
            raise OrienteerError(f"job {job_id}: artifact for item {item_id!r}, which is not in run {o.run}'s benchmark")
        path = (out_dir / str(row["path"])).resolve()
        try:
            stored = str(path.relative_to(ws.root))
        except ValueError:
            stored = str(path)
        metrics = row.get("metrics")
        records.append((next_id + len(records), run.run_id, index[item_id], str(row["kind"]), stored,
                        int(row.get("frame") or 0), json.dumps(metrics) if metrics is not None else None, job_id))
    if records:
        con.executemany(
            """INSERT INTO ws.artifacts (artifact_id, run_id, item_idx, kind, path, frame, metrics, created_by_job, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())""",
            records,
        )
    return len(records)


def _write_model(con: duckdb.DuckDBPyConnection, job_id: str, out_dir: Path, o: ModelOutput) -> None:
    from orienteer.data.models import insert_model

    insert_model(con, o.name, str((out_dir / o.path).resolve()), o.base_model, o.method, o.notes, job_id, catalog="ws")

