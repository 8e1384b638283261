"""--resize: upstream sizes frames exactly as evaluate.py's Qwen path; budget stays Orienteer's budget.

The upstream reference is built in the test the way evaluate.py does it: messages with
``{"type": "image", "image": path, "resized_height": 280, "resized_width": 420}``, qwen-vl-utils'
``process_vision_info``, and ``AutoProcessor.from_pretrained(path, min_pixels=256*28*28,
max_pixels=1280*28*28)`` called on the chat text and those images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.model.images import PixelBudget, UpstreamResize, frame_sizing

qwen_vl_utils = pytest.importorskip("qwen_vl_utils")


def _photo(path: Path, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=92)
    return path


def _item(images: list[str]) -> Item:
    return Item("7", "Camera perspective - Relative Direction", "Where is the cup relative to the lamp?",
                list("ABCD"), ["left", "right", "front", "back"], "B", images)


def test_upstream_resize_is_evaluate_py_exactly(tmp_path: Path, tiny_model_dir: Path, tiny: Any) -> None:
    from transformers import AutoProcessor

    from orienteer.jobs.model.batching import encode_item, estimate_length
    from orienteer.jobs.model.images import load_images
    from orienteer.jobs.model.prompt import prompt_text

    paths = [_photo(tmp_path / "a.jpg"), _photo(tmp_path / "b.jpg", (500, 375), seed=1)]
    item = _item([p.name for p in paths])
    sizing = UpstreamResize()
    enc = encode_item(tiny.processor, item, load_images(item, tmp_path), "official", sizing)
    assert enc.image_grid_thw.tolist() == [[1, 28, 40], [1, 28, 40]]  # 392 x 560 each, whatever the original
    assert int(enc.mm_token_type_ids.sum()) == 2 * 280
    assert enc.sizes == [(640, 480), (500, 375)]  # saliency maps go back to the originals
    assert estimate_length(tiny.processor, item, paths, sizing, "official") == enc.length

    upstream = AutoProcessor.from_pretrained(tiny_model_dir, min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28)
    question = prompt_text(item, "official")
    messages = [{"role": "user", "content": [
        *[{"type": "image", "image": str(p), "resized_height": 280, "resized_width": 420} for p in paths],
        {"type": "text", "text": question}]}]
    text = upstream.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_inputs, video_inputs = qwen_vl_utils.process_vision_info(messages)
    ref = upstream(text=[text], images=image_inputs, videos=video_inputs, padding=True, return_tensors="pt")
    assert enc.input_ids.tolist() == ref["input_ids"][0].tolist()
    assert enc.image_grid_thw.tolist() == ref["image_grid_thw"].tolist()
    assert np.array_equal(enc.pixel_values.numpy(), ref["pixel_values"].numpy())


def test_budget_resize_is_unchanged(tmp_path: Path, tiny: Any) -> None:
    from orienteer.jobs.model.batching import encode_item, estimate_length
    from orienteer.jobs.model.images import load_images

    path = _photo(tmp_path / "a.jpg")
    item = _item([path.name])
    budget = frame_sizing("budget")
    assert budget == PixelBudget()
    enc = encode_item(tiny.processor, item, load_images(item, tmp_path), "official", budget)
    assert enc.image_grid_thw.tolist() == [[1, 34, 46]]  # 476 x 644: the 640x480 budget keeps the aspect
    assert budget.frame_size(480, 640, 1) == (476, 644) and UpstreamResize().frame_size(480, 640, 1) == (392, 560)
    assert estimate_length(tiny.processor, item, [path], budget, "official") == enc.length


def test_eval_spec_resolves_resize() -> None:
    from orienteer.jobs.kinds.eval import EvalSpec, validate

    base = {"model": "m", "bench": "b", "run": "r"}
    assert EvalSpec(**base).sizing == "upstream"  # the official prompt: the whole upstream protocol
    assert EvalSpec(**base, prompt="letter").sizing == "budget"
    assert EvalSpec(**base, max_pixels=50_000).sizing == "budget"  # a pixel budget asks for budget
    assert EvalSpec(**base, resize="budget").sizing == "budget"
    assert EvalSpec(**base, prompt="letter", resize="upstream").sizing == "upstream"
    with pytest.raises(OrienteerError, match="--max-pixels and --item-pixels size frames for --resize budget"):
        validate(EvalSpec(**base, resize="upstream", item_pixels=50_000))
    with pytest.raises(OrienteerError, match="--resize expects one of upstream, budget"):
        validate(EvalSpec(**base, resize="half"))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_eval_records_resize_and_prompt_hash_and_resumes_only_with_the_same(
        demo_ws: Any, tiny_model_dir: Path, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import eval as eval_kind
    from orienteer.jobs.model.prompt import template_hash

    params = {"model": str(tiny_model_dir), "bench": "demo", "run": "tiny-upstream", "items": "limit:2", "batch_size": 2}
    ctx = make_ctx(demo_ws, "eval", params, tmp_path / "a", resume=tmp_path / "resume")
    eval_kind.run(ctx)
    (out,) = ctx.outputs
    assert out.config["resize"] == "upstream" and out.config["prompt"] == "official"
    assert out.config["prompt_hash"] == template_hash("official")
    assert (out.config["min_pixels"], out.config["max_pixels"]) == (256 * 28 * 28, 1280 * 28 * 28)
    assert (out.config["resized_height"], out.config["resized_width"]) == (280, 420)
    assert "resize=upstream" in out.notes and "max_pixels" not in out.notes
    first = _lines(ctx.out_dir / out.predictions_file)

    # Same resume folder, other sizing: the partial results of the upstream run must not be reused.
    again = make_ctx(demo_ws, "eval", {**params, "resize": "budget", "max_pixels": 28 * 28 * 16}, tmp_path / "b",
                     resume=tmp_path / "resume")
    eval_kind.run(again)
    (budget_out,) = again.outputs
    assert budget_out.config["resize"] == "budget" and budget_out.config["max_pixels"] == 28 * 28 * 16
    assert "min_pixels" not in budget_out.config and "max_pixels=12544" in budget_out.notes
    plan = json.loads((tmp_path / "resume" / "eval-plan.json").read_text(encoding="utf-8"))
    assert plan["batches"] == 1
    second = _lines(again.out_dir / budget_out.predictions_file)
    assert [r["item_id"] for r in second] == [r["item_id"] for r in first]
    assert [r["probs"] for r in second] != [r["probs"] for r in first]  # computed anew on other inputs


def test_saliency_reads_the_runs_resize_and_prompt() -> None:
    from orienteer.data.run_config import RunConfig, settings_from_notes
    from orienteer.jobs.kinds.saliency import SaliencySpec
    from orienteer.jobs.model.prompt import template_hash
    from orienteer.jobs.model.saliency_job import _resolved

    spec = SaliencySpec(run="r")
    new = _resolved(spec, "m", RunConfig({"prompt": "official", "prompt_hash": template_hash("official"),
                                          "resize": "upstream", "max_pixels": 1280 * 28 * 28}))
    assert (new.prompt, new.resize, new.warning) == ("official", "upstream", None)
    # A run from before prompts had versions: 'official' then meant the newline text, and frames the budget
    # (its settings as migration 9 read them from its notes; the notes themselves never reach saliency).
    old = _resolved(spec, "m", RunConfig(settings_from_notes("eval mode=score; prompt=official; max_pixels=50176")))
    assert (old.prompt, old.resize, old.max_pixels) == ("official-newline", "budget", 50176)
    imported = _resolved(spec, "m", RunConfig())  # e.g. evaluate.py's own CSV
    assert (imported.prompt, imported.resize) == ("official", "upstream")
    forced = _resolved(SaliencySpec(run="r", resize="budget", prompt="letter"), "m", RunConfig())
    assert (forced.prompt, forced.resize) == ("letter", "budget")
    changed = _resolved(spec, "m", RunConfig({"prompt": "official", "prompt_hash": "0" * 12, "resize": "upstream"}))
    assert changed.warning and "another 'official' template" in changed.warning
