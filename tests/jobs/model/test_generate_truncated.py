"""Generate mode counts the replies its token cap cut: per reply, through the resume file, in the run's settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.job_outputs import RunOutput
from orienteer.jobs.context import JobCancelled

SMALL = 28 * 28 * 16


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_is_truncated_reads_the_cap_and_the_stop_tokens() -> None:
    from orienteer.jobs.model.generate import is_truncated

    stops = [7, 9]
    assert is_truncated([1, 2, 3], stops, 3)  # the whole budget, no stop token
    assert not is_truncated([1, 7, 0], stops, 3)  # stopped, then padding
    assert not is_truncated([1, 2, 9], stops, 3)  # the stop token was the last one allowed
    assert not is_truncated([1, 7], stops, 3)  # the batch ended early: every row stopped


def test_generate_replies_flags_exactly_the_replies_cut_at_the_cap(tiny: Any, demo_ws: Any) -> None:
    """Against the model's own longer greedy decoding: a reply is cut at 3 tokens exactly when no stop
    token comes among its first 3."""
    import torch

    from orienteer.jobs.model.batching import collate, item_encoder
    from orienteer.jobs.model.generate import generate_replies, stop_token_ids
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.selection import load_items

    items, root = load_items(demo_ws, "demo", "limit:4")
    encode = item_encoder(tiny.processor, root, "think", PixelBudget(SMALL))
    batch = collate([encode(it) for it in items], tiny.pad_id)
    replies = generate_replies(tiny.model, batch, tiny.tokenizer, max_new_tokens=3)
    stops = stop_token_ids(tiny.tokenizer)
    with torch.inference_mode():
        longer = tiny.model.generate(**batch, max_new_tokens=12, do_sample=False, eos_token_id=stops,
                                     pad_token_id=tiny.tokenizer.pad_token_id)
    first3 = longer[:, batch["input_ids"].shape[1]:][:, :3].tolist()
    assert [r.truncated for r in replies] == [not any(t in stops for t in row) for row in first3]
    assert any(r.truncated for r in replies)  # random weights rarely stop within 3 tokens

    # sampled replies: the same seed draws the same ones
    a = generate_replies(tiny.model, batch, tiny.tokenizer, 6, temperature=0.9, seed=11)
    b = generate_replies(tiny.model, batch, tiny.tokenizer, 6, temperature=0.9, seed=11)
    assert a == b


def _params(model: Path, **extra: Any) -> dict[str, Any]:
    return {"model": str(model), "bench": "demo", "run": "tiny-gen", "batch_size": 3, "max_pixels": SMALL,
            "items": "limit:6", "workers": 2, "mode": "generate", "prompt": "think", "max_new_tokens": 3, **extra}


def test_eval_counts_truncated_replies_and_keeps_the_flag_through_a_resume(demo_ws: Any, tiny_model_dir: Path,
                                                                          tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind

    whole = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "whole")
    eval_kind.run(whole)
    (out,) = whole.outputs
    assert isinstance(out, RunOutput)
    lines = _lines(whole.out_dir / out.predictions_file)
    flagged = sum(bool(line.get("truncated")) for line in lines)
    assert len(lines) == 6 and flagged >= 1
    assert out.config["truncated"] == flagged and out.config["max_new_tokens"] == 3

    first = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "first")
    original = first.progress
    calls = {"n": 0}

    def stop_after_one_batch(done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        original(done, total, unit, note)
        calls["n"] += 1
        if calls["n"] == 2:  # the "starting" record, then one batch
            first.request_stop()

    first.progress = stop_after_one_batch  # type: ignore[method-assign]
    with pytest.raises(JobCancelled):
        eval_kind.run(first)
    partial = _lines(first.resume_dir / "predictions.partial.jsonl")
    assert len(partial) == 3 and all(isinstance(rec["truncated"], bool) for rec in partial)

    second = make_ctx(demo_ws, "eval", _params(tiny_model_dir), tmp_path / "second", resume=first.resume_dir)
    eval_kind.run(second)
    assert (second.out_dir / "predictions.jsonl").read_text() == (whole.out_dir / "predictions.jsonl").read_text()
    assert second.outputs[0].config["truncated"] == flagged


def test_score_mode_runs_do_not_claim_a_truncated_count(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path,
                                                        make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind

    ctx = make_ctx(demo_ws, "eval", _params(tiny_model_dir, mode="score", prompt="official", items="limit:2"), tmp_path)
    eval_kind.run(ctx)
    assert "truncated" not in ctx.outputs[0].config and "max_new_tokens" not in ctx.outputs[0].config


def test_the_generate_cap_defaults_to_upstreams_128() -> None:
    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.kinds.eval import EvalSpec

    assert {p.name: p.default for p in get_kind("eval").params}["max_new_tokens"] == 128
    assert EvalSpec(model="m", bench="b", run="r").max_new_tokens == 128


def test_report_json_says_null_for_runs_that_do_not_know(demo_ws: Any) -> None:
    """Imported runs (the demo's) carry no job settings, only their columns: their ``truncated`` is null, not 0."""
    from orienteer.data.queries.report import report_json, task_report

    with demo_ws.read() as con:
        runs = report_json(task_report(con, bench="demo"))["runs"]
    imported = [r for r in runs if "mode" not in r["config"] and r["config"]["source_format"]]
    assert imported and all("truncated" in r and r["truncated"] is None for r in imported)
    assert all(r["truncated"] == r["config"].get("truncated") for r in runs)
