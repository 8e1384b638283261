"""The test-overlap check that train runs before training: ids, parent ids, image content, provenance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from orienteer.data.datasets import concat_datasets, get_dataset, import_dataset, read_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.overlap import bench_family, check_dataset_against, find_overlap, training_pools
from orienteer.data.workspace import Workspace

OPTIONS = {"A": "left", "B": "right", "C": "front", "D": "back"}


def _image(path: Path, colour: tuple[int, int, int]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), colour).save(path)
    return str(path)


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _record(item_id: str, image: str, **extra: object) -> dict:
    return {"item_id": item_id, "task": "t", "question": f"Where is it ({item_id})?", "options": OPTIONS,
            "answer": "A", "images": [image], **extra}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Benchmark ``test`` (t0..t3, red-ish images) and ``test-flip`` derived from it (parent ids t0, t1)."""
    ws = Workspace(tmp_path / "ws")
    bench_dir = tmp_path / "bench"
    test = [_record(f"t{k}", _image(bench_dir / f"t{k}.png", (200, 10 * k, 0))) for k in range(4)]
    import_benchmark(ws, _jsonl(tmp_path / "test.jsonl", test), "test", images=bench_dir)
    flips = [_record(f"t{k}#flip", _image(bench_dir / f"f{k}.png", (0, 10 * k, 200)), parent_item_id=f"t{k}")
             for k in range(2)]
    import_benchmark(ws, _jsonl(tmp_path / "flip.jsonl", flips), "test-flip", images=bench_dir, parent="test")
    import_benchmark(ws, _jsonl(tmp_path / "other.jsonl", [_record("t0", _image(bench_dir / "o0.png", (1, 2, 3)))]),
                     "other", images=bench_dir)
    return ws


def _dataset(ws: Workspace, tmp: Path, name: str, records: list[dict]) -> str:
    import_dataset(ws, _jsonl(tmp / f"{name}.jsonl", records), name)
    return name


def test_the_family_is_the_benchmark_its_ancestors_and_what_derives_from_them(ws):
    assert bench_family(ws, "test") == ["test", "test-flip"]
    assert bench_family(ws, "test-flip") == ["test", "test-flip"]
    assert bench_family(ws, "other") == ["other"]


def test_item_id_parent_id_and_image_content_are_each_found(ws, tmp_path):
    pool = tmp_path / "pool"
    same_bytes = pool / "copy_of_t2.png"
    same_bytes.parent.mkdir()
    shutil.copyfile(tmp_path / "bench" / "t2.png", same_bytes)  # another path, the same file content
    records = [
        _record("t1", _image(pool / "a.png", (5, 5, 5))),  # a test id (no recorded source: compared by id)
        _record("t0#flip", _image(pool / "b.png", (6, 6, 6)), parent_item_id="t0"),  # a copy derived from t0
        _record("p7", str(same_bytes)),  # a test image under another name
        _record("p8", _image(pool / "c.png", (200, 20, 1))),  # same size as the test images, other pixels
        _record("t3", _image(pool / "d.png", (7, 7, 7)), bench="other"),  # id of another benchmark's namespace
    ]
    name = _dataset(ws, tmp_path, "mixed", records)
    info = get_dataset(ws, name)
    overlap = find_overlap(ws, name, read_examples(info.path), info.composition, "test")
    assert overlap.counts() == {"item_id": 2, "parent_item_id": 0, "image": 1}  # t0#flip is an item of test-flip
    assert {(m.kind, m.example_id, m.bench_item_id) for m in overlap.matches} == {
        ("item_id", "t1", "t1"), ("item_id", "t0#flip", "t0#flip"), ("image", "p7", "t2")}
    assert overlap.example_ids == ["t1", "t0#flip", "p7"]
    # against "other" (items: t0): "t3", recorded as other's, is not its item; the untagged copy whose
    # parent id is "t0" is reported (an import's ids are not trusted to live in another namespace)
    against_other = find_overlap(ws, name, read_examples(info.path), info.composition, "other")
    assert [(m.kind, m.example_id) for m in against_other.matches] == [("parent_item_id", "t0#flip")]


def test_a_derived_copy_is_found_by_its_parent_id(ws, tmp_path):
    records = [_record("t2#flip", _image(tmp_path / "p" / "x.png", (9, 9, 9)), parent_item_id="t2")]
    name = _dataset(ws, tmp_path, "derived", records)
    overlap = check_dataset_against(ws, name, "test", allow=True)
    assert [(m.kind, m.example_id, m.bench_item_id) for m in overlap.matches] == [("parent_item_id", "t2#flip", "t2")]
    with pytest.raises(OrienteerError) as refused:
        check_dataset_against(ws, name, "test")
    assert str(refused.value).startswith("dataset 'derived' overlaps benchmark 'test' in 1 example item(s) "
                                         "(1 by parent item id: 't2#flip')")
    assert "--allow-overlap" in str(refused.value)


def test_a_clean_pool_passes_and_missing_images_are_counted(ws, tmp_path):
    records = [_record(f"p{k}", _image(tmp_path / "p" / f"{k}.png", (k, 100, 100))) for k in range(3)]
    records.append(_record("p9", str(tmp_path / "p" / "not-here.png")))
    name = _dataset(ws, tmp_path, "pool", records)
    overlap = check_dataset_against(ws, name, "test-flip")
    assert not overlap and overlap.family == ["test", "test-flip"] and overlap.images_unread == 1


def test_provenance_survives_concat_and_is_reported(ws, tmp_path):
    clean = _dataset(ws, tmp_path, "clean", [_record("p1", _image(tmp_path / "p" / "1.png", (1, 100, 1)))])
    tagged = _dataset(ws, tmp_path, "tagged", [_record("z1", _image(tmp_path / "p" / "2.png", (2, 100, 2)),
                                                       bench="test-flip")])
    assert get_dataset(ws, tagged).composition["benches"] == ["test-flip"]
    both = concat_datasets(ws, [clean, tagged], "both")
    assert both.composition["concat"] == [{"dataset": "clean", "n_examples": 1}, {"dataset": "tagged", "n_examples": 1}]
    assert both.composition["benches"] == ["test-flip"]
    overlap = check_dataset_against(ws, "both", "test", allow=True)
    assert overlap.built_from == ["test-flip"] and not overlap.matches and bool(overlap)
    assert overlap.message() == "dataset 'both' overlaps benchmark 'test': it was built from 'test-flip'"
    assert training_pools(ws, "test") == ["clean", "other"]  # imported splits first; nothing of test's family


def test_concat_refuses_repeats_and_too_few_parts(ws, tmp_path):
    one = _dataset(ws, tmp_path, "one", [_record("p1", _image(tmp_path / "p" / "1.png", (1, 1, 1)))])
    with pytest.raises(OrienteerError, match="at least two"):
        concat_datasets(ws, [one], "x")
    with pytest.raises(OrienteerError, match="'one' named more than once"):
        concat_datasets(ws, [one, one], "x")
    with pytest.raises(OrienteerError, match="no dataset named 'nope'"):
        concat_datasets(ws, [one, "nope"], "x")
    with ws.read() as con:
        assert con.execute("SELECT count(*) FROM datasets WHERE name = 'x'").fetchone()[0] == 0
