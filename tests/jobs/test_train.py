"""train: LoRA and full-llm steps on the tiny random Qwen2.5-VL, answer-only loss, kill and resume, reload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from orienteer.data.datasets import import_dataset
from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import ModelOutput
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobCancelled, JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.params import complete

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

LABELS = ("left", "right", "front", "back")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory) -> Path:
    """Six examples: coloured 64x64 images (one item with two frames), gold letters spread over A-D."""
    root = tmp_path_factory.mktemp("data")
    lines = []
    for i in range(6):
        frames = 2 if i == 5 else 1
        images = []
        for f in range(frames):
            path = root / f"img{i}_{f}.png"
            Image.new("RGB", (64 + 8 * f, 64), (40 * i, 255 - 30 * i, 90)).save(path)
            images.append(str(path))
        letter = "ABCD"[i % 4]
        lines.append(json.dumps({
            "item_id": f"ex{i}", "task": "Person perspective - Relative Direction",
            "question": f"From the perspective of the man {i}, where is the cup?",
            "options": dict(zip("ABCD", LABELS)), "answer": letter, "images": images,
            "target": f"{letter}. {LABELS['ABCD'.index(letter)]}", "origin": "original",
        }))
    path = root / "mini.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path, dataset_file) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    import_dataset(ws, dataset_file, "mini")
    return ws


def _ctx(ws: Workspace, tmp_path: Path, job: str, resume: Path, **params) -> JobContext:
    values = complete("train", get_kind("train").params, params)
    job_dir = tmp_path / job
    (job_dir / "outputs").mkdir(parents=True)
    return JobContext(job_id=job, kind="train", params=values, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=resume)


def _params(tiny_model: Path, **extra) -> dict:
    return {"model": str(tiny_model), "dataset": "mini", "batch_size": 2, "grad_accum": 1, "max_steps": 2,
            "lr": 1e-2, "save_every": 1, **extra}


def _metrics(ctx: JobContext) -> list[dict]:
    return [json.loads(line) for line in (ctx.job_dir / "metrics.jsonl").read_text().splitlines()]


def _load_base(tiny_model: Path):
    from orienteer.jobs.model.loading import load_model

    return load_model(str(tiny_model), device="cpu")


# --- set-up: what trains ---------------------------------------------------------------------------------


def test_lora_targets_language_model_projections_only(tiny_model):
    from orienteer.jobs.model.train import prepare_model, trainable_parameters

    model = prepare_model(_load_base(tiny_model).model, "lora", lora_r=4, lora_alpha=8)
    names = [n for n, _ in trainable_parameters(model)]
    assert names and all("lora_" in n and "language_model" in n for n in names)
    assert not any("visual" in n for n in names)
    wrapped = {n.rsplit(".lora_", 1)[0] for n in names}
    assert len(wrapped) == 2 * 7  # 2 layers x q,k,v,o,gate,up,down
    vision_linears = [n for n, _ in model.named_modules() if "visual" in n and n.endswith(("proj", "qkv"))]
    assert vision_linears and not any("lora" in n for n in vision_linears)


def test_full_llm_trains_the_language_model_and_freezes_vision_and_merger(tiny_model):
    from orienteer.jobs.model.train import prepare_model

    model = prepare_model(_load_base(tiny_model).model, "full-llm")
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert all(not g for n, g in grads.items() if ".visual." in f".{n}")  # tower and merger (projector)
    assert any("visual.merger" in n for n in grads)
    assert all(g for n, g in grads.items() if "language_model" in n or n.startswith("lm_head"))
    assert {n for n, g in grads.items() if g} == {n for n in grads if "language_model" in n or n.startswith("lm_head")}


def test_the_prompt_is_the_eval_prompt_and_only_the_reply_is_labelled(tiny_model, dataset_file):
    from orienteer.data.datasets import read_examples
    from orienteer.jobs.model.batching import encode_item
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.train import collate_train, encode_example, example_item, load_frames

    processor = _load_base(tiny_model).processor
    example = read_examples(dataset_file)[5]  # two frames
    frames = load_frames(example, "test")
    budget = PixelBudget()
    enc = encode_example(processor, example, frames, budget)
    evaluated = encode_item(processor, example_item(example), frames, "official", budget)
    n_prompt = int((enc.labels == -100).sum())
    assert torch.equal(enc.input_ids[:n_prompt], evaluated.input_ids)  # what eval feeds, token for token
    assert torch.equal(enc.pixel_values, evaluated.pixel_values)
    reply = processor.tokenizer.decode(enc.labels[n_prompt:])
    assert reply == example["target"] + "<|im_end|>"
    assert (enc.labels[:n_prompt] == -100).all() and (enc.labels[n_prompt:] != -100).all()
    batch = collate_train([enc, encode_example(processor, read_examples(dataset_file)[0], [], budget)], 0)
    assert batch["labels"].shape == batch["input_ids"].shape
    assert int((batch["labels"] != -100).sum()) == len(enc.labels) - n_prompt + len(
        processor.tokenizer(read_examples(dataset_file)[0]["target"] + "<|im_end|>")["input_ids"])


def _multi_turn_file(root: Path) -> Path:
    """LLaMA-Factory's ``data/mllm_demo.json`` shape (hiyouga/LLaMA-Factory main, 0.9.5): two user/assistant
    pairs, one image per user turn where its ``<image>`` token is, plus a two-turn record."""
    images = []
    for k in range(2):
        path = root / f"turn{k}.png"
        Image.new("RGB", (64, 56 + 8 * k), (30 + 90 * k, 200, 60)).save(path)
        images.append(str(path))
    records = [
        {"messages": [{"role": "system", "content": "Answer briefly."},
                      {"role": "user", "content": "<image>Who are they?"},
                      {"role": "assistant", "content": "Two football players."},
                      {"role": "user", "content": "And here?<image>"},
                      {"role": "assistant", "content": "The same two, celebrating."}], "images": images},
        {"messages": [{"role": "user", "content": "<image>Where is the cup?"},
                      {"role": "assistant", "content": "On the left."}], "images": images[:1]},
    ]
    path = root / "mllm_demo.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_multi_turn_examples_learn_every_assistant_turn_and_no_user_turn(tiny_model, tmp_path):
    from orienteer.data.datasets import read_examples
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.prompt import chat_text
    from orienteer.jobs.model.train import collate_train, encode_example, load_frames, turn_messages

    processor = _load_base(tiny_model).processor
    multi, single = read_examples(_multi_turn_file(tmp_path))
    frames = load_frames(multi, "test")
    budget = PixelBudget()
    enc = encode_example(processor, multi, frames, budget)
    learned = enc.labels != -100
    spans, current = [], []
    for token, keep in zip(enc.labels.tolist(), learned.tolist()):
        if keep:
            current.append(token)
        elif current:
            spans.append(processor.tokenizer.decode(current))
            current = []
    spans.append(processor.tokenizer.decode(current))
    assert spans == ["Two football players.<|im_end|>", "The same two, celebrating.<|im_end|>"]
    assert torch.equal(enc.labels[learned], enc.input_ids[learned])
    # the whole sequence is the chat template's rendering of the conversation, images where their tokens were
    whole = processor.tokenizer.decode(enc.input_ids)
    rendered = chat_text(processor, turn_messages(multi, 2), add_generation_prompt=False)
    assert whole.replace("<|image_pad|>", "") == rendered.replace("<|image_pad|>", "").rstrip("\n")
    assert whole.index("Who are they?") < whole.index("And here?")
    second = whole[whole.rindex("<|im_start|>user", 0, whole.index("And here?")):whole.index("And here?")]
    assert second.startswith("<|im_start|>user\n<|vision_start|><|image_pad|>")  # image 2: the second user turn
    assert int(enc.mm_token_type_ids.sum()) == int(enc.image_grid_thw.prod(-1).sum()) // 4
    assert enc.pixel_values.shape[0] == int(enc.image_grid_thw.prod(-1).sum())
    # a two-turn record trains as before: the eval prompt, then the reply
    two = encode_example(processor, single, load_frames(single, "test"), budget)
    assert processor.tokenizer.decode(two.labels[two.labels != -100]) == "On the left.<|im_end|>"
    batch = collate_train([enc, two], 0)
    assert int((batch["labels"] != -100).sum()) == int(learned.sum()) + int((two.labels != -100).sum())


def test_a_train_job_runs_on_an_imported_multi_turn_dataset(tmp_path, tiny_model):
    ws = Workspace(tmp_path / "ws")
    info = import_dataset(ws, _multi_turn_file(tmp_path), "chat")
    assert info.composition["multi_turn"] == 1
    ctx = _ctx(ws, tmp_path, "job-chat", tmp_path / "resume", **_params(tiny_model, dataset="chat", name="chat-lora",
                                                                          max_steps=1))
    get_kind("train").run(ctx)
    [metric] = _metrics(ctx)
    assert metric["step"] == 1 and metric["loss"] > 0


def test_plan_is_a_function_of_seed_and_epoch():
    from orienteer.jobs.model.train import TrainConfig, plan_steps

    cfg = TrainConfig(model="m", epochs=2, batch_size=2, grad_accum=2, seed=3)
    plan = plan_steps(7, cfg)
    assert plan == plan_steps(7, cfg)
    assert len(plan) == 2 * 2  # 4 micro-batches per epoch, 2 per step
    for epoch in (plan[:2], plan[2:]):
        assert sorted(i for step in epoch for mb in step for i in mb) == list(range(7))
    assert plan_steps(7, TrainConfig(model="m", epochs=2, batch_size=2, grad_accum=2, seed=3, max_steps=3)) == plan[:3]
    assert plan != plan_steps(7, TrainConfig(model="m", epochs=2, batch_size=2, grad_accum=2, seed=4))


# --- the kind ---------------------------------------------------------------------------------------------


def _adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_two_lora_steps_register_an_adapter_that_eval_loads(ws, tmp_path, tiny_model):
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", **_params(tiny_model, name="tiny-lora"))
    get_kind("train").run(ctx)
    [out] = ctx.outputs
    assert isinstance(out, ModelOutput)
    assert (out.name, out.path, out.method, out.base_model) == ("tiny-lora", "model", "lora", str(tiny_model.resolve()))
    folder = ctx.out_dir / "model"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model.resolve())
    assert json.loads((folder / "orienteer-train.json").read_text())["steps"] == 2
    metrics = _metrics(ctx)
    assert [m["step"] for m in metrics] == [1, 2] and all(m["loss"] > 0 and "lr" in m for m in metrics)
    progress = [json.loads(x) for x in (ctx.job_dir / "progress.jsonl").read_text().splitlines()]
    assert progress[-1]["done"] == 2 and progress[-1]["total"] == 2 and progress[-1]["unit"] == "steps"
    lora_b = [v for k, v in _adapter_weights(folder).items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it trained

    from orienteer.data.datasets import read_examples
    from orienteer.jobs.model.batching import collate, encode_item, to_device
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.score import score_batch
    from orienteer.jobs.model.train import example_item, load_frames

    trained = load_model(str(folder), device="cpu")  # the adapter folder, as the next eval gets it
    base = _load_base(tiny_model)
    assert trained.adapter == str(folder.resolve()) and trained.random_weights
    example = read_examples(ws.root / "datasets" / "mini.jsonl")[0]
    item = example_item(example)
    batch = collate([encode_item(trained.processor, item, load_frames(example, "t"))], trained.tokenizer.pad_token_id)
    [after] = score_batch(trained.model, to_device(batch, "cpu"), [["A", "B", "C", "D"]], trained.tokenizer)
    [before] = score_batch(base.model, to_device(batch, "cpu"), [["A", "B", "C", "D"]], base.tokenizer)
    assert after.letter in "ABCD" and abs(sum(after.probs.values()) - 1) < 1e-4
    assert after.probs != before.probs


def test_eval_bench_adds_a_run_and_a_rerun_does_not_train_again(ws, tmp_path, tiny_model, dataset_file):
    from orienteer.data.datasets import read_examples
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.job_outputs import RunOutput
    from orienteer.jobs.api import submit

    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({k: ex[k] for k in ("item_id", "task", "question", "options", "answer", "images")})
                             + "\n" for ex in read_examples(dataset_file)), encoding="utf-8")
    import_benchmark(ws, bench, "minibench", images=dataset_file.parent)
    params = _params(tiny_model, name="m", eval_bench="minibench", eval_items="limit:3")
    # the dataset IS the benchmark: refused before a job exists, and by the job itself before any training
    with pytest.raises(OrienteerError, match=r"dataset 'mini' overlaps benchmark 'minibench' in 6 example item\(s\) "
                                             r"\(6 by item id; 6 by image: 'ex0', 'ex1', 'ex2', 'ex3', 'ex4', \.\.\. "
                                             r"\(6 in all\)\)"):
        submit(ws, "train", dict(params))
    assert not (ws.root / "jobs").exists() or not any((ws.root / "jobs").iterdir())
    refused = _ctx(ws, tmp_path, "job0", tmp_path / "resume0", **params)
    with pytest.raises(OrienteerError, match="--allow-overlap"):
        get_kind("train").run(refused)
    assert not (tmp_path / "resume0").exists() and not refused.outputs

    params["allow_overlap"] = True
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", **params)
    get_kind("train").run(ctx)
    model_out, run_out = ctx.outputs
    assert isinstance(model_out, ModelOutput) and isinstance(run_out, RunOutput)
    assert (run_out.name, run_out.bench, run_out.parser) == ("m-minibench", "minibench", "viewspatial")
    assert run_out.config["allow_overlap"] is True and run_out.config["trained_on"] == "mini"
    assert run_out.config["overlap"] == {"dataset": "mini", "bench": "minibench", "items": 6, "item_id": 6,
                                         "parent_item_id": 0, "image": 6, "built_from": [],
                                         "first": ["ex0", "ex1", "ex2", "ex3", "ex4"]}
    # scoring that model on the benchmark again, outside the train job, is refused the same way
    eval_kind = get_kind("eval")
    spec = {"model": str(ctx.out_dir / "model"), "bench": "minibench", "run": "again"}
    with pytest.raises(OrienteerError, match=r"model .*/model was trained on dataset 'mini' overlaps benchmark 'minibench'"):
        eval_kind.preflight(ws, eval_kind.make_spec(spec))
    eval_kind.preflight(ws, eval_kind.make_spec({**spec, "allow_overlap": True}))
    lines = [json.loads(x) for x in (ctx.out_dir / run_out.predictions_file).read_text().splitlines()]
    assert [x["item_id"] for x in lines] == ["ex0", "ex1", "ex2"] and all(x["reply"] in "ABCD" for x in lines)

    again = _ctx(ws, tmp_path, "job2", tmp_path / "resume", **params)  # same spec, same resume folder
    get_kind("train").run(again)
    assert not (again.job_dir / "metrics.jsonl").exists()  # nothing trained again
    assert (again.out_dir / "model" / "adapter_model.safetensors").read_bytes() == (
        ctx.out_dir / "model" / "adapter_model.safetensors").read_bytes()
    assert [type(o) for o in again.outputs] == [ModelOutput, RunOutput]


def test_two_full_llm_steps_save_a_model_with_vision_untouched(ws, tmp_path, tiny_model):
    ctx = _ctx(ws, tmp_path, "job1", tmp_path / "resume", **_params(tiny_model, method="full-llm", lr=1e-3))
    get_kind("train").run(ctx)
    [out] = ctx.outputs
    assert out.name == "job1" and out.method == "full-llm"
    folder = ctx.out_dir / "model"
    assert (folder / "config.json").is_file() and (folder / "processor_config.json").is_file()
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.tiny import is_random_weights

    assert is_random_weights(folder)
    trained = load_model(str(folder), device="cpu").model.state_dict()
    base = _load_base(tiny_model).model.state_dict()
    vision = [k for k in base if "visual" in k]
    language = [k for k in base if "language_model" in k and "layers" in k]
    assert vision and all(torch.equal(trained[k], base[k]) for k in vision)
    assert sum(not torch.equal(trained[k], base[k]) for k in language) == len(language)


def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(ws, tmp_path, tiny_model):
    kind = get_kind("train")
    params = _params(tiny_model, name="r")
    resume = tmp_path / "resume"

    first = _ctx(ws, tmp_path, "job1", resume, **params)
    metric = first.metric

    def stop_after_step_one(**values):
        metric(**values)
        if values.get("step") == 1:
            first.request_stop()

    first.metric = stop_after_step_one
    with pytest.raises(JobCancelled, match="step 1"):
        kind.run(first)
    assert not first.outputs and [m["step"] for m in _metrics(first)] == [1]
    assert (resume / "checkpoints" / "step-00000001" / "COMPLETE").is_file()
    (resume / "checkpoints" / "step-00000002.tmp").mkdir()  # a save torn by a kill is ignored

    second = _ctx(ws, tmp_path, "job2", resume, **params)
    kind.run(second)
    assert [m["step"] for m in _metrics(second)] == [2]  # continued at step 2

    straight = _ctx(ws, tmp_path, "job3", tmp_path / "resume-straight", **params)
    kind.run(straight)
    resumed = _adapter_weights(second.out_dir / "model")
    uninterrupted = _adapter_weights(straight.out_dir / "model")
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.allclose(resumed[key], uninterrupted[key], atol=1e-6), key
    assert _metrics(second)[0]["loss"] == pytest.approx(_metrics(straight)[1]["loss"], rel=1e-5)


def test_bad_inputs_are_one_line_errors(ws, tmp_path, tiny_model):
    from orienteer.data.errors import OrienteerError

    kind = get_kind("train")
    with pytest.raises(OrienteerError, match="no dataset named 'nope'"):
        kind.run(_ctx(ws, tmp_path, "j1", tmp_path / "r1", **_params(tiny_model, dataset="nope")))
    with pytest.raises(OrienteerError, match="at least 1"):
        kind.run(_ctx(ws, tmp_path, "j2", tmp_path / "r2", **_params(tiny_model, batch_size=0)))
    with pytest.raises(OrienteerError, match="cannot load|no such folder|not a hub id"):
        kind.run(_ctx(ws, tmp_path, "j3", tmp_path / "r3", **_params(tiny_model, model=str(tmp_path / "missing"))))


def test_training_sizes_frames_as_the_eval_that_scores_it(tiny_model, tmp_path):
    from orienteer.jobs.kinds.train import TrainSpec, train_config, train_resize
    from orienteer.jobs.model.images import frame_sizing
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.train import encode_example

    base = {"model": str(tiny_model), "dataset": "mini"}
    assert train_config(TrainSpec(**base)).resize == "upstream"  # the official eval prompt: evaluate.py's sizing
    assert train_resize(TrainSpec(**base, eval_prompt="think")) == "budget"
    assert train_resize(TrainSpec(**base, max_pixels=28 * 28 * 16)) == "budget"
    with pytest.raises(OrienteerError, match="give one or the other"):
        train_resize(TrainSpec(**base, resize="upstream", max_pixels=28 * 28 * 16))
    image = Image.new("RGB", (640, 480), (10, 20, 30))
    example = {"item_id": "x", "question": "Where?", "options": {"A": "left", "B": "right"}, "answer": "A",
               "target": "A. left", "images": ["x.png"]}
    processor = load_model(str(tiny_model)).processor
    encoded = encode_example(processor, example, [image], frame_sizing("upstream"))
    assert encoded.image_grid_thw.tolist() == [[1, 28, 40]]  # 392 x 560 processed, as the upstream eval feeds it
