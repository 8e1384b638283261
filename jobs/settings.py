"""Names and defaults the job kinds' options offer, kept apart from the model code that uses them.

A kind's spec (its options, with their choices) is read by the CLI, the app's forms and ``job
kinds``; none of those may load ``orienteer.jobs.model`` (torch, transformers). So the choices live
here, pure Python, and ``jobs.model`` imports them from here: one copy for both sides.
"""

from __future__ import annotations

from orienteer.core.prompts import DEFAULT_PROMPT, PROMPT_NAMES
from orienteer.data.errors import OrienteerError

__all__ = [
    "BUDGET",
    "COT_MODES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PROMPT",
    "EVAL_MODES",
    "PROMPT_NAMES",
    "RATIONALIZE",
    "RESIZE_MODES",
    "SOLVE",
    "STRATEGIES",
    "TRAIN_METHODS",
    "UPSTREAM",
    "VISION_ATTENTION_MODES",
    "check_strategy",
    "default_resize",
]

# Frame sizing (``jobs.model.images``): upstream = evaluate.py's fixed 280x420; budget = Orienteer's
# aspect-preserving pixel budget.
UPSTREAM = "upstream"
BUDGET = "budget"
RESIZE_MODES: tuple[str, ...] = (UPSTREAM, BUDGET)
DEFAULT_MAX_PIXELS = 640 * 480

# Eval: option-letter scores in one pass, or free text.
EVAL_MODES: tuple[str, ...] = ("score", "generate")

# The vision tower's attention (``jobs.model.vision_attention.MODES``).
VISION_ATTENTION_MODES: tuple[str, ...] = ("auto", "grouped", "varlen", "reference")

# Fine-tuning methods (``jobs.model.train``).
TRAIN_METHODS: tuple[str, ...] = ("lora", "full-llm")

# How the cot kind asks its teacher (``jobs.model.cot``).
SOLVE = "solve"
RATIONALIZE = "rationalize"
COT_MODES: tuple[str, ...] = (SOLVE, RATIONALIZE)


# How train spreads over several processes (``jobs.model.train_dist``).
STRATEGIES: tuple[str, ...] = ("ddp", "fsdp")


def check_strategy(strategy: str, processes: int, on_cpu: bool) -> None:
    """Refuse a strategy these processes cannot run, in one line naming the option."""
    if strategy not in STRATEGIES:
        raise OrienteerError(f"--strategy expects one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "fsdp" and on_cpu:
        raise OrienteerError("--strategy fsdp needs GPUs (accelerate shards with FSDP on GPUs only); use --strategy ddp "
                             "on the CPU")
    if strategy == "fsdp" and processes < 2:
        raise OrienteerError("--strategy fsdp shards the model over several processes: give --gpus 2 or more")


def default_resize(prompt: str) -> str:
    """``upstream`` with the official prompt (the whole upstream protocol), ``budget`` with any other."""
    return UPSTREAM if prompt == "official" else BUDGET
