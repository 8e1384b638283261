"""The eval kind: a model's answers to a benchmark, as a run (score or generate mode).

The model code runs inside ``run`` (the choices below come from ``jobs.settings``) so that listing
kinds, the CLI and the app's form never import torch. See ``orienteer.jobs.model.eval_loop`` for
how batching and resuming work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobContext
from orienteer.jobs.engines.options import (
    api_key_env_option,
    api_model_option,
    check_engine,
    concurrency_option,
    endpoint_option,
    engine_option,
    needs_local_gpu,
    retries_option,
    serve_option,
)
from orienteer.jobs.gpus import gpus_option, parse_gpus
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.kinds.shared import vision_attention_option, workers_option
from orienteer.jobs.params import option
from orienteer.jobs.settings import (
    BUDGET,
    DEFAULT_MAX_PIXELS,
    EVAL_MODES,
    PROMPT_NAMES,
    RESIZE_MODES,
    UPSTREAM,
    default_resize,
)


@dataclass(frozen=True, kw_only=True)
class EvalSpec:
    """What to evaluate and how; ``sizing`` and ``pixel_cap`` resolve what was left open."""

    model: str = option(help="model folder (save_pretrained) or hub id; an adapter folder works too")
    bench: str = option(help="benchmark name in the workspace")
    run: str = option(help="name of the run to create")
    mode: str = option("score", choices=EVAL_MODES,
                       help="score: option-letter probabilities in one pass; generate: free text")
    batch_size: int = option(8, help="items per forward pass")
    resize: str | None = option(
        None, choices=RESIZE_MODES,
        help="frame sizing: upstream = evaluate.py's (280x420, then 392x560: 280 tokens a frame); budget = keep the "
             "aspect within --max-pixels (default: upstream with the official prompt and no pixel options, else budget)")
    max_pixels: int | None = option(None, help="--resize budget: pixel cap per image (default 307200 = 640x480)")
    item_pixels: int | None = option(
        None, help="--resize budget: pixels per item, split across its frames (default 4 x max-pixels)")
    adapter: str | None = option(None, path=True, help="peft (LoRA) adapter folder to apply (--serve: merged into its "
                                                        "base first; not with --endpoint)")
    prompt: str = option("official", choices=PROMPT_NAMES,
                         help="prompt style (official = ViewSpatial evaluate.py exactly; official-newline = a newline "
                              "after the question)")
    items: str | None = option(None, help="item filter: task:NAME;ids:A,B;ids-file:PATH;failures:RUN;limit:N")
    max_new_tokens: int = option(128, help="generate mode: reply length cap (128 as upstream evaluate.py); "
                                           "replies cut by it are counted as truncated in the run's settings")
    allow_overlap: bool = option(
        False, help="evaluate a model that a train job trained on items of this benchmark anyway; the run records it")
    workers: int = workers_option()
    vision_attention: str = vision_attention_option()
    gpus: str = gpus_option()
    engine: str = engine_option()
    endpoint: str | None = endpoint_option()
    serve: str | None = serve_option()
    api_model: str | None = api_model_option()
    concurrency: int = concurrency_option()
    api_key_env: str = api_key_env_option()
    retries: int = retries_option()

    @property
    def pixels_given(self) -> bool:
        return self.max_pixels is not None or self.item_pixels is not None

    @property
    def sizing(self) -> str:
        """The frame sizing: ``--resize``, else budget when a pixel option is given, else upstream with
        the official prompt and budget with any other."""
        if self.resize is not None:
            return self.resize
        return BUDGET if self.pixels_given else default_resize(self.prompt)

    @property
    def pixel_cap(self) -> int:
        """The per-image pixel cap of ``--resize budget``."""
        return self.max_pixels if self.max_pixels is not None else DEFAULT_MAX_PIXELS


def validate(spec: EvalSpec) -> None:
    """Refuse settings that contradict each other or cannot work (no model is read)."""
    if spec.resize is not None and spec.resize not in RESIZE_MODES:
        raise OrienteerError(f"--resize expects one of {', '.join(RESIZE_MODES)}, got {spec.resize!r}")
    if spec.resize == UPSTREAM and spec.pixels_given:
        raise OrienteerError("--max-pixels and --item-pixels size frames for --resize budget; --resize upstream "
                             "sizes them as evaluate.py does (280x420, then 392x560)")
    if spec.mode not in EVAL_MODES:
        raise OrienteerError(f"--mode expects score or generate, got {spec.mode!r}")
    if spec.batch_size < 1:
        raise OrienteerError(f"--batch-size must be at least 1, got {spec.batch_size}")
    parse_gpus(spec.gpus)  # a count or a GPU list; checked against --gpu when the job is submitted
    if spec.pixel_cap < 28 * 28:
        raise OrienteerError(f"--max-pixels must be at least {28 * 28}, got {spec.pixel_cap}")
    if spec.max_new_tokens < 1:
        raise OrienteerError(f"--max-new-tokens must be at least 1, got {spec.max_new_tokens}")
    if spec.prompt not in PROMPT_NAMES:
        raise OrienteerError(f"--prompt expects one of {', '.join(PROMPT_NAMES)}, got {spec.prompt!r}")


def check(spec: EvalSpec) -> None:
    """Refuse a spec that cannot work (contradicting settings, missing model folder, bad adapter)
    before a job is created."""
    from orienteer.jobs.model.loading import check_adapter, resolve_model_ref

    validate(spec)
    check_engine(spec)
    if spec.engine == "openai" and not spec.serve:
        return  # --model only names the model for the run: the server at --endpoint holds it
    resolve_model_ref(spec.model)  # with --serve, an adapter (--adapter, or --model an adapter folder) is merged first
    check_adapter(spec.adapter)


def preflight(ws: Any, spec: EvalSpec) -> None:
    """Refuse to score a model (or adapter) made by a train job whose dataset overlaps the benchmark:
    the train job's own check only covers the benchmark it was given as ``--eval-bench``."""
    from orienteer.jobs.kinds.train import check_trained_model

    check_trained_model(ws, spec.bench, (spec.model, spec.adapter), spec.allow_overlap)
    if spec.serve:  # the engine's executable is a workspace setting: refuse before a job exists when it is missing
        from orienteer.jobs.engines.serve import engine_executable

        engine_executable(ws, spec.serve)


def outputs(spec: EvalSpec) -> list[NewName]:
    return new_names(spec, run="runs")


def prefill(here: Here) -> dict[str, Any]:
    return {"bench": here.bench, "model": here.model, "run": unique_name(f"eval-{here.bench or 'bench'}"),
            "items": here.selection or (f"task:{here.task}" if here.task else None)}


def run(ctx: JobContext) -> None:
    from orienteer.jobs.model.eval_loop import run_eval

    spec = ctx.spec_of(EvalSpec)
    check(spec)
    if spec.engine == "openai":  # one process asks a server, whatever --gpus says (the engine uses the GPUs)
        from orienteer.jobs.engines.openai_eval import run_openai_eval

        run_openai_eval(ctx, spec)
        return
    run_eval(ctx, spec)


KIND = KindDef(
    name="eval", spec=EvalSpec, summary="evaluate a model on a benchmark (score or generate mode)", run=run,
    needs_gpu=True, reads=(("bench", "benchmarks"),), models=("model",), outputs=outputs, check=check,
    preflight=preflight, prefill=prefill, gpu_when=needs_local_gpu,
)
