"""The official prompt is upstream's string, item for item; training examples train on the eval text.

Upstream (ZJU-REAL/ViewSpatial-Bench evaluate.py at 2e85a5e) builds the user text as
``item["question"] + item["choices"] + "\\nReply only to the corresponding option.\\nAnswer:"``. The
tests build that string the same way from the JSON records and compare it with what Orienteer makes
from the items it imported (options parsed into letters and labels, stored in DuckDB, read back).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.datasets import read_examples, write_examples
from orienteer.data.formats.sharegpt import OFFICIAL_SUFFIX, example_prompt
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.workspace import Workspace
from orienteer.jobs.model.prompt import prompt_text
from orienteer.jobs.selection import load_items
from tests.conftest import REAL_BENCH, make_viewspatial_items

UPSTREAM_SUFFIX = "\nReply only to the corresponding option.\nAnswer:"  # evaluate.py's prompt_format, copied


def upstream_text(rec: dict[str, Any]) -> str:
    """evaluate.py's line: ``question = item["question"] + item["choices"] + prompt_format``."""
    return rec["question"] + rec["choices"] + UPSTREAM_SUFFIX


def _import(tmp_path: Path, records: list[dict[str, Any]] | Path) -> list[Any]:
    if isinstance(records, Path):
        path = records
    else:
        path = tmp_path / "ViewSpatial-Bench.json"
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    import_benchmark(ws, path, "vs")
    items, _ = load_items(ws, "vs")
    return items


def test_official_prompt_is_upstreams_string_for_viewspatial_items(tmp_path: Path) -> None:
    records = make_viewspatial_items(40)
    # Shapes the real file could hold: non-ASCII, doubled spaces, a question without a final '?'.
    records[1]["question"] = "Où est la lampe  par rapport au canapé ?"
    records[2]["question"] = "From the camera, the chair is"
    items = _import(tmp_path, records)
    assert [it.item_id for it in items] == [str(i) for i in range(len(records))]
    for rec, item in zip(records, items):
        assert prompt_text(item, "official") == upstream_text(rec)
    assert prompt_text(items[0], "official").count("?A. ") == 1  # no separator between question and choices


@pytest.mark.skipif(not REAL_BENCH.is_file(), reason=f"the real ViewSpatial-Bench.json is not at {REAL_BENCH} "
                                                     "(a reference copy; the project's tests do not need it)")
def test_official_prompt_reproduces_all_real_viewspatial_items(tmp_path: Path) -> None:
    records = json.loads(REAL_BENCH.read_text(encoding="utf-8"))
    items = _import(tmp_path, REAL_BENCH)
    assert len(items) == len(records) == 5712
    mismatched = [item.item_id for rec, item in zip(records, items) if prompt_text(item, "official") != upstream_text(rec)]
    assert mismatched == []


# ---------------------------------------------------------------- training examples and conversation files


def _example(**extra: Any) -> dict[str, Any]:
    return {"item_id": "e1", "task": "Camera perspective - Relative Direction", "question": "Where is the lamp?",
            "options": {"A": "left", "B": "right"}, "answer": "B", "images": ["/x/a.jpg"], "target": "B. right",
            **extra}


def test_examples_train_on_the_text_they_name() -> None:
    official = "Where is the lamp?A. left\nB. right" + OFFICIAL_SUFFIX
    assert example_prompt(_example()) == official  # neither key: upstream's text
    assert example_prompt(_example(prompt="official")) == official
    assert example_prompt(_example(prompt="official-newline")) == "Where is the lamp?\nA. left\nB. right" + OFFICIAL_SUFFIX
    # Written before templates had names: a suffix alone keeps the newline it was trained with then.
    assert example_prompt(_example(prompt_suffix=OFFICIAL_SUFFIX)) == "Where is the lamp?\nA. left\nB. right" + OFFICIAL_SUFFIX
    assert example_prompt(_example(prompt_suffix="\nPick one.", prompt_separator=" ")) == (
        "Where is the lamp? A. left\nB. right\nPick one.")
    assert example_prompt(_example(prompt="letter", prompt_suffix="\nignored")).endswith("given choices directly.")


def test_a_dataset_naming_an_unknown_style_is_refused_at_import(tmp_path: Path) -> None:
    from orienteer.data.errors import InputError

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_example(prompt="officail")) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1.*unknown prompt 'officail'"):
        read_examples(path)


def _sharegpt(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "<image>" + text}, {"role": "assistant", "content": "B"}],
            "images": ["/x/a.jpg"]}


@pytest.mark.parametrize("text, template", [
    ("Where is the lamp?A. left\nB. right" + OFFICIAL_SUFFIX, {"prompt": "official"}),
    ("Where is the lamp?\nA. left\nB. right" + OFFICIAL_SUFFIX, {"prompt": "official-newline"}),
    ("Where is the lamp?\nA. left\nB. right\nAnswer with the option's letter from the given choices directly.",
     {"prompt": "letter"}),
    ("Where is the lamp?\nA. left\nB. right\nPick one.", {"prompt_suffix": "\nPick one."}),
    ("Where is the lamp?A. left\nB. right\nPick one.", {"prompt_suffix": "\nPick one.", "prompt_separator": ""}),
    ("Line one.\nIs A. Smith left of it?A. left\nB. right" + OFFICIAL_SUFFIX, {"prompt": "official"}),
])
@pytest.mark.parametrize("style", ["sharegpt", "llava"])
def test_conversations_of_both_shapes_come_back_as_questions_and_export_unchanged(
        tmp_path: Path, text: str, template: dict[str, str], style: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_sharegpt(text)) + "\n", encoding="utf-8")
    (example,) = read_examples(src)
    assert example["options"] == {"A": "left", "B": "right"} and example["answer"] == "B"
    assert example["question"].endswith("it?") or example["question"] == "Where is the lamp?"
    assert {k: example[k] for k in ("prompt", "prompt_suffix", "prompt_separator") if k in example} == template
    assert example_prompt(example) == text  # training sees exactly the imported text
    out = tmp_path / f"out.{style}.jsonl"
    write_examples(out, [example], style)
    record = json.loads(out.read_text(encoding="utf-8"))
    user = record["messages"][0]["content"] if style == "sharegpt" else record["conversations"][0]["value"]
    assert user == ("<image>" if style == "sharegpt" else "<image>\n") + text
    (again,) = read_examples(out)
    assert example_prompt(again) == text


def test_a_prompt_that_would_not_export_unchanged_stays_free_form(tmp_path: Path) -> None:
    text = "Where is the lamp?\nA) left\nB) right" + OFFICIAL_SUFFIX  # rendered again it would read 'A. left'
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_sharegpt(text)) + "\n", encoding="utf-8")
    (example,) = read_examples(src)
    assert example["options"] == {} and example["question"] == text and example_prompt(example) == text
