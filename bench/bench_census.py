#!/usr/bin/env python
"""What one score batch asks of the GPU, counted on the CPU: kernels, bytes moved and FLOPs per part.

Builds the Qwen2.5-VL-3B-shaped model on PyTorch's ``meta`` device (shapes only: no memory, no
arithmetic, seconds on any machine), prepares a batch of 640x480 items exactly as the eval job does
(``score_pipeline.prepare``) and runs its launch under a dispatch mode that sees every ATen op. Per
part of the model (vision attention, vision MLP, norms, language-model attention and MLP, ...) it
prints the kernels launched, the bytes each op reads and writes (views are free; a gather counts
what it reads and writes, not its whole source) and the matmul/attention FLOPs, plus a roofline
time: FLOPs at ``--tflops`` plus bytes at ``--tbps``. That is a floor, not a forecast: real kernels
miss both peaks, and it knows nothing of slow kernels (cuDNN's Conv3d) or of the host. It says
where the GPU's time can go, and it measures a change that moves fewer bytes or launches fewer
kernels without a GPU: ``--variants`` repeats the count with transformers' RMSNorm (``fused_norm.py``
off) and with eager SwiGLU (``fused_swiglu.py`` off).

Because the launch runs on ``meta``, it also proves the launch reads nothing back from the device
(any such read raises there); transformers' own forward does not run there at all.

    python bench/bench_census.py                       # 3B shapes, batch 32: ~20 s
    python bench/bench_census.py --variants            # also with transformers' RMSNorm / eager SwiGLU
    python bench/bench_census.py --tiny --batch 4      # smoke test
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gpu  # noqa: E402  (same folder: the model, tokenizer and items of the GPU bench)

# ops that only re-describe or allocate memory: no kernel, no traffic
VIEWS = {"view", "_unsafe_view", "reshape", "transpose", "t", "permute", "expand", "slice", "select", "unsqueeze",
         "squeeze", "alias", "as_strided", "split", "split_with_sizes", "unbind", "detach", "_reshape_alias",
         "lift_fresh", "chunk", "narrow", "empty", "empty_like", "new_empty"}
GATHERS = {"index_select", "embedding", "gather", "index"}


def _tensors(x: Any) -> Iterator[Any]:
    import torch

    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors(y)


def _bytes(tensors: Iterator[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _flops(name: str, args: tuple[Any, ...], out: Any) -> float:
    if name == "linear":
        return 2.0 * args[0].numel() * args[1].shape[0]
    if name in ("mm", "addmm"):
        a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
        return 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    if name == "bmm":
        return 2.0 * args[0].shape[0] * args[0].shape[1] * args[0].shape[2] * args[1].shape[2]
    if "scaled_dot_product" in name:
        q, k = args[0], args[1]
        return 4.0 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
    return 0.0


def _part(module_name: str) -> str | None:
    if module_name.endswith("visual.patch_embed"):
        return "vision patch embed"
    if module_name.endswith("visual.merger"):
        return "vision merger"
    leaf = module_name.rsplit(".", 1)[-1]
    if ".visual.blocks." in module_name and module_name.count(".") == 4:
        return {"attn": "vision attention", "mlp": "vision MLP", "norm1": "vision norms", "norm2": "vision norms"}.get(leaf)
    if ".language_model.layers." in module_name and module_name.count(".") == 4:
        return {"self_attn": "LM attention", "mlp": "LM MLP", "input_layernorm": "LM norms",
                "post_attention_layernorm": "LM norms"}.get(leaf)
    if module_name.endswith("lm_head"):
        return "lm_head"
    return None


def census(model: Any, host: Any) -> dict[str, Any]:
    """Count one ``score_pipeline.launch`` of ``host`` on ``model`` (both on ``meta``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from orienteer.jobs.model.score_pipeline import launch

    stack = ["other (embeddings, residual adds, rotary tables, gathers)"]
    handles = []
    for name, module in model.named_modules():
        part = _part(name)
        if part:
            handles.append(module.register_forward_pre_hook(lambda m, a, part=part: stack.append(part)))
            handles.append(module.register_forward_hook(lambda m, a, o: None if stack.pop() else None))  # None: output kept
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    ops: Counter[tuple[str, str]] = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            name = func.__name__.split(".")[0]
            if name in VIEWS:
                return out
            inputs = list(_tensors(args)) + list(_tensors(kwargs or {}))
            if not any(t.device.type == "meta" for t in [*inputs, *_tensors(out)]):
                return out  # host-side work (plans, tables): no kernel on the device
            if name in GATHERS:  # reads the rows it picks, not its whole source
                moved = 2 * _bytes(_tensors(out)) + _bytes(t for t in inputs if not t.is_floating_point())
            else:
                moved = _bytes(iter(inputs)) + _bytes(_tensors(out))
            row = rows[stack[-1]]
            row[0] += 1
            row[1] += moved
            row[2] += _flops(name, args, out)
            ops[(stack[-1], name)] += moved
            return out

    try:
        with Count():
            launch(model, host, "meta")
    finally:
        for h in handles:
            h.remove()
    return {"parts": {k: {"kernels": int(v[0]), "bytes": int(v[1]), "flops": v[2]} for k, v in rows.items()},
            "top_ops": [{"part": p, "op": o, "bytes": b} for (p, o), b in ops.most_common(15)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--tiny", action="store_true", help="the tiny test model's shapes (smoke test)")
    parser.add_argument("--tflops", type=float, default=700.0, help="matmul rate for the roofline (H100 SXM bf16: 989 peak)")
    parser.add_argument("--tbps", type=float, default=2.8, help="memory rate for the roofline, TB/s (H100 SXM: 3.35 peak)")
    parser.add_argument("--variants", action="store_true", help="also count with transformers' RMSNorm, and with eager SwiGLU")
    parser.add_argument("--out", default="bench_census.json")
    args = parser.parse_args()

    bench_gpu._import_orienteer()
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from orienteer.jobs.model import tiny
    from orienteer.jobs.model.batching import item_encoder, rope_positions
    from orienteer.jobs.model.fused_norm import patch_rms_norm
    from orienteer.jobs.model.fused_swiglu import patch_swiglu
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.loading import set_fast_path
    from orienteer.jobs.model.score_pipeline import prepare

    t0 = time.time()
    tok = tiny.build_tokenizer()
    bench_gpu.add_word_tokens(tok)
    vocab = tiny.byte_vocab()
    config = tiny.tiny_config() if args.tiny else tiny.qwen25vl_3b_config()
    config.image_token_id = vocab["<|image_pad|>"]
    config.video_token_id = vocab["<|video_pad|>"]
    config.vision_start_token_id = vocab["<|vision_start|>"]
    config.vision_end_token_id = vocab["<|vision_end|>"]
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    pixels = args.width * args.height if not args.tiny else min(args.width * args.height, tiny.TINY_MAX_PIXELS)
    processor = tiny.build_processor(tok, min_pixels=28 * 28 * 4, max_pixels=pixels)
    folder = Path(tempfile.mkdtemp(prefix="orienteer-census-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the generated images
    items = bench_gpu.make_items(folder, args.batch, args.width, args.height)
    encode = item_encoder(processor, folder, "official", PixelBudget(max_pixels=pixels), positions=rope_positions(model))
    encoded = [encode(it) for it in items]
    letters = {letter: tok.convert_tokens_to_ids(letter) for letter in "ABCD"}
    set_fast_path(model, "auto")  # the host-side layout depends on the vision attention in use
    host = prepare(model, encoded, int(tok.pad_token_id or 0), letters, torch.bfloat16)

    variants: list[tuple[str, Any]] = [("fast path", lambda: set_fast_path(model, "auto"))]
    if args.variants:
        # the fast-path parts that change what moves through memory (the GEMM patch embedding does
        # not: it replaces a slow cuDNN kernel with a fast one, which only a GPU can show)
        variants += [("transformers' RMSNorm", lambda: (set_fast_path(model, "auto"), patch_rms_norm(model, fused=False))),
                     ("eager SwiGLU", lambda: (set_fast_path(model, "auto"), patch_swiglu(model, fused=False)))]
    results: dict[str, Any] = {"batch": args.batch, "image": [args.width, args.height], "tiny": args.tiny,
                               "tokens_per_item": encoded[0].length, "tflops": args.tflops, "tbps": args.tbps, "variants": {}}
    print(f"{args.batch} items of {args.width}x{args.height}, {encoded[0].length} tokens each; "
          f"roofline at {args.tflops:g} TFLOP/s and {args.tbps:g} TB/s")
    for label, switch in variants:
        switch()
        counted = census(model, host)
        parts = counted["parts"]
        total = {"kernels": sum(p["kernels"] for p in parts.values()), "bytes": sum(p["bytes"] for p in parts.values()),
                 "flops": sum(p["flops"] for p in parts.values())}
        floor_ms = 1000 * (total["flops"] / (args.tflops * 1e12) + total["bytes"] / (args.tbps * 1e12))
        total["roofline_ms"] = round(floor_ms, 1)
        total["items_per_s_ceiling"] = round(args.batch / (floor_ms / 1000), 1) if floor_ms else None
        results["variants"][label] = {"parts": parts, "total": total, "top_ops": counted["top_ops"]}
        print(f"\n=== {label} ===")
        print(f"{'part':<58}{'kernels':>8}{'GB':>9}{'TFLOP':>8}{'floor ms':>10}")
        for name, p in sorted(parts.items(), key=lambda kv: -kv[1]["bytes"]):
            ms = 1000 * (p["flops"] / (args.tflops * 1e12) + p["bytes"] / (args.tbps * 1e12))
            print(f"{name:<58}{p['kernels']:>8}{p['bytes'] / 1e9:>9.2f}{p['flops'] / 1e12:>8.2f}{ms:>10.1f}")
        print(f"{'total':<58}{total['kernels']:>8}{total['bytes'] / 1e9:>9.2f}{total['flops'] / 1e12:>8.2f}"
              f"{floor_ms:>10.1f}   -> at most {total['items_per_s_ceiling']} items/s")
        print("largest ops by bytes: " + "; ".join(f"{o['part'].split(' (')[0]} {o['op']} {o['bytes'] / 1e9:.1f} GB"
                                                  for o in counted["top_ops"][:6]))
    results["seconds"] = round(time.time() - t0, 1)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out} ({results['seconds']} s); the launch ran on 'meta': it reads nothing back "
          "from the device", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
