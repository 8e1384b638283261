"""The saliency kind: input-gradient maps for chosen items of a run, stored as artifacts.

Options left open take the run's own settings. Model code is imported inside ``run`` (see
``orienteer.jobs.model.saliency_job``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobContext
from orienteer.jobs.gpus import gpus_option, parse_gpus
from orienteer.jobs.kinds.base import Here, KindDef
from orienteer.jobs.kinds.shared import vision_attention_option, workers_option
from orienteer.jobs.params import option
from orienteer.jobs.settings import PROMPT_NAMES, RESIZE_MODES


@dataclass(frozen=True, kw_only=True)
class SaliencySpec:
    run: str = option(help="the run whose answers to explain")
    items: str | None = option(None, help="item filter (default: the run's failures, at most 20), e.g. ids-file:PATH")
    target: str = option("predicted", choices=("predicted", "gold", "A", "B", "C", "D"),
                         help="whose letter's logit to explain: the predicted, the gold or a fixed option")
    model: str | None = option(None, help="model folder or hub id (default: the run's model)")
    adapter: str | None = option(None, path=True, help="peft adapter folder (default: the run's adapter, if any)")
    prompt: str | None = option(None, choices=PROMPT_NAMES, help="prompt style (default: the run's)")
    resize: str | None = option(None, choices=RESIZE_MODES, help="frame sizing, upstream or budget (default: the run's)")
    max_pixels: int | None = option(None, help="pixel cap per image (default: the run's)")
    item_pixels: int | None = option(None, help="pixel budget per item across frames (default: the run's)")
    batch_size: int = option(4, help="items per forward+backward pass")
    workers: int = workers_option()
    vision_attention: str = vision_attention_option()
    gpus: str = gpus_option()


def check(spec: SaliencySpec) -> None:
    """Refuse a spec that cannot work before a job is created."""
    from orienteer.jobs.model.loading import check_adapter, resolve_model_ref

    if spec.target not in ("predicted", "gold") and not re.fullmatch(r"[A-Z]", spec.target):
        raise OrienteerError(f"--target expects predicted, gold or an option letter, got {spec.target!r}")
    if spec.batch_size < 1:
        raise OrienteerError(f"--batch-size must be at least 1, got {spec.batch_size}")
    parse_gpus(spec.gpus)  # a count or a GPU list; checked against --gpu when the job is submitted
    if spec.resize is not None and spec.resize not in RESIZE_MODES:
        raise OrienteerError(f"--resize expects one of {', '.join(RESIZE_MODES)}, got {spec.resize!r}")
    if spec.model:
        resolve_model_ref(spec.model)
    check_adapter(spec.adapter)


def prefill(here: Here) -> dict[str, Any]:
    failures = f"failures:{here.run}{here.task_clause};limit:20" if here.run else None
    return {"run": here.run, "items": here.selection or failures}


def run(ctx: JobContext) -> None:
    from orienteer.jobs.model.saliency_job import run_saliency

    spec = ctx.spec_of(SaliencySpec)
    check(spec)
    run_saliency(ctx, spec)


KIND = KindDef(
    name="saliency", spec=SaliencySpec, summary="input-gradient saliency maps for chosen items of a run", run=run,
    needs_gpu=True, reads=(("run", "runs"),), models=("model",), check=check, prefill=prefill,
)
