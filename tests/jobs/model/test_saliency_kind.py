"""The saliency kind through a JobContext: files per frame at the image's size, metrics, defaults from the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import ArtifactsOutput
from orienteer.data.rows import RunAnswer


def test_maps_for_a_runs_failures(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.data.service import WorkspaceService
    from orienteer.jobs.kinds import saliency as saliency_kind
    from orienteer.jobs.selection import load_items

    ids = "ids:demo_000001,demo_000004,demo_000019"  # one- and two-frame items
    params = {"run": "qwen3b-base", "model": str(tiny_model_dir), "items": ids, "target": "gold",
              "max_pixels": 28 * 28 * 16, "batch_size": 2}
    ctx = make_ctx(demo_ws, "saliency", params, tmp_path)
    saliency_kind.run(ctx)
    (out,) = ctx.outputs
    assert isinstance(out, ArtifactsOutput) and out.run == "qwen3b-base"
    lines = [json.loads(line) for line in (ctx.out_dir / out.file).read_text().splitlines()]
    items, root = load_items(demo_ws, "demo", ids)
    n_frames = sum(len(it.images) for it in items)
    assert len(lines) == 3 * n_frames
    assert {line["kind"] for line in lines} == {"saliency", "saliency-overlay", "saliency-raw"}
    by_item = {it.item_id: it for it in items}
    for line in lines:
        item = by_item[line["item_id"]]
        path = ctx.out_dir / line["path"]
        original = Image.open(root / item.images[line["frame"]]).size
        if line["kind"] == "saliency":
            assert Image.open(path).size == original and Image.open(path).mode == "L"
            metrics = line["metrics"]
            assert metrics["target"] == item.answer_letter and metrics["target_kind"] == "gold"
            assert 0 < metrics["spread"] <= 0.5
            if line["frame"] == 0 and item.bbox:
                assert 0 <= metrics["mass_in_bbox"] <= 1 and 0 < metrics["bbox_area"] < 1
        elif line["kind"] == "saliency-raw":
            raw = np.load(path)
            assert raw.shape == (original[1], original[0]) and raw.dtype == np.float32
        else:
            assert Image.open(path).size == original
    assert WorkspaceService(demo_ws).run_detail("qwen3b-base").model != str(tiny_model_dir)  # --model overrode the run's


def test_defaults_come_from_the_runs_settings(tiny_model_dir: Path) -> None:
    """Without --model/--prompt/..., the run's own (as the eval kind recorded them) are reused; an older
    run's settings are those migration 9 read from its notes, and the notes themselves are never read.

    test_cli_e2e runs the whole eval -> ingest -> saliency chain with no --model.
    """
    from orienteer.data.run_config import RunConfig, settings_from_notes
    from orienteer.jobs.kinds.saliency import SaliencySpec
    from orienteer.jobs.model.saliency_job import _resolved, target_letter

    notes = "eval mode=score; prompt=letter; max_pixels=3136; adapter=/x/y"
    config = RunConfig(settings_from_notes(notes))
    got = _resolved(SaliencySpec(run="r"), str(tiny_model_dir), config)
    assert (got.model, got.adapter, got.prompt, got.resize, got.max_pixels, got.item_pixels) == (
        str(tiny_model_dir), "/x/y", "letter", "budget", 3136, None)
    forced = _resolved(SaliencySpec(run="r", prompt="official", max_pixels=9999), str(tiny_model_dir), config)
    assert (forced.prompt, forced.resize, forced.max_pixels) == ("official", "budget", 9999)  # the run's sizing stays
    from orienteer.data.items import Item

    item = Item("i", "t", "q", ["A", "B"], ["left", "right"], "B", ["a.jpg"])
    assert target_letter(item, "predicted", {"i": RunAnswer("A", False, None)}) == ("A", "predicted")
    assert target_letter(item, "predicted", {})[0] is None
    assert target_letter(item, "gold", {}) == ("B", "gold")
    assert target_letter(item, "C", {})[0] is None


def test_unknown_run_is_a_clear_error(demo_ws: Any, tiny_model_dir: Path, tmp_path: Path, make_ctx: Any) -> None:
    from orienteer.jobs.kinds import saliency as saliency_kind

    ctx = make_ctx(demo_ws, "saliency", {"run": "no-such-run", "model": str(tiny_model_dir)}, tmp_path)
    with pytest.raises(OrienteerError, match="no-such-run"):
        saliency_kind.run(ctx)
    assert not ctx.outputs
