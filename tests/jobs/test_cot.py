"""cot: the filter keeps exactly the rationales whose final answer is right; the kind writes a trainable dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from orienteer.core.answers import viewspatial_letter
from orienteer.data.datasets import import_dataset, read_examples
from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import DatasetOutput, ModelOutput
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.model.cot import (KEPT, NO_RATIONALE, NOT_CHOICE, UNPARSED, WRONG, filter_rationales,
                                      is_answer_line, judge, split_rationale)
from orienteer.jobs.params import complete

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OPTIONS = {"A": "left", "B": "right", "C": "front", "D": "back"}

# (reply, gold, expected status): every way a teacher reply can go.
CRAFTED = [
    ("The man faces the camera, so his left is our right.\nAnswer: B", "B", KEPT),
    ("The man faces the camera, so his left is our right.\nAnswer: B", "A", WRONG),
    ("He looks away from us; the cup is on his left.\nThe answer is (A) left.", "A", KEPT),
    ("He looks away from us; the cup is on his left.\nA\n\n", "A", KEPT),  # trailing blank lines
    ("Reasoning... so it must be C", "C", KEPT),  # a one-line reply whose last line carries the letter
    ("I think the answer is B.\nBut I am not sure.", "B", UNPARSED),  # the official parser reads the LAST line
    ("The cup is behind him.\nAnswer: D. back", "D", KEPT),
    ("Answer: C", "C", NO_RATIONALE),  # right, but no reasoning to learn
    ("(C) front", "C", NO_RATIONALE),
    ("", "A", UNPARSED),
    ("Looking at the image, the option is E.", "A", UNPARSED),
    ("Step 1: find the cup.\nStep 2: it is in front.\nFinal answer: C", "D", WRONG),
]


@pytest.mark.parametrize("reply, gold, status", CRAFTED)
def test_each_reply_is_judged(reply, gold, status):
    judged = judge("x", reply, gold, OPTIONS)
    assert judged.status == status
    if status == KEPT:
        assert viewspatial_letter(judged.target) == gold  # what the student's eval parser will read
        assert judged.target.split("\n")[-1] == f"Answer: {gold}"
        assert judged.target.count("Answer:") == 1


def test_filter_keeps_exactly_the_right_rationales_and_counts_them():
    report = filter_rationales([(f"i{k}", reply, gold, OPTIONS) for k, (reply, gold, _) in enumerate(CRAFTED)]
                               + [("free", "whatever", None, {})])
    assert [j.status for j in report.judged] == [s for _, _, s in CRAFTED] + [NOT_CHOICE]
    kept = [j.item_id for j in report.judged if j.status == KEPT]
    assert kept == ["i0", "i2", "i3", "i4", "i6"]
    assert report.n_items == 13 and report.n_kept == 5
    assert report.kept_share == pytest.approx(5 / 13)
    composition = report.composition()
    assert composition["n_kept"] == 5 and composition["n_wrong"] == 2 and composition["n_unparsed"] == 3
    assert composition["n_no_rationale"] == 2 and composition["n_not_multiple_choice"] == 1


def test_rationale_drops_only_an_answer_only_last_line():
    assert split_rationale("Because X.\nAnswer: B", "B", OPTIONS) == "Because X."
    assert split_rationale("Because X, the cup is right, B", "B", OPTIONS) == "Because X, the cup is right, B"
    assert is_answer_line("**Final answer: (B) right**", "B", OPTIONS)
    assert not is_answer_line("The cup is on the right side, B", "B", OPTIONS)


# --- the kind --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A training dataset of 5 examples (one repeated, one free-form) with real image files."""
    root = tmp_path / "data"
    root.mkdir()
    lines = []
    for i in range(4):
        path = root / f"img{i}.png"
        Image.new("RGB", (64, 64), (50 * i, 120, 200 - 40 * i)).save(path)
        letter = "ABCD"[i]
        lines.append({"item_id": f"ex{i}", "task": "Person perspective - Relative Direction",
                      "question": f"From the perspective of the man {i}, where is the cup?", "options": OPTIONS,
                      "answer": letter, "images": [str(path)], "target": f"{letter}. {OPTIONS[letter]}"})
    lines.append(dict(lines[1]))  # over-sampled: asked once
    lines.append({"item_id": "free", "question": "Describe the picture.", "options": {}, "answer": None,
                  "images": [str(root / "img0.png")], "target": "A room."})
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    import_dataset(ws, path, "base")
    return ws


def _ctx(ws: Workspace, tmp_path: Path, job: str, resume: Path, **params) -> JobContext:
    values = complete("cot", get_kind("cot").params, params)
    job_dir = tmp_path / job
    (job_dir / "outputs").mkdir(parents=True)
    return JobContext(job_id=job, kind="cot", params=values, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=resume)


REPLIES = {  # what the stand-in teacher says, by gold letter
    "A": "He faces away from the camera, so his left is our left.\nAnswer: A",
    "B": "He faces the camera, the cup is at his left.\nAnswer: A",  # wrong
    "C": "The cup is ahead of him.\nThe answer is (C) front.",
    "D": "no idea",  # unparsed
}


class StandIn:
    """Replies by the gold letter read off the prompt's item; records the batches it was given."""

    def __init__(self, items_by_question: dict[str, str], fail_after: int | None = None) -> None:
        self.items = items_by_question
        self.calls: list[int] = []
        self.fail_after = fail_after

    def __call__(self, model, batch, tokenizer, max_new_tokens):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        assert batch["input_ids"].shape[0] == batch["attention_mask"].shape[0] and "pixel_values" in batch
        self.calls.append(int(batch["input_ids"].shape[0]))
        texts = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=False)
        out = []
        for text in texts:
            assert "Think step by step about the viewpoint" in text  # the teacher gets the think prompt
            gold = next(letter for q, letter in self.items.items() if q in text)
            out.append(REPLIES[gold])
        return out


def _questions(ws: Workspace) -> dict[str, str]:
    return {ex["question"]: ex["answer"] for ex in read_examples(ws.root / "datasets" / "base.jsonl") if ex["answer"]}


def test_cot_writes_the_kept_rationales_as_a_trainable_dataset(ws, tmp_path, tiny_model):
    teacher = StandIn(_questions(ws))
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="cot1", dataset="base",
               batch_size=3, max_new_tokens=8)
    get_kind("cot").load().run(ctx, generate=teacher)
    assert teacher.calls == [3, 1]  # four distinct multiple-choice items
    [out] = ctx.outputs
    assert isinstance(out, DatasetOutput) and (out.name, out.file) == ("cot1", "dataset.jsonl")
    c = out.composition
    assert (c["n_items"], c["n_kept"], c["kept_share"], c["n_wrong"], c["n_unparsed"]) == (4, 2, 0.5, 1, 1)
    assert c["teacher"] == str(tiny_model) and c["prompt"] == "think" and c["n_free_form_skipped"] == 1
    examples = read_examples(ctx.out_dir / "dataset.jsonl")
    assert [e["item_id"] for e in examples] == ["ex0", "ex2"]
    assert all(e["origin"] == "cot" and Path(e["images"][0]).is_file() for e in examples)
    assert examples[0]["target"] == "He faces away from the camera, so his left is our left.\nAnswer: A"
    assert examples[1]["target"] == "The cup is ahead of him.\nAnswer: C"
    assert all(viewspatial_letter(e["target"]) == e["answer"] for e in examples)
    assert examples[1]["rationale"] == REPLIES["C"]
    judged = [json.loads(x) for x in (ctx.out_dir / "teacher_replies.jsonl").read_text().splitlines()]
    assert [j["status"] for j in judged] == ["kept", "wrong", "kept", "unparsed"]

    # The dataset trains with the teacher's prompt (prompt_suffix), through the train kind.
    from orienteer.data.datasets import example_from_item  # noqa: F401 - same module the kind uses
    from orienteer.data.formats.sharegpt import example_prompt
    from orienteer.jobs.model.prompt import prompt_text
    from orienteer.jobs.model.train import example_item

    assert example_prompt(examples[0]) == prompt_text(example_item(examples[0]), "think")
    import_dataset(ws, ctx.out_dir / "dataset.jsonl", "cot1")
    values = complete("train", get_kind("train").params, {"model": str(tiny_model), "dataset": "cot1",
                                                          "batch_size": 2, "grad_accum": 1, "max_steps": 1})
    job = tmp_path / "train"
    (job / "outputs").mkdir(parents=True)
    train_ctx = JobContext(job_id="train", kind="train", params=values, workspace=ws, job_dir=job,
                           out_dir=job / "outputs", resume_dir=tmp_path / "train-resume")
    get_kind("train").load().run(train_ctx)
    assert isinstance(train_ctx.outputs[0], ModelOutput)


def test_a_killed_cot_job_asks_the_teacher_only_for_the_rest(ws, tmp_path, tiny_model):
    kind = get_kind("cot").load()
    params = {"teacher": str(tiny_model), "name": "cot1", "dataset": "base", "batch_size": 2, "max_new_tokens": 8}
    with pytest.raises(KeyboardInterrupt):
        kind.run(_ctx(ws, tmp_path, "job1", tmp_path / "resume", **params), generate=StandIn(_questions(ws), 1))
    again = StandIn(_questions(ws))
    ctx = _ctx(ws, tmp_path, "job2", tmp_path / "resume", **params)
    kind.run(ctx, generate=again)
    assert again.calls == [2]  # the first batch was answered before the kill
    assert ctx.outputs[0].composition["n_kept"] == 2


def test_the_real_tiny_teacher_end_to_end(ws, tmp_path, tiny_model):
    """Random weights: the plumbing (load, encode, generate, parse, record) runs; what it keeps is chance."""
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="cot1", dataset="base",
               max_new_tokens=6)
    try:
        get_kind("cot").load().run(ctx)
    except OrienteerError as exc:
        assert "none of the teacher's 4 replies" in str(exc)
        assert not ctx.outputs
    else:
        assert ctx.outputs[0].composition["n_kept"] >= 1
    judged = [json.loads(x) for x in (ctx.out_dir / "teacher_replies.jsonl").read_text().splitlines()]
    assert [j["item_id"] for j in judged] == ["ex0", "ex1", "ex2", "ex3"]
    assert all(isinstance(j["reply"], str) for j in judged)
    for j in judged:
        assert j["status"] == judge(j["item_id"], j["reply"], j["gold"], OPTIONS).status


def test_source_must_be_one_of_dataset_or_bench(ws, tmp_path, tiny_model):
    with pytest.raises(OrienteerError, match="exactly one of --dataset"):
        get_kind("cot").load().run(_ctx(ws, tmp_path, "j", tmp_path / "r", teacher=str(tiny_model), name="x"))
