"""Exports that fine-tuning tools load unedited (issue 16): LLaMA-Factory's ``dataset_info.json``, JSON
arrays for ``.json``, ``--bundle`` folders, and multi-turn conversations kept through import and export.

Fixture shapes follow the tools' own files:

- LLaMA-Factory ``data/mllm_demo.json`` and its ``data/dataset_info.json`` entry ``mllm_demo``
  (hiyouga/LLaMA-Factory; keys as ``src/llamafactory/data/parser.py`` ``get_dataset_list`` reads them,
  read at commit 01d3ac67; the real loader is run below with llamafactory 0.9.5 from the package
  index): a JSON array of ``{"messages": [{"content", "role"}...], "images": [...]}`` with user and
  assistant turns in turn and ``<image>`` glued to the user text.
- LLaVA's ``llava_instruct_150k.json``, as qwen-vl-finetune reads it (QwenLM/Qwen2.5-VL commit 57f21869,
  ``qwen-vl-finetune/qwenvl/data/data_processor.py``: ``json.load`` for a ``.json`` annotation file,
  ``json.loads`` per line for ``.jsonl``; ``image`` a path or a list; one ``<image>`` per image):
  ``{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orienteer.data import bundle as bundles
from orienteer.data.datasets import (
    export_dataset,
    export_dataset_files,
    get_dataset,
    import_dataset,
    read_examples,
)
from orienteer.data.errors import InputError, OrienteerError
from orienteer.data.workspace import Workspace

LF_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
           "system_tag": "system"}


def _image(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), colour).save(path, "JPEG")
    return str(path)


def mllm_demo(folder: Path) -> Path:
    """LLaMA-Factory's ``data/mllm_demo.json`` as the repository ships it (three records, relative images)."""
    for k in (1, 2, 3):
        _image(folder / "mllm_demo_data" / f"{k}.jpg", (40 * k, 90, 200 - 40 * k))
    records = [
        {"messages": [{"content": "<image>Who are they?", "role": "user"},
                      {"content": "They're Kane and Gretzka from Bayern Munich.", "role": "assistant"},
                      {"content": "What are they doing?<image>", "role": "user"},
                      {"content": "They are celebrating on the soccer field.", "role": "assistant"}],
         "images": ["mllm_demo_data/1.jpg", "mllm_demo_data/1.jpg"]},
        {"messages": [{"content": "<image>Who is he?", "role": "user"},
                      {"content": "He's Thomas Muller from Bayern Munich.", "role": "assistant"},
                      {"content": "Why is he on the ground?", "role": "user"},
                      {"content": "Because he's sliding on his knees to celebrate.", "role": "assistant"}],
         "images": ["mllm_demo_data/2.jpg"]},
        {"messages": [{"content": "<image>Please describe this image", "role": "user"},
                      {"content": "Chinese astronaut Gui Haichao is giving a speech.", "role": "assistant"}],
         "images": ["mllm_demo_data/3.jpg"]},
    ]
    path = folder / "mllm_demo.json"
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def llava_instruct(folder: Path) -> Path:
    """Two records of LLaVA's ``llava_instruct_150k.json`` shape (multi-turn, ``image`` a string)."""
    _image(folder / "coco" / "000000033471.jpg")
    _image(folder / "coco" / "000000052846.jpg", (10, 160, 40))
    records = [
        {"id": "000000033471", "image": "coco/000000033471.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
            {"from": "gpt", "value": "The bus in the image is white and red."},
            {"from": "human", "value": "What feature can be seen on the back of the bus?"},
            {"from": "gpt", "value": "The back of the bus features an advertisement."}]},
        {"id": "000000052846", "image": "coco/000000052846.jpg", "conversations": [
            {"from": "human", "value": "Where is the cat positioned in the image?\n<image>"},
            {"from": "gpt", "value": "The cat is positioned on top of the back of the couch."}]},
    ]
    path = folder / "llava_instruct.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _items(folder: Path, n: int = 4) -> Path:
    """Question items with real images (two share one file), in Orienteer's item format."""
    records = []
    for k in range(n):
        image = _image(folder / "img" / f"{k % 3}.jpg", (50 * (k % 3), 100, 100))
        records.append({"item_id": f"q{k}", "question": f"Where is the cup {k}?", "options": {"A": "left", "B": "right"},
                        "answer": "AB"[k % 2], "images": [image]})
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# ------------------------------------------------------------------ dataset_info.json


def test_sharegpt_export_writes_the_llamafactory_entry_and_merges_with_others(tmp_path, ws: Workspace):
    import_dataset(ws, _items(tmp_path), "spatial")
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"mllm_demo": {"file_name": "mllm_demo.json"}}))
    result = export_dataset_files(ws, "spatial", out / "spatial.json", "sharegpt")
    info = json.loads((out / "dataset_info.json").read_text())
    assert result.dataset_info == out / "dataset_info.json"
    assert info["mllm_demo"] == {"file_name": "mllm_demo.json"}  # the entries already there are kept
    assert info["spatial"] == {"file_name": "spatial.json", "formatting": "sharegpt",
                               "columns": {"messages": "messages", "images": "images"}, "tags": LF_TAGS}
    again = export_dataset_files(ws, "spatial", out / "spatial.json", "sharegpt", force=True)
    assert again.replaced_entry is None  # the same entry: nothing replaced

    export_dataset_files(ws, "spatial", out / "llava.jsonl", "llava", force=True)
    entry = json.loads((out / "dataset_info.json").read_text())["spatial"]
    assert entry["file_name"] == "llava.jsonl" and entry["columns"] == {"messages": "conversations", "images": "image"}
    assert entry["tags"] == {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                             "system_tag": "system"}

    result = export_dataset_files(ws, "spatial", out / "other.json", "sharegpt")  # the newest export is described
    assert result.replaced_entry["file_name"] == "llava.jsonl"
    assert json.loads((out / "dataset_info.json").read_text())["spatial"]["file_name"] == "other.json"

    items_only = tmp_path / "items-out"
    items_only.mkdir()
    assert export_dataset_files(ws, "spatial", items_only / "x.jsonl").dataset_info is None
    assert not (items_only / "dataset_info.json").exists()


def test_a_broken_dataset_info_is_refused_before_anything_is_written(tmp_path, ws: Workspace):
    import_dataset(ws, _items(tmp_path), "spatial")
    (tmp_path / "dataset_info.json").write_text('["not", "an object"]')
    with pytest.raises(InputError) as err:
        export_dataset(ws, "spatial", tmp_path / "spatial.json", "sharegpt")
    assert str(err.value).startswith(f"{tmp_path / 'dataset_info.json'}: expected a JSON object of dataset entries")
    (tmp_path / "dataset_info.json").write_text('{"a": 1,\n "b": }')
    with pytest.raises(InputError, match="line 2 column"):
        export_dataset(ws, "spatial", tmp_path / "spatial.json", "sharegpt")
    assert not (tmp_path / "spatial.json").exists()


# ------------------------------------------------------------------ .json arrays, .jsonl lines


@pytest.mark.parametrize("fmt", ["llava", "sharegpt", "items"])
def test_json_is_one_array_and_jsonl_one_record_a_line(tmp_path, ws: Workspace, fmt):
    import_dataset(ws, _items(tmp_path), "spatial")
    as_array, as_lines = tmp_path / "a.json", tmp_path / "a.jsonl"
    assert export_dataset(ws, "spatial", as_array, fmt) == 4
    assert export_dataset(ws, "spatial", as_lines, fmt, force=True) == 4
    with open(as_array, encoding="utf-8") as fh:  # qwen-vl-finetune: json.load for a .json file
        array = json.load(fh)
    lines = [json.loads(line) for line in as_lines.read_text(encoding="utf-8").splitlines()]  # ... and for .jsonl
    assert isinstance(array, list) and array == lines and len(lines) == 4
    if fmt == "llava":
        assert array[0]["conversations"][0]["value"].startswith("<image>\nWhere is the cup 0?")
        assert isinstance(array[0]["image"], str)  # one image: a path, as LLaVA writes it
    assert read_examples(as_array) == read_examples(as_lines)  # both import back the same


# ------------------------------------------------------------------ bundles


def test_bundle_holds_file_images_and_entry_with_relative_paths(tmp_path, ws: Workspace):
    import_dataset(ws, _items(tmp_path), "spatial")
    folder = tmp_path / "ship" / "spatial-bundle"  # a missing parent is made
    result = export_dataset_files(ws, "spatial", None, "sharegpt", bundle=folder)
    assert result.bundle == folder and result.path == folder / "spatial.json" and result.n_examples == 4
    assert result.n_images == 3 and result.n_linked == 3  # q0 and q3 share img/0.jpg: one file
    assert sorted(p.name for p in folder.iterdir()) == [".orienteer-bundle", "dataset_info.json", "images",
                                                         "spatial.json"]
    records = json.loads((folder / "spatial.json").read_text())
    images = [p for r in records for p in r["images"]]
    assert images == ["images/0.jpg", "images/1.jpg", "images/2.jpg", "images/0.jpg"]
    assert all((folder / p).is_file() for p in images)
    assert os.stat(folder / "images/1.jpg").st_ino == os.stat(tmp_path / "img/1.jpg").st_ino  # hard-linked
    assert json.loads((folder / "dataset_info.json").read_text())["spatial"]["file_name"] == "spatial.json"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left

    moved = tmp_path / "cluster"
    folder.rename(moved)  # it travels: read from anywhere, its images resolve inside it
    back = read_examples(moved / "spatial.json")
    assert [e["images"] for e in back] == [[str(moved / p)] for p in images]


def test_bundle_copies_when_a_link_cannot_be_made(tmp_path, ws: Workspace, monkeypatch):
    import_dataset(ws, _items(tmp_path, 2), "spatial")

    def cross_device(src: Any, dst: Any) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    result = export_dataset_files(ws, "spatial", Path("train.jsonl"), "llava", bundle=tmp_path / "b")
    assert (result.n_images, result.n_linked) == (2, 0)
    assert os.stat(tmp_path / "b/images/0.jpg").st_ino != os.stat(tmp_path / "img/0.jpg").st_ino
    assert [json.loads(line)["image"] for line in (tmp_path / "b/train.jsonl").read_text().splitlines()] == [
        "images/0.jpg", "images/1.jpg"]


def test_bundle_target_checks(tmp_path, ws: Workspace):
    import_dataset(ws, _items(tmp_path, 2), "spatial")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OrienteerError, match="is not empty; pass --force"):
        export_dataset_files(ws, "spatial", None, "sharegpt", bundle=mine)
    with pytest.raises(OrienteerError, match="no 'dataset export --bundle' wrote it; refusing to replace it"):
        export_dataset_files(ws, "spatial", None, "sharegpt", force=True, bundle=mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OrienteerError, match="is a regular file|not a folder|expects a folder"):
        export_dataset_files(ws, "spatial", None, "sharegpt", bundle=tmp_path / "a-file")
    with pytest.raises(OrienteerError, match="the dataset file's name inside the bundle"):
        export_dataset_files(ws, "spatial", Path("sub/x.json"), "sharegpt", bundle=tmp_path / "b")

    empty = tmp_path / "empty"
    empty.mkdir()
    export_dataset_files(ws, "spatial", None, "sharegpt", bundle=empty)  # an empty folder is fine
    (empty / "stale.txt").write_text("old")
    export_dataset_files(ws, "spatial", None, "llava", force=True, bundle=empty)  # an earlier bundle: replaced
    assert sorted(p.name for p in empty.iterdir()) == [".orienteer-bundle", "dataset_info.json", "images",
                                                        "spatial.json"]
    assert "conversations" in json.loads((empty / "spatial.json").read_text())[0]


def test_a_missing_image_or_a_kill_leaves_the_old_bundle_whole(tmp_path, ws: Workspace, monkeypatch):
    import_dataset(ws, _items(tmp_path, 2), "spatial")
    folder = tmp_path / "b"
    export_dataset_files(ws, "spatial", None, "sharegpt", bundle=folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(bundles, "_swap_in", killed)
    with pytest.raises(KeyboardInterrupt):
        export_dataset_files(ws, "spatial", None, "llava", force=True, bundle=folder)
    monkeypatch.undo()
    (tmp_path / "img/1.jpg").unlink()
    with pytest.raises(OrienteerError) as err:
        export_dataset_files(ws, "spatial", None, "llava", force=True, bundle=folder)
    assert str(err.value) == (f"dataset 'spatial': example 2: image {tmp_path / 'img/1.jpg'} not found "
                              "(a bundle copies every image; expected an existing file)")
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


# ------------------------------------------------------------------ multi-turn


def test_llamafactory_mllm_demo_is_kept_counted_and_exported_unchanged(tmp_path, ws: Workspace):
    src = mllm_demo(tmp_path)
    info = import_dataset(ws, src, "demo")
    assert info.n_examples == 3 and info.composition["multi_turn"] == 2 and info.images_missing == 0
    first = read_examples(info.path)[0]
    assert first["turns"][2] == {"role": "user", "content": "What are they doing?<image>"}
    assert first["question"] == "Who are they?" and first["target"] == "They are celebrating on the soccer field."
    assert first["options"] == {} and first["answer"] is None

    bundle = tmp_path / "bundle"
    export_dataset_files(ws, "demo", Path("mllm_demo.json"), "sharegpt", bundle=bundle)
    exported = json.loads((bundle / "mllm_demo.json").read_text())
    original = json.loads(src.read_text())
    assert [r["messages"] for r in exported] == [r["messages"] for r in original]  # turn for turn, tokens in place
    assert [len(r["images"]) for r in exported] == [2, 1, 1]
    assert exported[0]["images"][0] == exported[0]["images"][1]  # one image file, named twice as upstream does

    export_dataset(ws, "demo", tmp_path / "again.json", "sharegpt")
    again = import_dataset(ws, tmp_path / "again.json", "demo-again")
    assert read_examples(again.path) == read_examples(info.path)


def test_llava_instruct_multi_turn_round_trips_in_llava_and_sharegpt(tmp_path, ws: Workspace):
    src = llava_instruct(tmp_path)
    info = import_dataset(ws, src, "instruct")
    assert info.composition["multi_turn"] == 1 and info.source_format == "llava"
    export_dataset(ws, "instruct", tmp_path / "out.json", "llava")
    out = json.loads((tmp_path / "out.json").read_text())
    original = json.loads(src.read_text())
    assert out[0]["conversations"] == original[0]["conversations"]  # the multi-turn record, turn for turn
    assert out[0]["image"] == str(tmp_path / original[0]["image"])
    assert [r["id"] for r in out] == [r["id"] for r in original]
    (tmp_path / "sharegpt").mkdir()
    export_dataset(ws, "instruct", tmp_path / "sharegpt/out.jsonl", "sharegpt")
    messages = json.loads((tmp_path / "sharegpt/out.jsonl").read_text().splitlines()[0])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "<image>\nWhat are the colors of the bus in the image?"


@pytest.mark.parametrize(
    "turns, message",
    [
        ([{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"},
          {"role": "assistant", "content": "B"}], "turn 3 ('assistant'): expected a user turn"),
        ([{"role": "user", "content": "<image>Q?"}, {"role": "assistant", "content": "A"},
          {"role": "user", "content": "<image>more?"}, {"role": "assistant", "content": "B"}],
         "the turns have 2 <image> token(s) but the record has 1 image(s)"),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"},
          {"role": "assistant", "content": "A"}, {"role": "system", "content": "again"}],
         "turn 4 ('system'): expected a user turn"),
    ],
)
def test_bad_multi_turn_records_name_the_record(tmp_path, turns, message):
    good = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "x"}], "images": []}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([good, {"messages": turns, "images": ["/a.jpg"]}]))
    with pytest.raises(InputError) as err:
        read_examples(path)
    assert err.value.where == "record 2" and message in str(err.value) and "\n" not in str(err.value)


def test_a_stored_multi_turn_example_is_checked_again(tmp_path):
    record = {"question": "Q?", "target": "B", "images": [], "turns": [
        {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"},
        {"role": "user", "content": "again?"}, {"role": "gpt", "content": "B"}]}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"line 1: turn 4: expected \{'role': 'assistant'"):
        read_examples(path)


def test_replay_accepts_multi_turn_examples_and_counts_them(tmp_path, ws: Workspace):
    from orienteer.data.job_ingest import ingest_job
    from orienteer.data.job_outputs import write_manifest
    from orienteer.jobs.context import JobContext
    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.params import complete

    import_dataset(ws, _items(tmp_path, 4), "new")
    import_dataset(ws, llava_instruct(tmp_path), "general")
    kind = get_kind("replay")
    job_dir = tmp_path / "job-replay"
    ctx = JobContext(job_id="replay-1", kind="replay", workspace=ws, job_dir=job_dir, out_dir=job_dir / "outputs",
                     resume_dir=job_dir / "resume",
                     params=complete("replay", kind.params, {"new": "new", "old": "general", "share": 0.34,
                                                             "name": "mixed"}))
    ctx.out_dir.mkdir(parents=True)
    ctx.resume_dir.mkdir()
    kind.run(ctx)
    write_manifest(ctx.out_dir, ctx.outputs)
    ingest_job(ws, ctx.job_id, ctx.kind, ctx.out_dir)
    mixed = get_dataset(ws, "mixed")
    replayed = [e for e in read_examples(mixed.path) if e["origin"] == "replay"]
    assert len(replayed) == 2 and mixed.composition["multi_turn"] == 1
    kept = next(e for e in replayed if e.get("turns"))
    assert kept["turns"] == [{"role": "user" if k % 2 == 0 else "assistant", "content": t["value"]}
                             for k, t in enumerate(json.loads((tmp_path / "llava_instruct.json").read_text())[0]
                                                   ["conversations"])]


# ------------------------------------------------------------------ LLaMA-Factory's own loader

LF_PYTHON = os.environ.get("ORIENTEER_LLAMAFACTORY_PYTHON",
                           str(Path(__file__).resolve().parents[2] / "build" / "llamafactory" / "bin" / "python"))
"""A Python with ``llamafactory`` 0.9.5 installed, kept apart from the project's environment (it pins its own
transformers): ``make llamafactory`` builds it in build/llamafactory, and CI (.ci/run) always does, so these
tests run there; a local checkout without it skips them and says how to get it."""

LF_LOAD = r'''
import json, sys
bundle, name, proc_dir, out_dir = sys.argv[1:5]
from transformers import AutoProcessor
from llamafactory.data import get_template_and_fix_tokenizer
from llamafactory.data.loader import get_dataset
from llamafactory.hparams import get_train_args
model_args, data_args, training_args, _, _ = get_train_args(dict(
    model_name_or_path=proc_dir, stage="sft", do_train=True, finetuning_type="lora", dataset=name,
    dataset_dir=bundle, template="qwen2_vl", cutoff_len=4096, output_dir=out_dir, overwrite_output_dir=True,
    report_to="none", preprocessing_num_workers=None, dataloader_num_workers=0))
processor = AutoProcessor.from_pretrained(proc_dir)
tokenizer = processor.tokenizer
template = get_template_and_fix_tokenizer(tokenizer, data_args)
train = get_dataset(template, model_args, data_args, training_args, "sft", tokenizer=tokenizer,
                    processor=processor)["train_dataset"]
pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
rows = []
for row in train:
    spans, cur = [], []
    for t in row["labels"] + [-100]:
        if t == -100:
            if cur:
                spans.append(tokenizer.decode(cur))
            cur = []
        else:
            cur.append(t)
    rows.append({"learned": spans, "images": row["images"], "n_image_pad": row["input_ids"].count(pad)})
print("ROWS " + json.dumps(rows))
'''


def _llamafactory_rows(tmp_path: Path, bundle: Path, name: str) -> list[dict[str, Any]]:
    """The training rows LLaMA-Factory's ``get_dataset`` (sft, template qwen2_vl) makes of a bundle, run
    in its own environment, with Orienteer's byte-level Qwen2.5-VL tokenizer and processor built here."""
    import subprocess

    from orienteer.jobs.model.tiny import build_processor, build_tokenizer

    proc = tmp_path / "processor"
    build_processor(build_tokenizer()).save_pretrained(proc)
    script = tmp_path / "lf_load.py"
    script.write_text(LF_LOAD)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf"), HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"))
    result = subprocess.run([LF_PYTHON, str(script), str(bundle), name, str(proc), str(tmp_path / "lf-out")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("ROWS ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1][5:])


@pytest.mark.skipif(not os.path.exists(LF_PYTHON), reason="LLaMA-Factory's loader is not installed: run `make llamafactory` (CI always does)")
def test_llamafactory_loads_a_multi_turn_bundle_and_learns_every_reply(tmp_path, ws: Workspace):
    import_dataset(ws, mllm_demo(tmp_path / "src"), "demo")
    bundle = tmp_path / "bundle"
    export_dataset_files(ws, "demo", None, "sharegpt", bundle=bundle)
    rows = _llamafactory_rows(tmp_path, bundle, "demo")
    assert len(rows) == 3  # no record skipped as "abnormal"
    assert rows[0]["learned"] == ["They're Kane and Gretzka from Bayern Munich.<|im_end|>\n",
                                  "They are celebrating on the soccer field.<|im_end|>\n"]
    assert rows[2]["learned"] == ["Chinese astronaut Gui Haichao is giving a speech.<|im_end|>\n"]
    assert [len(r["images"]) for r in rows] == [2, 1, 1]
    assert all(Path(p).resolve().parent == (bundle / "images").resolve() for r in rows for p in r["images"])
    assert all(r["n_image_pad"] > 0 for r in rows)


@pytest.mark.skipif(not os.path.exists(LF_PYTHON), reason="LLaMA-Factory's loader is not installed: run `make llamafactory` (CI always does)")
def test_llamafactory_loads_a_llava_bundle_of_questions(tmp_path, ws: Workspace):
    info = import_dataset(ws, _items(tmp_path / "src", 3), "spatial")
    bundle = tmp_path / "bundle"
    export_dataset_files(ws, "spatial", Path("train.jsonl"), "llava", bundle=bundle)
    rows = _llamafactory_rows(tmp_path, bundle, "spatial")
    assert [r["learned"] for r in rows] == [[e["target"] + "<|im_end|>\n"] for e in read_examples(info.path)]
    assert all(len(r["images"]) == 1 and r["n_image_pad"] > 0 for r in rows)


# ------------------------------------------------------------------ the commands


def test_export_and_import_commands_say_what_they_wrote(tmp_path):
    from typer.testing import CliRunner

    from orienteer.tui.cli.main import app

    runner = CliRunner()
    root = str(tmp_path / "ws")
    imported = runner.invoke(app, ["-w", root, "dataset", "import", str(mllm_demo(tmp_path)), "--name", "demo"])
    assert imported.exit_code == 0, imported.output
    assert "imported dataset demo: 3 examples (2 multi-turn)" in imported.output
    bundle = tmp_path / "out" / "demo"
    done = runner.invoke(app, ["-w", root, "dataset", "export", "demo", "--format", "sharegpt", "--bundle", str(bundle)])
    assert done.exit_code == 0, done.output
    out = done.output
    assert f"wrote 3 examples to {bundle / 'demo.json'}" in out
    assert "3 image(s) (3 hard-linked, 0 copied)" in out
    assert f"dataset_info.json entry demo written to {bundle / 'dataset_info.json'}" in out
    again = runner.invoke(app, ["-w", root, "dataset", "export", "demo", "--format", "sharegpt", "--bundle", str(bundle)])
    assert again.exit_code == 2 and "is not empty; pass --force" in again.output
    neither = runner.invoke(app, ["-w", root, "dataset", "export", "demo"])
    assert neither.exit_code == 2 and "--bundle" in neither.output
