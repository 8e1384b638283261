"""The eval kind: a model's answers to a benchmark, as a run (score or generate mode).

The model code runs inside ``run`` (the choices below come from torch-free modules) so that listing
kinds, the CLI and the TUI form never import torch. See ``orienteer.jobs.model.eval_loop`` for how batching and resuming work.
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.context import JobContext
from orienteer.jobs.model.images import RESIZE_MODES
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
    Param("resize", "choice", None, choices=RESIZE_MODES,
          help="frame sizing: upstream = evaluate.py's (280x420, then 392x560: 280 tokens a frame); budget = keep the "
               "aspect within --max-pixels (default: upstream with the official prompt and no pixel options, else budget)"),
    Param("max_pixels", "int", None, help="--resize budget: pixel cap per image (default 307200 = 640x480)"),
    Param("item_pixels", "int", None, help="--resize budget: pixels per item, split across its frames (default 4 x max-pixels)"),
    Param("adapter", "path", None, help="peft (LoRA) adapter folder to apply"),
    Param("prompt", "choice", "official", choices=PROMPT_NAMES,
          help="prompt style (official = ViewSpatial evaluate.py exactly; official-newline = a newline after the question)"),
    Param("items", "str", None, help="item filter: task:NAME;ids:A,B;ids-file:PATH;failures:RUN;limit:N"),
    Param("max_new_tokens", "int", 128, help="generate mode: reply length cap (128 as upstream evaluate.py); "
          "replies cut by it are counted as truncated in the run's settings"),
    Param("allow_overlap", "bool", False,
          help="evaluate a model that a train job trained on items of this benchmark anyway; the run records it"),
    WORKERS,
    FAST_PATH,
)


def check(params: dict[str, Any]) -> None:
    """Refuse a spec that cannot work (missing model folder, bad adapter) before a job is created."""
    from orienteer.jobs.model.eval_loop import check_params

    check_params(params)


def preflight(ws: Any, params: dict[str, Any]) -> None:
    """Refuse to score a model (or adapter) made by a train job whose dataset overlaps the benchmark:
    the train job's own check only covers the benchmark it was given as ``--eval-bench``."""
    from orienteer.jobs.kinds.train import check_trained_model

    check_trained_model(ws, params)


def run(ctx: JobContext) -> None:
    from orienteer.jobs.model.eval_loop import run_eval

    run_eval(ctx)
