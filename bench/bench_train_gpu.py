"""Time one LoRA step and one full-llm step of the train kind on the Qwen2.5-VL-3B shapes (random weights).

    python bench/bench_train_gpu.py                      # cuda, 3B shapes, batch 8, 640x480 images (~30 s)
    python bench/bench_train_gpu.py --device cpu --tiny  # smoke test of the script on the tiny model
    python bench/bench_train_gpu.py --check-loop         # the train loop end to end on this device (tiny model)
    python bench/bench_train_gpu.py --profile            # also the top kernels of one step per method

Measured on H100 80GB (three machines, 2026-11-26; bf16 matmul peak 769-795 TFLOP/s): LoRA r=16 at
batch 8: 352-429 ms per step = 18.6-22.7 items/s, 8.5-10.4k tokens/s, 17-22% of peak (CPU-dispatch
bound: ~3,000 small kernels per step, so it varies with the host); full-llm at batch 8: 364-389 ms
= 20.6-22.0 items/s, ~10k tokens/s, 26-28% of peak, 61 GiB peak memory. LoRA dropout 0 gives
24.2 items/s on the machine that gave 22.7 with 0.05.

The steps are the train kind's own code (``jobs.model.train``: ``prepare_model``, ``upcast_trainable``,
``answer_loss_sum``, ``make_optimizer``): bf16 frozen weights, fp32 trainable weights under bf16
autocast, AdamW (fused on CUDA), the loss on the answer tokens only, the vision tower patched like
the loader does (``set_fast_path(model, "auto")``). One synthetic batch: each item is one
640x480 image (grid 34x46 patches = 391 merged tokens) plus text, 458 tokens in all as in
ARCHITECTURE.md section 9, and a 4-token answer.

FLOPs per item (dense matmul work, multiply-add = 2 FLOPs), with N_lm the language model's
non-embedding weights, N_vis the vision tower's, T = 458 tokens, P = 1,564 patches:

- vision forward 2 * N_vis * P + attention (4 * len^2 * width per layer and window);
  no backward (nothing before the language model trains, so autograd records nothing there);
- language forward 2 * N_lm * T + attention 4 * T^2 * hidden * layers (causal counted full);
- LoRA backward: gradients w.r.t. activations only, 2 * N_lm * T + 2x the attention
  (LoRA's own weight gradients are negligible), so a LoRA step is about 4 * N_lm * T + vision;
- full-llm backward: activations and weights, 4 * N_lm * T + 2x the attention: about 6 * N_lm * T + vision.

Achieved TFLOP/s = FLOPs per step / step time; its share of the card's bf16 peak, which this script
measures with an 8192^3 bf16 matmul. The ARCHITECTURE.md anchor: a LoRA step at batch 8 ran
14.4 items/s on an H200.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ANCHOR_LORA_ITEMS_S = 14.4


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_peak(device: str, size: int, repeat: int = 10) -> float:
    """bf16 matmul TFLOP/s on this card (the mean of ``repeat`` products after 3 warm-ups)."""
    import torch

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    sync(device)
    seconds = (time.perf_counter() - start) / repeat
    del a, b
    return 2 * size ** 3 / seconds / 1e12


def build_model(tiny: bool, device: str) -> Any:
    """The 3B-shaped (or tiny) Qwen2.5-VL with random weights, built directly on the device in bf16."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from orienteer.jobs.model.loading import set_fast_path
    from orienteer.jobs.model.tiny import qwen25vl_3b_config, tiny_config

    config = tiny_config() if tiny else qwen25vl_3b_config()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    # as load_model does (fused norms only where frozen in bf16: trainable fp32 ones keep the reference)
    mode = set_fast_path(model, "auto")
    return model, config, mode


def synthetic_batch(config: Any, batch: int, width: int, height: int, tokens: int, answer: int, device: str,
                    dtype: Any) -> dict[str, Any]:
    """``batch`` items: system/user text, one image of width x height, text, then an answer of ``answer`` tokens."""
    import torch
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    vc = config.vision_config
    patch, merge = vc.patch_size, vc.spatial_merge_size
    h, w = smart_resize(height, width, factor=patch * merge, min_pixels=56 * 56, max_pixels=max(width * height, 56 * 56))
    gh, gw = h // patch, w // patch
    n_image = gh * gw // merge ** 2
    n_text = tokens - n_image - 2
    if n_text < answer + 4:
        raise SystemExit(f"--tokens {tokens} leaves no room for text around {n_image} image tokens")
    vocab = config.text_config.vocab_size
    gen = torch.Generator().manual_seed(1)
    rows = []
    before = 8
    for _ in range(batch):
        text = torch.randint(0, min(vocab, 150000) if vocab > 1000 else 256, (n_text,), generator=gen)
        row = torch.cat([text[:before], torch.tensor([config.vision_start_token_id]),
                         torch.full((n_image,), config.image_token_id), torch.tensor([config.vision_end_token_id]),
                         text[before:]])
        rows.append(row)
    ids = torch.stack(rows)
    labels = torch.full_like(ids, -100)
    labels[:, -answer:] = ids[:, -answer:]
    channels = 3 * vc.temporal_patch_size * patch * patch
    pixel_values = torch.randn(batch * gh * gw, channels, generator=gen)
    grid = torch.tensor([[1, gh, gw]] * batch)
    mm = (ids == config.image_token_id).to(torch.int64)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": mm, "labels": labels,
           "pixel_values": pixel_values.to(dtype), "image_grid_thw": grid}
    return {k: v.to(device) for k, v in out.items()}, {"patches_per_item": gh * gw, "image_tokens": n_image,
                                                      "grid": [gh, gw]}


def flop_counts(config: Any, model: Any, tokens: int, patches: int) -> dict[str, float]:
    """Per-item FLOPs: vision forward, language forward (dense + attention), per the module docstring."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    lm = inner.model.language_model
    n_lm = sum(p.numel() for n, p in lm.named_parameters() if "embed_tokens" not in n and "lora_" not in n)
    n_vis = sum(p.numel() for n, p in inner.model.visual.named_parameters() if "lora_" not in n)
    tc, vc = config.text_config, config.vision_config
    lm_attn = 4 * tokens ** 2 * tc.hidden_size * tc.num_hidden_layers
    window = (vc.window_size // vc.patch_size) ** 2  # patches per window
    full_layers = len(vc.fullatt_block_indexes)
    vis_attn = 4 * vc.hidden_size * (patches * window * (vc.depth - full_layers) + patches ** 2 * full_layers)
    return {"n_lm": n_lm, "n_vis": n_vis, "vision_fwd": 2 * n_vis * patches + vis_attn,
            "lm_dense_fwd": 2 * n_lm * tokens, "lm_attn_fwd": lm_attn}


def step_flops(counts: dict[str, float], method: str) -> float:
    dense, attn = counts["lm_dense_fwd"], counts["lm_attn_fwd"]
    backward = dense + 2 * attn if method == "lora" else 2 * dense + 2 * attn
    return counts["vision_fwd"] + dense + attn + backward


def time_method(model: Any, method: str, batch: dict[str, Any], device: str, warmup: int, steps: int,
                lr: float, lora_dropout: float = 0.05, profile: bool = False) -> dict[str, Any]:
    """Prepare ``model`` for ``method`` (train kind code), run warm-up steps, then time ``steps`` steps."""
    import torch

    from orienteer.jobs.model.train import (
        TrainConfig,
        answer_loss_sum,
        make_optimizer,
        prepare_model,
        trainable_parameters,
        upcast_trainable,
    )

    cuda = device.startswith("cuda")
    model = prepare_model(model, method, lora_r=16, lora_alpha=32, lora_dropout=lora_dropout)
    if cuda:
        upcast_trainable(model)
    cfg = TrainConfig(model="bench", method=method, lr=lr)
    optimizer = make_optimizer(model, cfg, device)
    trainable = sum(p.numel() for _, p in trainable_parameters(model))
    model.train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    n_tokens = int((batch["labels"][:, 1:] != -100).sum())
    times = []
    losses = []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss_sum, _ = answer_loss_sum(model, batch)
        (loss_sum / n_tokens).backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable_parameters(model)], 1.0)
        optimizer.step()
        sync(device)
        elapsed = time.perf_counter() - start
        losses.append(float(loss_sum.detach()) / n_tokens)
        if i >= warmup:
            times.append(elapsed)
        say(f"{method}: step {i + 1}/{warmup + steps} {'(warm-up) ' if i < warmup else ''}{elapsed * 1000:.0f} ms, "
            f"loss {losses[-1]:.3f}")
    peak_mem = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with torch_profile(activities=activities) as prof:
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss_sum, _ = answer_loss_sum(model, batch)
            (loss_sum / n_tokens).backward()
            optimizer.step()
            sync(device)
        key = "cuda_time_total" if cuda else "cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=18), flush=True)
    del optimizer
    return {"model": model, "trainable": trainable, "times": times, "losses": losses, "peak_mem_gib": peak_mem}


class _Recorder:
    """A reporter for ``train_loop`` that asks to stop after step ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.steps: list[int] = []
        self.losses: list[float] = []

    def log(self, message: str) -> None:
        say(f"  loop: {message}")

    def progress(self, done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        pass

    def metric(self, **values: Any) -> None:
        self.steps.append(int(values["step"]))
        self.losses.append(float(values["loss"]))

    def should_stop(self) -> bool:
        return self.stop_at is not None and bool(self.steps) and self.steps[-1] >= self.stop_at


def check_loop(device: str) -> bool:
    """The train kind's loop end to end on the tiny model on ``device`` (bf16 autocast and fused AdamW on
    CUDA): 2 steps stopped after the first and resumed, against 2 straight steps; save, reload, score."""
    import tempfile

    import torch
    from PIL import Image

    from orienteer.jobs.model.batching import collate, encode_item, to_device
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.score import score_batch
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl
    from orienteer.jobs.model.train import (
        Stopped,
        TrainConfig,
        example_item,
        load_for_training,
        save_trained,
        train_loop,
        trainable_parameters,
    )

    tmp = Path(tempfile.mkdtemp(prefix="orienteer-loop-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the generated images
    tiny = build_tiny_qwen25vl(tmp / "tiny")
    examples = []
    for i in range(4):
        path = tmp / f"img{i}.png"
        Image.new("RGB", (64, 64), (60 * i, 200 - 40 * i, 90)).save(path)
        letter = "ABCD"[i]
        examples.append({"item_id": f"ex{i}", "question": f"Where is the cup {i}?", "images": [str(path)],
                         "options": {"A": "left", "B": "right", "C": "front", "D": "back"}, "answer": letter,
                         "target": f"{letter}. {['left', 'right', 'front', 'back'][i]}"})
    ok = True
    for method in ("lora", "full-llm"):
        cfg = TrainConfig(model=str(tiny), method=method, batch_size=2, grad_accum=1, max_steps=2, save_every=1,
                          lr=1e-3)
        model, processor, ref = load_for_training(cfg, device)
        first = _Recorder(stop_at=1)
        try:
            train_loop(model, processor, examples, cfg, device=device, resume_dir=tmp / method, reporter=first)
            ok = False
            say(f"{method}: the loop did not stop when asked")
        except Stopped:
            pass
        model, processor, ref = load_for_training(cfg, device)
        second = _Recorder()
        result = train_loop(model, processor, examples, cfg, device=device, resume_dir=tmp / method, reporter=second)
        resumed = {n: p.detach().float().cpu() for n, p in trainable_parameters(model)}
        folder = save_trained(model, processor, tmp / f"{method}-out", cfg, ref, {"check": True})
        straight_model, processor, _ = load_for_training(cfg, device)
        straight = _Recorder()
        train_loop(straight_model, processor, examples, cfg, device=device, resume_dir=tmp / f"{method}-straight",
                   reporter=straight)
        diff = max(float((resumed[n] - p.detach().float().cpu()).abs().max())
                   for n, p in trainable_parameters(straight_model))
        dtypes = sorted({str(p.dtype) for _, p in trainable_parameters(straight_model)})
        loaded = load_model(str(folder), device=device)
        item = example_item(examples[0])
        frames = [Image.open(examples[0]["images"][0]).convert("RGB")]
        batch = collate([encode_item(loaded.processor, item, frames)], loaded.tokenizer.pad_token_id)
        [scored] = score_batch(loaded.model, to_device(batch, device, loaded.dtype), [list("ABCD")], loaded.tokenizer)
        good = (first.steps == [1] and second.steps == [2] and result.resumed_from == 1 and diff < 1e-3
                and scored.letter in "ABCD")
        ok = ok and good
        say(f"{method}: stopped after {first.steps}, resumed {second.steps} (from {result.resumed_from}); "
            f"losses {first.losses + second.losses} vs straight {straight.losses}; max |resumed - straight| = "
            f"{diff:.2e}; trainable dtypes {dtypes}; reloaded from {folder.name} ({loaded.dtype}) -> "
            f"{scored.letter}: {'ok' if good else 'FAILED'}")
        del model, straight_model, loaded
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model (for --device cpu smoke tests)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--tokens", type=int, default=458, help="tokens per item, image included")
    parser.add_argument("--answer", type=int, default=4, help="answer tokens per item (the loss covers these)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--methods", default="lora,full-llm")
    parser.add_argument("--peak-size", type=int, default=8192, help="matmul size for the bf16 peak")
    parser.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (the train kind's default)")
    parser.add_argument("--profile", action="store_true", help="print the top kernels of one extra step per method")
    parser.add_argument("--check-loop", action="store_true",
                        help="instead of timing: run the train loop end to end (stop, resume, save, reload) on the tiny model")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.width, args.height = min(args.width, 112), min(args.height, 84)
        args.tokens = min(args.tokens, 60)
        args.peak_size = min(args.peak_size, 512)
        args.batch = min(args.batch, 2)
        args.steps, args.warmup = min(args.steps, 2), min(args.warmup, 1)

    if args.check_loop:
        good = check_loop(args.device)
        say("train loop check: " + ("ok" if good else "FAILED"))
        return 0 if good else 1
    t0 = time.perf_counter()
    import torch

    say(f"torch {torch.__version__}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    peak = measure_peak(args.device, args.peak_size)
    say(f"bf16 matmul peak ({args.peak_size}^3): {peak:.1f} TFLOP/s")
    model, config, mode = build_model(args.tiny, args.device)
    total = sum(p.numel() for p in model.parameters())
    say(f"built {'tiny' if args.tiny else '3B-shaped'} Qwen2.5-VL ({total / 1e9:.3f} B parameters, vision attention "
        f"{mode}) in {time.perf_counter() - t0:.1f} s")
    dtype = next(model.model.visual.parameters()).dtype
    batch, shape = synthetic_batch(config, args.batch, args.width, args.height, args.tokens, args.answer, args.device,
                                   dtype)
    counts = flop_counts(config, model, args.tokens, shape["patches_per_item"])
    say(f"batch {args.batch} x {args.tokens} tokens ({shape['image_tokens']} image tokens, grid {shape['grid']}); "
        f"N_lm {counts['n_lm'] / 1e9:.3f} B, N_vis {counts['n_vis'] / 1e9:.3f} B")

    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        try:
            result = time_method(model, method, batch, args.device, args.warmup, args.steps,
                                 1e-4 if method == "lora" else 1e-5, args.lora_dropout, args.profile)
        except torch.OutOfMemoryError as exc:
            say(f"{method}: out of memory ({' '.join(str(exc).split())[:160]})")
            rows.append({"method": method, "error": "out of memory"})
            gc.collect()
            torch.cuda.empty_cache()
            continue
        model = result.pop("model")
        seconds = sorted(result["times"])[len(result["times"]) // 2]
        flops = step_flops(counts, method) * args.batch
        row = {
            "method": method, "batch": args.batch, "step_ms": round(seconds * 1000, 1),
            "items_s": round(args.batch / seconds, 2), "tokens_s": round(args.batch * args.tokens / seconds),
            "tflop_per_item": round(step_flops(counts, method) / 1e12, 2), "tflops": round(flops / seconds / 1e12, 1),
            "peak_share": round(flops / seconds / 1e12 / peak, 3), "trainable": result["trainable"],
            "peak_mem_gib": round(result["peak_mem_gib"], 1) if result["peak_mem_gib"] is not None else None,
            "loss_first_last": [round(result["losses"][0], 3), round(result["losses"][-1], 3)],
        }
        rows.append(row)
        # Back to the plain model for the next method: drop LoRA layers, freeze everything again.
        if hasattr(model, "unload"):
            model = model.unload()
        for p in model.parameters():
            p.requires_grad_(False)
            p.grad = None
        if args.device.startswith("cuda"):
            model.to(torch.bfloat16)
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()

    print()
    print(f"{'method':<9} {'batch':>5} {'step ms':>8} {'items/s':>8} {'tokens/s':>9} {'TFLOP/item':>10} "
          f"{'TFLOP/s':>8} {'of peak':>8} {'trainable':>13} {'mem GiB':>8}")
    for row in rows:
        if "error" in row:
            print(f"{row['method']:<9} {row['error']}")
            continue
        print(f"{row['method']:<9} {row['batch']:>5} {row['step_ms']:>8} {row['items_s']:>8} {row['tokens_s']:>9} "
              f"{row['tflop_per_item']:>10} {row['tflops']:>8} {row['peak_share'] * 100:>7.1f}% {row['trainable']:>13,} "
              f"{row['peak_mem_gib'] if row['peak_mem_gib'] is not None else '-':>8}")
    print(f"bf16 peak measured: {peak:.1f} TFLOP/s; anchor (ARCHITECTURE.md 9, H200): LoRA batch 8 = "
          f"{ANCHOR_LORA_ITEMS_S} items/s; total {time.perf_counter() - t0:.1f} s", flush=True)
    figures = {"device": args.device, "peak_tflops": round(peak, 1), "rows": rows, "flops_per_item": counts,
               "anchor_lora_items_s": ANCHOR_LORA_ITEMS_S, "seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
