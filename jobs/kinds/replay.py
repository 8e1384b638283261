"""replay: mix a share of an earlier training set into a new one, against catastrophic forgetting.

Every example of ``new`` is kept; examples of ``old`` are drawn without replacement (``seed``)
until they make up ``share`` of the result: k = round(share * n_new / (1 - share)). When ``old``
has fewer than k examples, all of them are used and the share actually reached is recorded.
Drawn examples get origin ``replay`` (their earlier origin is kept as ``replayed_origin``).
Old examples whose item id is already in ``new`` are dropped before the draw (counted as
``dropped_duplicates``): replaying an item the new set already trains on would only over-weight it.
The result's composition carries the union of both sets' source benchmarks (``benches``) and how
many examples are multi-turn conversations (``multi_turn``: general instruction data often is; they
are replayed as they are, and training learns every assistant turn of them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from orienteer.data.datasets import count_multi_turn, example_benches, get_dataset, read_examples, write_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import DatasetOutput
from orienteer.data.overlap import composition_benches
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option


@dataclass(frozen=True, kw_only=True)
class ReplaySpec:
    new: str = option(help="dataset to keep whole")
    old: str = option(help="earlier dataset to replay from")
    share: float = option(0.2, help="share of the result drawn from the old dataset (0 to below 1)")
    name: str = option(help="name of the mixed dataset")
    seed: int = option(0, help="seed for the draw and the shuffle")

DATASET_FILE = "dataset.jsonl"


def replay_count(n_new: int, share: float) -> int:
    """How many old examples make them ``share`` of the result (rounded to the nearest whole)."""
    return round(share * n_new / (1.0 - share))


def run(ctx: JobContext) -> None:
    spec = ctx.spec_of(ReplaySpec)
    share, seed = spec.share, spec.seed
    if not 0.0 <= share < 1.0:
        raise OrienteerError(f"replay: --share must be at least 0 and below 1, got {share}")
    new_info, old_info = get_dataset(ctx.workspace, spec.new), get_dataset(ctx.workspace, spec.old)
    new = read_examples(new_info.path)
    old_all = read_examples(old_info.path)
    new_ids = {example["item_id"] for example in new}
    old = [example for example in old_all if example["item_id"] not in new_ids]
    dropped = len(old_all) - len(old)
    if dropped:
        ctx.log(f"{dropped} example(s) of {old_info.name!r} share an item id with {new_info.name!r}; not replayed")
    ctx.progress(1, 2, unit="datasets", note="read")
    wanted = replay_count(len(new), share)
    k = min(wanted, len(old))
    if k < wanted:
        ctx.log(f"old dataset {old_info.name!r} has {len(old)} examples, fewer than the {wanted} a share of {share} needs; "
                "using all of them")
    rng = random.Random(seed)
    replayed = [{**example, "origin": "replay", "replayed_origin": example.get("origin")} for example in rng.sample(old, k)]
    examples = new + replayed
    rng.shuffle(examples)
    write_examples(ctx.out_dir / DATASET_FILE, examples)
    ctx.progress(2, 2, unit="datasets", note="written")
    reached = k / len(examples) if examples else 0.0
    composition = {
        "new": len(new), "old": k, "share": share, "share_reached": round(reached, 6), "seed": seed,
        "dropped_duplicates": dropped, "multi_turn": count_multi_turn(examples),
        "sources": [
            {"dataset": new_info.name, "role": "new", "used": len(new), "of": new_info.n_examples},
            {"dataset": old_info.name, "role": "replay", "used": k, "of": len(old_all)},
        ],
        "benches": sorted(set(composition_benches(new_info.composition)) | set(composition_benches(old_info.composition))
                          | set(example_benches(new)) | set(example_benches(examples))),
    }
    ctx.log(f"{len(examples)} examples: {len(new)} from {new_info.name!r}, {k} replayed from {old_info.name!r} "
            f"({reached:.1%} of the result; asked {share:.1%})")
    ctx.add_output(DatasetOutput(spec.name, DATASET_FILE, composition=composition,
                                 notes=f"{new_info.name} + {share:.0%} replay of {old_info.name}"))


def outputs(spec: ReplaySpec) -> list[NewName]:
    return new_names(spec, name="datasets")


def prefill(here: Here) -> dict[str, Any]:
    return {"name": unique_name("replay")}


KIND = KindDef(
    name="replay", spec=ReplaySpec, summary="mix a share of an earlier training set into a new one", run=run,
    reads=(("new", "datasets"), ("old", "datasets")), outputs=outputs, prefill=prefill,
)
