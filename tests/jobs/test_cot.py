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
from orienteer.jobs.model.cot import (
    KEPT,
    NO_RATIONALE,
    NOT_CHOICE,
    UNPARSED,
    WRONG,
    filter_rationales,
    is_answer_line,
    judge,
    split_rationale,
)
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


TASKS = ("Person perspective - Relative Direction", "Camera perspective - Relative Direction")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A training dataset of 6 examples (one repeated, one free-form) with real image files; ex0 and ex1
    are of one task, ex2 and ex3 of another."""
    root = tmp_path / "data"
    root.mkdir()
    lines = []
    for i in range(4):
        path = root / f"img{i}.png"
        Image.new("RGB", (64, 64), (50 * i, 120, 200 - 40 * i)).save(path)
        letter = "ABCD"[i]
        lines.append({"item_id": f"ex{i}", "task": TASKS[i // 2],
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

    def __call__(self, model, batch, tokenizer, max_new_tokens, temperature=None, seed=None):
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
    get_kind("cot").run(ctx, generate=teacher)
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

    assert all(e["prompt"] == "think" and "prompt_suffix" not in e for e in examples)
    assert c["benches"] == []  # the source dataset's examples name no benchmark

    # The dataset trains with the teacher's prompt (by name), through the train kind.
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
    get_kind("train").run(train_ctx)
    assert isinstance(train_ctx.outputs[0], ModelOutput)


def test_a_killed_cot_job_asks_the_teacher_only_for_the_rest(ws, tmp_path, tiny_model):
    kind = get_kind("cot")
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
        get_kind("cot").run(ctx)
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
        get_kind("cot").run(_ctx(ws, tmp_path, "j", tmp_path / "r", teacher=str(tiny_model), name="x"))


# --- rationalize, majority of K, per-task composition, resume with samples ------------------------------

THINK = "Think step by step about the viewpoint, then give the final answer"


def test_rationalize_text_gives_the_teacher_the_gold_option():
    from orienteer.jobs.model.cot import rationalize_text
    from orienteer.jobs.model.prompt import prompt_text
    from orienteer.jobs.model.train import example_item

    item = example_item({"item_id": "x", "task": "t", "question": "Where is the cup?", "options": OPTIONS,
                         "answer": "B", "images": []})
    text = rationalize_text(item)
    plain = prompt_text(item, "think")
    assert text.startswith(plain.split(THINK)[0])  # the same question and choices as the student's prompt
    assert "\nThe correct answer is B. right. Explain step by step" in text and THINK not in text
    assert text.split("\n")[-1].endswith("give the final answer as the option letter on the last line.")


class Scripted:
    """A teacher whose answers are fixed per call: ``script[gold][sample]``. The sample number is read
    off the call's seed (``call_seed(seed, batch, sample)``: the kind's plan), so a resumed job gets the
    same answers as an uninterrupted one; the prompts and seeds it saw are recorded."""

    def __init__(self, ws: Workspace, script: dict[str, list[str]], samples: int, fail_after: int | None = None,
                 seed: int = 0) -> None:
        from orienteer.jobs.kinds.cot import call_seed

        self.golds = _questions(ws)
        self.script = script
        self.sample_of = {call_seed(seed, b, k): k for b in range(8) for k in range(samples)}
        self.fail_after = fail_after
        self.calls: list[tuple[int, int, float | None]] = []  # rows, seed, temperature
        self.prompts: list[str] = []

    def __call__(self, model, batch, tokenizer, max_new_tokens, temperature=None, seed=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls.append((int(batch["input_ids"].shape[0]), seed, temperature))
        k = self.sample_of[seed]
        out = []
        for text in tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=False):
            self.prompts.append(text)
            gold = next(letter for q, letter in self.golds.items() if q in text)
            out.append(self.script[gold][k])
        return out


MAJORITY = {  # gold letter -> the teacher's 4 samples
    "A": ["Answer: A",  # right but no rationale: not the one kept
          "He faces us.\nAnswer: B",
          "He faces away, his left is ours.\nAnswer: A",
          "Same side as ours.\nAnswer: A"],  # 3 of 4: kept, with sample 2's rationale
    "B": ["His left is our right.\nAnswer: B", "So B", "Answer: A", "no idea"],  # 2 of 4: exactly half, dropped
    "C": ["Ahead of him.\nAnswer: C"] * 4,  # 4 of 4
    "D": ["hmm"] * 4,  # 0 of 4
}


def test_majority_of_k_samples_and_the_per_task_composition(ws, tmp_path, tiny_model):
    teacher = Scripted(ws, MAJORITY, samples=4)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="cot4", dataset="base",
               samples=4, batch_size=3, max_new_tokens=8)
    get_kind("cot").run(ctx, generate=teacher)
    from orienteer.jobs.kinds.cot import call_seed

    # batch 0 (ex0-ex2) then batch 1 (ex3), each asked 4 times, sampled at the default 0.7, seeded per call
    assert teacher.calls == [(3, call_seed(0, 0, k), 0.7) for k in range(4)] + [(1, call_seed(0, 1, k), 0.7)
                                                                               for k in range(4)]
    examples = read_examples(ctx.out_dir / "dataset.jsonl")
    assert [e["item_id"] for e in examples] == ["ex0", "ex2"]
    assert examples[0]["target"] == "He faces away, his left is ours.\nAnswer: A"
    assert examples[0]["rationale"] == MAJORITY["A"][2]
    c = ctx.outputs[0].composition
    assert (c["mode"], c["samples"], c["temperature"], c["seed"]) == ("solve", 4, 0.7, 0)
    assert (c["n_items"], c["n_kept"], c["n_no_majority"]) == (4, 2, 2)
    assert c["agreement"] == pytest.approx((0.75 + 0.5 + 1 + 0) / 4)
    assert c["tasks"] == {TASKS[0]: {"tried": 2, "kept": 1, "agreement": 0.625},
                          TASKS[1]: {"tried": 2, "kept": 1, "agreement": 0.5}}
    lines = [json.loads(x) for x in (ctx.out_dir / "teacher_replies.jsonl").read_text().splitlines()]
    assert len(lines) == 16 and [(x["item_id"], x["sample"]) for x in lines[:4]] == [("ex0", k) for k in range(4)]
    assert [x["used"] for x in lines[:4]] == [False, False, True, False]
    assert [x["letter"] for x in lines[4:8]] == ["B", "B", "A", None]
    assert {x["status"] for x in lines[4:8]} == {"no_majority"}


def test_one_sample_is_greedy_and_judged_as_before(ws, tmp_path, tiny_model):
    teacher = Scripted(ws, {g: [r] for g, r in REPLIES.items()}, samples=1)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="cot1", dataset="base",
               max_new_tokens=8)
    get_kind("cot").run(ctx, generate=teacher)
    assert [t for _, _, t in teacher.calls] == [None]  # greedy
    c = ctx.outputs[0].composition
    assert (c["n_kept"], c["n_wrong"], c["n_unparsed"], c["n_no_majority"]) == (2, 1, 1, 0)
    assert c["tasks"][TASKS[0]] == {"tried": 2, "kept": 1, "agreement": 0.5}  # ex0 right, ex1 wrong


def test_rationalize_prompts_the_teacher_with_the_gold_and_the_student_without(ws, tmp_path, tiny_model):
    from orienteer.data.formats.sharegpt import example_prompt
    from orienteer.jobs.model.prompt import prompt_text
    from orienteer.jobs.model.train import example_item

    explain = {g: [f"Seen from him, the cup is on the {label} side.\nAnswer: {g}"] for g, label in OPTIONS.items()}
    explain["D"] = ["I would rather say front.\nAnswer: C"]  # a teacher that does not follow the hint is not kept
    teacher = Scripted(ws, explain, samples=1)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="why", dataset="base",
               mode="rationalize", max_new_tokens=8)
    get_kind("cot").run(ctx, generate=teacher)
    golds = _questions(ws)
    for text in teacher.prompts:
        gold = next(letter for q, letter in golds.items() if q in text)
        assert f"The correct answer is {gold}. {OPTIONS[gold]}. Explain step by step" in text and THINK not in text
    examples = read_examples(ctx.out_dir / "dataset.jsonl")
    assert [e["item_id"] for e in examples] == ["ex0", "ex1", "ex2"]
    for example in examples:
        student = example_prompt(example)
        assert student == prompt_text(example_item(example), "think")  # the plain prompt, no gold in it
        assert "correct answer" not in student and THINK in student
        assert example["target"].endswith(f"\nAnswer: {example['answer']}")
    c = ctx.outputs[0].composition
    assert c["mode"] == "rationalize" and c["n_kept"] == 3 and c["n_wrong"] == 1 and "gold" in c["teacher_prompt"]
    assert c["tasks"][TASKS[1]] == {"tried": 2, "kept": 1, "agreement": 0.5}


def test_a_killed_sampled_job_resumes_with_each_sample_recorded(ws, tmp_path, tiny_model):
    kind = get_kind("cot")
    params = {"teacher": str(tiny_model), "name": "cot3", "dataset": "base", "batch_size": 3, "samples": 3,
              "temperature": 1.1, "seed": 5, "max_new_tokens": 8}
    script = {g: MAJORITY[g][:3] for g in "ABCD"}
    straight = Scripted(ws, script, samples=3, seed=5)
    whole = _ctx(ws, tmp_path, "whole", tmp_path / "resume-whole", **params)
    kind.run(whole, generate=straight)

    with pytest.raises(KeyboardInterrupt):  # killed after batch 0's samples 0 and 1
        kind.run(_ctx(ws, tmp_path, "job1", tmp_path / "resume", **params), generate=Scripted(ws, script, 3, 2, seed=5))
    recorded = [json.loads(x) for x in (tmp_path / "resume" / "teacher_replies.jsonl").read_text().splitlines()]
    assert [(r["item_id"], r["sample"]) for r in recorded] == [(f"ex{i}", k) for k in range(2) for i in range(3)]
    again = Scripted(ws, script, samples=3, seed=5)
    ctx = _ctx(ws, tmp_path, "job2", tmp_path / "resume", **params)
    kind.run(ctx, generate=again)
    assert again.calls == straight.calls[2:]  # only the rest: batch 0's sample 2, then batch 1
    assert all(t == 1.1 for _, _, t in again.calls)
    assert (ctx.out_dir / "dataset.jsonl").read_text() == (whole.out_dir / "dataset.jsonl").read_text()
    assert ctx.outputs[0].composition == whole.outputs[0].composition


def test_the_real_tiny_teacher_sampled_is_reproducible_and_resumable(ws, tmp_path, tiny_model):
    """Real sampled decoding: the same spec draws the same replies, and a kill in the middle does not change them."""
    from orienteer.jobs.model.generate import generate_replies

    kind = get_kind("cot")
    params = {"teacher": str(tiny_model), "name": "s", "dataset": "base", "batch_size": 4, "samples": 3,
              "max_new_tokens": 6}

    def replies(ctx: JobContext) -> list[tuple[str, int, str]]:
        lines = [json.loads(x) for x in (ctx.out_dir / "teacher_replies.jsonl").read_text().splitlines()]
        return [(x["item_id"], x["sample"], x["reply"]) for x in lines]

    def attempt(job: str, resume: Path, fail_after: int | None = None) -> JobContext:
        calls = []

        def generate(*args, **kwargs):
            if fail_after is not None and len(calls) >= fail_after:
                raise KeyboardInterrupt("killed")
            calls.append(kwargs["seed"])
            return generate_replies(*args, **kwargs)

        ctx = _ctx(ws, tmp_path, job, resume, **params)
        try:
            kind.run(ctx, generate=generate)
        except OrienteerError as exc:  # random weights: nothing may reach a majority
            assert "no item had more than half of its 3 samples" in str(exc)
        return ctx

    first, second = attempt("a", tmp_path / "ra"), attempt("b", tmp_path / "rb")
    assert replies(first) == replies(second)
    assert len({r for _, _, r in replies(first)}) > 1  # sampled: not one greedy reply repeated
    with pytest.raises(KeyboardInterrupt):
        attempt("c1", tmp_path / "rc", fail_after=1)
    assert replies(attempt("c2", tmp_path / "rc")) == replies(first)


def test_bad_sampling_settings_are_refused_before_a_job_is_made():
    from orienteer.jobs.kinds.cot import CotSpec, check

    with pytest.raises(OrienteerError, match="--samples must be at least 1"):
        check(CotSpec(teacher="t", name="n", samples=0))
    with pytest.raises(OrienteerError, match="--temperature must be 0 or more"):
        check(CotSpec(teacher="t", name="n", temperature=-0.5))


def test_a_cot_set_built_from_a_benchmark_remembers_it_and_train_refuses_that_benchmark(ws, tmp_path, tiny_model):
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.overlap import check_dataset_against

    source = [e for e in read_examples(ws.root / "datasets" / "base.jsonl") if e["answer"]][:4]
    bench_file = tmp_path / "b.jsonl"
    bench_file.write_text("".join(json.dumps({k: e[k] for k in ("item_id", "task", "question", "options", "answer",
                                                                 "images")}) + "\n" for e in source), encoding="utf-8")
    import_benchmark(ws, bench_file, "testset", images=tmp_path)
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", teacher=str(tiny_model), name="cot-b", bench="testset",
               max_new_tokens=8)
    get_kind("cot").run(ctx, generate=StandIn(_questions(ws)))
    [out] = ctx.outputs
    assert out.composition["benches"] == ["testset"]
    examples = read_examples(ctx.out_dir / "dataset.jsonl")
    assert examples and all(e["bench"] == "testset" for e in examples)
    import_dataset(ws, ctx.out_dir / "dataset.jsonl", "cot-b")
    with pytest.raises(OrienteerError, match=r"overlaps benchmark 'testset' in 2 example item\(s\).*built from 'testset'"):
        check_dataset_against(ws, "cot-b", "testset")
