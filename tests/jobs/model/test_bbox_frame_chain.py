"""``bbox_frame`` end to end: import -> failure export (re-imported) -> flip -> saliency, on a 3-frame item whose
box is on frame 2. The frames differ in size, so using another frame's width (flip) or size (the ring) shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from orienteer.core.mirror import mirror_bbox
from orienteer.data.export import export_predictions
from orienteer.data.filters import PredictionFilter
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.job_ingest import ingest_job
from orienteer.data.job_outputs import write_manifest
from orienteer.data.queries.case import case_detail
from orienteer.data.workspace import Workspace
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.model.boxes import line_width
from orienteer.jobs.model.saliency import metrics
from orienteer.jobs.selection import load_items

SIZES = [(64, 48), (96, 64), (640, 480)]  # frame 2 is the widest, and the only one with a 3 px ring
BOX = [20.0, 10.0, 100.0, 60.0]  # in frame 2's pixels
BOX_KEYS = {"mass_in_bbox", "bbox_area", "ring_px", "mass_on_ring", "bbox_frame"}


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _run_job(ws: Workspace, kind: str, params: dict[str, Any], root: Path, make_ctx: Any) -> Any:
    """Run a kind in-process as the runner would, then ingest its manifest (one transaction)."""
    ctx = make_ctx(ws, kind, params, root)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    get_kind(kind).run(ctx)
    write_manifest(ctx.out_dir, ctx.outputs)
    ingest_job(ws, ctx.job_id, kind, ctx.out_dir)
    return ctx


def test_bbox_frame_survives_import_export_flip_and_saliency(tmp_path: Path, tiny_model_dir: Path,
                                                             make_ctx: Any) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k, (w, h) in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / f"tri_{k}.png")
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(images / "solo.png")
    options = {"A": "left", "B": "right", "C": "front", "D": "back"}
    bench = _jsonl(tmp_path / "bench.jsonl", [
        {"id": "tri", "task": "Person perspective - Scene Simulation Relative Direction", "options": options,
         "question": "If you stand at the door facing the box, where is the lamp?", "answer": "B",
         "images": [f"tri_{k}.png" for k in range(3)], "reference_object": "door", "bbox": BOX, "bbox_frame": 2},
        {"id": "solo", "task": "Camera perspective - Relative Direction", "question": "Where is the cup?",
         "options": options, "answer": "A", "images": ["solo.png"]},
    ])
    ws = Workspace(tmp_path / "ws")

    # import
    import_benchmark(ws, bench, "tri", images=images)
    import_predictions(ws, _jsonl(tmp_path / "p.jsonl", [{"id": "tri", "pred": "A"}, {"id": "solo", "pred": "B"}]),
                       "tri", "r")
    # export the failures, and import the export as a benchmark again
    exported = tmp_path / "failures.jsonl"
    with ws.read() as con:
        assert export_predictions(con, PredictionFilter(runs=("r",)), exported) == 2
    assert json.loads(exported.read_text(encoding="utf-8").splitlines()[0])["bbox_frame"] == 2
    import_benchmark(ws, exported, "tri-export", images=images, mapping={"answer": "gold_letter"})
    (tri, solo), _ = load_items(ws, "tri-export")
    assert (tri.bbox, tri.bbox_frame) == (BOX, 2) and (solo.bbox, solo.bbox_frame) == (None, 0)

    # flip: the box is mirrored in frame 2's width (640), not frame 0's (64), and stays on frame 2
    _run_job(ws, "flip", {"bench": "tri-export", "name": "tri-flip"}, tmp_path / "flip", make_ctx)
    (flipped, flipped_solo), flip_root = load_items(ws, "tri-flip")
    assert flipped.item_id == "tri#flip" and flipped.bbox_frame == 2
    assert flipped.bbox == mirror_bbox(BOX, 640) == [540.0, 10.0, 620.0, 60.0]
    assert [Image.open(flip_root / p).size for p in flipped.images] == SIZES
    assert flipped_solo.bbox is None and flipped_solo.bbox_frame == 0

    # saliency on a run of the flipped benchmark: box numbers on frame 2 only, with frame 2's ring
    import_predictions(ws, _jsonl(tmp_path / "pf.jsonl", [{"id": "tri#flip", "pred": "A"},
                                                          {"id": "solo#flip", "pred": "A"}]), "tri-flip", "flip-run")
    params = {"run": "flip-run", "model": str(tiny_model_dir), "items": "all", "target": "gold",
              "max_pixels": 28 * 28 * 16, "batch_size": 2}
    ctx = _run_job(ws, "saliency", params, tmp_path / "saliency", make_ctx)
    with ws.read() as con:
        tri_case = case_detail(con, "flip-run", "tri#flip")
        solo_case = case_detail(con, "flip-run", "solo#flip")
    assert tri_case.bbox_frame == 2 and tri_case.bbox == flipped.bbox
    maps = {a.frame: a for a in tri_case.artifacts if a.kind == "saliency"}
    raws = {a.frame: a for a in tri_case.artifacts if a.kind == "saliency-raw"}
    assert sorted(maps) == [0, 1, 2]
    assert not BOX_KEYS & set(maps[0].metrics) and not BOX_KEYS & set(maps[1].metrics)
    on_box = maps[2].metrics
    assert BOX_KEYS <= set(on_box) and on_box["bbox_frame"] == 2
    assert on_box["ring_px"] == line_width(SIZES[2]) == 3
    raw = np.load(ws.root / raws[2].path if not Path(raws[2].path).is_absolute() else raws[2].path)
    assert raw.shape == (480, 640)
    expected = metrics(raw, flipped.bbox)
    assert {k: on_box[k] for k in ("mass_in_bbox", "bbox_area", "mass_on_ring", "ring_px")} == \
        {k: expected[k] for k in ("mass_in_bbox", "bbox_area", "mass_on_ring", "ring_px")}
    assert 0 < on_box["mass_in_bbox"] < 1 and on_box["bbox_area"] == round(75 * 45 / (640 * 480), 6)
    solo_maps = [a for a in solo_case.artifacts if a.kind == "saliency"]
    assert len(solo_maps) == 1 and not BOX_KEYS & set(solo_maps[0].metrics)
    assert solo_maps[0].metrics["spread"] > 0  # an item without a box still gets its map and numbers
    assert ctx.outputs[0].run == "flip-run"
