"""The eval kind: a model's answers to a benchmark, as a run (score or generate mode).

The model code runs inside ``run`` (the choices below come from torch-free modules) so that listing
kinds, the CLI and the TUI form never import torch. See ``orienteer.jobs.model.eval_loop`` for how batching and resuming work.
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.context import JobContext
from orienteer.jobs.model.prompt import PROMPT_NAMES
from orienteer.jobs.kinds.shared import FAST_PATH, WORKERS
from orienteer.jobs.params import Param

SUMMARY = "evaluate a model on a benchmark (score or generate mode)"
PARAMS = (
    Param("model", "str", None, required=True, help="model folder (save_pretrained) or hub id; an adapter folder works too"),
    Param("bench", "str", None, required=True, help="benchmark name in the workspace"),
    Param("run", "str", None, required=True, help="name of the run to create"),
    Param("mode", "choice", "score", help="score: option-letter probabilities in one pass; generate: free text",
          choices=("score", "generate")),
    Param("batch_size", "int", 8, help="items per forward pass"),
    Param("max_pixels", "int", 640 * 480, help="pixel cap per image (the processor resizes to fit)"),
    Param("item_pixels", "int", None, help="pixel budget per item, split across its frames (default 4 x max-pixels)"),
    Param("adapter", "path", None, help="peft (LoRA) adapter folder to apply"),
    Param("prompt", "choice", "official", help="prompt style (official = ViewSpatial evaluate.py)", choices=PROMPT_NAMES),
    Param("items", "str", None, help="item filter: task:NAME;ids:A,B;ids-file:PATH;failures:RUN;limit:N"),
    Param("max_new_tokens", "int", 16, help="generate mode: reply length cap"),
    WORKERS,
    FAST_PATH,
)


def check(params: dict[str, Any]) -> None:
    """Refuse a spec that cannot work (missing model folder, bad adapter) before a job is created."""
    from orienteer.jobs.model.eval_loop import check_params

    check_params(params)


def run(ctx: JobContext) -> None:
    from orienteer.jobs.model.eval_loop import run_eval

    run_eval(ctx)
