"""Benchmark import: the ViewSpatial JSON (the real file when present), generic formats, replace."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from orienteer.data.errors import WorkspaceError
from orienteer.data.ingest_bench import import_benchmark
from tests.conftest import REAL_BENCH, TASKS, make_viewspatial_items


def _bench_file(tmp_path: Path) -> tuple[Path, list[dict]]:
    """The real ViewSpatial-Bench file when it is beside the project, else a generated one of the same shape."""
    if REAL_BENCH.is_file():
        return REAL_BENCH, json.loads(REAL_BENCH.read_text(encoding="utf-8"))
    items = make_viewspatial_items(400)
    path = tmp_path / "ViewSpatial-Bench.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path, items


def test_viewspatial_file_imports_whole(ws, tmp_path):
    path, raw = _bench_file(tmp_path)
    result = import_benchmark(ws, path, "viewspatial")
    assert result.n_items == len(raw)
    assert result.format == "viewspatial-json"
    assert result.tasks == dict(Counter(r["question_type"] for r in raw))
    assert set(result.tasks) == set(TASKS)
    if path == REAL_BENCH:
        assert result.n_items == 5712
        assert result.tasks["Camera perspective - Relative Direction"] == 1773
        assert result.tasks["Person perspective - Scene Simulation Relative Direction"] == 1105
    with ws.read() as con:
        rows = con.execute(
            "SELECT item_id, task, images, source, answer_letter, answer_label, option_letters, option_labels "
            "FROM items ORDER BY item_idx").fetchall()
    assert len(rows) == len(raw)
    for index, (item_id, task, images, source, letter, label, letters, labels) in enumerate(rows):
        original = raw[index]
        assert item_id == str(index)
        assert task == original["question_type"]
        assert images == original["image_path"]  # multi-frame items keep every frame, in order
        assert source == ("scannet" if "scannet" in original["image_path"][0] else "coco")
        assert f"{letter}. {label}" == original["answer"]
        assert "\n".join(f"{a}. {b}" for a, b in zip(letters, labels)) == original["choices"]
    frames = Counter(len(r[2]) for r in rows)
    assert max(frames) > 1 and frames[1] > 0


def test_reimport_refuses_without_replace_and_replaces_atomically(ws, vs_bench_file):
    import_benchmark(ws, vs_bench_file, "vs")
    with pytest.raises(WorkspaceError, match="already exists"):
        import_benchmark(ws, vs_bench_file, "vs")
    result = import_benchmark(ws, vs_bench_file, "vs", replace=True)
    assert result.replaced
    with ws.read() as con:
        assert con.execute("SELECT count(*) FROM items").fetchone()[0] == result.n_items
        assert con.execute("SELECT count(*) FROM benchmarks").fetchone()[0] == 1


def test_replace_with_runs_requires_same_questions(ws, vs_bench_file, vs_items, tmp_path):
    from orienteer.data.ingest_preds import import_predictions
    from tests.conftest import random_replies, write_official_csv

    import_benchmark(ws, vs_bench_file, "vs")
    import_predictions(ws, write_official_csv(tmp_path / "r.csv", vs_items, random_replies(vs_items)), "vs", "r1")
    images = tmp_path / "imgs"
    images.mkdir()
    assert import_benchmark(ws, vs_bench_file, "vs", replace=True, images=images).image_root == str(images.resolve())
    changed = [dict(item) for item in vs_items]
    changed[3]["answer"] = changed[3]["choices"].split("\n")[(("ABCD".index(changed[3]["answer"][0])) + 1) % 4]
    other = tmp_path / "changed.json"
    other.write_text(json.dumps(changed), encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"item '3' \(record 4\) differs"):
        import_benchmark(ws, other, "vs", replace=True)


def _generic_rows(vs_items: list[dict]) -> list[dict]:
    rows = []
    for i, item in enumerate(vs_items):
        options = dict(line.split(". ", 1) for line in item["choices"].split("\n"))
        rows.append({"id": f"g{i}", "task": item["question_type"], "question": item["question"], "options": options,
                     "answer": item["answer"][0], "images": item["image_path"], "bbox": [1, 2, 30, 40],
                     "reference_object": "the person"})
    return rows


def test_generic_jsonl_csv_parquet_agree(ws, vs_items, tmp_path):
    rows = _generic_rows(vs_items)
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    flat = [{"id": r["id"], "question_type": r["task"], "question": r["question"], **r["options"],
             "answer": f"{r['answer']}. {r['options'][r['answer']]}", "image": ";".join(r["images"])} for r in rows]
    csv_path = tmp_path / "items.csv"
    pd.DataFrame(flat).to_csv(csv_path, index=False)
    parquet = tmp_path / "items.parquet"
    pd.DataFrame([{**r, "options": json.dumps(r["options"])} for r in rows]).to_parquet(parquet)
    for name, path in (("j", jsonl), ("c", csv_path), ("p", parquet)):
        result = import_benchmark(ws, path, name)
        assert result.format == "items" and result.n_items == len(rows)
    with ws.read() as con:
        by_bench = {
            b: con.execute(
                "SELECT item_id, task, answer_letter, option_labels, images FROM items i JOIN benchmarks b USING (bench_id) "
                "WHERE b.name = ? ORDER BY item_idx", [b]).fetchall()
            for b in ("j", "c", "p")
        }
        bbox = con.execute(
            "SELECT bbox, reference_object FROM items JOIN benchmarks USING (bench_id) WHERE name = 'j' LIMIT 1"
        ).fetchone()
    assert by_bench["j"] == by_bench["c"] == by_bench["p"]
    assert bbox == ([1.0, 2.0, 30.0, 40.0], "the person")


def test_column_mapping_override(ws, vs_items, tmp_path):
    rows = [{"qid": r["id"], "kind": r["task"], "q": r["question"], "opts": r["options"], "gold": r["answer"],
             "pics": r["images"]} for r in _generic_rows(vs_items)]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    mapping = {"item_id": "qid", "task": "kind", "question": "q", "options": "opts", "images": "pics"}
    result = import_benchmark(ws, path, "odd", mapping=mapping)
    assert result.n_items == len(rows)
    with ws.read() as con:
        assert con.execute("SELECT item_id FROM items ORDER BY item_idx LIMIT 1").fetchone()[0] == "g0"


def test_images_root_with_benchmark_prefix_resolves(tmp_path):
    from orienteer.data.images import resolve_image

    root = tmp_path / "ViewSpatial-Bench"
    (root / "val2017").mkdir(parents=True)
    (root / "val2017" / "1.jpg").write_bytes(b"x")
    assert resolve_image(root, "ViewSpatial-Bench/val2017/1.jpg").is_file()
    assert resolve_image(tmp_path, "ViewSpatial-Bench/val2017/1.jpg").is_file()
