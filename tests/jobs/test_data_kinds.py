"""The data jobs (flip, hard-negatives, replay) on a small rendered demo workspace, through a JobContext."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from orienteer.core.directions import mirror_label
from orienteer.core.mirror import mirror_bbox, mirror_text
from orienteer.data.datasets import get_dataset, read_examples, write_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.images import resolve_image
from orienteer.data.job_ingest import ingest_job
from orienteer.data.job_outputs import BenchmarkOutput, DatasetOutput, write_manifest
from orienteer.data.workspace import Workspace
from orienteer.demo.build import DEMO_BENCH, build_demo_workspace
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.params import complete
from orienteer.jobs.selection import load_items

RUN = "qwen3b-base"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(target, n_items=60)
    return target


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> Workspace:
    """A private copy of the demo workspace whose benchmark reads the copy's own images."""
    root = tmp_path / "ws"
    shutil.copytree(demo_template, root)
    ws = Workspace(root)
    with ws.write() as con:
        con.execute("UPDATE benchmarks SET image_root = replace(image_root, ?, ?)", [str(demo_template), str(root)])
    return ws


def make_ctx(ws: Workspace, kind: str, values: dict[str, Any], tmp: Path, job_id: str | None = None,
             resume: Path | None = None) -> JobContext:
    info = get_kind(kind)
    job_id = job_id or f"test-{kind}-{len(list(tmp.glob('job-*')))}"
    job_dir = tmp / f"job-{job_id}"
    job_dir.mkdir(parents=True)
    return JobContext(
        job_id=job_id, kind=kind, params=complete(kind, info.params, values), workspace=ws, job_dir=job_dir,
        out_dir=job_dir / "outputs", resume_dir=resume or (job_dir / "resume"),
    )


def run_kind(ctx: JobContext, ingest: bool = False) -> None:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    ctx.resume_dir.mkdir(parents=True, exist_ok=True)
    get_kind(ctx.kind).run(ctx)
    if ingest:
        write_manifest(ctx.out_dir, ctx.outputs)
        ingest_job(ctx.workspace, ctx.job_id, ctx.kind, ctx.out_dir)


def pixels(path: Path) -> np.ndarray:
    """The pixels as every part of Orienteer (and upstream's evaluation) loads them."""
    from orienteer.data.images import open_rgb

    return np.asarray(open_rgb(path))


def progress(ctx: JobContext) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ctx.job_dir / "progress.jsonl").read_text(encoding="utf-8").splitlines()]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- flip


def test_flip_makes_a_mirrored_benchmark_and_flipping_it_again_gives_the_original(demo, tmp_path):
    originals, root = load_items(demo, DEMO_BENCH, None)
    ctx = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "demo-flip"}, tmp_path)
    run_kind(ctx, ingest=True)

    (output,) = ctx.outputs
    assert output == BenchmarkOutput("demo-flip", "items.jsonl", image_root="images", parent=DEMO_BENCH,
                                     notes=f"left-right flip of {DEMO_BENCH}")
    steps = progress(ctx)
    assert [s["done"] for s in steps] == list(range(1, len(originals) + 1)) and steps[-1]["total"] == len(originals)

    flipped, flip_root = load_items(demo, "demo-flip", None)
    assert flip_root == (ctx.out_dir / "images").resolve()
    assert len(flipped) == len(originals)
    n_changed_answers = 0
    for orig, flip in zip(originals, flipped):
        assert flip.item_id == orig.item_id + "#flip" and flip.parent_item_id == orig.item_id
        assert flip.question == mirror_text(orig.question)
        assert flip.option_letters == orig.option_letters
        assert flip.option_labels == [mirror_label(label) for label in orig.option_labels]
        assert flip.answer_letter == orig.answer_letter
        assert flip.answer_label == mirror_label(orig.answer_label)
        n_changed_answers += flip.answer_label != orig.answer_label
        assert flip.task == orig.task and flip.source == orig.source
        assert all(p.endswith(".png") for p in flip.images)
        src = pixels(resolve_image(root, orig.images[0]))
        out = pixels(resolve_image(flip_root, flip.images[0]))
        assert np.array_equal(out, src[:, ::-1])  # really mirrored, pixel for pixel
        if orig.bbox is not None:
            assert flip.bbox == mirror_bbox(orig.bbox, src.shape[1])
    assert n_changed_answers > 0

    again = make_ctx(demo, "flip", {"bench": "demo-flip", "name": "demo-flip-flip"}, tmp_path)
    run_kind(again, ingest=True)
    twice, twice_root = load_items(demo, "demo-flip-flip", None)
    fields = ("item_id", "task", "question", "option_letters", "option_labels", "answer_letter", "source",
              "reference_object", "bbox")
    for orig, back in zip(originals, twice, strict=True):
        assert {f: getattr(back, f) for f in fields} == {f: getattr(orig, f) for f in fields}
        for a, b in zip(orig.images, back.images, strict=True):
            assert np.array_equal(pixels(resolve_image(twice_root, b)), pixels(resolve_image(root, a)))


def test_flip_to_a_dataset_skips_items_with_missing_images(demo, tmp_path, capsys):
    items, root = load_items(demo, DEMO_BENCH, "limit:8")
    gone = resolve_image(root, items[2].images[0])
    gone.unlink()
    ctx = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "flip-set", "items": "limit:8", "to": "dataset"}, tmp_path)
    run_kind(ctx, ingest=True)
    log = capsys.readouterr().out
    assert f"skip item {items[2].item_id}: image not found at {gone}" in log
    assert "skipped 1 item(s) with missing images" in log

    (output,) = ctx.outputs
    assert isinstance(output, DatasetOutput) and output.composition["skipped_missing_images"] == 1
    examples = read_examples(get_dataset(demo, "flip-set").path)
    kept = [item for k, item in enumerate(items) if k != 2]
    assert [e["item_id"] for e in examples] == [f"{i.item_id}#flip" for i in kept]
    for example, item in zip(examples, kept):
        label = mirror_label(item.answer_label)
        assert example["origin"] == "flipped"
        assert example["answer"] == item.answer_letter and example["target"] == f"{item.answer_letter}. {label}"
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in example["images"])
        assert np.array_equal(pixels(Path(example["images"][0])), pixels(resolve_image(root, item.images[0]))[:, ::-1])


def test_flip_resumes_from_the_images_a_killed_attempt_left(demo, tmp_path, capsys):
    resume = tmp_path / "shared-resume"
    first = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "f", "items": "limit:10"}, tmp_path, resume=resume)
    real_progress = first.progress

    def stop_after_four(done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        real_progress(done, total, unit, note)
        if done == 4:
            first.request_stop()

    first.progress = stop_after_four  # type: ignore[method-assign]
    with pytest.raises(Exception, match="cancelled"):
        run_kind(first)
    assert len(list((resume / "images").rglob("*.png"))) == 4
    capsys.readouterr()

    second = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "f", "items": "limit:10"}, tmp_path, resume=resume)
    run_kind(second)
    assert "(6 image(s) flipped, 4 reused from an earlier attempt)" in capsys.readouterr().out
    assert len(read_jsonl(second.out_dir / "items.jsonl")) == 10
    assert len(list((second.out_dir / "images").rglob("*.png"))) == 10


def test_flip_refuses_an_empty_selection(demo, tmp_path):
    ctx = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "x", "items": "task:no such task"}, tmp_path)
    with pytest.raises(OrienteerError, match="no items"):
        run_kind(ctx)


# ---------------------------------------------------------------- hard-negatives


def real_confusions(ws: Workspace, run: str, top: int) -> list[dict[str, Any]]:
    """The run's commonest (gold -> pred) confusions, straight from SQL."""
    with ws.read() as con:
        rows = con.execute(
            """SELECT p.gold_label, p.pred_label, p.category, count(*) AS n
               FROM predictions p JOIN runs r USING (run_id)
               WHERE r.name = ? AND NOT p.correct AND p.pred_label IS NOT NULL
               GROUP BY ALL ORDER BY n DESC, p.gold_label, p.pred_label LIMIT ?""",
            [run, top],
        ).fetchall()
    return [{"gold": g, "pred": p, "category": c, "count": n} for g, p, c, n in rows]


def hard_item_ids(ws: Workspace, run: str, confusions: list[dict[str, Any]]) -> set[str]:
    keys = {(c["gold"], c["pred"]) for c in confusions}
    with ws.read() as con:
        rows = con.execute(
            """SELECT i.item_id, p.gold_label, p.pred_label FROM predictions p JOIN runs r USING (run_id)
               JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx
               WHERE r.name = ? AND NOT p.correct""",
            [run],
        ).fetchall()
    return {item_id for item_id, g, p in rows if (g, p) in keys}


def test_hard_negatives_over_samples_the_real_top_confusions(demo, tmp_path):
    ctx = make_ctx(demo, "hard-negatives", {"run": RUN, "name": "hard", "top": 3, "ratio": 2.5, "seed": 4}, tmp_path)
    run_kind(ctx, ingest=True)
    (output,) = ctx.outputs
    composition = output.composition
    expected = real_confusions(demo, RUN, 3)
    assert composition["confusions"] == expected
    assert get_dataset(demo, "hard").composition["confusions"] == expected  # what the catalog recorded

    hard = hard_item_ids(demo, RUN, expected)
    items, _ = load_items(demo, DEMO_BENCH, None)
    assert composition["n_original"] == len(hard) == sum(c["count"] for c in expected)
    assert composition["n_oversampled"] == round(len(hard) * 2.5) == composition["n_flipped"]
    assert composition["n_rest"] == len(items) - len(hard)

    examples = read_examples(get_dataset(demo, "hard").path)
    assert len(examples) == composition["n_oversampled"] + composition["n_flipped"] + composition["n_rest"]
    by_origin = Counter(e["origin"] for e in examples)
    assert by_origin == {"hard": composition["n_oversampled"], "flipped": composition["n_flipped"],
                         "original": composition["n_rest"]}
    copies = Counter(e["item_id"] for e in examples if e["origin"] == "hard")
    assert set(copies) == hard and set(copies.values()) <= {2, 3}
    flips = Counter(e["item_id"] for e in examples if e["origin"] == "flipped")
    assert flips == Counter({f"{k}#flip": n for k, n in copies.items()})
    assert {e["item_id"] for e in examples if e["origin"] == "original"} == {i.item_id for i in items} - hard
    by_id = {i.item_id: i for i in items}
    for e in examples:
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in e["images"])
        if e["origin"] == "flipped":
            item = by_id[e["parent_item_id"]]
            assert e["target"] == f"{item.answer_letter}. {mirror_label(item.answer_label)}"
    assert [e["origin"] for e in examples[:20]] != sorted(e["origin"] for e in examples[:20])  # shuffled


def test_hard_negatives_cap_and_no_rest(demo, tmp_path):
    values = {"run": RUN, "name": "hard-small", "top": 5, "ratio": 3.0, "n_items": 4, "flipped": False,
              "rest": False, "seed": 1}
    ctx = make_ctx(demo, "hard-negatives", values, tmp_path)
    run_kind(ctx)
    composition = ctx.outputs[0].composition
    assert composition["n_original"] == 4 and composition["n_flipped"] == 0 and composition["n_rest"] == 0
    examples = read_examples(ctx.out_dir / "dataset.jsonl")
    copies = Counter(e["item_id"] for e in examples)
    assert len(copies) == 4 and set(copies.values()) == {3}
    assert set(copies) <= hard_item_ids(demo, RUN, real_confusions(demo, RUN, 5))


# ---------------------------------------------------------------- replay


def _dataset(ws: Workspace, tmp: Path, name: str, n: int, origin: str) -> None:
    examples = [{"item_id": f"{name}-{k}", "question": f"Q{k}?", "options": {"A": "left", "B": "right"},
                 "answer": "AB"[k % 2], "images": [], "origin": origin} for k in range(n)]
    write_examples(tmp / f"{name}.jsonl", examples)
    from orienteer.data.datasets import import_dataset

    import_dataset(ws, tmp / f"{name}.jsonl", name)


@pytest.mark.parametrize("share, n_new, n_old", [(0.2, 30, 50), (0.35, 41, 100), (0.0, 10, 5)])
def test_replay_mixes_the_asked_share(ws, tmp_path, share, n_new, n_old):
    _dataset(ws, tmp_path, "new", n_new, "hard")
    _dataset(ws, tmp_path, "old", n_old, "original")
    ctx = make_ctx(ws, "replay", {"new": "new", "old": "old", "share": share, "name": "mixed", "seed": 3}, tmp_path)
    run_kind(ctx, ingest=True)
    examples = read_examples(get_dataset(ws, "mixed").path)
    replayed = [e for e in examples if e["origin"] == "replay"]
    k = len(replayed)
    assert abs(k - share * len(examples)) <= 1  # the share, within rounding
    assert len(examples) == n_new + k
    assert sorted(e["item_id"] for e in examples if e["origin"] != "replay") == sorted(f"new-{i}" for i in range(n_new))
    assert len({e["item_id"] for e in replayed}) == k and all(e["item_id"].startswith("old-") for e in replayed)
    assert all(e["replayed_origin"] == "original" for e in replayed)
    composition = get_dataset(ws, "mixed").composition
    assert composition["new"] == n_new and composition["old"] == k and composition["share"] == share
    assert [s["dataset"] for s in composition["sources"]] == ["new", "old"]


def test_replay_uses_all_of_a_small_old_set_and_records_the_share_reached(ws, tmp_path, capsys):
    _dataset(ws, tmp_path, "new", 40, "hard")
    _dataset(ws, tmp_path, "old", 3, "original")
    ctx = make_ctx(ws, "replay", {"new": "new", "old": "old", "share": 0.5, "name": "m"}, tmp_path)
    run_kind(ctx)
    composition = ctx.outputs[0].composition
    assert composition["old"] == 3 and composition["share_reached"] == round(3 / 43, 6)
    assert "fewer than the 40 a share of 0.5 needs" in capsys.readouterr().out


def test_replay_refuses_bad_shares_and_unknown_datasets(ws, tmp_path):
    _dataset(ws, tmp_path, "new", 5, "hard")
    with pytest.raises(OrienteerError, match="below 1"):
        run_kind(make_ctx(ws, "replay", {"new": "new", "old": "new", "share": 1.0, "name": "m"}, tmp_path))
    with pytest.raises(OrienteerError, match="no dataset named 'nope'; datasets are: new"):
        run_kind(make_ctx(ws, "replay", {"new": "new", "old": "nope", "name": "m"}, tmp_path))


def test_replay_drops_old_examples_the_new_set_already_has(ws, tmp_path):
    _dataset(ws, tmp_path, "new", 10, "hard")  # new-0 .. new-9
    old = [{"item_id": f"new-{k}" if k < 4 else f"old-{k}", "question": f"Q{k}?", "options": {"A": "left", "B": "right"},
            "answer": "A", "images": [], "origin": "original"} for k in range(12)]
    write_examples(tmp_path / "old.jsonl", old)
    from orienteer.data.datasets import import_dataset

    import_dataset(ws, tmp_path / "old.jsonl", "old")
    ctx = make_ctx(ws, "replay", {"new": "new", "old": "old", "share": 0.45, "name": "mixed", "seed": 2}, tmp_path)
    run_kind(ctx)
    composition = ctx.outputs[0].composition
    assert composition["dropped_duplicates"] == 4
    replayed = [e for e in read_examples(ctx.out_dir / "dataset.jsonl") if e["origin"] == "replay"]
    assert len(replayed) == 8 and all(e["item_id"].startswith("old-") for e in replayed)  # only 8 are left to draw
    assert composition["sources"][1] == {"dataset": "old", "role": "replay", "used": 8, "of": 12}


# ---------------------------------------------------------------- hard negatives from a training pool


def _pool_workspace(tmp: Path) -> Workspace:
    """A hand-worked case. Test benchmark ``t`` (t0..t4) and run ``r``: t0, t1 answer left -> right, t2
    front -> back, t3 right, t4 correct; so the top confusion is left -> right (2), then front -> back (1)."""
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.ingest_preds import import_predictions

    ws = Workspace(tmp / "pool-ws")
    opts = {"A": "left", "B": "right", "C": "front", "D": "back"}
    golds = ["A", "A", "C", "B", "A"]
    test = [{"item_id": f"t{k}", "task": "T", "question": f"Q{k}?", "options": opts, "answer": g, "images": [f"t{k}.png"]}
            for k, g in enumerate(golds)]
    (tmp / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test), encoding="utf-8")
    import_benchmark(ws, tmp / "t.jsonl", "t")
    preds = [("t0", "B"), ("t1", "B"), ("t2", "D"), ("t3", "B"), ("t4", "A")]
    (tmp / "r.jsonl").write_text("".join(json.dumps({"id": i, "pred": p}) + "\n" for i, p in preds), encoding="utf-8")
    import_predictions(ws, tmp / "r.jsonl", "t", "r")
    pool = [  # (id, gold label, options)
        ("p0", "left", {"A": "left", "B": "right", "C": "front", "D": "back"}),  # offers left -> right
        ("p1", "left", {"A": "front", "B": "left", "C": "back", "D": "above"}),  # gold left, no "right" to pick
        ("p2", "right", {"A": "left", "B": "right"}),  # offers right -> left, not a chosen confusion
        ("p3", "left", {"A": "right", "B": "left"}),  # offers left -> right
        ("p4", "front", {"A": "back", "B": "front", "C": "left", "D": "right"}),  # offers front -> back (top 2 only)
    ]
    records = []
    for k, (item_id, gold, options) in enumerate(pool):
        path = tmp / "pool" / f"{item_id}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), (50 * k, 20, 200)).save(path)
        letter = next(key for key, lab in options.items() if lab == gold)
        records.append({"item_id": item_id, "task": "T", "question": f"Where, seen from the left of {item_id}?",
                        "options": options, "answer": letter, "images": [str(path)]})
    write_examples(tmp / "pool.jsonl", records)
    from orienteer.data.datasets import import_dataset

    import_dataset(ws, tmp / "pool.jsonl", "pool")
    return ws


def test_pool_mining_takes_the_runs_pattern_and_only_pool_items(tmp_path):
    ws = _pool_workspace(tmp_path)
    ctx = make_ctx(ws, "hard-negatives", {"run": "r", "pool": "pool", "name": "hn", "top": 1, "ratio": 2.0}, tmp_path)
    run_kind(ctx, ingest=True)
    composition = get_dataset(ws, "hn").composition
    assert composition["confusions"] == [{"gold": "left", "pred": "right", "category": "horizontal", "count": 2,
                                          "pool_items": 2}]
    assert composition["pool"] == {"name": "pool", "kind": "dataset"} and composition["mined_from_test"] is False
    assert composition["pattern"] == {"run": "r", "bench": "t"} and composition["benches"] == []
    examples = read_examples(get_dataset(ws, "hn").path)
    by_origin = {origin: Counter(e["item_id"] for e in examples if e["origin"] == origin)
                 for origin in ("hard", "flipped", "original")}
    assert by_origin == {"hard": Counter({"p0": 2, "p3": 2}), "flipped": Counter({"p0#flip": 2, "p3#flip": 2}),
                         "original": Counter({"p1": 1, "p2": 1, "p4": 1})}
    flipped = next(e for e in examples if e["item_id"] == "p3#flip")
    assert flipped["options"] == {"A": "left", "B": "right"} and flipped["answer"] == "B"
    assert flipped["question"] == "Where, seen from the right of p3?"
    assert not any(e["item_id"].startswith("t") for e in examples)

    two = make_ctx(ws, "hard-negatives", {"run": "r", "pool": "pool", "name": "hn2", "top": 2, "ratio": 1.0,
                                          "flipped": False, "rest": False}, tmp_path)
    run_kind(two)
    assert Counter(e["item_id"] for e in read_examples(two.out_dir / "dataset.jsonl")) == Counter(["p0", "p3", "p4"])
    assert [c["pool_items"] for c in two.outputs[0].composition["confusions"]] == [2, 1]


def test_mining_the_test_set_is_marked_and_train_refuses_it(tmp_path):
    from orienteer.data.overlap import check_dataset_against

    ws = _pool_workspace(tmp_path)
    for k in range(5):
        Image.new("RGB", (40, 30), (k, 1, 1)).save(tmp_path / f"t{k}.png")
    ctx = make_ctx(ws, "hard-negatives", {"run": "r", "name": "explore", "top": 1}, tmp_path)
    run_kind(ctx, ingest=True)
    composition = get_dataset(ws, "explore").composition
    assert composition["mined_from_test"] is True and composition["benches"] == ["t"]
    with pytest.raises(OrienteerError, match=r"dataset 'explore' overlaps benchmark 't' in 7 example item\(s\) \(5 by item id; 2 by parent item id; 5 by image.*"
                                             r"it was built from 't'"):
        check_dataset_against(ws, "explore", "t")
    assert not check_dataset_against(ws, "pool", "t")


def test_the_demo_training_split_is_a_clean_pool(demo, tmp_path):
    from orienteer.data.datasets import import_dataset
    from orienteer.data.overlap import check_dataset_against, training_pools

    import_dataset(demo, demo.root / "demo-data" / "train.jsonl", "demo-train")
    assert training_pools(demo, DEMO_BENCH)[0] == "demo-train"
    ctx = make_ctx(demo, "hard-negatives", {"run": RUN, "pool": "demo-train", "name": "hn", "top": 3}, tmp_path)
    run_kind(ctx, ingest=True)
    examples = read_examples(get_dataset(demo, "hn").path)
    assert all(e["item_id"].startswith("train_") for e in examples)
    overlap = check_dataset_against(demo, "hn", DEMO_BENCH)
    assert not overlap and overlap.images_unread == 0
