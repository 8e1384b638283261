"""The saliency kind: input-gradient maps for chosen items of a run, stored as artifacts.

Model code is imported inside ``run`` (see ``orienteer.jobs.model.saliency_job``).
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.context import JobContext
from orienteer.jobs.model.images import RESIZE_MODES
from orienteer.jobs.model.prompt import PROMPT_NAMES
from orienteer.jobs.kinds.shared import FAST_PATH, WORKERS
from orienteer.jobs.params import Param

SUMMARY = "input-gradient saliency maps for chosen items of a run"
PARAMS = (
    Param("run", "str", None, required=True, help="the run whose answers to explain"),
    Param("items", "str", None, help="item filter (default: the run's failures, at most 20), e.g. ids-file:PATH"),
    Param("target", "choice", "predicted", help="whose letter's logit to explain: the predicted, the gold or a fixed option",
          choices=("predicted", "gold", "A", "B", "C", "D")),
    Param("model", "str", None, help="model folder or hub id (default: the run's model)"),
    Param("adapter", "path", None, help="peft adapter folder (default: the run's adapter, if any)"),
    Param("prompt", "choice", None, help="prompt style (default: the run's)", choices=PROMPT_NAMES),
    Param("resize", "choice", None, choices=RESIZE_MODES, help="frame sizing, upstream or budget (default: the run's)"),
    Param("max_pixels", "int", None, help="pixel cap per image (default: the run's)"),
    Param("item_pixels", "int", None, help="pixel budget per item across frames (default: the run's)"),
    Param("batch_size", "int", 4, help="items per forward+backward pass"),
    WORKERS,
    FAST_PATH,
)


def check(params: dict[str, Any]) -> None:
    """Refuse a spec that cannot work before a job is created."""
    from orienteer.jobs.model.saliency_job import check_params

    check_params(params)


def run(ctx: JobContext) -> None:
    from orienteer.jobs.model.saliency_job import run_saliency

    run_saliency(ctx)
