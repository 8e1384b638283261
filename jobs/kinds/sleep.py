"""A job that counts slowly, for trying the runtime (progress, logs, cancel, queueing, ingest).

With ``--emit-run NAME --bench BENCH`` it also produces a run that answers every item with one
fixed letter (the "always A" baseline), so the whole path from a job to a run in the workspace
can be tried without a model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import KindDef, NewName, new_names
from orienteer.jobs.params import option


@dataclass(frozen=True, kw_only=True)
class SleepSpec:
    steps: int = option(10, help="how many steps")
    seconds: float = option(0.1, help="seconds per step")
    fail_at: int | None = option(None, help="raise an error at this step (for trying failures)")
    emit_run: str | None = option(None, help="also produce a run of this name that always answers --letter")
    bench: str | None = option(None, help="benchmark of the emitted run")
    letter: str = option("A", help="the letter the emitted run always answers")


def run(ctx: JobContext) -> None:
    spec = ctx.spec_of(SleepSpec)
    for step in range(spec.steps):
        ctx.check_stop()
        if spec.fail_at is not None and step == spec.fail_at:
            raise RuntimeError(f"asked to fail at step {step}")
        ctx.log(f"step {step + 1}/{spec.steps}")
        time.sleep(spec.seconds)
        ctx.progress(step + 1, spec.steps, unit="steps")
    if spec.emit_run:
        _emit_run(ctx, spec, spec.emit_run)


def _emit_run(ctx: JobContext, spec: SleepSpec, name: str) -> None:
    from orienteer.jobs.selection import load_items

    if not spec.bench:
        raise ValueError("--emit-run needs --bench")
    items, _ = load_items(ctx.workspace, spec.bench)
    path = ctx.out_dir / "predictions.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps({"item_id": item.item_id, "reply": spec.letter}) + "\n")
    ctx.add_output(RunOutput(name=name, bench=spec.bench, predictions_file=path.name,
                             model=f"always {spec.letter}", notes="baseline made by a sleep job"))


def outputs(spec: SleepSpec) -> list[NewName]:
    return new_names(spec, emit_run="runs")


KIND = KindDef(
    name="sleep", spec=SleepSpec, summary="a test job: counts to N, for trying the runtime", run=run,
    reads=(("bench", "benchmarks"),), outputs=outputs,
)
