#!/usr/bin/env python
"""GPU benchmark of the model layer: official pattern vs score mode vs saliency, on Qwen2.5-VL-3B shapes.

Builds a Qwen2.5-VL-3B-shaped model with random weights straight on the device (weights do not
change speed; nothing is downloaded), writes random 640x480 JPEGs, and times with the project's
own code (``orienteer.jobs.model``):

  a. official  - the ViewSpatial evaluate.py pattern: one item at a time, processor + ``generate``
                 of 4 tokens, transformers' reference vision attention;
  b. score     - the eval job's score mode end to end (JPEG decode + preprocessing and rope
                 positions in threads, length-grouped batches, ``score_pipeline.score_stream``:
                 one forward per batch, last position only, one batch in flight) at several batch
                 sizes, with the reference and with the fast path; at the best batch size also
                 model-only, pipelined and the old way (transformers' forward, one batch at a time);
  c. saliency  - forward + backward to the pixels, batch 8, fast attention;
  b'. upstream - score mode end to end at the best batch size with upstream's frame sizing
                 (``--resize upstream``: 280x420 through qwen-vl-utils, then 392x560, 280 tokens a
                 frame), the sizing the eval job uses by default with the official prompt;
  d. vision    - the vision tower alone (images/s) with each attention, batch 64, and the largest
                 difference between the fast and the reference output; then the fast tower
                 without its fused RMSNorm (``fused_norm.py``), without its one-kernel SwiGLU
                 (``fused_swiglu.py``), without its GEMM patch embedding,
                 and the patch embedding alone (Conv3d vs one GEMM, ``patch_embed.py``).

The fast path is what ``load_model`` sets up: grouped vision attention, the GEMM patch embedding
and (half precision only) one-kernel RMSNorm and SwiGLU in both towers; ``reference`` is
transformers' code.

Prints items/s per figure (median of ``--repeats`` timed runs after a warm-up) and the ratios
against (a), flushing a line as each section ends, and writes everything as JSON to ``--out``.

    python bench/bench_gpu.py --device cuda --out bench_gpu.json        # ~3-5 min on an H100
    python bench/bench_gpu.py --device cpu --tiny                        # smoke test, tiny model

Targets (the issue, one H100/H200, 640x480): score >= 8x official and >= 60 items/s; saliency >=
15 items/s. Runs from a plain checkout: when ``orienteer`` is not installed the repo is put on
the path. The tokenizer is built in code (byte level, plus one token per word of the bench prompt
so an item is ~476 tokens, close to the real tokenizer's 458 of ARCHITECTURE.md section 9).

Measured on one H100 80GB (torch 2.11, transformers 5.24; 476 tokens/item, 391 of them image):
official 5.56 items/s; vision tower 22.6 -> 83.4 images/s (reference -> grouped); score e2e 43.6
items/s at batch 32 (49.9 model-only; 15.3 with the reference attention at 551 tokens); saliency
18.1 items/s at batch 8. Those figures predate the GEMM patch embedding and the fused norms
(the fast path used Conv3d and transformers' RMSNorm then); the next GPU run shows their shares
in ``vision_grouped`` vs ``vision_grouped_conv3d`` / ``vision_grouped_plain_norm``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
T_START = time.time()


def _import_orienteer() -> None:
    """Use the installed package, or map ``orienteer.core/data/jobs`` onto this checkout."""
    try:
        import orienteer.jobs.model.tiny  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))
        import orienteer

        orienteer.__path__.append(str(REPO))  # orienteer.jobs -> REPO/jobs, etc.
        import orienteer.jobs.model.tiny  # noqa: F401


def say(msg: str) -> None:
    print(f"[{time.time() - T_START:6.1f}s] {msg}", flush=True)


def median_rate(fn: Callable[[], int], repeats: int, sync: Callable[[], None]) -> tuple[float, list[float]]:
    """Items/s of ``fn`` (which returns how many items it did): one warm-up, then the median of ``repeats``."""
    fn()
    sync()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        sync()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def build(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from orienteer.jobs.model import tiny

    tok = tiny.build_tokenizer()
    vocab = tiny.byte_vocab()
    add_word_tokens(tok)
    config = tiny.tiny_config() if args.tiny else tiny.qwen25vl_3b_config()
    # The byte tokenizer's special-token ids stand in for Qwen's real ones; ids only index embeddings.
    config.image_token_id = vocab["<|image_pad|>"]
    config.video_token_id = vocab["<|video_pad|>"]
    config.vision_start_token_id = vocab["<|vision_start|>"]
    config.vision_end_token_id = vocab["<|vision_end|>"]
    config.text_config.eos_token_id = vocab["<|im_end|>"]
    config.text_config.pad_token_id = vocab["<|endoftext|>"]
    config.text_config.bos_token_id = vocab["<|endoftext|>"]
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(args.device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    max_px = args.pixels
    processor = tiny.build_processor(tok, min_pixels=28 * 28 * 4, max_pixels=max_px)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model built: {n_params / 1e9:.2f} B parameters, {dtype}, on {args.device}")
    return model, processor, dtype


QUESTION = "Can you describe the position of the table relative to the lamp from the camera's viewpoint? ({i})"
TEMPLATE_TEXT = ("You are a helpful assistant.\n" + QUESTION.format(i=0) + "\nA. left\nB. right\nC. front\nD. back"
                 "\nReply only to the corresponding option.\nAnswer:")


def add_word_tokens(tok: Any) -> None:
    """Give the byte tokenizer one token per word of the bench prompt, as Qwen's BPE has.

    Byte-level text is ~3x longer than BPE text; without this the language model would see
    ~160 text tokens per item instead of the ~65 of the real tokenizer (458 in all, section 9).
    """
    import re

    from tokenizers import AddedToken

    words = sorted({w for w in re.findall(r" ?[A-Za-z']+", TEMPLATE_TEXT) if len(w) > 1}, key=len, reverse=True)
    tok.add_tokens([AddedToken(w, normalized=False, special=False) for w in words])


def make_items(folder: Path, n: int, width: int, height: int) -> list[Any]:
    import numpy as np
    from PIL import Image

    from orienteer.data.items import Item

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    labels = ["left", "right", "front", "back"]
    for i in range(n):
        arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i:04d}.jpg", quality=90)
        # A question of ViewSpatial's typical length (the byte tokenizer makes every byte a token).
        items.append(Item(f"b{i:04d}", "Camera perspective - Relative Direction", QUESTION.format(i=i),
                          list("ABCD"), labels[i % 4:] + labels[:i % 4], "A", [f"img{i:04d}.jpg"]))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke test, e.g. on the CPU)")
    parser.add_argument("--out", default="bench_gpu.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="8,16,32,64")
    parser.add_argument("--ref-batch-sizes", default="8,32", help="batch sizes timed with the reference attention")
    parser.add_argument("--official-items", type=int, default=12)
    parser.add_argument("--saliency-batch", type=int, default=8)
    parser.add_argument("--vision-batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pixels", type=int, default=640 * 480, help="max_pixels per image")
    parser.add_argument("--workers", type=int, default=0, help="encoder threads (0: the eval job's default)")
    parser.add_argument("--e2e-workers", default="2,4",
                        help="also time end to end at the best batch size with these thread counts")
    parser.add_argument("--profile", action="store_true",
                        help="after each fast figure, profile one more pass: top CUDA kernels and the GPU's busy share; "
                             "for model-only score, also where the host waits for the GPU")
    parser.add_argument("--sections", default="official,score,saliency,vision")
    args = parser.parse_args()
    if args.tiny:
        args.batch_sizes = "4,8" if args.batch_sizes == "8,16,32,64" else args.batch_sizes
        args.ref_batch_sizes = "4" if args.ref_batch_sizes == "8,32" else args.ref_batch_sizes
        args.official_items = min(args.official_items, 4)
        args.saliency_batch = min(args.saliency_batch, 4)
        args.vision_batch = min(args.vision_batch, 8)
        args.pixels = min(args.pixels, 28 * 28 * 64)
        args.repeats = min(args.repeats, 2)
    sections = set(args.sections.split(","))

    _import_orienteer()
    import torch
    import transformers

    from orienteer.jobs.model.batching import Prefetcher, collate, item_encoder, rope_positions, to_device
    from orienteer.jobs.model.fused_norm import patch_rms_norm
    from orienteer.jobs.model.fused_swiglu import patch_swiglu
    from orienteer.jobs.model.images import PixelBudget, UpstreamResize, load_images
    from orienteer.jobs.model.loading import set_fast_path
    from orienteer.jobs.model.patch_embed import patch_embed_mode, patch_patch_embed
    from orienteer.jobs.model.prompt import build_messages, chat_text
    from orienteer.jobs.model.saliency import saliency_batch
    from orienteer.jobs.model.score import score_batch
    from orienteer.jobs.model.score_pipeline import score_stream
    from orienteer.jobs.model.vision_attention import vision_attention_mode

    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__, "tiny": args.tiny,
        "image": [args.width, args.height], "max_pixels": args.pixels, "figures": {}, "errors": {},
    }
    out_path = Path(args.out)

    def save() -> None:
        out_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    say(f"{results['device']}; torch {torch.__version__}, transformers {transformers.__version__}")
    model, processor, dtype = build(args)
    tmp = Path(tempfile.mkdtemp(prefix="orienteer-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the generated images
    max_bs = max(int(b) for b in args.batch_sizes.split(","))
    n_items = max(2 * max_bs, args.vision_batch, 16)
    items = make_items(tmp, n_items, args.width, args.height)
    budget = PixelBudget(max_pixels=args.pixels)
    positions = rope_positions(model)
    encode = item_encoder(processor, tmp, "official", budget, positions=positions)  # CPU preprocessing
    # what the eval job does in score mode: resize on the device, rope positions in the encoder threads
    encode_dev = item_encoder(processor, tmp, "official", budget, device=args.device, positions=positions)
    # --resize upstream (evaluate.py's sizing, whatever --pixels says), resized on the device as the eval job does
    encode_upstream = item_encoder(processor, tmp, "official", UpstreamResize(), device=args.device, positions=positions)
    sample = encode(items[0])
    results["tokens_per_item"] = sample.length
    results["image_tokens_per_item"] = int(sample.mm_token_type_ids.sum())
    upstream_sample = encode_upstream(items[0])
    results["upstream_tokens_per_item"] = upstream_sample.length
    results["upstream_image_tokens_per_item"] = int(upstream_sample.mm_token_type_ids.sum())
    say(f"{n_items} items of {args.width}x{args.height}: {sample.length} tokens each "
        f"({results['image_tokens_per_item']} image tokens); with --resize upstream {upstream_sample.length} "
        f"({results['upstream_image_tokens_per_item']} image tokens)")
    pad_id = processor.tokenizer.pad_token_id
    figures = results["figures"]

    def profile_once(label: str, fn: Callable[[], Any]) -> None:
        """The top GPU kernels of one call of ``fn``, and how busy the GPU was: the kernels' summed time
        over the wall time (the rest is the GPU waiting for the host: syncs, Python between launches).
        The profiler slows the host a little, so read the busy share as a lower bound."""
        from torch.profiler import ProfilerActivity, profile

        sync()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            sync()
        wall = time.perf_counter() - t0
        events = prof.key_averages()
        kernel_us = sum(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) for e in events)
        busy = kernel_us / 1e6 / wall if wall else 0.0
        results.setdefault("profiles", {})[label] = {"wall_ms": round(1000 * wall, 1),
                                                      "gpu_kernels_ms": round(kernel_us / 1000, 1), "gpu_busy": round(busy, 3)}
        save()
        print(f"--- profile: {label}: wall {1000 * wall:.1f} ms, GPU kernels {kernel_us / 1000:.1f} ms "
              f"(busy {100 * busy:.0f}%) ---")
        print(events.table(sort_by="cuda_time_total", row_limit=15), flush=True)

    def sync_sites(label: str, fn: Callable[[], Any]) -> None:
        """Where one call of ``fn`` makes the host wait for the GPU (``torch.cuda.set_sync_debug_mode``):
        each such point inside a forward leaves the GPU idle while Python prepares the next kernels."""
        import warnings
        from collections import Counter

        sync()
        sites: Counter[str] = Counter()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        sync()
        for w in caught:
            if "synchroniz" in str(w.message):
                sites[f"{Path(w.filename).name}:{w.lineno}"] += 1
        results.setdefault("sync_sites", {})[label] = dict(sites.most_common())
        save()
        print(f"--- host-device syncs: {label}: {sum(sites.values())} at {len(sites)} places ---")
        for site, n in sites.most_common(20):
            print(f"  {n:5d}  {site}")

    def record(name: str, rate: float, rates: list[float], extra: str = "") -> None:
        figures[name] = {"items_per_s": round(rate, 2), "samples": [round(r, 2) for r in rates]}
        say(f"{name:<28} {rate:8.2f} items/s {extra}")
        save()

    def guarded(name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
            import traceback

            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
            say(f"{name}: FAILED {type(exc).__name__}: {exc}")
            save()
            if cuda:
                torch.cuda.empty_cache()

    # a. the official pattern ------------------------------------------------------------------
    def official() -> None:
        set_fast_path(model, "reference")
        subset = items[: args.official_items]

        def one_by_one() -> int:
            for item in subset:
                frames = load_images(item, tmp)
                text = chat_text(processor, build_messages(item, "official"))
                inputs = processor(text=[text], images=frames, return_tensors="pt", size=budget.size_kwargs(1))
                inputs = {k: v.to(args.device) for k, v in inputs.items()}
                inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
                with torch.inference_mode():
                    model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                   pad_token_id=pad_id, eos_token_id=None)
            return len(subset)

        rate, rates = median_rate(one_by_one, args.repeats, sync)
        record("official_generate4", rate, rates, "(one item at a time, reference attention)")

    # b. score mode ----------------------------------------------------------------------------
    def score(mode: str, bs: int, end_to_end: bool, one_at_a_time: bool = False, cpu_prep: bool = False,
              workers: int | None = None, upstream: bool = False) -> None:
        """Score mode as the eval job runs it (``score_pipeline.score_stream``: one batch in flight, no
        host-device sync inside a batch). ``end_to_end``: items encoded by the prefetch threads as they
        go (else encoded beforehand: model only); ``one_at_a_time``: model only, the way the job ran
        before the pipeline (transformers' forward, results read right after each batch);
        ``cpu_prep``: images resized on the CPU (the threads), not on the device; ``workers``: encoder
        threads (default ``--workers``, else the eval job's default); ``upstream``: end to end with
        ``--resize upstream``'s frames instead of the 640x480 budget."""
        threads = workers or args.workers or None
        set_fast_path(model, mode)
        subset = items[: max(2 * bs, 16)]
        batches = [subset[i:i + bs] for i in range(0, len(subset), bs)]
        tok = processor.tokenizer
        if end_to_end:
            def run() -> int:
                encoder = encode_upstream if upstream else (encode if cpu_prep else encode_dev)
                feed = ((None, encoded) for encoded, _ in Prefetcher(batches, encoder, workers=threads))
                for _ in score_stream(model, tok, feed, pad_id, args.device, dtype):
                    pass
                return len(subset)
        elif one_at_a_time:
            letters = [list("ABCD")] * bs
            ready = [to_device(collate([encode(it) for it in b], pad_id, positions=True), args.device, dtype) for b in batches]

            def run() -> int:
                for batch in ready:
                    score_batch(model, batch, letters, tok)
                return len(subset)
        else:
            encoded = [[encode(it) for it in b] for b in batches]

            def run() -> int:
                for _ in score_stream(model, tok, ((None, e) for e in encoded), pad_id, args.device, dtype):
                    pass
                return len(subset)

        rate, rates = median_rate(run, args.repeats, sync)
        tag = ("e2e_cpu_prep" if cpu_prep else "e2e") if end_to_end else ("model_only_sync" if one_at_a_time else "model_only")
        if workers:
            tag += f"_{workers}threads"
        if upstream:
            tag += "_upstream"
        name = f"score_{vision_attention_mode(model)}_{tag}_bs{bs}"
        record(name, rate, rates)
        if args.profile and cuda and mode != "reference":
            profile_once(f"{name} ({len(subset)} items)", run)
            if not end_to_end:
                sync_sites(f"{name} ({len(subset)} items)", run)

    # c. saliency ------------------------------------------------------------------------------
    def saliency() -> None:
        set_fast_path(model, "auto")
        bs = args.saliency_batch
        subset = items[: 2 * bs]
        enc = [encode(it) for it in subset]
        chunks = [enc[i:i + bs] for i in range(0, len(enc), bs)]
        ready = [(to_device(collate(c, pad_id, positions=True), args.device, dtype), c) for c in chunks]

        def run() -> int:
            for batch, c in ready:
                saliency_batch(model, batch, [65] * len(c), [e.sizes for e in c], processor.image_processor)
            return len(subset)

        rate, rates = median_rate(run, args.repeats, sync)
        record(f"saliency_{vision_attention_mode(model)}_bs{bs}", rate, rates, "(forward + backward to pixels, maps resized)")

    # d. vision tower alone --------------------------------------------------------------------
    def vision() -> None:
        bs = args.vision_batch
        enc = [encode(it) for it in items[:bs]]
        pv = torch.cat([e.pixel_values for e in enc]).to(args.device, dtype)
        grid = torch.cat([e.image_grid_thw for e in enc]).to(args.device)
        visual = model.model.visual
        outputs = {}
        for mode in ("reference", "auto", "grouped"):
            if set_fast_path(model, mode) in outputs:
                continue
            holder: dict[str, Any] = {}

            def run() -> int:
                with torch.inference_mode():
                    holder["out"] = visual(pv, grid_thw=grid).pooler_output
                return bs

            rate, rates = median_rate(run, args.repeats, sync)
            used = vision_attention_mode(model)
            outputs[used] = holder["out"]
            record(f"vision_{used}_bs{bs}", rate, rates, "(images/s, vision tower only)")
        # The parts of the fast tower apart: without the fused norms (fused_norm.py), without the GEMM
        # patch embedding, and the patch embedding alone (Conv3d vs one GEMM, patch_embed.py).
        def tower() -> int:
            with torch.inference_mode():
                visual(pv, grid_thw=grid)
            return bs

        for name, switch_off, what in (("plain_norm", lambda: patch_rms_norm(model, fused=False), "transformers' RMSNorm"),
                                       ("eager_swiglu", lambda: patch_swiglu(model, fused=False), "eager SwiGLU"),
                                       ("conv3d", lambda: patch_patch_embed(model, linear=False), "Conv3d patch embedding")):
            set_fast_path(model, "grouped")
            switch_off()
            rate, rates = median_rate(tower, args.repeats, sync)
            record(f"vision_grouped_{name}_bs{bs}", rate, rates, f"(images/s, grouped attention, {what})")
        for linear in (False, True):
            patch_patch_embed(model, linear=linear)

            def run_embed() -> int:
                with torch.inference_mode():
                    visual.patch_embed(pv)
                return bs

            rate, rates = median_rate(run_embed, args.repeats, sync)
            record(f"patch_embed_{patch_embed_mode(model)}_bs{bs}", rate, rates, "(images/s, patch embedding alone)")
        set_fast_path(model, "auto")
        ref = outputs["reference"].float()
        for used, out in outputs.items():
            if used != "reference":
                diff = (out.float() - ref).abs().max().item()
                rel = diff / max(ref.abs().max().item(), 1e-9)
                results.setdefault("vision_max_abs_diff", {})[used] = diff
                say(f"vision {used} vs reference: max |diff| {diff:.3e} (relative to max |ref| {rel:.2e})")
        save()
        if args.profile and cuda:
            for mode in ("reference", "auto"):
                set_fast_path(model, mode)
                profile_once(f"vision tower, {mode}, batch {bs}", tower)
            set_fast_path(model, "auto")

    if "official" in sections:
        guarded("official", official)
    if "vision" in sections:
        guarded("vision", vision)
    if "score" in sections:
        for bs in (int(b) for b in args.ref_batch_sizes.split(",") if b):
            guarded(f"score_reference_bs{bs}", lambda bs=bs: score("reference", bs, True))
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            guarded(f"score_fast_bs{bs}", lambda bs=bs: score("auto", bs, True))
        best_bs = max((v["items_per_s"], k) for k, v in figures.items() if k.startswith("score_") and "reference" not in k)[1] \
            if any(k.startswith("score_") and "reference" not in k for k in figures) else None
        if best_bs:
            bs = int(best_bs.rsplit("bs", 1)[1])
            guarded(f"score_model_only_bs{bs}", lambda: score("auto", bs, False))
            guarded(f"score_model_only_sync_bs{bs}", lambda: score("auto", bs, False, one_at_a_time=True))
            guarded(f"score_e2e_cpu_prep_bs{bs}", lambda: score("auto", bs, True, cpu_prep=True))
            guarded(f"score_e2e_upstream_bs{bs}", lambda: score("auto", bs, True, upstream=True))
            # fewer encoder threads: less competition for the GIL with the thread that drives the GPU
            for n in (int(w) for w in args.e2e_workers.split(",") if w):
                guarded(f"score_e2e_{n}threads_bs{bs}", lambda n=n: score("auto", bs, True, workers=n))
    if "saliency" in sections:
        guarded("saliency", saliency)

    # summary ------------------------------------------------------------------------------------
    base = figures.get("official_generate4", {}).get("items_per_s")
    # the eval job on the 640x480 workload
    fast_scores = {k: v["items_per_s"] for k, v in figures.items() if k.startswith("score_") and "e2e" in k
                   and "reference" not in k and "cpu_prep" not in k and "threads" not in k and "upstream" not in k}
    ref_scores = {k: v["items_per_s"] for k, v in figures.items() if k.startswith("score_reference")}
    summary: dict[str, Any] = {}
    if fast_scores:
        best = max(fast_scores, key=fast_scores.get)
        summary["score_best"] = {"figure": best, "items_per_s": fast_scores[best]}
    if ref_scores:
        best_ref = max(ref_scores, key=ref_scores.get)
        summary["score_reference_best"] = {"figure": best_ref, "items_per_s": ref_scores[best_ref]}
    upstream_scores = {k: v["items_per_s"] for k, v in figures.items() if k.startswith("score_") and "_upstream_bs" in k}
    if upstream_scores:
        name = max(upstream_scores, key=upstream_scores.get)
        summary["score_upstream"] = {"figure": name, "items_per_s": upstream_scores[name]}
    sal = {k: v["items_per_s"] for k, v in figures.items() if k.startswith("saliency")}
    if sal:
        summary["saliency"] = max(sal.values())
    if base:
        summary["official_items_per_s"] = base
        for key in ("score_best", "score_reference_best", "score_upstream"):
            if key in summary:
                summary[key]["x_official"] = round(summary[key]["items_per_s"] / base, 2)
        if "saliency" in summary:
            summary["saliency_x_official"] = round(summary["saliency"] / base, 2)
    results["summary"] = summary
    results["seconds"] = round(time.time() - T_START, 1)
    save()
    print("\n=== summary (items/s; ratio vs the official one-at-a-time generate pattern) ===")
    print(f"{'figure':<34}{'items/s':>10}{'x official':>12}")
    for name, fig in figures.items():
        ratio = f"{fig['items_per_s'] / base:.2f}" if base else "-"
        print(f"{name:<34}{fig['items_per_s']:>10.2f}{ratio:>12}")
    if not args.tiny:
        s = summary.get("score_best", {})
        print(f"targets: score >= 60 items/s and >= 8x official: {s.get('items_per_s')} items/s, {s.get('x_official')}x; "
              f"saliency >= 15 items/s: {summary.get('saliency')}")
    print(f"figures written to {out_path} ({results['seconds']} s in all)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
