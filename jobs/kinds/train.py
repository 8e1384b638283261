"""train: LoRA or full language-model fine-tuning of a Qwen2.5-VL on a training dataset.

The model code (``jobs.model.train``) imports torch only inside its functions, which ``run`` calls:
listing the kind or building its form never loads torch. Checkpoints live in the resume folder, so a killed job re-run with the same
spec continues from its last one; the finished model is saved there too (``final/``), so a kill after
training (during the eval, say) never trains again. The result (adapter or model folder) is linked
into the outputs and registered as a model; ``--eval-bench`` then evaluates it and adds the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobCancelled, JobContext
from orienteer.jobs.model.prompt import PROMPT_NAMES
from orienteer.jobs.model.train import METHODS
from orienteer.jobs.params import Param

SUMMARY = "LoRA or full language-model fine-tuning on a dataset"
PARAMS = (
    Param("model", "str", required=True, help="base model: a folder from save_pretrained or a cached hub id"),
    Param("dataset", "str", required=True, help="training dataset name (datasets/NAME.jsonl in the workspace)"),
    Param("name", "str", None, help="name the trained model is registered under (default: the job id)"),
    Param("method", "choice", "lora", choices=METHODS,
          help="lora: adapters on the language model; full-llm: the whole language model, vision tower and projector frozen"),
    Param("epochs", "int", 3, help="passes over the dataset"),
    Param("lr", "float", None, help="peak learning rate (default 1e-4 for lora, 1e-5 for full-llm)"),
    Param("batch_size", "int", 4, help="examples per forward pass"),
    Param("grad_accum", "int", 4, help="forward passes per optimizer step (effective batch = batch size x this)"),
    Param("max_pixels", "int", None, help="pixel budget per image for --resize budget (default 640x480)"),
    Param("resize", "choice", None, choices=("upstream", "budget"),
          help="frame sizing, for training and the closing eval alike (default: upstream with the official eval "
               "prompt and no --max-pixels, else budget)"),
    Param("max_steps", "int", 0, help="stop after this many optimizer steps (0: no cap)"),
    Param("save_every", "int", 100, help="checkpoint every N steps (0: never) for resuming after a kill"),
    Param("lora_r", "int", 16, help="LoRA rank"),
    Param("lora_alpha", "int", None, help="LoRA alpha (default 2 x rank)"),
    Param("eval_bench", "str", None, help="evaluate the trained model on this benchmark afterwards (creates a run)"),
    Param("eval_items", "str", None, help="item filter for --eval-bench (task:NAME; limit:N; ...)"),
    Param("eval_run", "str", None, help="name of the eval run (default: MODEL-NAME-BENCH)"),
    Param("eval_mode", "choice", "score", choices=("score", "generate"),
          help="eval mode: score (option letters) or generate (free text, e.g. for a CoT-trained model)"),
    Param("eval_prompt", "choice", "official", choices=PROMPT_NAMES,
          help="eval prompt style (think: the step-by-step prompt the cot kind uses)"),
    Param("eval_max_new_tokens", "int", None,
          help="generate-mode eval: reply length cap (default 512 with --eval-prompt think, so a rationale reaches "
               "its answer line; else the eval kind's 128)"),
    Param("seed", "int", 0, help="seed for initialisation and data order"),
    Param("allow_overlap", "bool", False,
          help="train even though the dataset shares items (id, parent id or image) with --eval-bench; the run records it"),
)


def read_dataset(ctx: JobContext, name: str) -> tuple[list[dict[str, Any]], Path]:
    """The dataset's examples (canonical form, absolute image paths) and its file."""
    from orienteer.data.datasets import get_dataset, read_examples

    path = get_dataset(ctx.workspace, name).path
    if not Path(path).is_file():
        raise OrienteerError(f"train: dataset {name!r}: its file {path} is missing")
    examples = read_examples(Path(path))
    if not examples:
        raise OrienteerError(f"train: dataset {name!r} ({path}) has no examples")
    return examples, Path(path)


def train_resize(params: dict[str, Any]) -> str:
    """The frame sizing of training, resolved exactly as the closing eval resolves its own, so the
    model is scored on frames sized the way it learned them."""
    from orienteer.jobs.model.images import BUDGET, UPSTREAM, default_resize

    resize = params.get("resize")
    if resize is None:
        return BUDGET if params.get("max_pixels") else default_resize(params.get("eval_prompt") or "official")
    if resize == UPSTREAM and params.get("max_pixels"):
        raise OrienteerError("--max-pixels sizes frames for --resize budget; --resize upstream sizes them as "
                             "evaluate.py does: give one or the other")
    return str(resize)


def config_from_params(params: dict[str, Any]) -> Any:
    """The training configuration; a missing value takes the declared default (0 stays 0, and is refused)."""
    from orienteer.jobs.model.train import TrainConfig

    defaults = {p.name: p.default for p in PARAMS}

    def value(name: str) -> Any:
        given = params.get(name)
        return defaults[name] if given is None else given

    return TrainConfig(
        model=str(params["model"]), method=value("method"), epochs=int(value("epochs")), lr=value("lr"),
        batch_size=int(value("batch_size")), grad_accum=int(value("grad_accum")), max_pixels=value("max_pixels"),
        resize=train_resize(params),
        max_steps=int(value("max_steps")), save_every=int(value("save_every")), lora_r=int(value("lora_r")),
        lora_alpha=value("lora_alpha"), seed=int(value("seed")),
    )


def preflight(ws: Any, params: dict[str, Any]) -> None:
    """Before a job is created: refuse a dataset that shares items with ``--eval-bench`` (unless allowed)."""
    if params.get("eval_bench") and ws.exists():
        from orienteer.data.overlap import check_dataset_against

        check_dataset_against(ws, str(params["dataset"]), str(params["eval_bench"]), bool(params.get("allow_overlap")))


def check_trained_model(ws: Any, params: dict[str, Any]) -> None:
    """For an eval spec: refuse when its model or adapter was trained on a dataset of this workspace
    that overlaps the benchmark (unless ``allow_overlap``). A dataset no longer in the workspace is
    not guessed at."""
    from orienteer.data.datasets import list_datasets
    from orienteer.data.overlap import check_dataset_against
    from orienteer.jobs.model.train import trained_dataset

    if not ws.exists() or not params.get("bench"):
        return
    names = {d.name for d in list_datasets(ws)}
    for folder in (params.get("model"), params.get("adapter")):
        dataset = trained_dataset(folder)
        if dataset in names:
            try:
                check_dataset_against(ws, dataset, str(params["bench"]), bool(params.get("allow_overlap")))
            except OrienteerError as exc:
                raise OrienteerError(f"model {folder} was trained on {exc}") from None


def check_overlap(ctx: JobContext) -> Any:
    """The dataset's overlap with ``--eval-bench`` (refused unless ``--allow-overlap``), or None without one."""
    p = ctx.params
    if not p.get("eval_bench"):
        return None
    from orienteer.data.overlap import check_dataset_against

    overlap = check_dataset_against(ctx.workspace, str(p["dataset"]), str(p["eval_bench"]), bool(p.get("allow_overlap")))
    if overlap:
        ctx.warn(f"--allow-overlap: {overlap.message()}; the eval run records it")
    else:
        ctx.log(f"dataset {p['dataset']} shares no item, parent item or image with {p['eval_bench']!r} "
                f"(checked against {', '.join(overlap.family)})"
                + (f"; {overlap.images_unread} of its images are not on this machine and were not compared"
                   if overlap.images_unread else ""))
    return overlap


def run(ctx: JobContext) -> None:
    from orienteer.data.job_outputs import ModelOutput
    from orienteer.jobs.model.job_files import link_tree
    from orienteer.jobs.model.train import TRAIN_INFO

    p = ctx.params
    cfg = config_from_params(p)
    overlap = check_overlap(ctx)  # before any training: a refused overlap costs nothing
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    final = ctx.resume_dir / "final"
    if (final / TRAIN_INFO).is_file():
        ctx.log(f"training already finished in an earlier attempt of this spec: using {final}")
    else:
        train_to(ctx, cfg, final)
    info = json.loads((final / TRAIN_INFO).read_text(encoding="utf-8"))
    folder = ctx.out_dir / "model"
    link_tree(final, folder)
    name = p.get("name") or ctx.job_id
    loss = f"{info['final_loss']:.4f}" if info.get("final_loss") is not None else "n/a"
    notes = (f"{cfg.method} on {p['dataset']} ({info['n_examples']} examples), {info['steps']} steps, "
             f"batch {cfg.batch_size}x{cfg.grad_accum}, lr {cfg.learning_rate:g}, final loss {loss}")
    ctx.add_output(ModelOutput(name=name, path="model", base_model=info["base_model"], method=cfg.method, notes=notes))
    ctx.log(f"model {name}: {folder} ({notes})")
    if p.get("eval_bench"):
        evaluate_trained(ctx, folder, name, overlap)


def train_to(ctx: JobContext, cfg: Any, final: Path) -> None:
    """Train (resuming from the checkpoints in the resume folder) and save the result into ``final``."""
    from orienteer.jobs.model.train import Stopped, load_for_training, save_trained, train_loop

    p = ctx.params
    examples, path = read_dataset(ctx, p["dataset"])
    ctx.log(f"dataset {p['dataset']}: {len(examples)} examples from {path}")
    model, processor, model_ref = load_for_training(cfg, ctx.device)
    try:
        result = train_loop(model, processor, examples, cfg, device=ctx.device, resume_dir=ctx.resume_dir,
                            reporter=ctx, where=f"dataset {p['dataset']}")
    except Stopped as stop:
        raise JobCancelled(f"job {ctx.job_id} was cancelled at step {stop.step}; re-run it to resume") from None
    info = {"dataset": p["dataset"], "n_examples": len(examples), "steps": result.steps, "resize": cfg.resize,
            "final_loss": result.final_loss, "resumed_from": result.resumed_from,
            "trainable_params": result.trainable_params, "total_params": result.total_params, "job": ctx.job_id}
    save_trained(model, processor, final, cfg, model_ref, info)
    del model


def evaluate_trained(ctx: JobContext, folder: Path, name: str, overlap: Any = None) -> None:
    """Run the eval kind's own code on the trained model; its run joins this job's outputs.

    The eval works in a context of its own (eval parameters, ``resume_dir/eval`` for its partial
    results) that shares this job's folders, outputs list and stop request, so a kill during the eval
    resumes the eval (the training is already saved) and a cancel stops it.
    """
    import dataclasses

    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.params import complete

    p = ctx.params
    values = {"model": str(folder), "bench": p["eval_bench"], "run": p.get("eval_run") or f"{name}-{p['eval_bench']}",
              "items": p.get("eval_items"), "mode": p.get("eval_mode") or "score",
              "prompt": p.get("eval_prompt") or "official"}
    if p.get("max_pixels"):
        values["max_pixels"] = p["max_pixels"]
    values["resize"] = train_resize(p)
    cap = eval_max_new_tokens(p)
    if cap is not None:
        values["max_new_tokens"] = cap
    eval_kind = get_kind("eval")
    params = complete("eval", eval_kind.params, values)
    sub = dataclasses.replace(ctx, kind="eval", params=params, resume_dir=ctx.resume_dir / "eval")
    sub.should_stop = ctx.should_stop  # type: ignore[method-assign]
    sub.check_stop = ctx.check_stop  # type: ignore[method-assign]
    sub.resume_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"evaluating {name} on {p['eval_bench']} as run {values['run']} ({values['mode']} mode, "
            f"prompt {values['prompt']})")
    eval_kind.entry()(sub)
    record_training(ctx, overlap)


THINK_EVAL_MAX_NEW_TOKENS = 512


def eval_max_new_tokens(params: dict[str, Any]) -> int | None:
    """The closing eval's reply cap: ``--eval-max-new-tokens``, else 512 for a generate eval with the
    ``think`` prompt (a rationale is long; the eval kind's 128 would cut many before the answer line),
    else None (the eval kind's default)."""
    given = params.get("eval_max_new_tokens")
    if given is not None:
        return int(given)
    if (params.get("eval_mode") or "score") == "generate" and params.get("eval_prompt") == "think":
        return THINK_EVAL_MAX_NEW_TOKENS
    return None


def record_training(ctx: JobContext, overlap: Any) -> None:
    """The eval run's settings say what the model was trained on, and any overlap that was allowed."""
    import dataclasses

    from orienteer.data.job_outputs import RunOutput

    for k, output in enumerate(ctx.outputs):
        if isinstance(output, RunOutput):
            config = {**output.config, "trained_on": ctx.params["dataset"],
                      "allow_overlap": bool(ctx.params.get("allow_overlap"))}
            if overlap:
                config["overlap"] = overlap.as_json()
            ctx.outputs[k] = dataclasses.replace(output, config=config)
