#!/usr/bin/env python
"""Workspace benchmark: ingest rate, query latency, page latency, peak memory and CLI import time.

Builds a workspace of ``--runs`` runs x 5,712 ViewSpatial items (1,750 runs = 10 million
predictions), imports it through the real path (``import_predictions`` on one Parquet file
with a ``run`` column), then measures the queries the CLI and the TUI issue, each in a fresh
subprocess so that peak RSS is that of a process that only opens the workspace and queries.

    .venv/bin/python bench/bench_workspace.py --quick          # 20 runs, well under a minute
    .venv/bin/python bench/bench_workspace.py                  # 1,750 runs (several minutes)
    .venv/bin/python bench/bench_workspace.py --reuse          # keep the built workspace, re-measure
    .venv/bin/python bench/bench_workspace.py --text-only      # only the 2M-row CSV / JSONL / Parquet import figures

Text formats: the same 2,000,000 rows (350 runs x 5,712 items) as CSV, JSONL and Parquet, each
imported --text-repeat times into a fresh copy of a benchmark-only workspace, each import in its own
process: peak RSS of that process (ru_maxrss, and VmHWM) and rows/s, medians, with the ratios to
Parquet measured in the same run.

Every stage that is timed runs in its own subprocess (this file with a hidden ``--stage``),
which writes its figures as JSON; the parent prints the table and writes ``figures.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
REAL_BENCH = HERE.parents[2] / "shared/reference/viewspatial/official_ZJU-REAL_ViewSpatial-Bench/ViewSpatial-Bench.json"
BENCH_NAME = "viewspatial"
N_ITEMS = 5712

# Targets from the issue.
INGEST_ROWS_PER_S = 500_000
QUERY_MS = 200.0
PAGE_MS = 50.0
RSS_MB = 500.0
TEXT_RSS_MB = 500.0  # issue 14: a CSV/JSONL import peaks under 500 MB whatever the file size
CLI_TOTAL_S = 2.0

TASKS = (  # ViewSpatial-Bench's five tasks and their real sizes (sum 5,712)
    ("Camera perspective - Relative Direction", 1773),
    ("Camera perspective - Object View Orientation", 996),
    ("Person perspective - Object View Orientation", 996),
    ("Person perspective - Relative Direction", 842),
    ("Person perspective - Scene Simulation Relative Direction", 1105),
)
LABELS = (
    "front", "back", "left", "right", "front-left", "front-right", "back-left", "back-right", "above", "down",
    "front-up", "front-down", "back-up", "back-down", "above-left", "above-right", "down-left", "down-right",
)
OFFICIAL_HEADER = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]
OFFICIAL_SUFFIX = "\nReply only to the corresponding option.\nAnswer:"

# Reply templates: {L} is the chosen letter, {l} its lower case, {T} the option's label.
# With 4 letters x 18 labels this gives a few hundred distinct reply strings.
TEMPLATES = (
    "{L}", "{L}.", "({L})", "{L})", "The answer is {L}", "The answer is {L}.", "Answer: {L}", "{L}. {T}",
    "{L}. {T}.", "**{L}**", "{l}", "Option {L}", "I think the answer is {L}. {T}",
    "Let me think step by step about the positions.\nThe answer is {L}",
    "From the camera's viewpoint the object is {T}.\n{L}",
)
UNPARSABLE = (
    "I cannot determine the direction from this image.", "None of the options.", "E", "The object is {T}.",
    "Sorry, I can't see the objects clearly.", "{T}", "Both options seem plausible.", "",
)


# --- small helpers -----------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux).

    Linux carries the parent's peak into a child's ru_maxrss across fork+exec, so the parent
    of the stages stays small (it never imports duckdb, pandas or orienteer) to keep the
    figure honest; ``vm_hwm_mb`` is the kernel's per-image high-water mark, as a cross-check.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of a non-empty list."""
    xs = sorted(samples)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(samples), "p95": percentile(samples, 95), "min": min(samples),
            "max": max(samples), "n": len(samples), "samples": samples}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_stage(stage: str, args: argparse.Namespace, result: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """Run this script's ``--stage`` in a fresh interpreter; return the JSON it wrote."""
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE), "--stage", stage, "--out", str(args.out), "--runs", str(args.runs),
           "--repeat", str(args.repeat), "--result", str(result)] + (extra or [])
    proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"stage {stage} failed with exit status {proc.returncode}")
    return json.loads(result.read_text())


# --- inputs --------------------------------------------------------------------------------------

def synthetic_bench(path: Path, seed: int = 7) -> Path:
    """A ViewSpatial-Bench-shaped JSON of 5,712 items: the five tasks, 4 options of the 18 labels."""
    rng = random.Random(seed)
    tasks = [t for t, n in TASKS for _ in range(n)]
    items = []
    for i, task in enumerate(tasks):
        labels = rng.sample(LABELS, 4)
        pos = rng.randrange(4)
        images = ([f"ViewSpatial-Bench/scannetv2_val/scene{i % 700:04d}_00/original_images/{k * 20}.jpg" for k in range(3)]
                  if "Scene Simulation" in task else
                  [f"ViewSpatial-Bench/scannetv2_val/scene{i % 700:04d}_00/original_images/{i % 50 * 10}.jpg"]
                  if task.startswith("Camera perspective - Relative") else [f"ViewSpatial-Bench/val2017/{i:012d}.jpg"])
        items.append({
            "question_type": task,
            "image_path": images,
            "question": f"Could you tell me the location of object {i} in comparison to object {i + 1}?",
            "answer": f"{'ABCD'[pos]}. {labels[pos]}",
            "choices": "\n".join(f"{'ABCD'[k]}. {labels[k]}" for k in range(4)),
        })
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def bench_file(args: argparse.Namespace) -> tuple[Path, bool]:
    """(path, synthetic?): the real ViewSpatial-Bench JSON when present, else a generated one."""
    if args.bench_file:
        return Path(args.bench_file), False
    if REAL_BENCH.is_file():
        return REAL_BENCH, False
    path = args.out / "ViewSpatial-Bench.synthetic.json"
    if not path.is_file():
        synthetic_bench(path)
    return path, True


def _items_table(con: Any, bench_path: Path) -> list[Any]:
    """Load the benchmark's items into DuckDB table ``it`` (item_idx, ans_idx, labels)."""
    import pandas as pd

    from orienteer.data.formats.bench_viewspatial import read_viewspatial_bench

    items = read_viewspatial_bench(bench_path)
    frame = pd.DataFrame({
        "item_idx": range(len(items)),
        "item_id": [i.item_id for i in items],
        "ans_idx": [i.option_letters.index(i.answer_letter) for i in items],
        "labels": [list(i.option_labels) for i in items],
    })
    con.register("items_frame", frame)
    con.execute("CREATE OR REPLACE TABLE it AS SELECT * FROM items_frame")
    con.unregister("items_frame")
    return items


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def replies_sql(n_runs: int, n_items: int, first_run: int = 0) -> str:
    """SELECT run, id, pred for runs x items, all in DuckDB (no Python loop over rows).

    Items have 2 or 4 options (ViewSpatial has 173 left/right items). Each run gets an accuracy in
    [0.30, 0.60] (ViewSpatial models score 30-50%) and a house style (one template for 80% of its
    replies); 4% of replies are unparsable.
    """
    n_t, n_u = len(TEMPLATES), len(UNPARSABLE)
    return f"""
    WITH g AS (
        SELECT k // {n_items} + {first_run} AS r, k % {n_items} AS item_idx,
               (hash(k, 'u') % 1000000)::BIGINT / 1e6 AS u, (hash(k, 'w') % 1000000)::BIGINT AS hw,
               (hash(k, 't') % 1000000)::BIGINT AS ht
        FROM range({n_runs * n_items}::BIGINT) t(k)
    ),
    c AS (
        SELECT g.r, it.item_id, it.labels, g.hw, g.ht, g.u, (hash(g.r, 'style') % 1000)::BIGINT AS style,
               CASE WHEN g.u < 0.04 THEN NULL
                    WHEN g.u < 0.04 + 0.96 * (0.30 + 0.30 * (hash(g.r, 'acc') % 1000)::BIGINT / 1000.0) THEN it.ans_idx
                    ELSE (it.ans_idx + 1 + g.hw % (len(it.labels) - 1)) % len(it.labels) END AS pick
        FROM g JOIN it USING (item_idx)
    )
    SELECT printf('run_%04d', r) AS run, item_id AS id,
           CASE WHEN pick IS NULL
                THEN replace({_sql_list(UNPARSABLE)}[(ht % {n_u}) + 1], '{{T}}', labels[(hw % len(labels)) + 1])
                ELSE replace(replace(replace(
                        {_sql_list(TEMPLATES)}[(CASE WHEN ht % 10 < 8 THEN style ELSE ht END) % {n_t} + 1],
                        '{{L}}', chr(65 + pick::INTEGER)), '{{l}}', lower(chr(65 + pick::INTEGER))),
                        '{{T}}', labels[pick + 1])
           END AS pred
    FROM c
    """


def generate_parquet(bench_path: Path, path: Path, n_runs: int) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(":memory:")
    items = _items_table(con, bench_path)
    escaped = str(path).replace("'", "''")
    seconds, _ = timed(lambda: con.execute(
        f"COPY ({replies_sql(n_runs, len(items))}) TO '{escaped}' (FORMAT PARQUET, ROW_GROUP_SIZE 1000000)"))
    rows, distinct, runs = con.execute(
        f"SELECT count(*), count(DISTINCT pred), count(DISTINCT run) FROM read_parquet('{escaped}')").fetchone()
    con.close()
    return {"seconds": seconds, "rows": rows, "distinct_replies": distinct, "runs": runs,
            "bytes": path.stat().st_size, "n_items": len(items)}


def write_official_csv(bench_path: Path, path: Path, run_index: int) -> int:
    """One run as the official ViewSpatial result CSV (ID, Question, ..., IsCorrect)."""
    import re

    import duckdb

    raw = json.loads(bench_path.read_text(encoding="utf-8"))
    con = duckdb.connect(":memory:")
    _items_table(con, bench_path)
    replies = con.execute(f"SELECT id, pred FROM ({replies_sql(1, len(raw), run_index)}) ORDER BY id::INTEGER").fetchall()
    con.close()

    def letter(text: str) -> str | None:  # the official evaluate.py rule
        m = re.search(r"\b([A-D])\b", text.split("\n")[-1], re.IGNORECASE)
        return m.group(1).upper() if m else None

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(OFFICIAL_HEADER)
        for key, reply in replies:
            item = raw[int(key)]
            writer.writerow([key, item["question"] + OFFICIAL_SUFFIX, item["question_type"], reply, item["answer"],
                             letter(reply) == letter(item["answer"])])
    return len(replies)


# --- stages (each in its own process) -------------------------------------------------------------

def stage_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Fresh workspace: import the benchmark, then the big Parquet through import_predictions."""
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.ingest_preds import import_predictions
    from orienteer.data.workspace import Workspace

    ws_dir = Path(args.ws)
    shutil.rmtree(ws_dir, ignore_errors=True)
    ws = Workspace(ws_dir)
    rss_before = peak_rss_mb()
    bench_s, bench = timed(lambda: import_benchmark(ws, Path(args.bench), BENCH_NAME))
    preds_s, results = timed(lambda: import_predictions(ws, Path(args.parquet), BENCH_NAME, None))
    rows = sum(r.rows for r in results)
    return {"bench_import_s": bench_s, "n_items": bench.n_items, "import_s": preds_s, "rows": rows,
            "runs": len(results), "rows_per_s": rows / preds_s, "rss_after_imports_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(), "vm_hwm_mb": vm_hwm_mb(), "db_bytes": ws.db_path.stat().st_size}


def stage_queries(args: argparse.Namespace) -> dict[str, Any]:
    """Open the workspace and run each query --repeat times (after one cold call)."""
    from orienteer.data.filters import PredictionFilter
    from orienteer.data.queries import confusion, failures, report
    from orienteer.data.workspace import Workspace

    ws = Workspace(Path(args.ws))
    rss_imports = peak_rss_mb()
    open_samples = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        with ws.read() as con:
            con.execute("SELECT 1").fetchone()
        open_samples.append((time.perf_counter() - start) * 1000)

    out: dict[str, Any] = {"open_ms": summary(open_samples), "queries": {}}
    with ws.read() as con:
        names = [r[0] for r in con.execute("SELECT name FROM runs ORDER BY run_id").fetchall()]
        tasks = [r[0] for r in con.execute("SELECT DISTINCT task FROM items ORDER BY task").fetchall()]
        run = names[len(names) // 2]
        handful = [names[int(k * (len(names) - 1) / 4)] for k in range(5)]
        run_failures = failures.count_predictions(con, PredictionFilter(runs=(run,)))
        all_failures = failures.count_predictions(con, PredictionFilter())
        run_offset = min(2000, max(0, run_failures - 50))
        deep_offset = min(5_000_000, max(0, all_failures - 50))
        plan: list[tuple[str, str, float, Callable[[], Any]]] = [
            ("list_runs", "query", QUERY_MS, lambda: report.list_runs(con)),
            (f"task_report (all {len(names)} runs)", "query", QUERY_MS, lambda: report.task_report(con)),
            ("task_report (5 runs)", "query", QUERY_MS, lambda: report.task_report(con, handful)),
            ("confusion (1 run)", "query", QUERY_MS, lambda: confusion.confusion(con, run)),
            ("confusion (1 run, 1 task)", "query", QUERY_MS, lambda: confusion.confusion(con, run, tasks[0])),
            ("count_predictions (1 run)", "query", QUERY_MS,
             lambda: failures.count_predictions(con, PredictionFilter(runs=(run,)))),
            ("count_predictions (all runs)", "query", QUERY_MS,
             lambda: failures.count_predictions(con, PredictionFilter())),
            (f"page 50 (1 run, offset {run_offset:,})", "page", PAGE_MS,
             lambda: failures.predictions_page(con, PredictionFilter(runs=(run,)), offset=run_offset)),
            ("page 50 (all runs, offset 0)", "page", PAGE_MS,
             lambda: failures.predictions_page(con, PredictionFilter(), offset=0)),
            (f"page 50 (all runs, offset {deep_offset:,})", "page", PAGE_MS,
             lambda: failures.predictions_page(con, PredictionFilter(), offset=deep_offset)),
        ]
        for name, kind, target, fn in plan:
            first_s, value = timed(fn)
            if kind == "page":
                assert len(value) == 50, (name, len(value))
            samples = [timed(fn)[0] * 1000 for _ in range(args.repeat)]
            out["queries"][name] = {"kind": kind, "target_ms": target, "first_ms": first_s * 1000, **summary(samples),
                                    "rss_after_mb": peak_rss_mb()}
    out.update({"runs": len(names), "run": run, "handful": handful, "run_failures": run_failures,
                "all_failures": all_failures, "rss_after_imports_mb": rss_imports, "peak_rss_mb": peak_rss_mb(),
                "vm_hwm_mb": vm_hwm_mb()})
    return out


def stage_csv(args: argparse.Namespace) -> dict[str, Any]:
    """Import one 5,712-row official CSV into the big workspace --repeat times, then remove those runs."""
    from orienteer.data.ingest_preds import import_predictions
    from orienteer.data.store import delete_runs
    from orienteer.data.workspace import Workspace

    ws = Workspace(Path(args.ws))
    names = [f"bench_csv_{k}" for k in range(args.repeat)]
    samples = []
    for name in names:
        seconds, results = timed(lambda: import_predictions(ws, Path(args.csv), BENCH_NAME, name))
        samples.append(seconds * 1000)
    delete_s, _ = timed(lambda: delete_runs(ws, names))
    return {"import_ms": summary(samples), "rows": results[0].rows, "delete_s": delete_s, "peak_rss_mb": peak_rss_mb()}


def stage_generate(args: argparse.Namespace) -> dict[str, Any]:
    """The inputs: the big Parquet (runs x items) and one official CSV run."""
    import duckdb

    out = {"duckdb": duckdb.__version__}
    if not args.csv_only:
        out.update(generate_parquet(Path(args.bench), Path(args.parquet), args.runs))
    out["csv_rows"] = write_official_csv(Path(args.bench), Path(args.csv), run_index=args.runs + 1)
    return out


def stage_text_generate(args: argparse.Namespace) -> dict[str, Any]:
    """The same rows as CSV, JSONL and Parquet (DuckDB's COPY writes all three), and a benchmark-only workspace."""
    import duckdb

    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.workspace import Workspace

    con = duckdb.connect(":memory:")
    items = _items_table(con, Path(args.bench))
    n_runs = max(1, round(args.text_rows / len(items)))
    con.execute(f"CREATE TABLE t AS {replies_sql(n_runs, len(items))}")
    out: dict[str, Any] = {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0], "runs": n_runs, "bytes": {}}
    for fmt, opts in (("csv", "FORMAT CSV, HEADER"), ("jsonl", "FORMAT JSON"), ("parquet", "FORMAT PARQUET")):
        path = Path(args.text_dir) / f"preds.{fmt}"
        con.execute(f"COPY t TO '{str(path).replace(chr(39), chr(39) * 2)}' ({opts})")
        out["bytes"][fmt] = path.stat().st_size
    con.close()
    base = Path(args.text_dir) / "ws_base"
    shutil.rmtree(base, ignore_errors=True)
    import_benchmark(Workspace(base), Path(args.bench), BENCH_NAME)
    return out


def stage_text_import(args: argparse.Namespace) -> dict[str, Any]:
    """One import of one text-format file into a fresh copy of the benchmark-only workspace."""
    from orienteer.data.ingest_preds import import_predictions
    from orienteer.data.workspace import Workspace

    text_dir = Path(args.text_dir)
    ws_dir = text_dir / f"ws_{args.text_format}"
    shutil.rmtree(ws_dir, ignore_errors=True)
    shutil.copytree(text_dir / "ws_base", ws_dir)
    ws = Workspace(ws_dir)
    rss_before = peak_rss_mb()
    seconds, results = timed(lambda: import_predictions(ws, text_dir / f"preds.{args.text_format}", BENCH_NAME, None))
    rows = sum(r.rows for r in results)
    shutil.rmtree(ws_dir, ignore_errors=True)
    return {"format": args.text_format, "seconds": seconds, "rows": rows, "rows_per_s": rows / seconds,
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(), "vm_hwm_mb": vm_hwm_mb()}


TEXT_FORMATS = ("parquet", "csv", "jsonl")


def text_formats(args: argparse.Namespace, bench_path: Path) -> dict[str, Any]:
    """Generate the three files once, then import each --text-repeat times, interleaved (p, c, j, p, c, j...)."""
    text_dir = args.out / "text"
    text_dir.mkdir(parents=True, exist_ok=True)
    extra = ["--bench", str(bench_path), "--text-dir", str(text_dir), "--text-rows", str(args.text_rows)]
    out: dict[str, Any] = {"generate": run_stage("text_generate", args, args.out / "stage_text_generate.json", extra)}
    samples: dict[str, list[dict[str, Any]]] = {f: [] for f in TEXT_FORMATS}
    for _ in range(args.text_repeat):
        for fmt in TEXT_FORMATS:
            samples[fmt].append(run_stage("text_import", args, args.out / "stage_text_import.json",
                                          extra + ["--text-format", fmt]))
    for fmt in TEXT_FORMATS:
        runs = samples[fmt]
        out[fmt] = {"rows": runs[0]["rows"], "rows_per_s": summary([r["rows_per_s"] for r in runs]),
                    "seconds": summary([r["seconds"] for r in runs]),
                    "peak_rss_mb": summary([r["peak_rss_mb"] for r in runs]),
                    "vm_hwm_mb": summary([r["vm_hwm_mb"] or 0.0 for r in runs]),
                    "rss_before_mb": summary([r["rss_before_mb"] for r in runs])}
    base = out["parquet"]
    for fmt in TEXT_FORMATS:
        out[fmt]["rate_vs_parquet"] = out[fmt]["rows_per_s"]["median"] / base["rows_per_s"]["median"]
        out[fmt]["rss_vs_parquet"] = out[fmt]["peak_rss_mb"]["median"] / base["peak_rss_mb"]["median"]
    shutil.rmtree(text_dir, ignore_errors=True)
    return out


STAGES = {"generate": stage_generate, "ingest": stage_ingest, "queries": stage_queries, "csv": stage_csv,
          "text_generate": stage_text_generate, "text_import": stage_text_import}


# --- the CLI path, as a user runs it ---------------------------------------------------------------

def cli_import(args: argparse.Namespace, bench_path: Path, csv_path: Path) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("orienteer")
    base = [str(exe)] if exe.is_file() else [sys.executable, "-m", "orienteer"]
    help_s, bench_s, preds_s, total_s = [], [], [], []
    for k in range(args.repeat):
        ws_dir = args.out / f"ws_cli_{k}"
        shutil.rmtree(ws_dir, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(base + ["--help"], check=True, capture_output=True)
        t1 = time.perf_counter()
        subprocess.run(base + ["-w", str(ws_dir), "import", "bench", str(bench_path), "--name", BENCH_NAME],
                       check=True, capture_output=True)
        t2 = time.perf_counter()
        subprocess.run(base + ["-w", str(ws_dir), "import", "preds", str(csv_path), "--bench", BENCH_NAME, "--run", "r1"],
                       check=True, capture_output=True)
        t3 = time.perf_counter()
        help_s.append(t1 - t0)
        bench_s.append(t2 - t1)
        preds_s.append(t3 - t2)
        total_s.append(t3 - t1)
        shutil.rmtree(ws_dir, ignore_errors=True)
    return {"help_s": summary(help_s), "bench_s": summary(bench_s), "preds_s": summary(preds_s),
            "total_s": summary(total_s)}


# --- report -------------------------------------------------------------------------------------------

def figures_table(fig: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float, unit: str, target: str, ok: bool | None, p95: float | None = None,
            first: float | None = None) -> None:
        rows.append({"metric": metric, "value": value, "p95": p95, "first": first, "unit": unit, "target": target,
                     "status": "-" if ok is None else ("PASS" if ok else "FAIL")})

    if "text" in fig:
        t = fig["text"]
        for fmt in TEXT_FORMATS:
            f = t[fmt]
            name = {"parquet": "Parquet", "csv": "CSV", "jsonl": "JSONL"}[fmt]
            add(f"import {f['rows']:,} rows as {name}: rate", f["rows_per_s"]["median"], "rows/s", "", None,
                f["rows_per_s"]["p95"])
            add(f"  {name} import peak RSS (own process)", f["peak_rss_mb"]["median"], "MB", f"<= {TEXT_RSS_MB:.0f}",
                f["peak_rss_mb"]["max"] <= TEXT_RSS_MB, f["peak_rss_mb"]["p95"])
            if fmt != "parquet":
                add(f"  {name} vs Parquet: rate ratio", f["rate_vs_parquet"], "x", "", None)
                add(f"  {name} vs Parquet: peak RSS ratio", f["rss_vs_parquet"], "x", "", None)
    if "ingest" not in fig:
        return rows
    ing = fig["ingest"]
    at_scale = ing["rows"] >= 1_000_000  # the rate target is for 10M rows; small files are start-up bound
    add(f"ingest {ing['rows']:,} rows ({ing['runs']:,} runs), Parquet", ing["rows_per_s"], "rows/s",
        f">= {INGEST_ROWS_PER_S:,}" if at_scale else "(10M only)",
        ing["rows_per_s"] >= INGEST_ROWS_PER_S if at_scale else None)
    add("  ingest wall time", ing["import_s"], "s", "", None)
    add("  ingest process peak RSS", ing["peak_rss_mb"], "MB", "", None)
    q = fig["queries"]
    add("open workspace (read-only connect)", q["open_ms"]["median"], "ms", "", None, q["open_ms"]["p95"])
    for name, s in q["queries"].items():
        add(name, s["median"], "ms", f"<= {s['target_ms']:.0f}", s["p95"] <= s["target_ms"], s["p95"], s["first_ms"])
    add("query process RSS after imports (python + libs)", q["rss_after_imports_mb"], "MB", "", None)
    add("query process peak RSS (ru_maxrss)", q["peak_rss_mb"], "MB", f"<= {RSS_MB:.0f}", q["peak_rss_mb"] <= RSS_MB)
    c = fig["csv_into_big"]
    add(f"import 1 official CSV run ({c['rows']:,} rows) into the big ws", c["import_ms"]["median"], "ms", "", None,
        c["import_ms"]["p95"])
    cli = fig["cli"]
    add("CLI: orienteer --help (startup floor)", cli["help_s"]["median"], "s", "", None, cli["help_s"]["p95"])
    add("CLI: import bench (5,712 items)", cli["bench_s"]["median"], "s", "", None, cli["bench_s"]["p95"])
    add("CLI: import preds (official CSV)", cli["preds_s"]["median"], "s", "", None, cli["preds_s"]["p95"])
    add("CLI: bench + preds, total", cli["total_s"]["median"], "s", f"< {CLI_TOTAL_S:.0f}",
        cli["total_s"]["median"] < CLI_TOTAL_S, cli["total_s"]["p95"])
    return rows


def print_table(rows: list[dict[str, Any]], header: str) -> None:
    def fmt(v: float | None, unit: str) -> str:
        if v is None:
            return ""
        if unit == "rows/s":
            return f"{v:,.0f}"
        if unit == "MB":
            return f"{v:,.0f}"
        return f"{v:,.1f}" if unit == "ms" else f"{v:,.2f}"

    width = max(len(r["metric"]) for r in rows)
    print(header)
    print(f"{'metric':<{width}}  {'median':>11}  {'p95':>9}  {'first':>9}  {'unit':<6}  {'target':<11}  status")
    print("-" * (width + 66))
    for r in rows:
        print(f"{r['metric']:<{width}}  {fmt(r['value'], r['unit']):>11}  {fmt(r['p95'], r['unit']):>9}  "
              f"{fmt(r['first'], r['unit']):>9}  {r['unit']:<6}  {r['target']:<11}  {r['status']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1750, help="runs to generate (1,750 x 5,712 = 10.0M predictions)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/orienteer-bench"), help="working folder; figures.json goes here")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions of each query / import (median, p95)")
    ap.add_argument("--quick", action="store_true", help="smoke version: 20 runs (overrides --runs)")
    ap.add_argument("--reuse", action="store_true", help="reuse the workspace of an earlier run with the same --runs")
    ap.add_argument("--bench-file", help="benchmark JSON (default: the real ViewSpatial-Bench.json, else a synthetic one)")
    ap.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--bench", help=argparse.SUPPRESS)
    ap.add_argument("--parquet", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    ap.add_argument("--csv-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--text-rows", type=int, default=2_000_000,
                    help="rows of the CSV/JSONL/Parquet import comparison (0 skips it; --quick: 200,000)")
    ap.add_argument("--text-repeat", type=int, default=3, help="imports of each text-format file (median)")
    ap.add_argument("--text-only", action="store_true", help="only the CSV/JSONL/Parquet import comparison")
    ap.add_argument("--text-dir", help=argparse.SUPPRESS)
    ap.add_argument("--text-format", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = 20
        if args.text_rows == 2_000_000:
            args.text_rows = 200_000
        if args.out == Path("/tmp/orienteer-bench"):
            args.out = Path("/tmp/orienteer-bench-quick")
    args.out = args.out.resolve()

    if args.stage:
        value = STAGES[args.stage](args)
        Path(args.result).write_text(json.dumps(value, indent=1, default=str))
        return 0

    started = time.perf_counter()
    load_start = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    bench_path, synthetic = bench_file(args)
    ws_dir = args.out / f"ws_{args.runs}"
    parquet = args.out / f"preds_{args.runs}x{N_ITEMS}.parquet"
    csv_path = args.out / "result.csv"
    stage_args = ["--ws", str(ws_dir), "--bench", str(bench_path), "--parquet", str(parquet), "--csv", str(csv_path)]
    fig: dict[str, Any] = {}
    print(f"benchmark file: {bench_path}{' (synthetic)' if synthetic else ''}", flush=True)
    if args.text_rows > 0:
        print(f"text formats: {args.text_rows:,} rows as Parquet, CSV, JSONL, {args.text_repeat} imports each "
              "(own process each) ...", flush=True)
        fig["text"] = text_formats(args, bench_path)
        for fmt in TEXT_FORMATS:
            f = fig["text"][fmt]
            print(f"  {fmt:<8} {f['rows_per_s']['median']:>10,.0f} rows/s  peak RSS {f['peak_rss_mb']['median']:,.0f} MB "
                  f"(x{f['rss_vs_parquet']:.2f} of Parquet's)", flush=True)
    if args.text_only:
        fig["meta"] = {"text_rows": args.text_rows, "text_repeat": args.text_repeat, "cpus": os.cpu_count(),
                       "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "bench_wall_s": time.perf_counter() - started, "loadavg_start": load_start,
                       "loadavg_end": os.getloadavg()}
        fig["table"] = figures_table(fig)
        (args.out / "figures.json").write_text(json.dumps(fig, indent=1, default=str))
        print()
        print_table(fig["table"], f"orienteer text-format import: {args.text_rows:,} rows, {os.cpu_count()} CPUs, "
                                  f"medians of {args.text_repeat}")
        return 0 if all(r["status"] != "FAIL" for r in fig["table"]) else 1

    meta_file = args.out / f"ingest_{args.runs}.json"
    if args.reuse and meta_file.is_file() and (ws_dir / "orienteer.duckdb").is_file():
        print(f"reusing {ws_dir}", flush=True)
        fig.update(json.loads(meta_file.read_text()))
    else:
        print(f"generating {args.runs:,} runs x {N_ITEMS:,} items -> {parquet} ...", flush=True)
        fig["generate"] = run_stage("generate", args, args.out / "stage_generate.json", stage_args)
        print(f"  {fig['generate']['rows']:,} rows, {fig['generate']['distinct_replies']} distinct replies, "
              f"{fig['generate']['bytes'] / 1e6:.0f} MB in {fig['generate']['seconds']:.1f} s", flush=True)
        print("importing (import_predictions, one Parquet file, one run per distinct `run`) ...", flush=True)
        fig["ingest"] = run_stage("ingest", args, args.out / "stage_ingest.json", stage_args)
        print(f"  {fig['ingest']['rows']:,} rows in {fig['ingest']['import_s']:.1f} s = "
              f"{fig['ingest']['rows_per_s']:,.0f} rows/s", flush=True)
        meta_file.write_text(json.dumps({k: fig[k] for k in ("generate", "ingest")}, indent=1))

    print(f"queries ({args.repeat} repetitions each, fresh process) ...", flush=True)
    fig["queries"] = run_stage("queries", args, args.out / "stage_queries.json", stage_args)

    if not csv_path.is_file():
        run_stage("generate", args, args.out / "stage_generate.json", stage_args + ["--csv-only"])
    print(f"one official CSV run into the {args.runs:,}-run workspace ({args.repeat}x) ...", flush=True)
    fig["csv_into_big"] = run_stage("csv", args, args.out / "stage_csv.json", stage_args)

    print(f"CLI: import bench + import preds into a fresh workspace ({args.repeat}x) ...", flush=True)
    fig["cli"] = cli_import(args, bench_path, csv_path)

    gen_file = args.out / "stage_generate.json"
    duckdb_version = json.loads(gen_file.read_text()).get("duckdb", "?") if gen_file.is_file() else "?"
    fig["meta"] = {
        "runs": args.runs, "items": N_ITEMS, "repeat": args.repeat, "bench_file": str(bench_path),
        "synthetic_bench": synthetic, "cpus": os.cpu_count(), "python": platform.python_version(),
        "duckdb": duckdb_version, "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "bench_wall_s": time.perf_counter() - started,
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
    }
    fig["table"] = figures_table(fig)
    (args.out / "figures.json").write_text(json.dumps(fig, indent=1, default=str))
    print()
    print_table(fig["table"], f"orienteer workspace benchmark: {args.runs:,} runs x {N_ITEMS:,} items, "
                              f"{os.cpu_count()} CPUs, duckdb {duckdb_version}, medians of {args.repeat}")
    print(f"\nwall time {fig['meta']['bench_wall_s']:.0f} s; figures in {args.out / 'figures.json'}")
    busy = max(load_start[0], fig["meta"]["loadavg_end"][0])
    if busy > 0.5:
        print(f"note: 1-minute load average reached {busy:.1f} on {os.cpu_count()} CPUs: other processes "
              "were running, timings are pessimistic")
    return 0 if all(r["status"] != "FAIL" for r in fig["table"]) else 1


if __name__ == "__main__":
    sys.exit(main())
