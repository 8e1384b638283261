"""A job that counts slowly, for trying the runtime (progress, logs, cancel, queueing, ingest).

With ``--emit-run NAME --bench BENCH`` it also produces a run that answers every item with one
fixed letter (the "always A" baseline), so the whole path from a job to a run in the workspace
can be tried without a model.
"""

from __future__ import annotations

import json
import time

from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobContext
from orienteer.jobs.params import Param

SUMMARY = "a test job: counts to N; can emit a fixed-letter baseline run"
PARAMS = (
    Param("steps", "int", 10, help="how many steps"),
    Param("seconds", "float", 0.1, help="seconds per step"),
    Param("fail_at", "int", None, help="raise an error at this step (for trying failures)"),
    Param("emit_run", "str", None, help="also produce a run of this name that always answers --letter"),
    Param("bench", "str", None, help="benchmark of the emitted run"),
    Param("letter", "str", "A", help="the letter the emitted run always answers"),
)


def run(ctx: JobContext) -> None:
    steps = int(ctx.params["steps"])
    for step in range(steps):
        ctx.check_stop()
        if ctx.params.get("fail_at") is not None and step == int(ctx.params["fail_at"]):
            raise RuntimeError(f"asked to fail at step {step}")
        ctx.log(f"step {step + 1}/{steps}")
        time.sleep(float(ctx.params["seconds"]))
        ctx.progress(step + 1, steps, unit="steps")
    if ctx.params.get("emit_run"):
        _emit_run(ctx)


def _emit_run(ctx: JobContext) -> None:
    from orienteer.jobs.selection import load_items

    bench = ctx.params.get("bench")
    if not bench:
        raise ValueError("--emit-run needs --bench")
    items, _ = load_items(ctx.workspace, bench)
    path = ctx.out_dir / "predictions.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps({"item_id": item.item_id, "reply": ctx.params["letter"]}) + "\n")
    ctx.add_output(RunOutput(name=ctx.params["emit_run"], bench=bench, predictions_file=path.name,
                             model=f"always {ctx.params['letter']}", notes="baseline made by a sleep job"))
