"""box-prompt: a derived benchmark whose questions point at a red box drawn around the reference object.

For each item: find the reference phrase in the question (``core.phrases``), ask the detector for
it in every frame, draw the best box (highest score at or above ``--conf``, over all frames) on a
copy of that frame, and rewrite the question ("... the boy in the red bounding box ..."). The
derived item keeps ``parent_item_id`` (the original id), stores ``bbox`` in the ORIGINAL image's
pixels and ``bbox_frame`` (which frame carries it), and ``reference_object`` (the phrase without
its determiner).

Items where no template matches the question or nothing is detected are *skipped* by default, so
the derived benchmark only holds questions that really point at a box (the compare screen lines
up the rest by parent id); ``--keep-unboxed`` keeps them unchanged instead (same id and question,
``parent_item_id`` set, no bbox). Either way they are counted in the benchmark's notes, listed in
``box_report.json`` and the first few are logged.

``--control`` also writes the undrawn control, benchmark ``NAME-nodraw``: the same boxed items
with the same rewritten questions, boxes, ``bbox_frame`` and reference objects, but every image the
original file (absolute paths, nothing copied), ids ``<original id>#nodraw``. Evaluate and take
saliency on both: the difference is the effect of drawing the box (saliency measures the same
region on both, the drawn border's ring left out, see ``model/saliency.py``).

Work happens in the resume folder (one JSON line per finished item, boxed frames as PNG), so a
killed job re-run with the same spec skips what it already did; the finished images are then
linked (or copied) into the outputs folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names, unique_name
from orienteer.jobs.params import option

if TYPE_CHECKING:
    from orienteer.jobs.model.detector import Detector


@dataclass(frozen=True, kw_only=True)
class BoxPromptSpec:
    bench: str = option(help="benchmark to derive from")
    name: str = option(help="name of the new (derived) benchmark")
    weights: str | None = option(None, path=True,
                                 help="YOLO-World weights file (.pt), e.g. yolov8s-worldv2.pt; nothing is downloaded")
    detector: str = option("yolo-world", choices=("yolo-world", "center"),
                           help="yolo-world (needs --weights and CLIP), or center: a fixed box on the middle of each "
                                "image, only for trying the pipeline")
    items: str | None = option(None, help="item filter (task:NAME; ids:A,B; failures:RUN; limit:N; joined with ;)")
    conf: float = option(0.1, help="lowest detection score that counts as found")
    keep_unboxed: bool = option(False, help="keep items with no phrase or no detection, unchanged")
    control: bool = option(
        False, help="also write NAME-nodraw: the same boxed items and questions on the undrawn images (the control)")


DONE_FILE = "boxed.jsonl"
LOGGED_MISSES = 20
NODRAW_SUFFIX = "-nodraw"
NODRAW_ID = "#nodraw"
NODRAW_FILE = "items-nodraw.jsonl"


def control_name(name: str) -> str:
    """The undrawn control's benchmark name for boxed benchmark ``name``."""
    return name + NODRAW_SUFFIX


def prompt_item(item: Item, image_root: Path, detector: Detector, work_dir: Path, conf: float) -> dict[str, Any]:
    """Box one item. Returns ``{"status": "boxed"|"no_phrase"|"no_detection", "record": ...}``.

    ``record`` is the derived item (boxed) or the unchanged item (otherwise). The boxed frame is
    saved under ``work_dir/images`` and named relative to it (the derived benchmark's image root);
    every other frame is the original's absolute path, so multi-frame items are not copied.
    """
    from orienteer.core.phrases import find_reference, rewrite_question
    from orienteer.data.datasets import item_record
    from orienteer.data.images import open_rgb, resolve_image
    from orienteer.jobs.model.boxes import clamp_box, draw_box, save_png
    from orienteer.jobs.model.detector import best_box
    from orienteer.jobs.model.job_files import safe_name

    absolute = [str(resolve_image(image_root, rel).resolve()) for rel in item.images]
    base = {**item_record(item), "images": absolute, "parent_item_id": item.item_id}
    found = find_reference(item.question)
    if found is None:
        return {"item_id": item.item_id, "status": "no_phrase", "record": base}
    best = None
    for frame, relative in enumerate(item.images):
        path = resolve_image(image_root, relative)
        if not path.is_file():
            raise OrienteerError(f"item {item.item_id}: image {relative} not found (looked for {path})")
        image = open_rgb(path)  # the pixels the model sees: no EXIF rotation, RGBA on white
        box = best_box(detector.detect(image, found.noun), conf)
        if box is not None and (best is None or box.score > best[0].score):
            best = (box, frame, image)
    if best is None:
        return {"item_id": item.item_id, "status": "no_detection", "phrase": found.noun, "record": base}
    box, frame, image = best
    # Drawn exactly as stored (rounded to 0.1 px), so saliency measures the very pixels that were drawn.
    bbox = [round(v, 1) for v in clamp_box(box.as_list(), image.size)]
    rel = Path(safe_name(item.item_id)) / f"{frame}_{Path(item.images[frame]).stem}.png"
    save_png(draw_box(image, bbox), work_dir / "images" / rel)
    images = [rel.as_posix() if i == frame else absolute[i] for i in range(len(item.images))]
    record = {
        **base,
        "item_id": f"{item.item_id}#box",
        "question": rewrite_question(found),
        "images": images,
        "reference_object": found.noun,
        "bbox": bbox,
        "bbox_frame": frame,
        "bbox_score": round(box.score, 4),
        "parent_item_id": item.item_id,
        "original_question": item.question,
        "template": found.template,
    }
    return {"item_id": item.item_id, "status": "boxed", "record": record}


def nodraw_record(boxed: dict[str, Any], item: Item, image_root: Path) -> dict[str, Any]:
    """The undrawn control of ``item``'s boxed record: the same question, box, ``bbox_frame`` and
    reference object, the original images (absolute paths), id ``<id>#nodraw``, parent ``<id>``."""
    from orienteer.data.images import resolve_image

    return {**boxed, "item_id": item.item_id + NODRAW_ID, "parent_item_id": item.item_id,
            "images": [str(resolve_image(image_root, rel).resolve()) for rel in item.images]}


def run(ctx: JobContext, detector: Detector | None = None) -> None:
    """``detector`` lets tests inject one; the CLI builds it from ``--detector``/``--weights``."""
    from orienteer.data.datasets import write_examples
    from orienteer.data.job_outputs import BenchmarkOutput
    from orienteer.jobs.model.detector import make_detector
    from orienteer.jobs.model.job_files import append_records, link_tree, read_records
    from orienteer.jobs.selection import load_items

    p = ctx.spec_of(BoxPromptSpec)
    items, image_root = load_items(ctx.workspace, p.bench, p.items)
    if not items:
        raise OrienteerError(f"box-prompt: no items of benchmark {p.bench!r} match {p.items!r}")
    conf = p.conf
    detector_name = p.detector
    if detector is None:
        detector = make_detector(detector_name, p.weights, conf=conf, device=ctx.device)
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    done_path = ctx.resume_dir / DONE_FILE
    done = {entry["item_id"]: entry for entry in read_records(done_path)}
    if done:
        ctx.log(f"resuming: {len(done)} of {len(items)} items were done by an earlier attempt")
    n_done = sum(1 for it in items if it.item_id in done)
    ctx.progress(n_done, len(items), unit="items")
    for item in items:
        if item.item_id in done:
            continue
        ctx.check_stop()
        entry = prompt_item(item, image_root, detector, ctx.resume_dir, conf)
        append_records(done_path, [entry])
        done[item.item_id] = entry
        n_done += 1
        ctx.progress(n_done, len(items), unit="items")

    entries = [done[it.item_id] for it in items]
    misses = [e for e in entries if e["status"] != "boxed"]
    for e in misses[:LOGGED_MISSES]:
        why = "no reference phrase found" if e["status"] == "no_phrase" else f"nothing detected for {e.get('phrase')!r}"
        ctx.log(f"item {e['item_id']}: {why}")
    if len(misses) > LOGGED_MISSES:
        ctx.log(f"... and {len(misses) - LOGGED_MISSES} more items without a box (see box_report.json)")
    keep = p.keep_unboxed
    records = [e["record"] for e in entries if e["status"] == "boxed" or keep]
    if not records:
        raise OrienteerError(f"box-prompt: no item of {p.bench!r} got a box ({len(misses)} without one); "
                             "nothing to write")
    control = p.control
    boxed = [(item, e) for item, e in zip(items, entries) if e["status"] == "boxed"]
    if control and not boxed:
        raise OrienteerError(f"box-prompt --control: no item of {p.bench!r} got a box, so the undrawn control "
                             f"{control_name(p.name)!r} would be empty; nothing to write")

    link_tree(ctx.resume_dir / "images", ctx.out_dir / "images")
    n_written = write_examples(ctx.out_dir / "items.jsonl", records)
    counts = {s: sum(e["status"] == s for e in entries) for s in ("boxed", "no_phrase", "no_detection")}
    report = {**counts, "kept_unboxed": keep, "detector": detector_name, "weights": p.weights, "conf": conf,
              "misses": [{"item_id": e["item_id"], "status": e["status"], "phrase": e.get("phrase")} for e in misses]}
    (ctx.out_dir / "box_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    detector_text = f"{detector_name} ({p.weights})" if p.weights else detector_name
    notes = (f"box-prompt of {p.bench} with {detector_text}, conf >= {conf}: boxed {counts['boxed']} of {len(items)}; "
             f"no phrase {counts['no_phrase']}, nothing detected {counts['no_detection']} "
             f"({'kept unboxed' if keep else 'skipped'})"
             + (f"; undrawn control: {control_name(p.name)}" if control else ""))
    ctx.log(notes)
    ctx.add_output(BenchmarkOutput(name=p.name, items_file="items.jsonl", image_root="images", parent=p.bench,
                                   notes=notes))
    ctx.log(f"wrote {n_written} items to {ctx.out_dir / 'items.jsonl'}")
    if control:
        n_control = write_examples(ctx.out_dir / NODRAW_FILE, [nodraw_record(e["record"], item, image_root)
                                                               for item, e in boxed])
        name = control_name(p.name)
        ctx.add_output(BenchmarkOutput(
            name=name, items_file=NODRAW_FILE, image_root="images", parent=p.bench,
            notes=(f"undrawn control of {p.name}: its {n_control} boxed items with the same questions, boxes and "
                   f"bbox_frame, on the original images (no box drawn)"),
        ))
        ctx.log(f"wrote {n_control} items of the undrawn control {name} to {ctx.out_dir / NODRAW_FILE}")


def outputs(spec: BoxPromptSpec) -> list[NewName]:
    names = new_names(spec, name="benchmarks")
    if spec.control and spec.name:
        names.append(NewName(control_name(spec.name), "benchmarks", "--name (--control also makes NAME-nodraw)"))
    return names


def prefill(here: Here) -> dict[str, Any]:
    return {"bench": here.bench, "name": unique_name(f"{here.bench}-box") if here.bench else None,
            "items": here.selection or (f"task:{here.task}" if here.task else None)}


KIND = KindDef(
    name="box-prompt", spec=BoxPromptSpec,
    summary="draw a box on the reference object (YOLO-World) and point the question at it", run=run, needs_gpu=True,
    reads=(("bench", "benchmarks"),), outputs=outputs, prefill=prefill,
)
