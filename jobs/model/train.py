"""Fine-tuning Qwen2.5-VL on a training dataset: LoRA on the language model, or the whole language model.

- ``lora``: peft adapters on the language model's attention and MLP projections only (the regex of
  ARCHITECTURE.md section 8, which never matches the vision tower's ``attn.proj``/``mlp.*``).
- ``full-llm``: every language-model weight (+ ``lm_head``) trains; the vision tower and its merger
  (the projector) stay frozen. The MVSM recipe: 3 epochs at an effective batch of 16.

The conversation is the eval prompt (``data.formats.sharegpt.example_prompt``: question, option
lines, the official suffix, the same text ``jobs.model.prompt`` builds for eval) with the images
first, rendered by the model's chat template; the assistant turn is the example's ``target``. The
prompt and the reply are tokenized apart and joined, exactly as generation sees them, and the loss
covers the reply's tokens and the closing ``<|im_end|>`` only (everything else is label -100). A
multi-turn example (``turns``, imported instruction data) is its whole conversation, images where its
``<image>`` tokens were; every assistant turn is learned and every user turn masked. The
loss is the mean over those tokens of a whole optimizer step (all micro-batches of the gradient
accumulation together), and ``lm_head`` runs only at those positions, not over the whole sequence.

Precision: on a GPU the frozen weights are bf16, trainable weights fp32 (master weights) and the
forward runs under bf16 autocast; on the CPU everything is fp32.

Checkpoints (every ``save_every`` steps, and when the job is asked to stop) hold the trainable
weights, optimizer, scheduler, step and RNG states; the data order is a pure function of the seed
and the epoch, so a resumed run sees the same batches as an uninterrupted one. Each is written to a
temporary folder and renamed into place, with a ``COMPLETE`` marker written last: a kill mid-save
leaves the previous checkpoint usable.

Several processes (``--gpus N``) run this loop's steps under accelerate: ``jobs.model.train_dist``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orienteer.data.errors import OrienteerError
from orienteer.jobs.settings import TRAIN_METHODS

METHODS = TRAIN_METHODS
# Language-model projections only: the vision tower's modules are model.visual.blocks.N.attn.qkv/proj
# and .mlp.gate_proj/up_proj/down_proj; "language_model" keeps them out.
LORA_TARGET = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
DEFAULT_LR = {"lora": 1e-4, "full-llm": 1e-5}
CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"
TRAIN_INFO = "orienteer-train.json"


class Reporter(Protocol):
    """What training reports to (a ``JobContext`` is one)."""

    def log(self, message: str) -> None: ...
    def progress(self, done: int, total: int | None = None, unit: str = "items", note: str = "") -> None: ...
    def metric(self, **values: Any) -> None: ...
    def should_stop(self) -> bool: ...


def trained_dataset(folder: str | None) -> str | None:
    """The dataset a train job trained the model (or adapter) in ``folder`` on, from the record it
    saves beside the weights; None for a model no train job made."""
    if not folder or not (Path(folder) / TRAIN_INFO).is_file():
        return None
    try:
        info = json.loads((Path(folder) / TRAIN_INFO).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    dataset = info.get("dataset") if isinstance(info, dict) else None
    return dataset if isinstance(dataset, str) else None


@dataclass
class TrainConfig:
    model: str
    method: str = "lora"
    epochs: int = 3
    lr: float | None = None
    batch_size: int = 4
    grad_accum: int = 4
    max_pixels: int | None = None
    resize: str = "budget"  # how frames are sized (jobs.model.images: upstream / budget), as the eval that scores it
    max_steps: int = 0
    save_every: int = 100
    lora_r: int = 16
    lora_alpha: int | None = None
    lora_dropout: float = 0.05
    seed: int = 0
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OrienteerError(f"train: --method expects one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("epochs", "batch_size", "grad_accum", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise OrienteerError(f"train: --{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_steps < 0 or self.save_every < 0:
            raise OrienteerError("train: --max-steps and --save-every must be 0 or more")

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def alpha(self) -> int:
        return int(self.lora_alpha) if self.lora_alpha is not None else 2 * int(self.lora_r)


@dataclass
class TrainResult:
    steps: int
    final_loss: float | None
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    trainable_params: int = 0
    total_params: int = 0
    seconds: float = 0.0


class Stopped(Exception):
    """Training stopped on request after saving a checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"training stopped at step {step} (checkpoint saved)")


# ----------------------------------------------------------------------------- model set-up


def hf_model(model: Any) -> Any:
    """The ``...ForConditionalGeneration`` under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_vision_name(name: str) -> bool:
    return ".visual." in f".{name}" or name.startswith("visual.")


def is_language_name(name: str) -> bool:
    return "language_model" in name or name.startswith("lm_head") or ".lm_head." in name


def prepare_model(model: Any, method: str, *, lora_r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.05,
                  base_ref: str | None = None) -> Any:
    """Freeze what ``method`` keeps fixed and return the model to train (peft-wrapped for LoRA)."""
    for param in model.parameters():
        param.requires_grad_(False)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=LORA_TARGET,
                            bias="none")
        model = get_peft_model(model, config)
        if base_ref is not None:
            model.peft_config["default"].base_model_name_or_path = base_ref
    elif method == "full-llm":
        inner = hf_model(model)
        for name, param in inner.named_parameters():
            if is_language_name(name) and not is_vision_name(name):
                param.requires_grad_(True)
    else:
        raise OrienteerError(f"train: unknown method {method!r} (expected one of {', '.join(METHODS)})")
    return model


def trainable_parameters(model: Any) -> list[tuple[str, Any]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def upcast_trainable(model: Any) -> None:
    """fp32 master weights for what trains (the frozen rest stays in the load dtype)."""
    import torch

    for _, param in trainable_parameters(model):
        if param.dtype != torch.float32:
            param.data = param.data.float()


# ----------------------------------------------------------------------------- data


def example_item(example: Mapping[str, Any]) -> Any:
    """A dataset example as an ``Item`` (for prompt helpers that want one)."""
    from orienteer.data.items import Item

    options = dict(example.get("options") or {})
    return Item(item_id=str(example["item_id"]), task=str(example.get("task") or ""), question=example["question"],
                option_letters=list(options), option_labels=list(options.values()),
                answer_letter=example.get("answer") or "", images=list(example.get("images") or []),
                source=example.get("source"), reference_object=example.get("reference_object"),
                bbox=example.get("bbox"), parent_item_id=example.get("parent_item_id"),
                bbox_frame=example.get("bbox_frame") or 0)  # normalize_example checked it


def example_messages(example: Mapping[str, Any], n_images: int) -> list[dict[str, Any]]:
    """The user turn as eval builds it (images first, then the prompt), plus a system turn if the example has one."""
    from orienteer.data.formats.sharegpt import example_prompt
    from orienteer.jobs.model.prompt import user_turn

    messages: list[dict[str, Any]] = []
    if example.get("system"):
        messages.append({"role": "system", "content": [{"type": "text", "text": example["system"]}]})
    messages.append(user_turn(example_prompt(example), n_images))
    return messages


@dataclass
class EncodedExample:
    input_ids: Any
    labels: Any
    mm_token_type_ids: Any
    pixel_values: Any
    image_grid_thw: Any

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


def check_images(examples: Sequence[Mapping[str, Any]], where: str) -> None:
    """Fail before the first step, not hours in, when an example's image is missing."""
    for example in examples:
        for path in example.get("images") or []:
            if not os.path.isfile(path):
                raise OrienteerError(f"{where}: example {example['item_id']}: image {path} not found")


def load_frames(example: Mapping[str, Any], where: str) -> list[Any]:
    """The example's frames as RGB images (its paths are absolute)."""
    from orienteer.jobs.model.images import MissingImage, open_frames

    try:
        return open_frames(str(example["item_id"]), [Path(p) for p in example.get("images") or []])
    except MissingImage as exc:
        raise OrienteerError(f"{where}: example {exc.item_id}: image {exc.path} not found") from None


def turn_messages(example: Mapping[str, Any], n_images: int) -> list[dict[str, Any]]:
    """A multi-turn example's conversation for the chat template: its system turn, then every turn.

    Each user turn gets the images its ``<image>`` tokens stand for (before its text, as eval places
    them); when the user turns hold no tokens, or not one per image, all images go to the first.
    """
    from orienteer.data.formats.sharegpt import IMAGE_TOKEN, USER
    from orienteer.jobs.model.prompt import user_turn

    turns = list(example["turns"])
    per_turn = [t["content"].count(IMAGE_TOKEN) if t["role"] == USER else 0 for t in turns]
    if sum(per_turn) != n_images:
        per_turn = [n_images if k == 0 else 0 for k in range(len(turns))]
    messages: list[dict[str, Any]] = []
    if example.get("system"):
        messages.append({"role": "system", "content": [{"type": "text", "text": example["system"]}]})
    for turn, n in zip(turns, per_turn):
        if turn["role"] == USER:
            messages.append(user_turn(re.sub(re.escape(IMAGE_TOKEN) + r"\n?", "", turn["content"]), n))
        else:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn["content"]}]})
    return messages


def conversation_pieces(processor: Any, messages: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, learned) pieces: each assistant reply with its ``<|im_end|>``
    is learned, everything between (system, user turns, template markup) is not.

    Each reply's context is what generation would see at that point (the chat template up to the
    reply, with the generation prompt), so every turn trains exactly as it would be asked.
    """
    from orienteer.jobs.model.prompt import chat_text

    pieces: list[tuple[str, bool]] = []
    done = ""
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        context = chat_text(processor, messages[:k], add_generation_prompt=True)
        if not context.startswith(done):
            raise OrienteerError("train: the chat template renders earlier turns differently once later ones follow; "
                                 "multi-turn examples cannot be trained with this model")
        reply = message["content"][0]["text"] + "<|im_end|>"
        pieces += [(context[len(done):], False), (reply, True)]
        done = context + reply
    return pieces


def encode_example(processor: Any, example: Mapping[str, Any], frames: Sequence[Any], budget: Any) -> EncodedExample:
    """Prompt tokens (images expanded like eval does) followed by the reply's tokens and ``<|im_end|>``;
    a multi-turn example (``turns``) learns every assistant turn and none of the user turns."""
    import torch

    if example.get("turns"):
        return _encode_turns(processor, example, frames, budget)

    from orienteer.jobs.model.batching import encode_prompt, image_token_mask
    from orienteer.jobs.model.prompt import chat_text

    text = chat_text(processor, example_messages(example, len(frames)), add_generation_prompt=True)
    prompt_ids, pixel_values, grid = encode_prompt(processor, text, budget.prepare(frames), budget, str(example["item_id"]))
    reply_ids = processor.tokenizer(str(example["target"]) + "<|im_end|>", add_special_tokens=False)["input_ids"]
    input_ids = torch.tensor(prompt_ids + reply_ids, dtype=torch.long)
    labels = torch.tensor([-100] * len(prompt_ids) + reply_ids, dtype=torch.long)
    return EncodedExample(input_ids, labels, image_token_mask(processor, input_ids), pixel_values, grid)


def _encode_turns(processor: Any, example: Mapping[str, Any], frames: Sequence[Any], budget: Any) -> EncodedExample:
    """``encode_example`` for a multi-turn example: the images are processed once for the whole
    conversation (sized as eval sizes an item with that many frames), each piece is tokenized apart."""
    import torch

    from orienteer.jobs.model.batching import IMAGE_TOKEN, encode_prompt, image_token_mask

    pieces = conversation_pieces(processor, turn_messages(example, len(frames)))
    _, pixel_values, grid = encode_prompt(processor, "".join(t for t, _ in pieces), budget.prepare(frames), budget,
                                          str(example["item_id"]))
    merge = int(processor.image_processor.merge_size) ** 2 if len(frames) else 1
    sizes = iter([thw[0] * thw[1] * thw[2] // merge for thw in grid.tolist()])
    ids: list[int] = []
    labels: list[int] = []
    for text, learned in pieces:
        parts = text.split(IMAGE_TOKEN)
        expanded = parts[0] + "".join(IMAGE_TOKEN * next(sizes) + rest for rest in parts[1:])
        piece_ids = processor.tokenizer(expanded, add_special_tokens=False)["input_ids"]
        ids += piece_ids
        labels += piece_ids if learned else [-100] * len(piece_ids)
    input_ids = torch.tensor(ids, dtype=torch.long)
    return EncodedExample(input_ids, torch.tensor(labels, dtype=torch.long), image_token_mask(processor, input_ids),
                          pixel_values, grid)


def collate_train(batch: Sequence[EncodedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad ids/labels (labels -100 on padding); concatenate the frames' patches in row order."""
    import torch

    width = max(e.length for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    mm = torch.zeros((len(batch), width), dtype=torch.int64)
    for row, e in enumerate(batch):
        ids[row, :e.length] = e.input_ids
        labels[row, :e.length] = e.labels
        mask[row, :e.length] = 1
        mm[row, :e.length] = e.mm_token_type_ids
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm, "labels": labels}
    if any(e.image_grid_thw.shape[0] for e in batch):
        out["pixel_values"] = torch.cat([e.pixel_values for e in batch], dim=0)
        out["image_grid_thw"] = torch.cat([e.image_grid_thw for e in batch], dim=0)
    return out


def plan_steps(n_examples: int, cfg: TrainConfig, processes: int = 1) -> list[list[list[int]]]:
    """Every optimizer step as its micro-batches of example indices: epoch ``e`` is a shuffle seeded by
    ``(seed, e)``, cut into batches, grouped ``grad_accum x processes`` at a time (the epoch's last step
    may be short). With several processes each takes its share of a step's micro-batches
    (``jobs.model.train_dist``), so the plan is the one-process plan with ``grad_accum x processes``."""
    per_step = cfg.grad_accum * processes
    steps: list[list[list[int]]] = []
    for epoch in range(cfg.epochs):
        order = list(range(n_examples))
        random.Random(f"{cfg.seed}:{epoch}").shuffle(order)
        micro = [order[i:i + cfg.batch_size] for i in range(0, n_examples, cfg.batch_size)]
        steps.extend(micro[i:i + per_step] for i in range(0, len(micro), per_step))
    if cfg.max_steps:
        steps = steps[:cfg.max_steps]
    return steps


# ----------------------------------------------------------------------------- loss


def answer_loss_sum(model: Any, batch: Mapping[str, Any]) -> tuple[Any, int]:
    """Summed cross-entropy over the labelled (reply) tokens, and their number.

    Runs the transformer for hidden states, then ``lm_head`` only where a label follows: with a
    151,936-word vocabulary the full logits would cost more memory than the rest of the step.
    """
    import torch.nn.functional as F

    inner = hf_model(model)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = inner.model(**inputs, use_cache=False).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    picked = hidden[:, :-1][keep]
    logits = inner.lm_head(picked).float()
    loss = F.cross_entropy(logits, labels[keep], reduction="sum")
    return loss, int(keep.sum().item())


# ----------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(resume_dir: Path) -> Path | None:
    """The newest checkpoint with its ``COMPLETE`` marker (half-written ones are ignored)."""
    root = resume_dir / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.name.startswith("step-") and (p / COMPLETE).is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def save_checkpoint(resume_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any, meta: Mapping[str, Any]) -> Path:
    """Write into ``step-N.tmp``, mark complete, rename to ``step-N``, then drop older checkpoints."""
    weights = {n: p.detach().to("cpu") for n, p in trainable_parameters(model)}
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()}
    return write_checkpoint(resume_dir, step, weights, state, meta)


def write_checkpoint(resume_dir: Path, step: int, weights: Mapping[str, Any], state: Mapping[str, Any],
                     meta: Mapping[str, Any]) -> Path:
    """``save_checkpoint``'s files from weights and states already on the CPU (a multi-process run's
    rank 0 writes what all ranks gathered)."""
    import torch

    root = resume_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f"step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(dict(weights), tmp / "trainable.pt")
    torch.save(dict(state), tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=1), encoding="utf-8")
    (tmp / COMPLETE).write_text("ok\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in root.iterdir():
        if old != final and old.name.startswith("step-"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, meta: Mapping[str, Any]) -> int:
    """Restore a checkpoint; refuses one written for another model, method or dataset."""
    import torch

    check_checkpoint(path, meta)
    weights = torch.load(path / "trainable.pt", map_location="cpu")
    params = dict(trainable_parameters(model))
    if set(weights) != set(params):
        raise OrienteerError(f"checkpoint {path}: its weights do not match this model's trainable parameters")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return check_checkpoint(path, meta)


def check_checkpoint(path: Path, meta: Mapping[str, Any]) -> int:
    """The step of the checkpoint at ``path``; refuses one written for another model, method, dataset or
    global batch (``processes``: a checkpoint without it was written by one process)."""
    saved = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    for key in ("model", "method", "n_examples", "seed", "batch_size", "grad_accum", "processes"):
        was, now = saved.get(key), meta.get(key)
        if key == "processes":
            was, now = was or 1, now or 1
        if was != now:
            raise OrienteerError(f"checkpoint {path}: it was written with {key}={was!r}, this run has "
                                 f"{now!r} (delete {path.parent} to start afresh)")
    return int(saved["step"])


# ----------------------------------------------------------------------------- the loop


def linear_schedule(optimizer: Any, total_steps: int, warmup_ratio: float) -> Any:
    """Linear warm-up over ``warmup_ratio`` of the steps (at least one), then linear decay to zero."""
    from torch.optim.lr_scheduler import LambdaLR

    warmup = max(1, round(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)


def make_optimizer(model: Any, cfg: TrainConfig, device: str) -> Any:
    import torch

    params = [p for _, p in trainable_parameters(model)]
    kwargs: dict[str, Any] = {"lr": cfg.learning_rate, "weight_decay": cfg.weight_decay}
    if str(device).startswith("cuda"):
        kwargs["fused"] = True
    return torch.optim.AdamW(params, **kwargs)


def train_loop(
    model: Any,
    processor: Any,
    examples: Sequence[Mapping[str, Any]],
    cfg: TrainConfig,
    *,
    device: str,
    resume_dir: Path,
    reporter: Reporter,
    where: str = "dataset",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` (already prepared) on ``examples``; resumes from ``resume_dir`` when it holds a checkpoint."""
    import torch

    from orienteer.jobs.model.images import DEFAULT_MAX_PIXELS, frame_sizing

    started = time.perf_counter()
    cuda = str(device).startswith("cuda")
    budget = frame_sizing(cfg.resize, int(cfg.max_pixels or DEFAULT_MAX_PIXELS))
    pad_id = processor.tokenizer.pad_token_id
    pad_id = int(pad_id) if pad_id is not None else 0
    steps = plan_steps(len(examples), cfg)
    if not steps:
        raise OrienteerError(f"train: {where} has no examples")
    check_images(examples, where)
    total = len(steps)
    optimizer = make_optimizer(model, cfg, device)
    scheduler = linear_schedule(optimizer, total, cfg.warmup_ratio)
    meta = {"model": cfg.model, "method": cfg.method, "n_examples": len(examples), "seed": cfg.seed,
            "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum}
    start = 0
    checkpoint = latest_checkpoint(resume_dir)
    if checkpoint is not None:
        start = load_checkpoint(checkpoint, model, optimizer, scheduler, meta)
        reporter.log(f"resumed from {checkpoint.name}: step {start} of {total}")
    trainable = sum(p.numel() for _, p in trainable_parameters(model))
    everything = sum(p.numel() for p in model.parameters())
    reporter.log(f"{cfg.method}: training {trainable:,} of {everything:,} parameters, {len(examples)} examples, "
                 f"{total} steps (batch {cfg.batch_size} x accumulation {cfg.grad_accum}), lr {cfg.learning_rate:g}")
    model.train()
    losses: list[float] = []
    last_saved = start
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    vision_dtype = next(hf_model(model).model.visual.parameters()).dtype

    def prepare(step: int) -> list[dict[str, Any]]:
        return [collate_train([encode_example(processor, examples[i], load_frames(examples[i], where), budget)
                               for i in idx], pad_id) for idx in steps[step]]

    # Images of the next step are decoded and tokenized in a thread while the current step runs.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orienteer-train-prep")
    upcoming = pool.submit(prepare, start) if start < total else None
    try:
        for step in range(start, total):
            if reporter.should_stop():
                if cfg.save_every and step > last_saved:
                    save_checkpoint(resume_dir, step, model, optimizer, scheduler, meta)
                raise Stopped(step)
            assert upcoming is not None  # submitted for every step below total
            micro = upcoming.result()
            upcoming = pool.submit(prepare, step + 1) if step + 1 < total else None
            loss, n_tokens, lr = _optimizer_step(model, optimizer, scheduler, micro, cfg, device, autocast,
                                                 vision_dtype, step, where)
            losses.append(loss)
            done = step + 1
            reporter.metric(step=done, loss=round(loss, 6), lr=lr, tokens=n_tokens,
                            epoch=round(done / max(1, total) * cfg.epochs, 3))
            reporter.progress(done, total, unit="steps", note=f"loss {loss:.4f}")
            if on_step is not None:
                on_step(done, loss)
            if cfg.save_every and done % cfg.save_every == 0 and done < total:
                save_checkpoint(resume_dir, done, model, optimizer, scheduler, meta)
                last_saved = done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    model.eval()
    return TrainResult(steps=total, final_loss=losses[-1] if losses else None, losses=losses, resumed_from=start,
                       trainable_params=trainable, total_params=everything, seconds=time.perf_counter() - started)


def _optimizer_step(model: Any, optimizer: Any, scheduler: Any, micro: Sequence[dict[str, Any]], cfg: TrainConfig,
                    device: str, autocast: Any, vision_dtype: Any, step: int, where: str) -> tuple[float, int, float]:
    """One optimizer step over its micro-batches: the mean loss over all their answer tokens."""
    import torch

    from orienteer.jobs.model.batching import to_device

    n_tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
    if n_tokens == 0:
        raise OrienteerError(f"train: step {step + 1} has no answer tokens (empty targets in {where}?)")
    optimizer.zero_grad(set_to_none=True)
    step_loss = torch.zeros(())
    for batch in micro:
        batch = to_device(batch, device, vision_dtype)
        with autocast:
            loss_sum, _ = answer_loss_sum(model, batch)
        (loss_sum / n_tokens).backward()
        step_loss = step_loss.to(loss_sum.device) + loss_sum.detach()
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable_parameters(model)], cfg.max_grad_norm)
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    return float(step_loss) / n_tokens, n_tokens, lr


# ----------------------------------------------------------------------------- output


def save_trained(model: Any, processor: Any, folder: Path, cfg: TrainConfig, base_ref: str, info: Mapping[str, Any],
                 state_dict: dict[str, Any] | None = None) -> Path:
    """The adapter (LoRA) or the whole model + processor (full-llm) in ``folder``, with a note of how it was made.

    ``state_dict`` (keys as ``model.state_dict()`` names them) replaces the model's own weights: a
    multi-process run passes the full weights its ranks gathered (under FSDP no rank holds them all).
    """
    import torch

    from orienteer.jobs.model.tiny import RANDOM_WEIGHTS_MARKER, is_random_weights

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if cfg.method == "lora":
        model.save_pretrained(tmp, state_dict=state_dict)
        config_path = tmp / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_ref
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    else:
        inner = hf_model(model)
        on_gpu = next(inner.parameters()).device.type == "cuda"
        if on_gpu and state_dict is None:
            inner.to(torch.bfloat16)
        if on_gpu and state_dict is not None:
            state_dict = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state_dict.items()}
        inner.save_pretrained(tmp, state_dict=state_dict)
        processor.save_pretrained(tmp)
        if is_random_weights(base_ref):
            (tmp / RANDOM_WEIGHTS_MARKER).write_text(json.dumps({"random_weights": True, "trained_from": base_ref}) + "\n",
                                                     encoding="utf-8")
    note = {**info, "base_model": base_ref, "method": cfg.method, "config": asdict(cfg)}
    (tmp / TRAIN_INFO).write_text(json.dumps(note, indent=1, default=str), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def load_for_training(cfg: TrainConfig, device: str) -> tuple[Any, Any, str]:
    """Base model + processor via the eval loader (same code, same dtype rules), prepared for ``cfg.method``.

    A LoRA adapter as ``--model`` is refused for LoRA training: the new adapter would be saved against
    a base that lacks the old one. Train ``full-llm`` from it, or merge it first.
    """
    import torch

    from orienteer.jobs.model.loading import load_model, resolve_model_ref

    base_ref, adapter = resolve_model_ref(cfg.model)
    if adapter is not None and cfg.method == "lora":
        raise OrienteerError(f"train: --model {cfg.model} is a LoRA adapter; LoRA training needs a full model "
                             "(use --method full-llm, or the adapter's base model)")
    loaded = load_model(cfg.model, device=device, vision_attention="auto")
    model_ref = base_ref if adapter is None else cfg.model
    torch.manual_seed(cfg.seed)
    model = prepare_model(loaded.model, cfg.method, lora_r=cfg.lora_r, lora_alpha=cfg.alpha,
                          lora_dropout=cfg.lora_dropout, base_ref=base_ref)
    if str(device).startswith("cuda"):
        upcast_trainable(model)
    return model, loaded.processor, model_ref
