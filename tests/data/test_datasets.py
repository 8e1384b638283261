"""Training datasets: the canonical example format, ShareGPT/LLaVA conversion, the catalog."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.datasets import (
    discard_registered,
    example_from_item,
    export_dataset,
    get_dataset,
    import_dataset,
    list_datasets,
    read_examples,
    register_dataset,
    write_examples,
)
from orienteer.data.errors import InputError, OrienteerError, WorkspaceError
from orienteer.data.formats.sharegpt import OFFICIAL_SUFFIX, example_prompt
from orienteer.data.items import Item
from orienteer.data.workspace import Workspace
from tests.conftest import snapshot


def _item(k: int, n_images: int = 1) -> Item:
    labels = ["left", "back-right", "front", "above-left"]
    return Item(
        item_id=f"q{k}", task="Person perspective - Relative Direction",
        question=f"From the perspective of the man {k}, where is the cup?\nLook closely.",
        option_letters=list("ABCD"), option_labels=labels, answer_letter="ABCD"[k % 4],
        images=[f"img/{k}_{j}.jpg" for j in range(n_images)], source="coco", reference_object=f"the man {k}",
        bbox=[1.0, 2.0, 30.5, 40.0] if k % 2 else None,
    )


def _examples(tmp_path: Path, n: int = 6) -> list[dict[str, Any]]:
    return [
        example_from_item(_item(k, 1 + k % 3), [tmp_path / f"img/{k}_{j}.jpg" for j in range(1 + k % 3)], "original")
        for k in range(n)
    ]


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


KEPT = ("item_id", "question", "options", "answer", "target", "images")


def test_example_from_item_has_the_canonical_fields(tmp_path):
    example = example_from_item(_item(1), ["/abs/img/1_0.jpg"], "flipped")
    assert list(example)[:13] == [
        "item_id", "task", "question", "options", "answer", "images", "source", "reference_object", "bbox",
        "bbox_frame", "parent_item_id", "target", "origin",
    ]
    assert example["options"] == {"A": "left", "B": "back-right", "C": "front", "D": "above-left"}
    assert example["answer"] == "B" and example["target"] == "B. back-right"
    assert example["origin"] == "flipped"


@pytest.mark.parametrize("style", ["sharegpt", "llava"])
def test_items_to_conversations_and_back(tmp_path, style):
    examples = _examples(tmp_path)
    items_file = tmp_path / "items.jsonl"
    write_examples(items_file, examples)
    assert read_examples(items_file) == examples

    conv = tmp_path / f"{style}.jsonl"
    write_examples(conv, examples, style)
    records = [json.loads(line) for line in conv.read_text(encoding="utf-8").splitlines()]
    if style == "sharegpt":
        user, reply = records[2]["messages"]
        assert user["role"] == "user" and reply == {"role": "assistant", "content": "C. front"}
        assert user["content"] == "<image>" * 3 + example_prompt(examples[2])
        assert records[2]["images"] == examples[2]["images"]
    else:
        human, gpt = records[2]["conversations"]
        assert human["from"] == "human" and gpt == {"from": "gpt", "value": "C. front"}
        assert human["value"].startswith("<image>\n<image>\n<image>\nFrom the perspective")
        assert records[0]["image"] == examples[0]["images"][0]  # one image: a string, as LLaVA reads it
        assert records[2]["image"] == examples[2]["images"]
    # An example with no template keys trains on ``official``, upstream's exact text: the choices follow
    # the question with no separator (the newline of older versions is ``official-newline`` now).
    assert example_prompt(examples[0]) == (
        examples[0]["question"] + "A. left\nB. back-right\nC. front\nD. above-left" + OFFICIAL_SUFFIX
    )

    back = read_examples(conv)
    assert len(back) == len(examples)
    for original, again in zip(examples, back):
        assert {k: again[k] for k in KEPT} == {k: original[k] for k in KEPT}
        assert again["origin"] == "original"


def test_llava_import_resolves_relative_images_and_reads_json_lists(tmp_path):
    (tmp_path / "pics").mkdir()
    records = [
        {"id": "a1", "image": "pics/a.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhere is the lamp?\nA. left\nB. right" + OFFICIAL_SUFFIX},
            {"from": "gpt", "value": "B"}]},
        {"id": "a2", "image": ["pics/b.jpg", "/data/c.jpg"], "conversations": [
            {"from": "human", "value": "<image>\n<image>\nDescribe the room."},
            {"from": "gpt", "value": "A kitchen with a table on the left."}]},
    ]
    path = tmp_path / "llava.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    first, second = read_examples(path)
    assert first["item_id"] == "a1" and first["question"] == "Where is the lamp?"
    assert first["options"] == {"A": "left", "B": "right"} and first["answer"] == "B" and first["target"] == "B"
    assert first["images"] == [str((tmp_path / "pics/a.jpg").resolve())]
    # free-form: the whole prompt is the question, no options, no answer
    assert second["question"] == "Describe the room." and second["options"] == {} and second["answer"] is None
    assert second["target"] == "A kitchen with a table on the left."
    assert second["images"] == [str((tmp_path / "pics/b.jpg").resolve()), "/data/c.jpg"]


def test_other_prompt_suffix_survives_a_round_trip(tmp_path):
    prompt = "Where is the car?\nA. front\nB. back\nC. left\nAnswer with the option's letter from the given choices directly."
    record = {"messages": [{"role": "system", "content": "You are a careful observer."},
                           {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
                           {"role": "assistant", "content": "C"}], "images": ["/x/car.png"]}
    src = _write_jsonl(tmp_path / "in.jsonl", [record])
    (example,) = read_examples(src)
    assert example["options"] == {"A": "front", "B": "back", "C": "left"} and example["answer"] == "C"
    assert example["system"] == "You are a careful observer."
    out = tmp_path / "out.jsonl"
    write_examples(out, [example], "sharegpt")
    again = json.loads(out.read_text(encoding="utf-8"))
    assert again["messages"][0] == {"role": "system", "content": "You are a careful observer."}
    assert again["messages"][1]["content"] == "<image>" + prompt


def test_chain_of_thought_reply_gives_its_last_line_letter(tmp_path):
    record = {"messages": [{"role": "user", "content": "<image>Where?\nA. left\nB. right" + OFFICIAL_SUFFIX},
                           {"role": "assistant", "content": "The cup is beside the man's right hand.\nB"}],
              "images": ["/x.jpg"]}
    (example,) = read_examples(_write_jsonl(tmp_path / "cot.jsonl", [record]))
    assert example["answer"] == "B" and example["target"].endswith("\nB")


@pytest.mark.parametrize(
    "record, message",
    [
        ({"messages": [{"role": "user", "content": "<image><image>Q?"}, {"role": "assistant", "content": "x"}],
          "images": ["/a.jpg"]}, "2 <image> token(s) but the record has 1 image(s)"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "x"},
                       {"role": "user", "content": "more?"}]}, "one user turn followed by one assistant turn"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "user", "content": "x"}]},
         "turn 2 ('user'): expected an assistant turn"),
        ({"messages": [{"role": "user", "content": "Q?"}]}, "one user turn followed by one assistant turn"),
        ({"conversations": [{"from": "narrator", "value": "Q?"}]}, "unknown role 'narrator'"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "x"}], "images": [3]},
         "path or a list of paths"),
    ],
)
def test_bad_conversation_records_name_the_line(tmp_path, record, message):
    good = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "x"}]}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, good, record])
    with pytest.raises(InputError) as err:
        read_examples(path)
    assert err.value.where == "line 3"
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"question": "Q?", "options": {"A": "left", "B": "right"}, "answer": "C", "images": []},
         "not one of the option letters A, B"),
        ({"question": "Q?", "images": ["/a.jpg"]}, "expected a non-empty 'target'"),
        ({"question": "", "target": "x"}, "non-empty 'question'"),
        ({"question": "Q?", "target": "x", "bbox": [1, 2, 3]}, "bbox must be 4 numbers"),
        ({"question": "Q?", "target": "x", "images": "/a.jpg", "answer": "A"}, "has no options"),
    ],
)
def test_bad_item_records_name_the_line(tmp_path, record, message):
    good = {"question": "Q?", "options": {"A": "left", "B": "right"}, "answer": "A", "images": []}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, record])
    with pytest.raises(InputError) as err:
        read_examples(path)
    assert str(err.value).startswith(f"{path}: line 2: ")
    assert message in str(err.value)


def test_answer_given_as_option_line_or_label(tmp_path):
    records = [
        {"question": "Q?", "options": ["A. left", "B. right"], "answer": "B. right", "images": []},
        {"question": "Q?", "options": "A. left\nB. right", "answer": "left", "images": []},
    ]
    first, second = read_examples(_write_jsonl(tmp_path / "x.jsonl", records))
    assert (first["answer"], first["target"]) == ("B", "B. right")
    assert (second["answer"], second["target"]) == ("A", "A. left")


def test_import_list_get_and_export(tmp_path, ws: Workspace):
    examples = _examples(tmp_path)
    src = tmp_path / "train.jsonl"
    write_examples(src, examples, "llava")
    info = import_dataset(ws, src, "train-v1", notes="first try")
    assert info.name == "train-v1" and info.n_examples == 6 and info.source_format == "llava"
    assert info.path == ws.root / "datasets" / "train-v1.jsonl" and info.path.is_file()
    assert info.images_missing == sum(len(e["images"]) for e in examples)  # none of the images exist here
    assert info.composition["format"] == "llava" and info.notes == "first try"
    assert [d.name for d in list_datasets(ws)] == ["train-v1"]
    stored = read_examples(info.path)
    assert [{k: e[k] for k in KEPT} for e in stored] == [{k: e[k] for k in KEPT} for e in examples]

    for fmt in ("items", "sharegpt", "llava"):
        out = tmp_path / f"out-{fmt}.jsonl"
        assert export_dataset(ws, "train-v1", out, fmt) == 6
        assert [{k: e[k] for k in KEPT} for e in read_examples(out)] == [{k: e[k] for k in KEPT} for e in examples]
    with pytest.raises(OrienteerError, match="already exists; pass --force"):
        export_dataset(ws, "train-v1", tmp_path / "out-items.jsonl")
    assert export_dataset(ws, "train-v1", tmp_path / "out-items.jsonl", "sharegpt", force=True) == 6

    with pytest.raises(WorkspaceError, match="already exists; pass --replace"):
        import_dataset(ws, src, "train-v1")
    again = import_dataset(ws, tmp_path / "out-items.jsonl", "train-v1", replace=True)
    assert again.dataset_id == info.dataset_id and again.source_format == "sharegpt"
    second = import_dataset(ws, tmp_path / "out-items.jsonl", "train-v2")
    assert second.dataset_id == info.dataset_id + 1
    assert [d.name for d in list_datasets(ws)] == ["train-v1", "train-v2"]
    with pytest.raises(WorkspaceError, match="datasets are: train-v1, train-v2"):
        get_dataset(ws, "nope")


def test_failed_import_changes_nothing(tmp_path, ws_with_bench: Workspace):
    ws = ws_with_bench
    good = _examples(tmp_path, 3)
    src = tmp_path / "a.jsonl"
    write_examples(src, good)
    import_dataset(ws, src, "keep")
    before = snapshot(ws)
    files_before = sorted(p.name for p in (ws.root / "datasets").iterdir())
    content_before = (ws.root / "datasets" / "keep.jsonl").read_bytes()

    lines = src.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([lines[0], lines[1], "{not json", lines[2]]) + "\n", encoding="utf-8")
    for name, replace in (("keep", True), ("new", False)):
        with pytest.raises(InputError) as err:
            import_dataset(ws, broken, name, replace=replace)
        assert err.value.where == "line 3" and "invalid JSON" in str(err.value)
    with pytest.raises(OrienteerError, match="is not usable \\(expected letters, digits"):
        import_dataset(ws, src, "../escape")
    with pytest.raises(InputError, match="empty file"):
        (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
        import_dataset(ws, tmp_path / "empty.jsonl", "empty")

    assert snapshot(ws) == before
    assert sorted(p.name for p in (ws.root / "datasets").iterdir()) == files_before
    assert (ws.root / "datasets" / "keep.jsonl").read_bytes() == content_before


@pytest.mark.parametrize("replace", [True, False])
def test_import_restores_the_files_when_the_commit_fails(tmp_path, ws: Workspace, monkeypatch, replace):
    """The file moves into place inside the transaction; a failing commit must undo the move."""
    src = tmp_path / "a.jsonl"
    write_examples(src, _examples(tmp_path, 2))
    info = import_dataset(ws, src, "d")
    old_bytes = info.path.read_bytes()
    src2 = tmp_path / "b.jsonl"
    write_examples(src2, _examples(tmp_path, 5))
    real_write = ws.write

    @contextmanager
    def write_that_fails_to_commit():
        with real_write() as con:
            yield con
            raise RuntimeError("commit failed")

    monkeypatch.setattr(ws, "write", write_that_fails_to_commit)
    name = "d" if replace else "e"
    with pytest.raises(RuntimeError, match="commit failed"):
        import_dataset(ws, src2, name, replace=replace)
    monkeypatch.undo()
    assert [(d.name, d.n_examples) for d in list_datasets(ws)] == [("d", 2)]
    assert info.path.read_bytes() == old_bytes
    assert sorted(p.name for p in (ws.root / "datasets").iterdir()) == ["d.jsonl"]


def test_register_dataset_inside_a_transaction(tmp_path, ws: Workspace):
    ws.ensure()
    src = tmp_path / "job-out" / "dataset.jsonl"
    src.parent.mkdir()
    (src.parent / "images").mkdir()
    records = [dict(e, images=["images/x.png"]) for e in _examples(tmp_path, 4)]
    _write_jsonl(src, records)
    with ws.staging() as con:
        with ws.attach_for_write(con):
            info = register_dataset(con, ws, "hard-v1", src, {"ratio": 3.0}, "from a job", "job-123")
    assert src.is_file()  # the job keeps its outputs
    stored = get_dataset(ws, "hard-v1")
    assert stored.n_examples == 4 and stored.created_by_job == "job-123" and stored.composition == {"ratio": 3.0}
    assert stored.path == info.path and stored.source_format == "items"
    assert read_examples(stored.path)[0]["images"] == [str((src.parent / "images/x.png").resolve())]

    # a name already in the catalog is refused before any file is touched
    with pytest.raises(OrienteerError, match="already exists"):
        with ws.write() as con:
            register_dataset(con, ws, "hard-v1", src, {}, None, "job-124", catalog="")

    # the caller's transaction rolls back: the row goes, and discard_registered removes the file
    registered = None
    with pytest.raises(RuntimeError):
        with ws.write() as con:
            registered = register_dataset(con, ws, "hard-v2", src, {}, None, "job-125", catalog="")
            assert registered.path.is_file()
            raise RuntimeError("ingest failed later")
    assert registered is not None
    discard_registered(registered)
    assert not registered.path.exists()
    assert [d.name for d in list_datasets(ws)] == ["hard-v1"]


def test_register_refuses_a_bad_job_file(tmp_path, ws: Workspace):
    src = _write_jsonl(tmp_path / "dataset.jsonl", [{"question": "Q?", "images": []}])
    with pytest.raises(InputError, match="line 1"):
        with ws.write() as con:
            register_dataset(con, ws, "bad", src, {}, None, "job-1", catalog="")
    assert list_datasets(ws) == []
    assert not (ws.root / "datasets" / "bad.jsonl").exists()
