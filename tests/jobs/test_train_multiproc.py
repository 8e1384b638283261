"""train --gpus 2 on the CPU (two torchrun ranks, gloo): the same steps as one process with the same global
batch, a cancelled run that resumes where it stopped, and --strategy checks.

Tolerances: the two-process step feeds the very micro-batches of the one-process step (batch 2 x 2
processes vs batch 2 x accumulation 2), so the only differences are float32 rounding: the gradients
are summed in another order (gloo's all-reduce instead of accumulation) and each rank multiplies with
its own thread count. That is ~1e-7 relative per step; the losses are compared to 1e-5 relative and
the adapter weights to 1e-5 absolute after four Adam steps at lr 1e-2 (Adam divides by the gradient's
size, so a rounding difference can move a weight by up to ~lr x 1e-6 per step; 1e-5 leaves room).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orienteer.data.datasets import import_dataset
from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.jobs import api
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.params import complete, parse_args
from orienteer.jobs.runner import reap_children
from orienteer.jobs.status import job_view

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.ml

LABELS = ("left", "right", "front", "back")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2.5-VL and a six-example dataset (one item with two frames)."""
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    root = tmp_path_factory.mktemp("multiproc")
    build_tiny_qwen25vl(root / "model")
    lines = []
    for i in range(6):
        images = []
        for f in range(2 if i == 5 else 1):
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
    (root / "mini.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def ws(tmp_path: Path, root: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    import_dataset(ws, root / "mini.jsonl", "mini")
    return ws


def _ctx(ws: Workspace, tmp_path: Path, job: str, **params: Any) -> JobContext:
    values = complete("train", get_kind("train").params, params)
    job_dir = tmp_path / job
    (job_dir / "outputs").mkdir(parents=True)
    return JobContext(job_id=job, kind="train", params=values, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=tmp_path / f"{job}-resume")


def _metrics(job_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job_dir / "metrics.jsonl").read_text().splitlines()]


def _adapter(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _params(root: Path, **extra: Any) -> dict[str, Any]:
    return {"model": str(root / "model"), "dataset": "mini", "lr": 1e-2, "save_every": 1, **extra}


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(ws, tmp_path, root):
    kind = get_kind("train")
    # 6 examples, batch 2, 2 epochs: three micro-batches an epoch, so each epoch's second step has one
    # micro-batch and rank 1 joins it at weight zero
    same = _params(root, epochs=2, lora_dropout=0.0)
    one = _ctx(ws, tmp_path, "one", **same, batch_size=2, grad_accum=2)
    kind.run(one)
    two = _ctx(ws, tmp_path, "two", **same, batch_size=2, grad_accum=1, gpus="2")
    kind.run(two)
    single, multi = _metrics(one.job_dir), _metrics(two.job_dir)
    assert [m["step"] for m in multi] == [1, 2, 3, 4]
    assert [m["tokens"] for m in multi] == [m["tokens"] for m in single]  # the normalisation counts both ranks' tokens
    for a, b in zip(single, multi):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), (a, b)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9)
    assert single[-1]["loss"] != pytest.approx(single[0]["loss"], rel=1e-3)  # it trained: the comparison means something
    mine, theirs = _adapter(one.out_dir / "model"), _adapter(two.out_dir / "model")
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.allclose(mine[key], theirs[key], atol=1e-5), key
    info = json.loads((two.out_dir / "model" / "orienteer-train.json").read_text())
    assert (info["processes"], info["strategy"], info["steps"]) == (2, "ddp", 4)
    assert "batch 2x1x2 processes" in two.outputs[0].notes
    progress = [json.loads(x) for x in (two.job_dir / "progress.jsonl").read_text().splitlines()]
    assert [p["done"] for p in progress] == [1, 2, 3, 4]  # rank 0 alone reports


def test_two_processes_save_the_whole_language_model_of_a_full_llm_run(ws, tmp_path, root):
    from orienteer.jobs.model.loading import load_model

    kind = get_kind("train")
    same = _params(root, method="full-llm", lr=1e-3)
    one = _ctx(ws, tmp_path, "one", **same, batch_size=2, grad_accum=2, max_steps=1)
    kind.run(one)
    two = _ctx(ws, tmp_path, "two", **same, batch_size=2, grad_accum=1, max_steps=1, gpus="2")
    kind.run(two)
    assert _metrics(two.job_dir)[0]["loss"] == pytest.approx(_metrics(one.job_dir)[0]["loss"], rel=1e-5)
    mine = load_model(str(one.out_dir / "model"), device="cpu").model.state_dict()
    theirs = load_model(str(two.out_dir / "model"), device="cpu").model.state_dict()  # rank 0's gathered weights
    base = load_model(str(root / "model"), device="cpu").model.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.allclose(mine[key], theirs[key], atol=1e-5), key
    assert any(not torch.equal(theirs[k], base[k]) for k in base if "language_model" in k)


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap_children()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow  # three launches of two ranks: over a minute on two cores
def test_a_cancelled_two_process_job_resumes_and_ends_as_an_uninterrupted_one(ws, tmp_path, root):
    params = _params(root, batch_size=1, grad_accum=1, epochs=2, gpus="2", name="mp", gpu="none")
    job = api.submit(ws, "train", dict(params))
    _wait(lambda: (job.path / "metrics.jsonl").is_file() and _metrics(job.path), 120, "the first step")
    pgid = int((job.state() or {})["pid"])
    assert api.cancel(ws, job.job_id)  # SIGTERM to the job's process group: the job process, torchrun, both ranks
    _wait(lambda: job.exit() is not None, 30, "the job to end")
    assert job.exit()["cancelled"] is True and job_view(job).status == "cancelled"
    _wait(lambda: _group_gone(pgid), 30, "every process of the job to end")
    stopped_at = _metrics(job.path)[-1]["step"]
    assert 1 <= stopped_at < 6, "the stop landed after the last step: nothing to resume"
    log = job.log_path.read_text()
    assert "training with 2 processes (ddp) on the CPU" in log and f"cancelled at step {stopped_at}" in log
    [resume] = {p.parents[2] for p in ws.root.glob("jobs/**/checkpoints/step-*/COMPLETE")}
    checkpoint = resume / "checkpoints" / f"step-{stopped_at:08d}"
    assert json.loads((checkpoint / "meta.json").read_text())["processes"] == 2
    assert len(torch.load(checkpoint / "state.pt", weights_only=False)["rng_ranks"]) == 2  # each rank's own stream

    again = api.rerun(ws, job.job_id)
    _wait(lambda: job_view(again).status in ("done", "failed", "cancelled"), 180, "the re-run to end")
    assert job_view(again).status == "done", again.log_path.read_text()[-3000:]
    assert [m["step"] for m in _metrics(again.path)] == list(range(stopped_at + 1, 7))  # continued, nothing repeated
    assert f"resumed from step-{stopped_at:08d}" in again.log_path.read_text()

    straight = _ctx(ws, tmp_path, "straight", **{k: v for k, v in params.items() if k != "gpu"})
    get_kind("train").run(straight)
    resumed = _adapter(again.out_dir / "model")
    uninterrupted = _adapter(straight.out_dir / "model")
    for key in uninterrupted:  # same ranks, same data, each rank's RNG restored (LoRA dropout is on)
        assert torch.allclose(resumed[key], uninterrupted[key], atol=1e-6), key
    assert _metrics(again.path)[-1]["loss"] == pytest.approx(_metrics(straight.job_dir)[-1]["loss"], rel=1e-5)


def test_strategy_is_checked_before_anything_runs(ws, tmp_path, root):
    kind = get_kind("train")
    with pytest.raises(OrienteerError, match=r"^--strategy expects one of ddp, fsdp, got 'deepspeed'$"):
        parse_args("train", kind.params, ["--model", str(root / "model"), "--dataset", "mini", "--strategy", "deepspeed"])
    cases = {
        "^--strategy expects one of ddp, fsdp, got 'deepspeed'$": {"strategy": "deepspeed", "gpus": "2"},  # a spec file
        "needs GPUs": {"strategy": "fsdp", "gpus": "2"},  # --gpu none: the CPU, where accelerate has no FSDP
        "give --gpus 2 or more": {"strategy": "fsdp", "gpus": "1", "gpu": "0"},
        "names GPUs but --gpu none": {"gpus": "0,1"},
        "expects a count": {"gpus": "two"},
    }
    for k, (message, extra) in enumerate(cases.items()):
        ctx = _ctx(ws, tmp_path, f"bad{k}", **_params(root, **extra))
        if extra.get("gpu") is not None:
            ctx.device = "cuda"
        with pytest.raises(OrienteerError, match=message):
            kind.run(ctx)
        assert not ctx.resume_dir.exists() and not (ctx.job_dir / "metrics.jsonl").exists()


def test_a_checkpoint_of_another_process_count_is_refused_in_one_line(ws, tmp_path, root):
    kind = get_kind("train")
    params = _params(root, batch_size=2, grad_accum=1, max_steps=2)
    one = _ctx(ws, tmp_path, "one", **params)
    kind.run(one)  # leaves its step-1 checkpoint in the resume folder
    shutil.rmtree(one.resume_dir / "final")
    two = _ctx(ws, tmp_path, "two", **params, gpus="2")
    two.resume_dir = one.resume_dir
    with pytest.raises(OrienteerError, match=r"^checkpoint .*step-00000001: it was written with processes=1, this run "
                                             r"has 2 \(delete .*checkpoints to start afresh\)$"):
        kind.run(two)
    assert not (one.resume_dir / "final").exists() and not (two.job_dir / "metrics.jsonl").exists()


def test_a_strategy_its_devices_cannot_run_is_refused_before_a_job_exists(ws, root):
    from orienteer.jobs import api
    from orienteer.jobs.store import list_job_dirs

    before = [j.job_id for j in list_job_dirs(ws)]
    for extra, message in (({"gpus": "2", "gpu": "none"}, "needs GPUs"), ({"gpus": "1", "gpu": "0"}, "give --gpus 2 or more")):
        params = {k: v for k, v in _params(root, strategy="fsdp", **extra).items() if v is not None}
        with pytest.raises(OrienteerError, match=message):
            api.submit(ws, "train", params)
    assert [j.job_id for j in list_job_dirs(ws)] == before
