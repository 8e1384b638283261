"""One train job over several processes (``--gpus N``): the training loop of ``jobs.model.train`` under accelerate.

Why wrap our loop in ``accelerate.Accelerator`` rather than move it onto transformers' ``Trainer``:
everything the job has is in that loop and would have to be rebuilt around ``Trainer``, not dropped
into it: the answer-only loss with ``lm_head`` run at the answer positions only (a ``compute_loss``
override), its normalisation over the answer tokens of a whole optimizer step (``Trainer`` has its own
``num_items_in_batch`` bookkeeping to keep in step with ours), the data order as a pure function of
seed and epoch (a custom sampler, plus ``Trainer``'s own skip-ahead on resume), our checkpoint folders
with their ``COMPLETE`` marker and the model/dataset check on resume (``Trainer`` writes
``checkpoint-N`` folders of its own), and progress, metrics and the stop request (callbacks). Wrapping
keeps all of that and adds only what several processes need: ``Accelerator`` sets up the process
group (NCCL on GPUs, gloo on the CPU) and the strategy (DDP, or FSDP2 on GPUs), wraps the model and
optimizer, and skips the gradient all-reduce on all but the last micro-batch (``no_sync``); torch's
``distributed.checkpoint.state_dict`` gathers the trainable weights and optimizer state for rank 0 to
write, the same calls for DDP and FSDP. torchrun starts the ranks.

The split: each optimizer step is the one-process plan's step for ``grad_accum x N`` micro-batches
(``plan_steps(..., processes=N)``); rank r takes micro-batches r, r+N, ... of it, so the global batch
is ``batch_size x grad_accum x N`` and the N-process step is the one-process step with
``grad_accum x N``. Before a step the ranks all-reduce their answer-token counts (and their stop flags
in the same call); each scales its summed loss by ``N / tokens`` because DDP/FSDP average the gradients
over the ranks, so the step's gradient is the mean over all its answer tokens, as with one process. A
rank with no micro-batch in an epoch's short last step runs one at weight zero, so every rank joins
each gradient all-reduce.

Only rank 0 writes checkpoints (with every rank's RNG state), metrics, progress, the log lines and
the final model; every rank reads the checkpoint to resume. A stop request reaches the ranks as
SIGTERM (the job's process group gets it on cancel) or as the ``stop`` file the job process writes
when asked to stop some other way; the ranks agree on it before a step, save a checkpoint and end.

Strategies: ``ddp`` (every rank holds the model; the CPU with gloo or GPUs) and ``fsdp`` (FSDP2
through accelerate, parameters sharded over the GPUs; accelerate runs FSDP only on GPUs, so it is
refused on the CPU). DeepSpeed is not offered: its engine owns gradient accumulation, clipping, the
optimizer step and its own per-rank checkpoint files, which would replace the loop this module keeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.model.train import (
    Reporter,
    Stopped,
    TrainConfig,
    TrainResult,
    check_checkpoint,
    check_images,
    collate_train,
    encode_example,
    hf_model,
    latest_checkpoint,
    linear_schedule,
    load_for_training,
    load_frames,
    make_optimizer,
    plan_steps,
    rng_state,
    save_trained,
    set_rng_state,
    write_checkpoint,
)

RUN_DIR = "dist"  # under the resume folder: the request, the stop file and the outcome of one launch
REQUEST = "request.json"
STOP = "stop"
STOPPED = "stopped.json"
FAILED = "error.json"  # rank 0's one-line error (a refused checkpoint, say), for the job's exit.json
POLL_S = 0.2


# ----------------------------------------------------------------------------- the job process's side


def launch(*, processes: int, visible: str | None, strategy: str, cfg: TrainConfig, examples: Sequence[Mapping[str, Any]],
           where: str, final: Path, info: Mapping[str, Any], resume_dir: Path, job: Mapping[str, Any],
           should_stop: Any) -> None:
    """Train with ``processes`` ranks started by torchrun (a child of this process, in its process
    group, writing to this process's stdout/stderr: the job's log) and return once rank 0 saved the
    model in ``final``. ``visible`` is the job's GPUs (None: the CPU); rank r uses the r-th visible GPU.
    Raises ``Stopped`` when the ranks stopped on request (a checkpoint is saved), ``OrienteerError`` when
    they failed. ``should_stop`` is polled; when true the ranks are told."""
    run_dir = resume_dir / RUN_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (STOP, STOPPED, FAILED):
        (run_dir / name).unlink(missing_ok=True)
    request = {"config": asdict(cfg), "strategy": strategy, "on_cpu": visible is None, "examples": list(examples),
               "where": where, "final": str(final), "info": dict(info), "resume_dir": str(resume_dir), "job": dict(job)}
    (run_dir / REQUEST).write_text(json.dumps(request), encoding="utf-8")
    env = dict(os.environ)
    if visible is None:  # the CPU: no rank may pick up a GPU; the ranks share the cores (torchrun would give
        env["CUDA_VISIBLE_DEVICES"] = ""  # each one thread and say so)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    elif "CUDA_VISIBLE_DEVICES" not in env:  # the job process (or Slurm) already narrowed it to the job's GPUs
        env["CUDA_VISIBLE_DEVICES"] = visible
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "orienteer.jobs.model.train_dist", str(run_dir / REQUEST)]
    from orienteer.jobs.procinfo import die_with_parent

    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, close_fds=True, preexec_fn=die_with_parent())
    try:
        while child.poll() is None:
            if should_stop() and not (run_dir / STOP).exists():
                (run_dir / STOP).write_text("stop\n", encoding="utf-8")
            time.sleep(POLL_S)
    finally:
        if child.poll() is None:  # this process is failing: do not leave ranks behind
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    if (run_dir / STOPPED).is_file():
        raise Stopped(int(json.loads((run_dir / STOPPED).read_text(encoding="utf-8"))["step"]))
    if should_stop():  # stopped before the ranks could agree on it (still loading, say): a cancel all the same
        checkpoint = latest_checkpoint(resume_dir)
        raise Stopped(int(checkpoint.name.split("-")[1]) if checkpoint is not None else 0)
    if (run_dir / FAILED).is_file():
        raise OrienteerError(str(json.loads((run_dir / FAILED).read_text(encoding="utf-8"))["error"]))
    if child.returncode != 0:
        raise OrienteerError(f"train: the {processes} training processes failed (torchrun exit code {child.returncode}); "
                             "the job log has each rank's error")
    if not final.is_dir():
        raise OrienteerError(f"train: the {processes} training processes ended without saving the model in {final}")


# ----------------------------------------------------------------------------- a rank's side


class StopFlag:
    """Set by SIGTERM (the job's process group is signalled on cancel) or by the job process's stop file."""

    def __init__(self, stop_file: Path) -> None:
        self.stop_file = stop_file
        self.signalled = False
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True

    def local(self) -> bool:
        return self.signalled or self.stop_file.exists()


class Silent:
    """The reporter of ranks other than 0: they train, rank 0 reports."""

    def log(self, message: str) -> None:
        pass

    def progress(self, done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        pass

    def metric(self, **values: Any) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def make_accelerator(strategy: str, model: Any, on_cpu: bool) -> Any:
    """The ``Accelerator`` for ``strategy`` (it reads torchrun's RANK/WORLD_SIZE/... from the environment)."""
    from accelerate import Accelerator

    if strategy == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin

        layers = list(getattr(hf_model(model), "_no_split_modules", None) or [])
        plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
                                                transformer_cls_names_to_wrap=layers, reshard_after_forward=True,
                                                state_dict_type="FULL_STATE_DICT")
        return Accelerator(fsdp_plugin=plugin)
    return Accelerator(cpu=on_cpu)


def _reporter(job: Mapping[str, Any]) -> Reporter:
    """Rank 0 reports through a ``JobContext`` on the job's folder: the same files, the same formats."""
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.context import JobContext

    job_dir = Path(job["job_dir"])
    return JobContext(job_id=str(job["job_id"]), kind="train", params={}, workspace=Workspace(job["workspace"]),
                      job_dir=job_dir, out_dir=job_dir / "outputs", resume_dir=Path(job["resume_dir"]),
                      _progress_path=Path(job["progress"]))


def rank_main(request_path: Path) -> int:
    """One rank: load the model, train its share of each step, rank 0 saves the result. A refusal
    (``OrienteerError``) of rank 0 is left in ``error.json`` for the job process to report."""
    try:
        return _rank(request_path)
    except OrienteerError as exc:
        if os.environ.get("RANK", "0") == "0":
            (request_path.parent / FAILED).write_text(json.dumps({"error": str(exc)}), encoding="utf-8")
        raise


def _rank(request_path: Path) -> int:
    import torch

    run_dir = request_path.parent
    request = json.loads(request_path.read_text(encoding="utf-8"))
    stop = StopFlag(run_dir / STOP)
    cfg = TrainConfig(**request["config"])
    from accelerate import PartialState

    on_cpu = bool(request["on_cpu"])
    state = PartialState(cpu=on_cpu)
    device = str(state.device)
    model, processor, model_ref = load_for_training(cfg, device)
    if state.process_index:  # rank 0 keeps the one-process stream; the others draw their own (LoRA dropout)
        torch.manual_seed(cfg.seed * 1000 + state.process_index)
    accelerator = make_accelerator(request["strategy"], model, on_cpu)
    main = accelerator.is_main_process
    reporter: Reporter = _reporter(request["job"]) if main else Silent()
    if main:
        reporter.log(f"{accelerator.num_processes} processes ({request['strategy']}, {accelerator.distributed_type.value}, "
                     f"{device.split(':')[0]})")
    resume_dir = Path(request["resume_dir"])
    try:
        result, wrapped = train_ranks(accelerator, model, processor, request["examples"], cfg, resume_dir=resume_dir,
                                      reporter=reporter, stop=stop, where=request["where"])
    except Stopped as stopped:
        if main:
            (run_dir / STOPPED).write_text(json.dumps({"step": stopped.step}), encoding="utf-8")
        accelerator.end_training()
        return 0
    weights = full_weights(wrapped, trainable_only=cfg.method == "lora")
    if main:
        info = {**request["info"], "steps": result.steps, "final_loss": result.final_loss,
                "resumed_from": result.resumed_from, "trainable_params": result.trainable_params,
                "total_params": result.total_params, "processes": accelerator.num_processes,
                "strategy": request["strategy"]}
        save_trained(model, processor, Path(request["final"]), cfg, model_ref, info, state_dict=weights)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def answer_module(model: Any) -> Any:
    """The model as a module whose forward is the summed answer-token loss: DDP and FSDP hook the
    forward and backward of the module they wrap, so the loss must be computed inside one."""
    import torch

    from orienteer.jobs.model.train import answer_loss_sum

    class _AnswerLoss(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, **batch: Any) -> Any:
            return answer_loss_sum(self.model, batch)[0]

    return _AnswerLoss(model)


def _unprefixed(state: Mapping[str, Any]) -> dict[str, Any]:
    """The wrapper's state-dict keys (``model.X``) as the model's own (``X``)."""
    return {k.removeprefix("model."): v for k, v in state.items()}


def trainable_names(wrapped: Any) -> set[str]:
    """The trainable parameters as torch's distributed state-dict calls name them (no DDP ``module.`` prefix)."""
    return {name.removeprefix("module.") for name, p in wrapped.named_parameters() if p.requires_grad}


def full_weights(wrapped: Any, trainable_only: bool) -> dict[str, Any]:
    """The full weights on rank 0's CPU (an empty dict elsewhere), keyed as the model names them; all ranks call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=trainable_only)
    return _unprefixed(get_model_state_dict(wrapped, options=options))


def save_ranks(accelerator: Any, resume_dir: Path, step: int, wrapped: Any, optimizer: Any, scheduler: Any,
               meta: Mapping[str, Any]) -> None:
    """A checkpoint of every rank's state (trainable weights, optimizer, each rank's RNG), written by rank 0."""
    from accelerate.utils import gather_object
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    names = trainable_names(wrapped)  # the state dict holds the buffers too
    weights = {k: v for k, v in get_model_state_dict(wrapped, options=options).items() if k in names}
    optim = get_optimizer_state_dict(wrapped, optimizer.optimizer, options=StateDictOptions(full_state_dict=True,
                                                                                            cpu_offload=True))
    rngs = gather_object([rng_state()])
    if accelerator.is_main_process:
        state = {"optimizer": optim, "scheduler": scheduler.state_dict(), "rng": rngs[0], "rng_ranks": rngs}
        write_checkpoint(resume_dir, step, weights, state, meta)
    accelerator.wait_for_everyone()


def load_ranks(accelerator: Any, path: Path, wrapped: Any, optimizer: Any, scheduler: Any, meta: Mapping[str, Any]) -> int:
    """Every rank restores the checkpoint at ``path`` (weights, optimizer, scheduler, its own RNG)."""
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

    step = check_checkpoint(path, meta)
    weights = torch.load(path / "trainable.pt", map_location="cpu")
    if set(weights) != trainable_names(wrapped):
        raise OrienteerError(f"checkpoint {path}: its weights do not match this model's trainable parameters")
    set_model_state_dict(wrapped, weights, options=StateDictOptions(full_state_dict=True, strict=False))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    set_optimizer_state_dict(wrapped, optimizer.optimizer, state["optimizer"],
                             options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng_ranks"][accelerator.process_index])
    return step


def train_ranks(accelerator: Any, model: Any, processor: Any, examples: Sequence[Mapping[str, Any]], cfg: TrainConfig, *,
                resume_dir: Path, reporter: Reporter, stop: StopFlag, where: str) -> tuple[TrainResult, Any]:
    """``train.train_loop`` for one of N ranks; returns the result and the wrapped model."""
    import torch

    from orienteer.jobs.model.images import DEFAULT_MAX_PIXELS, frame_sizing
    from orienteer.jobs.model.train import trainable_parameters

    started = time.perf_counter()
    n, rank = accelerator.num_processes, accelerator.process_index
    device = str(accelerator.device)
    cuda = device.startswith("cuda")
    budget = frame_sizing(cfg.resize, int(cfg.max_pixels or DEFAULT_MAX_PIXELS))
    pad_id = processor.tokenizer.pad_token_id
    pad_id = int(pad_id) if pad_id is not None else 0
    steps = plan_steps(len(examples), cfg, processes=n)
    if not steps:
        raise OrienteerError(f"train: {where} has no examples")
    check_images(examples, where)
    total = len(steps)
    trainable = sum(p.numel() for _, p in trainable_parameters(model))
    everything = sum(p.numel() for p in model.parameters())
    vision_dtype = next(hf_model(model).model.visual.parameters()).dtype
    wrapped, optimizer = accelerator.prepare(answer_module(model), make_optimizer(model, cfg, device))
    scheduler = linear_schedule(optimizer.optimizer, total, cfg.warmup_ratio)
    meta = {"model": cfg.model, "method": cfg.method, "n_examples": len(examples), "seed": cfg.seed,
            "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "processes": n}
    start = 0
    checkpoint = latest_checkpoint(resume_dir)
    if checkpoint is not None:
        start = load_ranks(accelerator, checkpoint, wrapped, optimizer, scheduler, meta)
        reporter.log(f"resumed from {checkpoint.name}: step {start} of {total}")
    reporter.log(f"{cfg.method}: training {trainable:,} of {everything:,} parameters, {len(examples)} examples, "
                 f"{total} steps (batch {cfg.batch_size} x accumulation {cfg.grad_accum} x {n} processes), "
                 f"lr {cfg.learning_rate:g}")
    wrapped.train()
    losses: list[float] = []
    last_saved = start
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    def mine(step: int) -> list[list[int]]:
        share = steps[step][rank::n]
        return share or steps[step][:1]  # none in a short last step: one at weight zero, to join the all-reduce

    def prepare(step: int) -> list[dict[str, Any]]:
        return [collate_train([encode_example(processor, examples[i], load_frames(examples[i], where), budget)
                               for i in idx], pad_id) for idx in mine(step)]

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orienteer-train-prep")
    upcoming = pool.submit(prepare, start) if start < total else None
    try:
        for step in range(start, total):
            assert upcoming is not None
            micro = upcoming.result()
            counts_here = bool(steps[step][rank::n])
            tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro) if counts_here else 0
            flags = torch.tensor([float(tokens), float(stop.local())], dtype=torch.float64, device=device)
            agreed = accelerator.reduce(flags, "sum")
            if agreed[1].item() > 0:
                if cfg.save_every and step > last_saved:
                    save_ranks(accelerator, resume_dir, step, wrapped, optimizer, scheduler, meta)
                raise Stopped(step)
            n_tokens = int(agreed[0].item())
            if n_tokens == 0:
                raise OrienteerError(f"train: step {step + 1} has no answer tokens (empty targets in {where}?)")
            upcoming = pool.submit(prepare, step + 1) if step + 1 < total else None
            loss_sum, lr = _rank_step(accelerator, wrapped, optimizer, scheduler, micro, cfg, device, autocast,
                                      vision_dtype, scale=n / n_tokens if counts_here else 0.0)
            step_loss = float(accelerator.reduce(loss_sum, "sum").item()) / n_tokens
            losses.append(step_loss)
            done = step + 1
            reporter.metric(step=done, loss=round(step_loss, 6), lr=lr, tokens=n_tokens,
                            epoch=round(done / max(1, total) * cfg.epochs, 3))
            reporter.progress(done, total, unit="steps", note=f"loss {step_loss:.4f}")
            if cfg.save_every and done % cfg.save_every == 0 and done < total:
                save_ranks(accelerator, resume_dir, done, wrapped, optimizer, scheduler, meta)
                last_saved = done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    wrapped.eval()
    result = TrainResult(steps=total, final_loss=losses[-1] if losses else None, losses=losses, resumed_from=start,
                         trainable_params=trainable, total_params=everything, seconds=time.perf_counter() - started)
    return result, wrapped


def _rank_step(accelerator: Any, wrapped: Any, optimizer: Any, scheduler: Any, micro: Sequence[dict[str, Any]],
               cfg: TrainConfig, device: str, autocast: Any, vision_dtype: Any, scale: float) -> tuple[Any, float]:
    """This rank's micro-batches of one step (gradients all-reduced on the last); returns its summed loss and the lr."""
    import torch

    from orienteer.jobs.model.batching import to_device

    optimizer.zero_grad(set_to_none=True)
    loss_total = torch.zeros((), dtype=torch.float64, device=device)
    for k, batch in enumerate(micro):
        sync = k == len(micro) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(wrapped):
            with autocast:
                loss_sum = wrapped(**to_device(batch, device, vision_dtype))
            accelerator.backward(loss_sum * scale)
        if scale:
            loss_total += loss_sum.detach().double()
    if cfg.max_grad_norm:
        accelerator.clip_grad_norm_([p for p in wrapped.parameters() if p.requires_grad], cfg.max_grad_norm)
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    return loss_total, lr


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: torchrun ... -m orienteer.jobs.model.train_dist RUN_DIR/request.json", file=sys.stderr)
        return 2
    return rank_main(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
