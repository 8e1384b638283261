"""flip: mirror the chosen items' images left-right and swap left/right in answers, options and question.

The result is a derived benchmark (default; its items keep ``parent_item_id``) or a training
dataset (``--to dataset``: absolute image paths, origin ``flipped``, target from the mirrored
answer). Items whose images are missing (or a symlink loop, a folder) and items whose image is not
an image Pillow can read are skipped, each logged with its path, and counted apart in the log and the
dataset's composition: one bad file never fails the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orienteer.data.datasets import example_from_item, item_record, write_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import BenchmarkOutput, DatasetOutput
from orienteer.jobs.augment.flip import ImageFlipper, MissingImage, UnreadableImage
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option
from orienteer.jobs.selection import load_items


@dataclass(frozen=True, kw_only=True)
class FlipSpec:
    bench: str = option(help="benchmark whose items are flipped")
    name: str = option(help="name of the flipped benchmark or dataset")
    items: str = option("all", help="which items: all, task:NAME, ids:A,B, ids-file:PATH, failures:RUN, limit:N "
                                    "(join with ;)")
    to: str = option("benchmark", choices=("benchmark", "dataset"), help="make a derived benchmark or a training dataset")


IMAGES = "images"
ITEMS_FILE = "items.jsonl"
DATASET_FILE = "dataset.jsonl"


def run(ctx: JobContext) -> None:
    spec = ctx.spec_of(FlipSpec)
    bench, name, wanted, to = spec.bench, spec.name, spec.items, spec.to
    items, root = load_items(ctx.workspace, bench, wanted)
    if not items:
        raise OrienteerError(f"flip: no items of benchmark {bench!r} match {wanted!r}")
    ctx.log(f"flipping {len(items)} item(s) of {bench!r} into {to} {name!r}; images from {root}")
    flipper = ImageFlipper(root, ctx.resume_dir / IMAGES)
    final_images = ctx.out_dir / IMAGES
    records = []
    missing_n = unreadable_n = 0
    for done, item in enumerate(items, start=1):
        ctx.check_stop()
        try:
            flipped = flipper.flip(item)
        except MissingImage as missing:
            missing_n += 1
            ctx.log(f"skip item {missing.item_id}: image {missing.reason} at {missing.path}")
        except UnreadableImage as bad:
            unreadable_n += 1
            ctx.log(f"skip item {bad.item_id}: cannot read image {bad.path}: {bad.reason}")
        else:
            if to == "dataset":
                records.append(example_from_item(flipped, [final_images / p for p in flipped.images], origin="flipped",
                                                 bench=bench))
            else:
                records.append(item_record(flipped))
        ctx.progress(done, len(items), unit="items", note=skipped_note(missing_n, unreadable_n))
    if not records:
        raise OrienteerError(f"flip: none of the {len(items)} item(s) had all its images readable under {root} "
                             f"({missing_n} missing, {unreadable_n} unreadable); nothing to write")
    flipper.publish(final_images)
    ctx.log(f"flipped {len(records)} item(s) ({flipper.flipped} image(s) flipped, {flipper.reused} reused from an "
            f"earlier attempt); skipped {missing_n} item(s) with missing images and {unreadable_n} with unreadable ones")
    notes = f"left-right flip of {bench}" + (f" ({wanted})" if wanted and wanted != "all" else "")
    if missing_n or unreadable_n:
        notes += f"; skipped {skipped_note(missing_n, unreadable_n)}"
    if to == "dataset":
        write_examples(ctx.out_dir / DATASET_FILE, records)
        composition = {"bench": bench, "benches": [bench], "items": wanted or "all", "flipped": len(records),
                       "skipped_missing_images": missing_n, "skipped_unreadable_images": unreadable_n}
        ctx.add_output(DatasetOutput(name, DATASET_FILE, composition=composition, notes=notes))
    else:
        write_examples(ctx.out_dir / ITEMS_FILE, records)
        ctx.add_output(BenchmarkOutput(name, ITEMS_FILE, image_root=IMAGES, parent=bench, notes=notes))


def skipped_note(missing: int, unreadable: int) -> str:
    """``3 missing, 1 unreadable image(s)`` for the progress note and the notes; empty when none."""
    parts = [f"{missing} missing" if missing else "", f"{unreadable} unreadable" if unreadable else ""]
    shown = ", ".join(p for p in parts if p)
    return f"{shown} image(s)" if shown else ""


def outputs(spec: FlipSpec) -> list[NewName]:
    return new_names(spec, name="datasets" if spec.to == "dataset" else "benchmarks")


def prefill(here: Here) -> dict[str, Any]:
    return {"bench": here.bench, "name": unique_name(f"{here.bench}-flip") if here.bench else None,
            "items": here.selection or (f"failures:{here.run}{here.task_clause}" if here.run else None)}


KIND = KindDef(
    name="flip", spec=FlipSpec, summary="mirror images and swap left/right in answers, options and question", run=run,
    reads=(("bench", "benchmarks"),), outputs=outputs, prefill=prefill,
)
