"""``bbox_frame``: which frame of a multi-frame item the box is on, through the schema, every reader, datasets
and exports; older workspaces migrate and read 0; bad values are refused in one line naming file and item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from orienteer.data.datasets import example_from_item, normalize_example, read_examples, write_examples
from orienteer.data.errors import InputError
from orienteer.data.export import export_predictions
from orienteer.data.filters import PredictionFilter
from orienteer.data.ingest_bench import import_benchmark, read_benchmark
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.items import Item, parse_bbox_frame
from orienteer.data.queries.case import case_detail
from orienteer.data.schema import MIGRATIONS, SCHEMA_VERSION, current_version
from orienteer.data.workspace import DB_FILENAME, Workspace

TASK = "Person perspective - Scene Simulation Relative Direction"
OPTIONS = {"A": "left", "B": "right", "C": "front", "D": "back"}


def _record(item_id: str, frame: Any = 2, *, bbox: Any = (20, 10, 100, 60), n_images: int = 3) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": item_id, "task": TASK, "question": "If you stand at the door facing the box, where is the lamp?",
        "options": OPTIONS, "answer": "B", "images": [f"{item_id}_{k}.png" for k in range(n_images)],
        "reference_object": "door", "bbox": list(bbox) if bbox is not None else None,
    }
    if frame is not None:
        record["bbox_frame"] = frame
    return record


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _csv(path: Path, frames: list[str]) -> Path:
    lines = ["id,task,question,A,B,answer,images,bbox,box_frame"]
    for k, frame in enumerate(frames):
        lines.append(f'c{k},{TASK},Where is the lamp?,left,right,B,a.png;b.png;c.png,"1,2,30,40",{frame}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the generic benchmark reader --------------------------------------------------------------------

def test_generic_reader_takes_bbox_frame_from_json_csv_and_parquet(tmp_path: Path) -> None:
    _, items = read_benchmark(_jsonl(tmp_path / "b.jsonl", [_record("x", 2), _record("y", None), _record("z", 0)]))
    assert [(i.item_id, i.bbox_frame) for i in items] == [("x", 2), ("y", 0), ("z", 0)]

    _, items = read_benchmark(_csv(tmp_path / "b.csv", ["2", " 1 ", ""]))  # the box_frame alias; empty = 0
    assert [i.bbox_frame for i in items] == [2, 1, 0]

    frame = pd.DataFrame([{**_record(f"p{k}", k), "options": json.dumps(OPTIONS)} for k in range(3)])
    frame.to_parquet(tmp_path / "b.parquet")
    assert str(frame["bbox_frame"].dtype) == "int64"
    _, items = read_benchmark(tmp_path / "b.parquet")
    assert [i.bbox_frame for i in items] == [0, 1, 2] and all(type(i.bbox_frame) is int for i in items)


@pytest.mark.parametrize(("value", "shown"), [
    (2.0, "2.0"), (True, "True"), ("2", "'2'"), (-1, "-1"), ("", "''"),
])
def test_generic_reader_refuses_a_json_bbox_frame_that_is_not_an_integer(tmp_path: Path, value: Any,
                                                                           shown: str) -> None:
    path = _jsonl(tmp_path / "b.jsonl", [_record("ok", 1), _record("bad", value)])
    with pytest.raises(InputError) as caught:
        read_benchmark(path)
    message = str(caught.value)
    expected = "bbox_frame must be a whole number >= 0 (the index of the frame the box is on)"
    assert message == f"{path}: line 2: {expected}, got {shown}"
    assert "\n" not in message


@pytest.mark.parametrize("text", ["2.0", "two", "-1", "1e0"])
def test_generic_reader_refuses_csv_text_that_is_not_digits(tmp_path: Path, text: str) -> None:
    path = _csv(tmp_path / "b.csv", ["0", text])
    with pytest.raises(InputError, match=rf"^{path}: line 3: bbox_frame must be a whole number >= 0 .*got '{text}'$"):
        read_benchmark(path)


def test_generic_reader_refuses_a_float_parquet_column(tmp_path: Path) -> None:
    frame = pd.DataFrame([{**_record("p", 1), "options": json.dumps(OPTIONS)}])
    frame["bbox_frame"] = frame["bbox_frame"].astype("float64")
    frame.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError, match=r": row 1: bbox_frame must be a whole number >= 0 .*got 1\.0$"):
        read_benchmark(tmp_path / "b.parquet")


def test_a_frame_the_item_does_not_have_or_a_frame_without_a_box_is_refused(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "b.jsonl", [_record("ok", 2), _record("short", 3)])
    with pytest.raises(InputError) as caught:
        read_benchmark(path)
    assert str(caught.value) == f"{path}: line 2: bbox_frame 3 but the item has 3 image(s) (expected 0 to 2)"
    path = _jsonl(tmp_path / "c.jsonl", [_record("nobox", 1, bbox=None)])
    with pytest.raises(InputError, match=r": line 1: bbox_frame 1 given but the item has no bbox"):
        read_benchmark(path)


def test_parse_bbox_frame_is_strict_about_types() -> None:
    import numpy as np

    assert parse_bbox_frame(None) == 0 and parse_bbox_frame(float("nan")) == 0 and parse_bbox_frame(np.int64(3)) == 3
    assert parse_bbox_frame("4", text=True) == 4
    for bad in (np.float64(3.0), np.bool_(True), False, 1.5, "4", [2]):
        with pytest.raises(ValueError, match="bbox_frame must be a whole number"):
            parse_bbox_frame(bad)


# --- schema: older workspaces ------------------------------------------------------------------------

def _workspace_at(root: Path, version: int) -> Path:
    """A workspace database as orienteer left it at schema ``version`` (the first ``version`` migrations)."""
    root.mkdir(parents=True)
    path = root / DB_FILENAME
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(version)])
        for step in MIGRATIONS[:version]:
            step(con) if callable(step) else con.execute(step)
        con.execute("""INSERT INTO benchmarks (bench_id, name, image_root, n_items) VALUES (1, 'old', '/imgs', 1)""")
        con.execute(
            """INSERT INTO items VALUES (1, 0, 'o1', ?, 'Where?', ['A', 'B'], ['left', 'right'], 'A', 'left',
                                         ['a.png', 'b.png'], NULL, 'cup', [1.0, 2.0, 3.0, 4.0], NULL)""", [TASK])
        con.execute("INSERT INTO runs (run_id, name, bench_id, parser, n_rows) "
                    "VALUES (1, 'old-run', 1, 'viewspatial', 0)")
    finally:
        con.close()
    return root


def test_a_workspace_at_the_previous_version_migrates_and_reads_frame_0(tmp_path: Path) -> None:
    before = next(k for k, step in enumerate(MIGRATIONS) if "bbox_frame" in str(step))  # the version without it
    ws = Workspace(_workspace_at(tmp_path / "ws", before))
    with ws.read() as con:  # the first read brings the file up to date
        assert current_version(con) == SCHEMA_VERSION
        assert con.execute("SELECT item_id, bbox_frame FROM items").fetchall() == [("o1", 0)]
        detail = case_detail(con, "old-run", "o1")
    assert detail.bbox == [1.0, 2.0, 3.0, 4.0] and detail.bbox_frame == 0
    # New items go in beside the old ones, their frame kept.
    import_benchmark(ws, _jsonl(tmp_path / "new.jsonl", [_record("n1", 2)]), "new", images=tmp_path)
    with ws.read() as con:
        rows = con.execute("SELECT item_id, bbox_frame FROM items ORDER BY bench_id").fetchall()
    assert rows == [("o1", 0), ("n1", 2)]


# --- datasets ------------------------------------------------------------------------------------------

def test_examples_carry_bbox_frame_and_refuse_bad_ones(tmp_path: Path) -> None:
    item = Item("t", TASK, "Where is the lamp?", list("AB"), ["left", "right"], "A", ["a.png", "b.png", "c.png"],
                bbox=[1.0, 2.0, 3.0, 4.0], bbox_frame=2)
    example = example_from_item(item, [tmp_path / p for p in item.images], "original")
    assert example["bbox_frame"] == 2
    path = tmp_path / "set.jsonl"
    write_examples(path, [example])
    assert read_examples(path)[0]["bbox_frame"] == 2
    old = {k: v for k, v in example.items() if k != "bbox_frame"}  # files written before bbox_frame existed
    assert normalize_example(old, path, "line 1", 0)["bbox_frame"] == 0
    refusals = [(2.0, "got 2.0"), (True, "got True"), ("2", "got '2'"), (3, "bbox_frame 3 but the example has 3")]
    for bad, expected in refusals:
        with pytest.raises(InputError) as caught:
            normalize_example({**example, "bbox_frame": bad}, path, "line 7", 6)
        assert str(caught.value).startswith(f"{path}: line 7: bbox_frame ") and expected in str(caught.value)
    with pytest.raises(InputError, match=r"line 1: bbox_frame 1 given but the example has no bbox"):
        normalize_example({**example, "bbox": None, "bbox_frame": 1}, path, "line 1", 0)


# --- failure exports -------------------------------------------------------------------------------------

def test_failure_exports_carry_the_box_and_its_frame_and_the_jsonl_reimports(tmp_path: Path, ws: Workspace) -> None:
    bench = _jsonl(tmp_path / "b.jsonl", [_record("x", 2), _record("y", 0, bbox=None, n_images=1)])
    import_benchmark(ws, bench, "b", images=tmp_path)
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "x", "pred": "A"}, {"id": "y", "pred": "A"}])
    import_predictions(ws, preds, "b", "r")
    with ws.read() as con:
        for suffix in (".jsonl", ".csv", ".parquet"):
            assert export_predictions(con, PredictionFilter(runs=("r",)), tmp_path / f"out{suffix}") == 2
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["item_id"], r["bbox"], r["bbox_frame"]) for r in rows] == [("x", [20, 10, 100, 60], 2), ("y", None, 0)]
    csv = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(csv["bbox"]) == ["20.0,10.0,100.0,60.0", ""] and list(csv["bbox_frame"]) == [2, 0]
    parquet = pd.read_parquet(tmp_path / "out.parquet")
    assert str(parquet["bbox_frame"].dtype) == "int32" and list(parquet["bbox_frame"]) == [2, 0]
    # The JSONL export is a benchmark file again (its gold letter mapped as the answer): the frame survives.
    _, items = read_benchmark(tmp_path / "out.jsonl", None, {"answer": "gold_letter"})
    assert [(i.item_id, i.bbox, i.bbox_frame) for i in items] == [("x", [20, 10, 100, 60], 2), ("y", None, 0)]
