#!/usr/bin/env python
"""A 2-shard eval on one GPU vs one process (issue 17, part 2): items/s of each and their ratio.

The eval job's own code end to end (``eval_loop.run_eval``): one process, then the same spec as
two shard processes under torchrun sharing GPU 0 (``GpuPlan(2, ("0", "0"))``: what ``--gpus``
gives on a 2-GPU box, here both ranks on one card). The target: two shards must not be slower per
item than one process (ratio >= 1.0); on one GPU they can only win where one process leaves the
card idle (host-side preprocessing, syncs).

Inputs: the demo benchmark (``orienteer demo``'s renderer, ``--items`` items, single- and
multi-frame), its frames scaled up to ``--width`` x ``--height`` JPEGs; a Qwen2.5-VL-3B-shaped model
with random weights (``bench_gpu.build``: weights do not change speed), saved to a folder as the
job loads it. Figures:

- ``steady``: items scored after each process's first batch over the time from the first such
  batch to the last one (model loading and torchrun's start-up left out: they are paid once);
- ``wall``: the whole ``run_eval`` call, loading included.

The two runs must agree item for item (same batches, same kernels); the largest probability
difference is recorded. Figures go to ``--out`` as JSON and as a table on stdout.

    python bench/bench_shards.py --device cuda --out bench_shards.json     # ~2-4 min on an H100
    python bench/bench_shards.py --device cpu --tiny                        # smoke test, tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
T_START = time.time()


def say(msg: str) -> None:
    print(f"[{time.time() - T_START:6.1f}s] {msg}", flush=True)


def _import_orienteer(scratch: Path) -> None:
    """Use the installed package, or map ``orienteer.core/data/jobs`` onto this checkout, in this process
    and (through ``PYTHONPATH``, a one-file package that extends its path) in the shard processes."""
    try:
        import orienteer.jobs.model.tiny  # noqa: F401
    except ImportError:
        shim = scratch / "shim" / "orienteer"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(f"__path__ = [{str(REPO / 'orienteer')!r}, {str(REPO)!r}]\n"
                                          "__version__ = '0.1.0'\n", encoding="utf-8")
        sys.path.insert(0, str(shim.parent))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim.parent), os.environ.get("PYTHONPATH")) if p)
        sys.modules.pop("orienteer", None)
        import orienteer.jobs.model.tiny  # noqa: F401


def build_model(args: argparse.Namespace, folder: Path) -> Path:
    """The model folder the job loads: the tiny model, or bench_gpu's 3B-shaped random one saved to disk."""
    from orienteer.jobs.model import tiny

    if args.tiny:
        return tiny.build_tiny_qwen25vl(folder)
    sys.path.insert(0, str(REPO / "bench"))
    import bench_gpu

    model, processor, _ = bench_gpu.build(argparse.Namespace(tiny=False, device=args.device, pixels=args.pixels))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / tiny.RANDOM_WEIGHTS_MARKER).write_text('{"random_weights": true, "built_by": "bench_shards"}\n',
                                                     encoding="utf-8")
    del model
    import torch

    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return folder


def build_workspace(args: argparse.Namespace, folder: Path) -> Any:
    """The demo benchmark with ``--items`` items, every frame scaled to ``--width`` x ``--height``."""
    from PIL import Image

    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace

    build_demo_workspace(folder, n_items=args.items)
    for path in (folder / "demo-data" / "images").rglob("*.jpg"):
        with Image.open(path) as img:
            big = img.convert("RGB").resize((args.width, args.height))
        big.save(path, quality=90)
    return Workspace(folder)


def steady_rate(records: list[list[dict[str, Any]]]) -> float:
    """Items/s over the processes' progress records (one list per process), after each one's first batch."""
    firsts = [r[0] for r in records if r]
    lasts = [r[-1] for r in records if r]
    if not firsts:
        return 0.0
    items = sum(last["done"] - first["done"] for first, last in zip(firsts, lasts))
    span = max(x["t"] for x in lasts) - min(x["t"] for x in firsts)
    return items / span if span > 0 else 0.0


def _records(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in lines if "items/s" in r.get("note", "") and "over" not in r.get("note", "")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (smoke test, e.g. on the CPU)")
    parser.add_argument("--out", default="bench_shards.json")
    parser.add_argument("--items", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pixels", type=int, default=640 * 480, help="max_pixels per image")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    if args.tiny:
        args.items, args.batch_size = min(args.items, 24), min(args.batch_size, 4)
        args.width, args.height, args.pixels = 320, 240, min(args.pixels, 28 * 28 * 16)

    scratch = Path(tempfile.mkdtemp(prefix="orienteer-bench-shards-"))
    try:
        _import_orienteer(scratch)
        return run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, scratch: Path) -> int:
    import torch
    import transformers

    from orienteer.jobs.context import JobContext
    from orienteer.jobs.gpus import GpuPlan
    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.kinds.eval import EvalSpec
    from orienteer.jobs.model.eval_loop import run_eval
    from orienteer.jobs.params import complete

    cuda = args.device.startswith("cuda")
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__, "tiny": args.tiny,
        "items": args.items, "batch_size": args.batch_size, "image": [args.width, args.height],
        "max_pixels": args.pixels, "processes": args.processes,
    }
    say(f"{results['device']}; torch {torch.__version__}, transformers {transformers.__version__}")
    model_dir = build_model(args, scratch / "model")
    say(f"model saved to {model_dir}")
    ws = build_workspace(args, scratch / "ws")
    say(f"workspace: demo benchmark, {args.items} items at {args.width}x{args.height}")
    info = get_kind("eval")
    params = complete("eval", info.params, {"model": str(model_dir), "bench": "demo", "run": "bench",
                                            "batch_size": args.batch_size, "max_pixels": args.pixels, "gpu": "0"})
    spec = info.make_spec(params)
    assert isinstance(spec, EvalSpec)

    def one(name: str, plan: Any) -> tuple[JobContext, float]:
        root = scratch / name
        (root / "job").mkdir(parents=True)
        (root / "resume").mkdir()
        ctx = JobContext(job_id=name, kind="eval", params=params, workspace=ws, job_dir=root / "job",
                         out_dir=root / "job" / "outputs", resume_dir=root / "resume", device="cuda" if cuda else "cpu")
        t0 = time.perf_counter()
        run_eval(ctx, spec, plan)
        return ctx, time.perf_counter() - t0

    gpu = "0" if cuda else None
    single, single_wall = one("one", GpuPlan(1, (gpu,)))
    single_rate = steady_rate([_records(single.job_dir / "progress.jsonl")])
    say(f"1 process: {single_rate:.1f} items/s steady, {single_wall:.1f} s wall")
    sharded, sharded_wall = one("shards", GpuPlan(args.processes, (gpu,) * args.processes))
    shard_rate = steady_rate([_records(p) for p in sorted((sharded.job_dir / "shards").glob("progress-*.jsonl"))])
    say(f"{args.processes} shards on one {'GPU' if cuda else 'CPU'}: {shard_rate:.1f} items/s steady, "
        f"{sharded_wall:.1f} s wall")

    def lines(ctx: JobContext) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (ctx.out_dir / "predictions.jsonl").read_text().splitlines()]

    a, b = lines(single), lines(sharded)
    same_items = [x["item_id"] for x in a] == [x["item_id"] for x in b]
    max_diff = max((abs(x["probs"][k] - y["probs"][k]) for x, y in zip(a, b) for k in x["probs"]), default=0.0)
    agree = sum(x["reply"] == y["reply"] for x, y in zip(a, b))
    ratio = shard_rate / single_rate if single_rate else 0.0
    results.update(one_process={"steady_items_s": single_rate, "wall_s": single_wall},
                   shards={"steady_items_s": shard_rate, "wall_s": sharded_wall},
                   ratio_steady=ratio, ratio_wall=single_wall / sharded_wall if sharded_wall else 0.0,
                   same_items=same_items, replies_agree=f"{agree}/{len(a)}", max_prob_diff=max_diff,
                   target_met=ratio >= 1.0)
    print(f"\n| eval, {args.items} items, batch {args.batch_size}, {results['device']} | items/s (steady) | wall s |")
    print("|---|---|---|")
    print(f"| 1 process | {single_rate:.1f} | {single_wall:.1f} |")
    print(f"| {args.processes} shards, one {'GPU' if cuda else 'CPU'} | {shard_rate:.1f} | {sharded_wall:.1f} |")
    print(f"| ratio (shards / 1 process) | {ratio:.2f} | {results['ratio_wall']:.2f} |")
    print(f"\nreplies agree {agree}/{len(a)}; largest probability difference {max_diff:.2e}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if same_items and len(a) == len(b) else 1


if __name__ == "__main__":
    sys.exit(main())
