"""train: LoRA or full language-model fine-tuning of a Qwen2.5-VL on a training dataset.

The model code (``jobs.model.train``) is imported only inside the functions ``run`` calls: listing
the kind or building its form never loads torch. Checkpoints live in the resume folder, so a killed
job re-run with the same spec continues from its last one; the finished model is saved there too (``final/``), so a kill after
training (during the eval, say) never trains again. The result (adapter or model folder) is linked
into the outputs and registered as a model; ``--eval-bench`` then evaluates it and adds the run.

``--gpus N`` trains with N processes (``jobs.model.train_dist``: accelerate, started by torchrun as a
child of the job process; ``--strategy ddp|fsdp``); the global batch is batch size x accumulation x N.
One process (the default) trains in the job process itself, as before. The closing eval always runs
in the job process, on one device, after the training processes have ended; with ``--eval-engine openai``
it asks an engine the job starts (``--eval-serve``), which uses all of the job's GPUs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobCancelled, JobContext
from orienteer.jobs.engines.options import HF, OPENAI, check_served_engine, concurrency_option, engine_option, serve_option
from orienteer.jobs.gpus import GpuPlan, gpu_plan, gpus_option
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option
from orienteer.jobs.settings import (
    BUDGET,
    EVAL_MODES,
    PROMPT_NAMES,
    RESIZE_MODES,
    STRATEGIES,
    TRAIN_METHODS,
    UPSTREAM,
    check_strategy,
    default_resize,
)


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    model: str = option(help="base model: a folder from save_pretrained or a cached hub id")
    dataset: str = option(help="training dataset name (datasets/NAME.jsonl in the workspace)")
    name: str | None = option(None, help="name the trained model is registered under (default: the job id)")
    method: str = option("lora", choices=TRAIN_METHODS,
                         help="lora: adapters on the language model; full-llm: the whole language model, vision tower "
                              "and projector frozen")
    epochs: int = option(3, help="passes over the dataset")
    lr: float | None = option(None, help="peak learning rate (default 1e-4 for lora, 1e-5 for full-llm)")
    batch_size: int = option(4, help="examples per forward pass")
    grad_accum: int = option(4, help="forward passes per optimizer step (effective batch = batch size x this)")
    max_pixels: int | None = option(None, help="pixel budget per image for --resize budget (default 640x480)")
    resize: str | None = option(None, choices=RESIZE_MODES,
                                help="frame sizing, for training and the closing eval alike (default: upstream with the "
                                     "official eval prompt and no --max-pixels, else budget)")
    max_steps: int = option(0, help="stop after this many optimizer steps (0: no cap)")
    save_every: int = option(100, help="checkpoint every N steps (0: never) for resuming after a kill")
    lora_r: int = option(16, help="LoRA rank")
    lora_alpha: int | None = option(None, help="LoRA alpha (default 2 x rank)")
    eval_bench: str | None = option(None, help="evaluate the trained model on this benchmark afterwards (creates a run)")
    eval_items: str | None = option(None, help="item filter for --eval-bench (task:NAME; limit:N; ...)")
    eval_run: str | None = option(None, help="name of the eval run (default: MODEL-NAME-BENCH)")
    eval_mode: str = option("score", choices=EVAL_MODES,
                            help="eval mode: score (option letters) or generate (free text, e.g. for a CoT-trained model)")
    eval_prompt: str = option("official", choices=PROMPT_NAMES,
                              help="eval prompt style (think: the step-by-step prompt the cot kind uses)")
    eval_max_new_tokens: int | None = option(
        None, help="generate-mode eval: reply length cap (default 512 with --eval-prompt think, so a rationale reaches "
                   "its answer line; else the eval kind's 128)")
    eval_engine: str = engine_option("the closing eval asks an engine this job starts on the trained model "
                                     "(--eval-serve; a LoRA adapter is merged into its base first)")
    eval_serve: str | None = serve_option("--eval-engine")
    eval_concurrency: int = concurrency_option("--eval-engine")
    seed: int = option(0, help="seed for initialisation and data order")
    lora_dropout: float = option(0.05, help="LoRA dropout on the adapters' input (0: none)")
    gpus: str = gpus_option()
    strategy: str = option("ddp", choices=STRATEGIES,
                           help="with --gpus 2 or more: ddp (each GPU holds the model) or fsdp (the model sharded over the "
                                "GPUs; GPUs only)")
    allow_overlap: bool = option(
        False, help="train even though the dataset shares items (id, parent id or image) with --eval-bench; the run "
                    "records it")


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


def train_resize(spec: TrainSpec) -> str:
    """The frame sizing of training, resolved exactly as the closing eval resolves its own, so the
    model is scored on frames sized the way it learned them."""
    if spec.resize is None:
        return BUDGET if spec.max_pixels else default_resize(spec.eval_prompt)
    if spec.resize == UPSTREAM and spec.max_pixels:
        raise OrienteerError("--max-pixels sizes frames for --resize budget; --resize upstream sizes them as "
                             "evaluate.py does: give one or the other")
    return spec.resize


def train_config(spec: TrainSpec) -> Any:
    """The training configuration (``jobs.model.train.TrainConfig``, which refuses impossible values)."""
    from orienteer.jobs.model.train import TrainConfig

    return TrainConfig(
        model=spec.model, method=spec.method, epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size,
        grad_accum=spec.grad_accum, max_pixels=spec.max_pixels, resize=train_resize(spec), max_steps=spec.max_steps,
        save_every=spec.save_every, lora_r=spec.lora_r, lora_alpha=spec.lora_alpha, seed=spec.seed,
        lora_dropout=spec.lora_dropout,
    )


def check(spec: TrainSpec) -> None:
    """Refuse closing-eval engine settings that cannot work before a job is created (not after the training)."""
    check_served_engine(spec.eval_engine, spec.eval_serve, spec.eval_concurrency, "--eval-")
    if spec.eval_engine == OPENAI and not spec.eval_bench:
        raise OrienteerError("--eval-engine openai: there is no closing eval without --eval-bench")


def preflight(ws: Any, spec: TrainSpec) -> None:
    """Before a job is created: refuse a dataset that shares items with ``--eval-bench`` (unless allowed),
    and an ``--eval-serve`` engine the workspace does not name."""
    if spec.eval_bench and ws.exists():
        from orienteer.data.overlap import check_dataset_against

        check_dataset_against(ws, spec.dataset, spec.eval_bench, spec.allow_overlap)
    if spec.eval_serve:
        from orienteer.jobs.engines.serve import engine_executable

        engine_executable(ws, spec.eval_serve)


def check_trained_model(ws: Any, bench: str | None, folders: tuple[str | None, ...], allow_overlap: bool) -> None:
    """For an eval of ``bench``: refuse when one of ``folders`` (its model, its adapter) was trained on
    a dataset of this workspace that overlaps the benchmark (unless ``allow_overlap``). A dataset no
    longer in the workspace is not guessed at."""
    from orienteer.data.datasets import list_datasets
    from orienteer.data.overlap import check_dataset_against
    from orienteer.jobs.model.train import trained_dataset

    if not ws.exists() or not bench:
        return
    names = {d.name for d in list_datasets(ws)}
    for folder in folders:
        dataset = trained_dataset(folder)
        if dataset in names:
            try:
                check_dataset_against(ws, dataset, bench, allow_overlap)
            except OrienteerError as exc:
                raise OrienteerError(f"model {folder} was trained on {exc}") from None


def check_overlap(ctx: JobContext, spec: TrainSpec) -> Any:
    """The dataset's overlap with ``--eval-bench`` (refused unless ``--allow-overlap``), or None without one."""
    if not spec.eval_bench:
        return None
    from orienteer.data.overlap import check_dataset_against

    overlap = check_dataset_against(ctx.workspace, spec.dataset, spec.eval_bench, spec.allow_overlap)
    if overlap:
        ctx.warn(f"--allow-overlap: {overlap.message()}; the eval run records it")
    else:
        ctx.log(f"dataset {spec.dataset} shares no item, parent item or image with {spec.eval_bench!r} "
                f"(checked against {', '.join(overlap.family)})"
                + (f"; {overlap.images_unread} of its images are not on this machine and were not compared"
                   if overlap.images_unread else ""))
    return overlap


def run(ctx: JobContext) -> None:
    from orienteer.data.job_outputs import ModelOutput
    from orienteer.jobs.model.job_files import link_tree
    from orienteer.jobs.model.train import TRAIN_INFO

    spec = ctx.spec_of(TrainSpec)
    check(spec)  # the closing eval's engine settings, before any training
    cfg = train_config(spec)
    plan = process_plan(ctx, spec)
    overlap = check_overlap(ctx, spec)  # before any training: a refused overlap costs nothing
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    final = ctx.resume_dir / "final"
    if (final / TRAIN_INFO).is_file():
        ctx.log(f"training already finished in an earlier attempt of this spec: using {final}")
    else:
        train_to(ctx, spec.dataset, cfg, final, plan, spec.strategy)
    info = json.loads((final / TRAIN_INFO).read_text(encoding="utf-8"))
    folder = ctx.out_dir / "model"
    link_tree(final, folder)
    name = spec.name or ctx.job_id
    loss = f"{info['final_loss']:.4f}" if info.get("final_loss") is not None else "n/a"
    processes = int(info.get("processes") or 1)
    batch = f"{cfg.batch_size}x{cfg.grad_accum}" + (f"x{processes} processes" if processes > 1 else "")
    notes = (f"{cfg.method} on {spec.dataset} ({info['n_examples']} examples), {info['steps']} steps, "
             f"batch {batch}, lr {cfg.learning_rate:g}, final loss {loss}")
    ctx.add_output(ModelOutput(name=name, path="model", base_model=info["base_model"], method=cfg.method, notes=notes))
    ctx.log(f"model {name}: {folder} ({notes})")
    if spec.eval_bench:
        evaluate_trained(ctx, spec, folder, name, overlap)


def process_plan(ctx: JobContext, spec: TrainSpec) -> GpuPlan:
    """The training processes (``--gpus`` on the job's device) and a check that ``--strategy`` can run on them."""
    plan = gpu_plan(ctx.params.get("gpu"), spec.gpus)
    if ctx.device == "cpu" and not plan.on_cpu:  # no CUDA visible after all: the processes share the CPU
        plan = GpuPlan(plan.processes, (None,) * plan.processes)
    check_strategy(spec.strategy, plan.processes, plan.on_cpu)
    return plan


def check_devices(spec: TrainSpec, plan: GpuPlan) -> None:
    """Before a job is created: ``--strategy`` against the processes and devices ``--gpus``/``--gpu`` give."""
    check_strategy(spec.strategy, plan.processes, plan.on_cpu)


def train_to(ctx: JobContext, dataset: str, cfg: Any, final: Path, plan: GpuPlan | None = None,
             strategy: str = "ddp") -> None:
    """Train (resuming from the checkpoints in the resume folder) and save the result into ``final``."""
    from orienteer.jobs.model.train import Stopped, load_for_training, save_trained, train_loop

    examples, path = read_dataset(ctx, dataset)
    ctx.log(f"dataset {dataset}: {len(examples)} examples from {path}")
    if plan is not None and plan.processes > 1:
        train_processes(ctx, dataset, cfg, final, plan, strategy, examples)
        return
    model, processor, model_ref = load_for_training(cfg, ctx.device)
    try:
        result = train_loop(model, processor, examples, cfg, device=ctx.device, resume_dir=ctx.resume_dir,
                            reporter=ctx, where=f"dataset {dataset}")
    except Stopped as stop:
        raise JobCancelled(f"job {ctx.job_id} was cancelled at step {stop.step}; re-run it to resume") from None
    info = {"dataset": dataset, "n_examples": len(examples), "steps": result.steps, "resize": cfg.resize,
            "final_loss": result.final_loss, "resumed_from": result.resumed_from,
            "trainable_params": result.trainable_params, "total_params": result.total_params, "job": ctx.job_id}
    save_trained(model, processor, final, cfg, model_ref, info)
    del model


def train_processes(ctx: JobContext, dataset: str, cfg: Any, final: Path, plan: GpuPlan, strategy: str,
                    examples: list[dict[str, Any]]) -> None:
    """``train_to`` with ``plan.processes`` ranks: they train, rank 0 saves the model into ``final``."""
    from orienteer.jobs.model.train import Stopped
    from orienteer.jobs.model.train_dist import launch

    where = "the CPU" if plan.on_cpu else f"GPUs {','.join(plan.gpus)}"
    ctx.log(f"training with {plan.processes} processes ({strategy}) on {where}")
    job = {"job_id": ctx.job_id, "job_dir": str(ctx.job_dir), "workspace": str(ctx.workspace.root),
           "resume_dir": str(ctx.resume_dir), "progress": str(ctx._progress_path or ctx.job_dir / "progress.jsonl")}
    try:
        launch(processes=plan.processes, visible=plan.visible, strategy=strategy, cfg=cfg, examples=examples,
               where=f"dataset {dataset}", final=final, info={"dataset": dataset, "n_examples": len(examples),
                                                               "resize": cfg.resize, "job": ctx.job_id},
               resume_dir=ctx.resume_dir, job=job, should_stop=ctx.should_stop)
    except Stopped as stop:
        raise JobCancelled(f"job {ctx.job_id} was cancelled at step {stop.step}; re-run it to resume") from None


def evaluate_trained(ctx: JobContext, spec: TrainSpec, folder: Path, name: str, overlap: Any = None) -> None:
    """Run the eval kind's own code on the trained model; its run joins this job's outputs.

    The eval works in a context of its own (eval parameters, ``resume_dir/eval`` for its partial
    results) that shares this job's folders, outputs list and stop request, so a kill during the eval
    resumes the eval (the training is already saved) and a cancel stops it. With ``--eval-engine openai``
    it starts ``--eval-serve`` on the trained model (a LoRA adapter merged into its base first, in
    ``resume_dir/eval``), with the job's GPUs as its tensor-parallel size.
    """
    import dataclasses

    from orienteer.jobs.kinds import eval as eval_kind
    from orienteer.jobs.params import RUNTIME_KEYS, complete, spec_values

    bench = str(spec.eval_bench)
    values: dict[str, Any] = {"model": str(folder), "bench": bench, "run": spec.eval_run or f"{name}-{bench}",
                              "items": spec.eval_items, "mode": spec.eval_mode, "prompt": spec.eval_prompt,
                              "resize": train_resize(spec)}
    if spec.max_pixels:
        values["max_pixels"] = spec.max_pixels
    cap = eval_max_new_tokens(spec)
    if cap is not None:
        values["max_new_tokens"] = cap
    if spec.eval_engine != HF:
        values.update(engine=spec.eval_engine, serve=spec.eval_serve, concurrency=spec.eval_concurrency, gpus=spec.gpus)
    eval_spec = eval_kind.EvalSpec(**values)
    kind = eval_kind.KIND
    runtime = {key: ctx.params[key] for key in RUNTIME_KEYS if key in ctx.params}  # the job's --gpu (the engine's GPUs)
    params = complete(kind.name, kind.params, {**spec_values(eval_spec), **runtime})
    sub = dataclasses.replace(ctx, kind=kind.name, params=params, resume_dir=ctx.resume_dir / "eval")
    sub.should_stop = ctx.should_stop  # type: ignore[method-assign]
    sub.check_stop = ctx.check_stop  # type: ignore[method-assign]
    sub.resume_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"evaluating {name} on {bench} as run {eval_spec.run} ({eval_spec.mode} mode, prompt {eval_spec.prompt}"
            + (f", engine {eval_spec.serve} through --engine openai" if eval_spec.serve else "") + ")")
    kind.run(sub)
    record_training(ctx, spec, overlap)


THINK_EVAL_MAX_NEW_TOKENS = 512


def eval_max_new_tokens(spec: TrainSpec) -> int | None:
    """The closing eval's reply cap: ``--eval-max-new-tokens``, else 512 for a generate eval with the
    ``think`` prompt (a rationale is long; the eval kind's 128 would cut many before the answer line),
    else None (the eval kind's default)."""
    if spec.eval_max_new_tokens is not None:
        return spec.eval_max_new_tokens
    if spec.eval_mode == "generate" and spec.eval_prompt == "think":
        return THINK_EVAL_MAX_NEW_TOKENS
    return None


def record_training(ctx: JobContext, spec: TrainSpec, overlap: Any) -> None:
    """The eval run's settings say what the model was trained on, and any overlap that was allowed."""
    import dataclasses

    from orienteer.data.job_outputs import RunOutput

    for k, output in enumerate(ctx.outputs):
        if isinstance(output, RunOutput):
            config = {**output.config, "trained_on": spec.dataset, "allow_overlap": spec.allow_overlap}
            if overlap:
                config["overlap"] = overlap.as_json()
            ctx.outputs[k] = dataclasses.replace(output, config=config)


def outputs(spec: TrainSpec) -> list[NewName]:
    return new_names(spec, name="models", eval_run="runs")


def prefill(here: Here) -> dict[str, Any]:
    return {"model": here.model, "name": unique_name("train")}


KIND = KindDef(
    name="train", spec=TrainSpec, summary="LoRA or full language-model fine-tuning on a dataset", run=run,
    needs_gpu=True, reads=(("dataset", "datasets"), ("eval_bench", "benchmarks")), models=("model",),
    outputs=outputs, check=check, preflight=preflight, prefill=prefill, check_devices=check_devices,
)
