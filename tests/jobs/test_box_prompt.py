"""box-prompt: boxes drawn where the detector says, bbox stored, question rewritten, resume, detectors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from orienteer.data.errors import OrienteerError
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.job_outputs import BenchmarkOutput
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.model.boxes import RED, draw_box, line_width
from orienteer.jobs.model.detector import Box, CenterDetector, FixedDetector, best_box, yolo_world_detector
from orienteer.jobs.params import complete

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

GREY = (128, 128, 128)


def _is_red(pixel: tuple[int, ...]) -> bool:
    return tuple(pixel[:3]) == RED


def test_draw_box_puts_red_on_exactly_the_box_edges_of_a_copy():
    original = Image.new("RGB", (120, 90), GREY)
    boxed = draw_box(original, [20, 10, 80, 60], width=2)
    assert original.getpixel((20, 10)) == GREY  # the original is untouched
    for x in range(20, 81):
        assert _is_red(boxed.getpixel((x, 10))) and _is_red(boxed.getpixel((x, 11)))  # top, 2 px
        assert _is_red(boxed.getpixel((x, 60))) and _is_red(boxed.getpixel((x, 59)))  # bottom
    for y in range(10, 61):
        assert _is_red(boxed.getpixel((20, y))) and _is_red(boxed.getpixel((80, y)))  # left, right
    assert boxed.getpixel((50, 35)) == GREY  # inside stays
    assert boxed.getpixel((19, 35)) == GREY and boxed.getpixel((81, 35)) == GREY  # outside stays
    assert boxed.getpixel((50, 12)) == GREY  # the border is 2 px wide
    red = sum(_is_red(boxed.getpixel((x, y))) for x in range(120) for y in range(90))
    assert red == 2 * 61 * 2 + 2 * (51 - 4) * 2


def test_draw_box_clamps_and_widens_with_the_image():
    boxed = draw_box(Image.new("L", (40, 30), 0), [-5, -5, 100, 100])
    assert boxed.mode == "RGB"
    assert _is_red(boxed.getpixel((0, 0))) and _is_red(boxed.getpixel((39, 29)))
    assert line_width((640, 480)) == 3 and line_width((40, 30)) == 2


def test_best_box_takes_the_highest_score_above_the_threshold():
    boxes = [Box(0, 0, 1, 1, 0.3, "a"), Box(0, 0, 2, 2, 0.9, "a"), Box(0, 0, 3, 3, 0.05, "a")]
    assert best_box(boxes).score == 0.9
    assert best_box(boxes, 0.95) is None
    assert best_box([]) is None


# --- the kind, on a small benchmark with real image files ------------------------------------------

QUESTIONS = [
    ("q0", "Person perspective - Relative Direction", "From the perspective of the boy, where is the ball?", 1),
    ("q1", "Camera perspective - Relative Direction", "Where is the lamp in relation to the sofa?", 1),
    ("q2", "Person perspective - Scene Simulation Relative Direction",
     "If you stand at door facing box, where is mirror?", 3),
    ("q3", "Camera perspective - Relative Direction", "What colour is the sofa?", 1),  # no template
]


def _mini_bench(tmp_path: Path) -> Workspace:
    root = tmp_path / "imgs"
    root.mkdir()
    lines = []
    for item_id, task, question, frames in QUESTIONS:
        images = []
        for f in range(frames):
            name = f"{item_id}_{f}.jpg"
            Image.new("RGB", (96 + 8 * f, 64), GREY).save(root / name)
            images.append(name)
        lines.append(json.dumps({"id": item_id, "task": task, "question": question,
                                 "options": {"A": "left", "B": "right", "C": "front", "D": "back"},
                                 "answer": "B", "images": images}))
    bench = tmp_path / "mini.jsonl"
    bench.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    import_benchmark(ws, bench, "mini", images=root)
    return ws


def _ctx(ws: Workspace, tmp_path: Path, job: str, resume: Path, **params) -> JobContext:
    values = complete("box-prompt", get_kind("box-prompt").params, {"bench": "mini", "name": "mini-box", **params})
    job_dir = tmp_path / job
    (job_dir / "outputs").mkdir(parents=True)
    return JobContext(job_id=job, kind="box-prompt", params=values, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=resume)


class FrameDetector:
    """Scores the box by frame width (wider frame, higher score), records every call."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[tuple[int, int], str]] = []
        self.fail_after = fail_after

    def detect(self, image: Image.Image, phrase: str) -> list[Box]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls.append((image.size, phrase))
        return [Box(10, 12, 50, 40, image.size[0] / 1000, phrase), Box(0, 0, 5, 5, 0.01, phrase)]


def _items(ctx: JobContext) -> dict[str, dict]:
    lines = (ctx.out_dir / "items.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["parent_item_id"]: json.loads(line) for line in lines}


def test_box_prompt_draws_where_the_detector_says_and_rewrites(tmp_path):
    ws = _mini_bench(tmp_path)
    detector = FrameDetector()
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.05)
    get_kind("box-prompt").run(ctx, detector=detector)

    [out] = ctx.outputs
    assert isinstance(out, BenchmarkOutput)
    assert (out.name, out.items_file, out.image_root, out.parent) == ("mini-box", "items.jsonl", "images", "mini")
    assert "boxed 3 of 4" in out.notes and "no phrase 1" in out.notes
    items = _items(ctx)
    assert set(items) == {"q0", "q1", "q2"}  # q3 has no reference phrase: skipped, counted
    q0 = items["q0"]
    assert q0["item_id"] == "q0#box"
    assert q0["question"] == "From the perspective of the boy in the red bounding box, where is the ball?"
    assert q0["reference_object"] == "boy" and q0["bbox"] == [10, 12, 50, 40] and q0["bbox_frame"] == 0
    assert q0["options"] == {"A": "left", "B": "right", "C": "front", "D": "back"} and q0["answer"] == "B"
    assert items["q1"]["reference_object"] == "sofa"
    assert [phrase for _, phrase in detector.calls] == ["boy", "sofa", "door", "door", "door"]

    boxed = Image.open(ctx.out_dir / "images" / q0["images"][0])
    assert boxed.format == "PNG" and boxed.size == (96, 64)
    for x in range(10, 51):
        assert _is_red(boxed.getpixel((x, 12))) and _is_red(boxed.getpixel((x, 40)))
    for y in range(12, 41):
        assert _is_red(boxed.getpixel((10, y))) and _is_red(boxed.getpixel((50, y)))
    assert not _is_red(boxed.getpixel((30, 26))) and not _is_red(boxed.getpixel((5, 5)))

    # Multi-frame: every frame is searched, the best-scoring one (the widest, frame 2) is boxed.
    q2 = items["q2"]
    assert q2["bbox_frame"] == 2 and q2["reference_object"] == "door"
    assert q2["question"] == "If you stand at the door in the red bounding box facing box, where is mirror?"
    assert Path(q2["images"][0]).is_absolute() and Path(q2["images"][0]).is_file()
    assert not Path(q2["images"][2]).is_absolute() and (ctx.out_dir / "images" / q2["images"][2]).is_file()
    report = json.loads((ctx.out_dir / "box_report.json").read_text())
    assert report["boxed"] == 3 and report["misses"] == [{"item_id": "q3", "status": "no_phrase", "phrase": None}]


def test_the_derived_benchmark_imports_with_its_parent_ids(tmp_path):
    ws = _mini_bench(tmp_path)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.05)
    get_kind("box-prompt").run(ctx, detector=FrameDetector())
    import_benchmark(ws, ctx.out_dir / "items.jsonl", "mini-box", images=ctx.out_dir / "images", parent="mini")
    from orienteer.jobs.selection import load_items

    items, root = load_items(ws, "mini-box")
    assert sorted(i.parent_item_id for i in items) == ["q0", "q1", "q2"]
    assert items[0].bbox == [10, 12, 50, 40] and items[0].reference_object == "boy"
    from orienteer.data.images import resolve_image

    assert all(resolve_image(root, p).is_file() for i in items for p in i.images)


def test_nothing_detected_and_keep_unboxed(tmp_path):
    ws = _mini_bench(tmp_path)
    detector = FixedDetector({"boy": [Box(1, 1, 20, 20, 0.8, "boy")], "sofa": [Box(1, 1, 20, 20, 0.02, "sofa")]})
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.1, keep_unboxed=True)
    get_kind("box-prompt").run(ctx, detector=detector)
    items = _items(ctx)
    assert set(items) == {"q0", "q1", "q2", "q3"}
    assert items["q0"]["item_id"] == "q0#box"
    for kept in ("q1", "q2", "q3"):  # below conf / nothing / no phrase: unchanged, original id
        assert items[kept]["item_id"] == kept and items[kept]["bbox"] is None
        assert items[kept]["question"] == next(q for i, _, q, _ in QUESTIONS if i == kept)
        assert all(Path(p).is_absolute() for p in items[kept]["images"])
    assert "nothing detected 2" in ctx.outputs[0].notes and "kept unboxed" in ctx.outputs[0].notes


def test_a_killed_job_resumes_where_it_stopped(tmp_path):
    ws = _mini_bench(tmp_path)
    resume = tmp_path / "resume"
    kind = get_kind("box-prompt")
    with pytest.raises(KeyboardInterrupt):
        kind.run(_ctx(ws, tmp_path, "job1", resume, conf=0.05), detector=FrameDetector(fail_after=2))  # q0, q1
    again = FrameDetector()
    ctx = _ctx(ws, tmp_path, "job2", resume, conf=0.05)
    kind.run(ctx, detector=again)
    assert [phrase for _, phrase in again.calls] == ["door", "door", "door"]  # only q2's three frames
    assert set(_items(ctx)) == {"q0", "q1", "q2"}
    assert (ctx.out_dir / "images" / _items(ctx)["q0"]["images"][0]).is_file()


def test_center_detector_through_the_params_and_refusals(tmp_path):
    ws = _mini_bench(tmp_path)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", detector="center")
    get_kind("box-prompt").run(ctx)
    assert _items(ctx)["q0"]["bbox"] == [24, 16, 72, 48]
    assert CenterDetector().detect(Image.new("RGB", (100, 40)), "x")[0].as_list() == [25, 10, 75, 30]
    with pytest.raises(OrienteerError, match="--weights is required"):
        get_kind("box-prompt").run(_ctx(ws, tmp_path, "job2", tmp_path / "r2"))
    with pytest.raises(OrienteerError, match="weights .*missing.pt not found"):
        get_kind("box-prompt").run(_ctx(ws, tmp_path, "job3", tmp_path / "r3", weights=str(tmp_path / "missing.pt")))


def test_yolo_world_refuses_without_clip(tmp_path, monkeypatch):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not read")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "clip" else real(name, *a))
    with pytest.raises(OrienteerError, match="CLIP text encoder"):
        yolo_world_detector(weights)


def test_an_ultralytics_yolo_world_built_from_yaml_runs_through_the_adapter(monkeypatch):
    """The real adapter path (set_classes, predict, Results -> Box) on random weights; CLIP is faked."""
    import torch
    from ultralytics import YOLOWorld
    from ultralytics.nn.tasks import WorldModel

    from orienteer.jobs.model.detector import UltralyticsDetector

    told: list[list[str]] = []

    def fake_text_pe(self, text, batch=80, cache_clip_model=False):
        told.append(list(text))
        return torch.ones(1, len(text), 512) / 512 ** 0.5

    monkeypatch.setattr(WorldModel, "get_text_pe", fake_text_pe)
    torch.manual_seed(0)
    model = YOLOWorld("yolov8s-worldv2.yaml")
    detector = UltralyticsDetector(model, conf=0.0, imgsz=128, prompt_classes=True)
    image = Image.new("RGB", (200, 150), GREY)
    boxes = detector.detect(image, "man in red clothes")
    detector.detect(image, "man in red clothes")
    assert told == [["man in red clothes"]]  # the phrase is set once while it stays the same
    assert boxes, "random weights with conf 0 still give boxes"
    assert all(b.label == "man in red clothes" for b in boxes)
    assert all(-1 <= b.x1 <= b.x2 <= 201 and -1 <= b.y1 <= b.y2 <= 151 for b in boxes)  # original pixels
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    boxed = draw_box(image, best_box(boxes).as_list())
    assert boxed.size == image.size


# --- --control: the undrawn twin, through the real job runtime ---------------------------------------

def test_control_writes_the_undrawn_twin_through_the_job_runtime(tmp_path):
    from orienteer.data.images import resolve_image
    from orienteer.jobs import api
    from orienteer.jobs.selection import load_items
    from orienteer.jobs.status import job_view
    from tests.jobs.test_runtime import wait_for

    ws = _mini_bench(tmp_path)
    job = api.submit(ws, "box-prompt", {"bench": "mini", "name": "mini-box", "detector": "center", "control": True})
    wait_for(lambda: job_view(job).status in ("done", "failed"), timeout=120, what="the job to end")
    view = wait_for(lambda: job_view(job).ingest and job_view(job), timeout=120, what="the ingest")
    assert view.status == "done", job.log_path.read_text()
    assert view.ingest["summary"] == ["benchmark mini-box (3 items)", "benchmark mini-box-nodraw (3 items)"]

    with ws.read() as con:
        rows = dict(con.execute(
            "SELECT b.name, p.name FROM benchmarks b JOIN benchmarks p ON p.bench_id = b.parent_bench_id").fetchall())
        notes = dict(con.execute("SELECT name, notes FROM benchmarks").fetchall())
    assert rows == {"mini-box": "mini", "mini-box-nodraw": "mini"}
    assert notes["mini-box-nodraw"].startswith("undrawn control of mini-box: its 3 boxed items")
    assert notes["mini-box"].endswith("; undrawn control: mini-box-nodraw")
    originals, root = load_items(ws, "mini")
    boxed, boxed_root = load_items(ws, "mini-box")
    control, control_root = load_items(ws, "mini-box-nodraw")
    by_id = {item.item_id: item for item in originals}
    assert [i.item_id for i in control] == ["q0#nodraw", "q1#nodraw", "q2#nodraw"]
    for box, twin in zip(boxed, control, strict=True):
        assert twin.parent_item_id == box.parent_item_id == twin.item_id.removesuffix("#nodraw")
        same = ("task", "question", "option_letters", "option_labels", "answer_letter", "reference_object", "bbox",
                "bbox_frame")
        assert {f: getattr(twin, f) for f in same} == {f: getattr(box, f) for f in same}
        assert "red bounding box" in twin.question and twin.bbox is not None
        original = by_id[twin.parent_item_id]
        assert len(twin.images) == len(original.images)
        for k, (mine, theirs) in enumerate(zip(twin.images, original.images, strict=True)):
            assert Path(mine).is_absolute()
            assert resolve_image(control_root, mine).read_bytes() == resolve_image(root, theirs).read_bytes()
        drawn = Image.open(resolve_image(boxed_root, box.images[box.bbox_frame])).convert("RGB")
        x1, y1 = (round(v) for v in box.bbox[:2])
        assert _is_red(drawn.getpixel((x1, y1)))  # the boxed twin really has the box drawn

    # Both names are taken now; a NAME-nodraw that exists refuses --control up front, naming it.
    with pytest.raises(OrienteerError, match="a benchmark named 'mini-box' already exists"):
        api.submit(ws, "box-prompt", {"bench": "mini", "name": "mini-box", "detector": "center", "control": True})
    with pytest.raises(OrienteerError, match=r"a benchmark named 'mini-box-nodraw' already exists; choose another"):
        api.submit(ws, "box-prompt", {"bench": "mini", "name": "mini-box-nodraw", "detector": "center"})
    import_benchmark(ws, tmp_path / "mini.jsonl", "fresh-nodraw", images=tmp_path / "imgs")
    with pytest.raises(OrienteerError, match=r"a benchmark named 'fresh-nodraw' already exists; choose another --name "
                                             r"\(--control also makes NAME-nodraw\)"):
        api.submit(ws, "box-prompt", {"bench": "mini", "name": "fresh", "detector": "center", "control": True})


def test_a_live_jobs_control_name_is_reserved(tmp_path):
    from orienteer.jobs import api
    from orienteer.jobs.store import create_job

    ws = _mini_bench(tmp_path)
    kind = get_kind("box-prompt")
    params = api.resolve_params(kind, {"bench": "mini", "name": "live", "detector": "center", "control": True})
    live = create_job(ws, "box-prompt", params, api.command_argv(kind, params, ws))  # created, not yet started
    with pytest.raises(OrienteerError, match=rf"job {live.job_id} \(starting\) will make the benchmark 'live-nodraw'; "
                                             r"choose another --name, or cancel that job"):
        api.submit(ws, "box-prompt", {"bench": "mini", "name": "live-nodraw", "detector": "center"})
    assert [n for n, _, _ in api.output_names("box-prompt", params)] == ["live", "live-nodraw"]
    assert [n for n, _, _ in api.output_names("box-prompt", {**params, "control": False})] == ["live"]


def test_control_with_nothing_boxed_writes_nothing(tmp_path):
    ws = _mini_bench(tmp_path)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.5, keep_unboxed=True, control=True)
    with pytest.raises(OrienteerError, match=r"--control: no item of 'mini' got a box, so the undrawn control "
                                             r"'mini-box-nodraw' would be empty"):
        get_kind("box-prompt").run(ctx, detector=FixedDetector({}))
    assert not ctx.outputs


def test_the_stored_box_is_the_drawn_box_so_saliency_measures_the_drawn_pixels(tmp_path):
    """Coordinates are stored to 0.1 px; the drawing uses the stored ones, so rounding cannot move the ring."""
    import numpy as np

    from orienteer.jobs.model.saliency import metrics

    ws = _mini_bench(tmp_path)
    detector = FixedDetector({"boy": [Box(11.46, 12.46, 50.46, 40.46, 0.9, "boy")]})
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.1)
    get_kind("box-prompt").run(ctx, detector=detector)
    q0 = _items(ctx)["q0"]
    assert q0["bbox"] == [11.5, 12.5, 50.5, 40.5]
    red = np.all(np.asarray(Image.open(ctx.out_dir / "images" / q0["images"][0]).convert("RGB")) == RED, axis=-1)
    measured = metrics(red.astype(np.float32), q0["bbox"])
    assert measured["mass_on_ring"] == 1.0 and measured["mass_in_bbox"] == 0.0


def test_both_benchmarks_enter_in_one_transaction_or_neither_does(tmp_path):
    """The control's name taken between submit and ingest: the ingest fails whole, the boxed one is not written."""
    from orienteer.data.errors import WorkspaceError
    from orienteer.data.job_ingest import ingest_job
    from orienteer.data.job_outputs import write_manifest

    ws = _mini_bench(tmp_path)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", conf=0.05, control=True)
    get_kind("box-prompt").run(ctx, detector=FrameDetector())
    assert [o.name for o in ctx.outputs] == ["mini-box", "mini-box-nodraw"]
    write_manifest(ctx.out_dir, ctx.outputs)
    import_benchmark(ws, tmp_path / "mini.jsonl", "mini-box-nodraw", images=tmp_path / "imgs")
    with pytest.raises(WorkspaceError, match="benchmark 'mini-box-nodraw' already exists"):
        ingest_job(ws, "job1", "box-prompt", ctx.out_dir)
    with ws.read() as con:
        names = [r[0] for r in con.execute("SELECT name FROM benchmarks ORDER BY bench_id").fetchall()]
        ingested = con.execute("SELECT count(*) FROM job_ingests").fetchone()[0]
    assert names == ["mini", "mini-box-nodraw"] and ingested == 0
    with ws.write() as con:
        con.execute("DELETE FROM items WHERE bench_id = (SELECT bench_id FROM benchmarks WHERE name = 'mini-box-nodraw')")
        con.execute("DELETE FROM benchmarks WHERE name = 'mini-box-nodraw'")
    assert ingest_job(ws, "job1", "box-prompt", ctx.out_dir).summary == [
        "benchmark mini-box (3 items)", "benchmark mini-box-nodraw (3 items)"]
