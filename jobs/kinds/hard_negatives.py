"""hard-negatives: a training set that over-samples the kind of question a run gets wrong.

A confusion is (gold label -> predicted label), counted over the run's wrong answers that picked a
valid option (unparsed and invalid answers name no label to confuse with). The run only supplies
this *pattern*: the ``top`` commonest confusions.

With ``--pool NAME`` (a benchmark or a dataset: a training split, never the benchmark you report on)
the hard examples are the *pool's* items whose gold label is a confusion's gold label and whose
options offer its predicted label: the questions on which the model could make that mistake. With
no pool, the hard items are the run's own wrong items (mining the test set: for exploration only;
the dataset says so, and ``train`` refuses to evaluate a model trained on it on that benchmark).

The hard items (at most ``n_items``, drawn with ``seed``) appear ``ratio`` times each, origin
``hard`` (a fractional ratio gives a seeded share of them one more copy), plus as many left-right
flipped copies, origin ``flipped``, when ``flipped`` is on: the same question mirrored teaches
left/right instead of one side. With ``rest`` on (the default), every other item of the pool (or
of the run's benchmark) appears once, origin ``original``, so the set still holds questions the
model gets right. The examples are shuffled with ``seed``; each records the benchmark it came from.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.datasets import example_from_item, get_dataset, read_examples, write_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.job_outputs import DatasetOutput
from orienteer.data.service import WorkspaceService
from orienteer.jobs.augment.flip import ImageFlipper, MissingImage, UnreadableImage
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option
from orienteer.jobs.selection import load_items


@dataclass(frozen=True, kw_only=True)
class HardNegativesSpec:
    run: str = option(help="run whose commonest (gold -> predicted) confusions are the pattern")
    name: str = option(help="name of the dataset to make")
    pool: str | None = option(None, help="benchmark or dataset (a training split) to draw the hard items from by the "
                                         "run's pattern; without it the run's own test items are mined (exploration only)")
    top: int = option(5, help="how many of the commonest (gold -> predicted) confusions to over-sample")
    ratio: float = option(3.0, help="copies of each hard item (fractions give a share of them one more copy)")
    n_items: int = option(0, help="at most this many distinct hard items, drawn at random (0 = all)")
    flipped: bool = option(True, help="add as many left-right flipped copies of the hard items")
    rest: bool = option(True, help="add every other item of the pool (or benchmark) once, so the set is not only negatives")
    seed: int = option(0, help="seed for drawing, fractional copies and the shuffle")

IMAGES = "images"
DATASET_FILE = "dataset.jsonl"


def confusions(ctx: JobContext, run: str) -> tuple[str, list[dict[str, Any]], dict[str, tuple[str, str, str]]]:
    """(benchmark name, confusions commonest first, item id -> (gold, pred, category) of each wrong answer)."""
    with WorkspaceService(ctx.workspace) as service:
        bench, answers = service.wrong_answers(run)
    wrong = {a.item_id: (a.gold, a.pred, a.category) for a in answers}
    counts = Counter(wrong.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
    table = [{"gold": g, "pred": p, "category": c, "count": n} for (g, p, c), n in ranked]
    return bench, table, wrong


def copies(items: list[Item], ratio: float, rng: random.Random) -> list[Item]:
    """Each item ``ratio`` times: floor(ratio) copies each, plus one more for a drawn share (round(n * ratio) in all)."""
    total = round(len(items) * ratio)
    whole, extra = divmod(total, len(items)) if items else (0, 0)
    chosen = set(rng.sample(range(len(items)), extra))
    return [item for k, item in enumerate(items) for _ in range(whole + (k in chosen))]


@dataclass(frozen=True)
class Pool:
    """Where the hard items come from: items, the root their image paths resolve against, and the
    benchmark each item came from (``None``: an imported example with no recorded source)."""

    name: str
    kind: str  # "benchmark" or "dataset"
    items: list[Item]
    root: Path
    benches: dict[str, str | None]  # item id -> source benchmark
    mined_from_test: bool = False


def load_pool(ctx: JobContext, name: str) -> Pool:
    """The pool called ``name``: a benchmark (all its items) or a dataset (each multiple-choice item once)."""
    ws = ctx.workspace
    with WorkspaceService(ws) as service:
        is_bench = name in service.bench_names()
        is_dataset = service.name_taken("datasets", name)
    if is_bench and is_dataset:
        raise OrienteerError(f"hard-negatives: --pool {name!r} names both a benchmark and a dataset; rename one of them")
    if is_bench:
        bench_items, root = load_items(ws, name, None)
        return Pool(name, "benchmark", bench_items, root, {item.item_id: name for item in bench_items})
    if not is_dataset:
        raise OrienteerError(f"hard-negatives: --pool {name!r} is neither a benchmark nor a dataset of this workspace")
    from orienteer.jobs.model.train import example_item

    info = get_dataset(ws, name)
    items: list[Item] = []
    benches: dict[str, str | None] = {}
    for example in read_examples(Path(info.path)):
        if example["item_id"] in benches or not example.get("options") or not example.get("answer"):
            continue
        benches[example["item_id"]] = example.get("bench")
        items.append(example_item(example))
    return Pool(name, "dataset", items, Path("/"), benches)


def pool_hard_items(pool: Pool, chosen: list[dict[str, Any]]) -> tuple[list[Item], list[int]]:
    """The pool items that offer a chosen confusion (gold label is its gold, options hold its predicted
    label), in pool order, and how many pool items match each confusion."""
    wanted = [(c["gold"], c["pred"]) for c in chosen]
    per_confusion = [0] * len(wanted)
    hard = []
    for item in pool.items:
        labels = set(item.option_labels)
        hits = [k for k, (gold, pred) in enumerate(wanted) if item.answer_label == gold and pred in labels]
        for k in hits:
            per_confusion[k] += 1
        if hits:
            hard.append(item)
    return hard, per_confusion


def run(ctx: JobContext) -> None:
    spec = ctx.spec_of(HardNegativesSpec)
    top, ratio, n_items, seed = spec.top, spec.ratio, spec.n_items, spec.seed
    if top < 1:
        raise OrienteerError(f"hard-negatives: --top must be at least 1, got {top}")
    if ratio <= 0:
        raise OrienteerError(f"hard-negatives: --ratio must be above 0, got {ratio}")
    if n_items < 0:
        raise OrienteerError(f"hard-negatives: --n-items must be 0 (no cap) or more, got {n_items}")
    rng = random.Random(seed)
    bench, table, wrong = confusions(ctx, spec.run)
    chosen = table[:top]
    if not chosen:
        raise OrienteerError(f"hard-negatives: run {spec.run!r} has no wrong answers that name an option; nothing to over-sample")
    keys = {(c["gold"], c["pred"], c["category"]) for c in chosen}
    if spec.pool:
        pool = load_pool(ctx, spec.pool)
        hard, matched = pool_hard_items(pool, chosen)
        for c, n in zip(chosen, matched):
            c["pool_items"] = n
        if not hard:
            raise OrienteerError(f"hard-negatives: no item of pool {pool.name!r} offers any of the run's top {top} "
                                 "confusions (gold label and predicted label among its options)")
    else:
        items, root = load_items(ctx.workspace, bench, None)
        pool = Pool(bench, "benchmark", items, root, {item.item_id: bench for item in items}, mined_from_test=True)
        hard = [item for item in items if wrong.get(item.item_id) in keys]
        ctx.warn(f"no --pool: mining the test items of {bench!r} itself (exploration only); a model trained on this "
                 f"set cannot be evaluated on {bench!r} without --allow-overlap")
    for c in chosen:
        extra = f"; {c['pool_items']} pool item(s) offer it" if "pool_items" in c else ""
        ctx.log(f"confusion {c['gold']} -> {c['pred']} ({c['category']}): {c['count']} wrong answer(s){extra}")
    if n_items and len(hard) > n_items:
        picked = set(rng.sample(range(len(hard)), n_items))
        hard = [item for k, item in enumerate(hard) if k in picked]
    hard_ids = {item.item_id for item in hard}
    rest = [item for item in pool.items if item.item_id not in hard_ids] if spec.rest else []
    with_flips = spec.flipped

    flipper = ImageFlipper(pool.root, ctx.resume_dir / IMAGES)
    final_images = ctx.out_dir / IMAGES
    flips: dict[str, Item] = {}
    skipped: set[str] = set()
    unreadable: set[str] = set()  # there, but not an image: counted apart from the missing ones
    todo = hard + rest
    for done, item in enumerate(todo, start=1):
        ctx.check_stop()
        try:
            if with_flips and item.item_id in hard_ids:
                flips[item.item_id] = flipper.flip(item)  # raises MissingImage like the check below
            elif (absent := flipper.problem(item)) is not None:
                raise MissingImage(item.item_id, *absent)
        except MissingImage as missing:
            skipped.add(item.item_id)
            ctx.log(f"skip item {missing.item_id}: image {missing.reason} at {missing.path}")
        except UnreadableImage as bad:
            unreadable.add(item.item_id)
            ctx.log(f"skip item {bad.item_id}: cannot read image {bad.path}: {bad.reason}")
        n_skipped = len(skipped) + len(unreadable)
        ctx.progress(done, len(todo), unit="items", note=f"{n_skipped} skipped" if n_skipped else "")
    hard = [item for item in hard if item.item_id not in skipped and item.item_id not in unreadable]
    rest = [item for item in rest if item.item_id not in skipped and item.item_id not in unreadable]
    if not hard:
        raise OrienteerError(f"hard-negatives: none of the hard items had its images under {pool.root}; nothing to write")

    def originals(item: Item, origin: str) -> dict[str, Any]:
        return example_from_item(item, [flipper.source(r).resolve() for r in item.images], origin=origin,
                                 bench=pool.benches.get(item.item_id))

    hard_copies = copies(hard, ratio, rng)
    examples = [originals(item, "hard") for item in hard_copies]
    n_oversampled = len(examples)
    if with_flips:
        for item in hard_copies:
            flipped = flips[item.item_id]
            examples.append(example_from_item(flipped, [final_images / r for r in flipped.images], origin="flipped",
                                              bench=pool.benches.get(item.item_id)))
    n_flipped = len(examples) - n_oversampled
    examples.extend(originals(item, "original") for item in rest)
    rng.shuffle(examples)
    flipper.publish(final_images)
    write_examples(ctx.out_dir / DATASET_FILE, examples)
    benches = sorted({b for b in pool.benches.values() if b is not None})
    composition = {
        "run": spec.run, "bench": bench, "pattern": {"run": spec.run, "bench": bench},
        "pool": {"name": pool.name, "kind": pool.kind}, "mined_from_test": pool.mined_from_test, "benches": benches,
        "confusions": chosen, "top": top, "ratio": ratio, "seed": seed,
        "n_items": n_items, "n_original": len(hard), "n_oversampled": n_oversampled, "n_flipped": n_flipped,
        "n_rest": len(rest), "n_examples": len(examples), "skipped_missing_images": len(skipped),
        "skipped_unreadable_images": len(unreadable),
    }
    source = "its own test items (exploration only)" if pool.mined_from_test else f"{pool.kind} {pool.name}"
    ctx.log(f"{len(examples)} examples from {source}: {len(hard)} hard item(s) x {ratio} = {n_oversampled}, "
            f"{n_flipped} flipped, {len(rest)} other item(s) once; {len(skipped)} item(s) skipped for missing images, "
            f"{len(unreadable)} for unreadable ones")
    notes = (f"hard negatives by the pattern of run {spec.run}: top {top} confusions x {ratio}, from "
             + ("the run's own test items (exploration only)" if pool.mined_from_test else f"{pool.kind} {pool.name}"))
    ctx.add_output(DatasetOutput(spec.name, DATASET_FILE, composition=composition, notes=notes))


def outputs(spec: HardNegativesSpec) -> list[NewName]:
    return new_names(spec, name="datasets")


def prefill(here: Here) -> dict[str, Any]:
    return {"run": here.run, "name": unique_name(f"{here.run}-hardneg") if here.run else None, "pool": here.pool}


KIND = KindDef(
    name="hard-negatives", spec=HardNegativesSpec, summary="training set that over-samples a run's commonest confusions",
    run=run, reads=(("run", "runs"), ("pool", "pools")), outputs=outputs, prefill=prefill,
)
