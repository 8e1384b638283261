"""hard-negatives: a training set that over-samples the items behind a run's commonest confusions.

A confusion is (gold label -> predicted label), counted over the run's wrong answers that
picked a valid option (unparsed and invalid answers name no label to confuse with). The items
of the ``top`` commonest confusions (at most ``n_items`` of them, drawn with ``seed``) appear
``ratio`` times each, origin ``hard`` (a fractional ratio gives a seeded share of them one more
copy), and as many flipped copies, origin ``flipped``, when ``flipped`` is on: the same
question mirrored teaches left/right instead of one side. With ``rest`` on (the default),
every other item of the benchmark appears once, origin ``original``, so the set still holds
questions the model gets right and is not only negatives. The examples are shuffled with ``seed``.

Build it from a run on a training split: a set made from the benchmark you report on trains on
its test questions.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from orienteer.data.catalog import get_run
from orienteer.data.datasets import example_from_item, write_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.job_outputs import DatasetOutput
from orienteer.jobs.augment.flip import ImageFlipper, MissingImage
from orienteer.jobs.context import JobContext
from orienteer.jobs.params import Param
from orienteer.jobs.selection import load_items

SUMMARY = "training set that over-samples a run's commonest confusions"
PARAMS = (
    Param("run", "str", required=True, help="run whose failures pick the hard items (a run on a training split)"),
    Param("name", "str", required=True, help="name of the dataset to make"),
    Param("top", "int", 5, help="how many of the commonest (gold -> predicted) confusions to over-sample"),
    Param("ratio", "float", 3.0, help="copies of each hard item (fractions give a share of them one more copy)"),
    Param("n_items", "int", 0, help="at most this many distinct hard items, drawn at random (0 = all)"),
    Param("flipped", "bool", True, help="add as many left-right flipped copies of the hard items"),
    Param("rest", "bool", True, help="add every other item of the benchmark once, so the set is not only negatives"),
    Param("seed", "int", 0, help="seed for drawing, fractional copies and the shuffle"),
)
IMAGES = "images"
DATASET_FILE = "dataset.jsonl"


def confusions(ctx: JobContext, run: str) -> tuple[str, list[dict[str, Any]], dict[str, tuple[str, str, str]]]:
    """(benchmark name, confusions commonest first, item id -> (gold, pred, category) of each wrong answer)."""
    with ctx.workspace.read() as con:
        info = get_run(con, run)
        rows = con.execute(
            """SELECT i.item_id, p.gold_label, p.pred_label, p.category
               FROM predictions p JOIN items i ON i.bench_id = ? AND i.item_idx = p.item_idx
               WHERE p.run_id = ? AND NOT p.correct AND p.pred_label IS NOT NULL
               ORDER BY p.item_idx""",
            [info.bench_id, info.run_id],
        ).fetchall()
    wrong = {r[0]: (r[1], r[2], r[3]) for r in rows}
    counts = Counter(wrong.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
    table = [{"gold": g, "pred": p, "category": c, "count": n} for (g, p, c), n in ranked]
    return info.bench_name, table, wrong


def copies(items: list[Item], ratio: float, rng: random.Random) -> list[Item]:
    """Each item ``ratio`` times: floor(ratio) copies each, plus one more for a drawn share (round(n * ratio) in all)."""
    total = round(len(items) * ratio)
    whole, extra = divmod(total, len(items)) if items else (0, 0)
    chosen = set(rng.sample(range(len(items)), extra))
    return [item for k, item in enumerate(items) for _ in range(whole + (k in chosen))]


def run(ctx: JobContext) -> None:
    p = ctx.params
    top, ratio, n_items, seed = int(p["top"]), float(p["ratio"]), int(p["n_items"] or 0), int(p["seed"] or 0)
    if top < 1:
        raise OrienteerError(f"hard-negatives: --top must be at least 1, got {top}")
    if ratio <= 0:
        raise OrienteerError(f"hard-negatives: --ratio must be above 0, got {ratio}")
    if n_items < 0:
        raise OrienteerError(f"hard-negatives: --n-items must be 0 (no cap) or more, got {n_items}")
    rng = random.Random(seed)
    bench, table, wrong = confusions(ctx, p["run"])
    chosen = table[:top]
    if not chosen:
        raise OrienteerError(f"hard-negatives: run {p['run']!r} has no wrong answers that name an option; nothing to over-sample")
    keys = {(c["gold"], c["pred"], c["category"]) for c in chosen}
    for c in chosen:
        ctx.log(f"confusion {c['gold']} -> {c['pred']} ({c['category']}): {c['count']} item(s)")
    items, root = load_items(ctx.workspace, bench, None)
    hard = [item for item in items if wrong.get(item.item_id) in keys]
    if n_items and len(hard) > n_items:
        picked = set(rng.sample(range(len(hard)), n_items))
        hard = [item for k, item in enumerate(hard) if k in picked]
    hard_ids = {item.item_id for item in hard}
    rest = [item for item in items if item.item_id not in hard_ids] if p.get("rest", True) else []
    with_flips = bool(p.get("flipped", True))

    flipper = ImageFlipper(root, ctx.resume_dir / IMAGES)
    final_images = ctx.out_dir / IMAGES
    flips: dict[str, Item] = {}
    skipped: set[str] = set()
    todo = hard + rest
    for done, item in enumerate(todo, start=1):
        ctx.check_stop()
        try:
            if with_flips and item.item_id in hard_ids:
                flips[item.item_id] = flipper.flip(item)  # raises MissingImage like the check below
            elif (absent := flipper.missing(item)) is not None:
                raise MissingImage(item.item_id, absent)
        except MissingImage as missing:
            skipped.add(item.item_id)
            ctx.log(f"skip item {missing.item_id}: image not found at {missing.path}")
        ctx.progress(done, len(todo), unit="items", note=f"{len(skipped)} skipped" if skipped else "")
    hard = [item for item in hard if item.item_id not in skipped]
    rest = [item for item in rest if item.item_id not in skipped]
    if not hard:
        raise OrienteerError(f"hard-negatives: none of the hard items had its images under {root}; nothing to write")

    def originals(item: Item, origin: str) -> dict[str, Any]:
        return example_from_item(item, [flipper.source(r).resolve() for r in item.images], origin=origin)

    hard_copies = copies(hard, ratio, rng)
    examples = [originals(item, "hard") for item in hard_copies]
    n_oversampled = len(examples)
    if with_flips:
        for item in hard_copies:
            flipped = flips[item.item_id]
            examples.append(example_from_item(flipped, [final_images / r for r in flipped.images], origin="flipped"))
    n_flipped = len(examples) - n_oversampled
    examples.extend(originals(item, "original") for item in rest)
    rng.shuffle(examples)
    flipper.publish(final_images)
    write_examples(ctx.out_dir / DATASET_FILE, examples)
    composition = {
        "run": p["run"], "bench": bench, "confusions": chosen, "top": top, "ratio": ratio, "seed": seed,
        "n_items": n_items, "n_original": len(hard), "n_oversampled": n_oversampled, "n_flipped": n_flipped,
        "n_rest": len(rest), "n_examples": len(examples), "skipped_missing_images": len(skipped),
    }
    ctx.log(f"{len(examples)} examples: {len(hard)} hard item(s) x {ratio} = {n_oversampled}, {n_flipped} flipped, "
            f"{len(rest)} other item(s) once; {len(skipped)} item(s) skipped for missing images")
    ctx.add_output(DatasetOutput(p["name"], DATASET_FILE, composition=composition,
                                 notes=f"hard negatives of run {p['run']}: top {top} confusions x {ratio}"))
