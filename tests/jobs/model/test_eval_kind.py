"""The eval kind through a JobContext: both modes, multi-frame items, missing images, resume after a stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobCancelled

SMALL = 28 * 28 * 16
# Nine demo items: single-frame ones of both perspectives and multi-frame scene-simulation ones (2-3 frames).
MIXED = "ids:" + ",".join(f"demo_{i:06d}" for i in (0, 3, 5, 8, 11, 14, 19, 21, 23))


def _params(model: Path, **extra: Any) -> dict[str, Any]:
    return {"model": str(model), "bench": "demo", "run": "tiny-eval", "batch_size": 3, "max_pixels": SMALL,
            "items": MIXED, "workers": 2, **extra}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_score_mode_writes_a_labelled_run(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind
    from orienteer.jobs.selection import load_items

    ctx = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path)
    eval_kind.run(ctx)
    (out,) = ctx.outputs
    assert isinstance(out, RunOutput) and out.name == "tiny-eval" and out.bench == "demo"
    assert out.model == str(tiny_model_dir.resolve())
    assert "mode=score" in out.notes and "prompt=official" in out.notes and "RANDOM WEIGHTS" in out.notes
    assert out.config["mode"] == "score" and out.config["prompt"] == "official" and out.config["engine"] == "hf"
    lines = _lines(ctx.out_dir / out.predictions_file)
    items, _ = load_items(demo_ws, "demo", MIXED)
    assert [line["item_id"] for line in lines] == [it.item_id for it in items]  # benchmark order
    assert any(len(it.images) > 1 for it in items)  # multi-frame items went through too
    for line, item in zip(lines, items):
        assert line["reply"] in item.option_letters
        assert set(line["probs"]) == set(item.option_letters)
        assert abs(sum(line["probs"].values()) - 1) < 1e-4
        assert line["reply"] == max(line["probs"], key=line["probs"].get)
    progress = _lines(ctx.job_dir / "progress.jsonl")
    assert progress[-1]["done"] == progress[-1]["total"] == 9 and "items/s" in progress[-1]["note"]


def test_generate_mode_and_prompt_choice(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind

    ctx = make_ctx(demo_ws, "eval", _params(tiny_model_dir, mode="generate", prompt="letter", max_new_tokens=3,
                                            items="limit:4"), tmp_path)
    eval_kind.run(ctx)
    (out,) = ctx.outputs
    assert "mode=generate" in out.notes and "prompt=letter" in out.notes
    lines = _lines(ctx.out_dir / out.predictions_file)
    assert len(lines) == 4 and all(isinstance(line["reply"], str) and "probs" not in line for line in lines)


def test_resume_after_a_stop_ends_with_the_same_run(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path,
                                                    make_ctx: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from orienteer.jobs.kinds import eval as eval_kind

    whole = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "whole")
    eval_kind.run(whole)
    expected = (whole.out_dir / "predictions.jsonl").read_text()

    first = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "first")
    calls = {"n": 0}
    original = first.progress

    def stop_after_two_batches(done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        original(done, total, unit, note)
        calls["n"] += 1
        if calls["n"] == 3:  # the "starting" record, then two batches
            first.request_stop()

    first.progress = stop_after_two_batches  # type: ignore[method-assign]
    with pytest.raises(JobCancelled):
        eval_kind.run(first)
    assert not (first.out_dir / "predictions.jsonl").exists() and not first.outputs
    partial = first.resume_dir / "predictions.partial.jsonl"
    assert len(_lines(partial)) == 6
    with open(partial, "a", encoding="utf-8") as fh:  # a write torn by the kill
        fh.write('{"batch": 2, "item_id": "demo_0')

    capsys.readouterr()
    second = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "second", resume=first.resume_dir)
    eval_kind.run(second)
    assert "resuming: 2 of 3 batches (6 items) already done" in capsys.readouterr().out
    assert (second.out_dir / "predictions.jsonl").read_text() == expected
    assert _lines(second.job_dir / "progress.jsonl")[0]["done"] == 6


def test_missing_image_is_reported_and_skipped(tiny_model_dir: Path, tmp_path: Path, make_ctx: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace
    from orienteer.jobs.kinds import eval as eval_kind
    from orienteer.jobs.selection import load_items

    build_demo_workspace(tmp_path / "ws", n_items=6)
    ws = Workspace(tmp_path / "ws")
    items, root = load_items(ws, "demo", None)
    victim = items[2]
    (root / victim.images[0]).unlink()
    ctx = make_ctx(ws, "eval", _params(tiny_model_dir, items=None), tmp_path / "job")
    eval_kind.run(ctx)
    err = capsys.readouterr().err
    assert f"item {victim.item_id}: image" in err and "does not exist; skipped" in err
    ids = [line["item_id"] for line in _lines(ctx.out_dir / "predictions.jsonl")]
    assert ids == [it.item_id for it in items if it is not victim]
    assert _lines(ctx.out_dir / "skipped.jsonl")[0]["item_id"] == victim.item_id
    assert "skipped=1" in ctx.outputs[0].notes


def test_missing_model_fails_before_writing(demo_ws: Any, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind

    ctx = make_ctx(demo_ws, "eval", _params(tmp_path / "no-model"), tmp_path / "job")
    with pytest.raises(OrienteerError, match="no-model: no such folder"):
        eval_kind.check(ctx.spec)
    with pytest.raises(OrienteerError, match="no-model: no such folder"):
        eval_kind.run(ctx)
    assert not ctx.outputs
    assert not ctx.out_dir.exists() or not any(ctx.out_dir.iterdir())
    assert not any(ctx.resume_dir.iterdir())


def test_kind_modules_import_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; import orienteer.jobs.kinds.eval, orienteer.jobs.kinds.saliency; "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    subprocess.run([sys.executable, "-c", code], check=True)
