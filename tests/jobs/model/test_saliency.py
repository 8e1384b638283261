"""Saliency: the gradient agrees with finite differences, maps land on each frame at its size, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from orienteer.data.items import Item
from orienteer.jobs.model.images import PixelBudget

BUDGET = PixelBudget(max_pixels=28 * 28 * 16)


def _encoded(processor: Any, sizes: list[tuple[int, int]]) -> Any:
    from orienteer.jobs.model.batching import encode_item

    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    item = Item("s1", "t", "Where is it?", list("ABCD"), ["left", "right", "front", "back"], "A",
                [f"{k}.jpg" for k in range(len(sizes))])
    return encode_item(processor, item, frames, budget=BUDGET)


@pytest.fixture
def double_model(tiny_model_dir: Path) -> Any:
    from orienteer.jobs.model.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu", dtype=torch.float64)


def test_gradient_matches_finite_differences(double_model: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.saliency import pixel_gradients

    model, tok = double_model.model, double_model.tokenizer
    enc = _encoded(double_model.processor, [(120, 90)])
    batch = collate([enc], 0)
    batch["pixel_values"] = batch["pixel_values"].double()
    target = tok.convert_tokens_to_ids("B")
    grad, logit = pixel_gradients(model, batch, [target])
    assert grad.shape == batch["pixel_values"].shape

    def letter_logit(pixels: torch.Tensor) -> float:
        with torch.no_grad():
            out = model(**{**batch, "pixel_values": pixels}, use_cache=False, logits_to_keep=1)
        return float(out.logits[0, -1, target])

    assert abs(letter_logit(batch["pixel_values"]) - float(logit[0])) < 1e-9
    flat = grad.flatten()
    picks = torch.topk(flat.abs(), 4).indices.tolist()  # the pixels with the most signal
    eps = 3e-2  # the model's norms run in fp32, so a tiny step would be lost in rounding
    for index in picks:
        up = batch["pixel_values"].clone().flatten()
        down = up.clone()
        up[index] += eps
        down[index] -= eps
        fd = (letter_logit(up.view_as(grad)) - letter_logit(down.view_as(grad))) / (2 * eps)
        assert fd == pytest.approx(float(flat[index]), rel=0.05), index


def test_patches_to_image_inverts_the_processor(tiny: Any) -> None:
    from orienteer.jobs.model.saliency import patches_to_image

    image = torch.rand(3, 56, 84)
    out = tiny.processor.image_processor(images=[image], do_resize=False, do_rescale=False, do_normalize=False,
                                         return_tensors="pt")
    back = patches_to_image(out["pixel_values"], out["image_grid_thw"][0].tolist(), reduce="mean")
    assert torch.equal(back, image)


def test_one_map_per_frame_at_the_original_size(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.saliency import saliency_batch

    a = _encoded(tiny.processor, [(160, 120), (90, 70)])
    b = _encoded(tiny.processor, [(300, 200)])
    batch = collate([a, b], 0)
    target = tiny.tokenizer.convert_tokens_to_ids("A")
    maps = saliency_batch(tiny.model, batch, [target, target], [a.sizes, b.sizes], tiny.processor.image_processor)
    assert [[m.shape for m in row] for row in maps] == [[(120, 160), (70, 90)], [(200, 300)]]
    for row in maps:
        for m in row:
            assert m.dtype == np.float32 and (m >= 0).all() and m.sum() > 0


def test_metrics_on_known_maps() -> None:
    from orienteer.jobs.model.saliency import metrics

    flat = np.ones((100, 200), dtype=np.float32)
    m = metrics(flat, [0, 0, 100, 50])
    # The box covers pixels 0..100 x 0..50 (as draw_box paints it); the 2 px ring leaves 2..98 x 2..48 inside.
    assert m["ring_px"] == 2
    assert m["mass_in_bbox"] == m["bbox_area"] == round(97 * 47 / 20000, 6)
    assert m["mass_on_ring"] == round((101 * 51 - 97 * 47) / 20000, 6)
    assert m["spread"] == pytest.approx(0.5, abs=1e-3) and m["entropy"] == pytest.approx(1.0)
    spike = np.zeros((100, 200), dtype=np.float32)
    spike[10, 20] = 5.0
    m = metrics(spike, [15, 5, 25, 15])
    assert m["mass_in_bbox"] == 1.0 and m["mass_on_ring"] == 0.0
    assert m["spread"] == pytest.approx(1 / 20000) and m["entropy"] == 0.0
    assert not {"mass_in_bbox", "bbox_area", "mass_on_ring", "ring_px"} & set(metrics(spike, None))


def test_the_drawn_border_ring_is_left_out_of_the_box_on_synthetic_maps() -> None:
    from orienteer.jobs.model.saliency import metrics

    h, w, box = 60, 80, [10.4, 5.6, 50.5, 40.2]
    # draw_box rounds to columns 10..50 (round half to even) and rows 6..40; the ring of an 80x60 frame is
    # 2 px, so the inside is columns 12..48, rows 8..38, worked out by hand here.
    ring = np.zeros((h, w), dtype=np.float32)
    ring[6:41, 10:51] = 1.0
    ring[8:39, 12:49] = 0.0
    inside_area = (48 - 12 + 1) * (38 - 8 + 1)
    m = metrics(ring, box)
    assert m["ring_px"] == 2 and m["mass_in_bbox"] == 0.0 and m["mass_on_ring"] == 1.0
    assert m["bbox_area"] == round(inside_area / (h * w), 6)
    inside = np.zeros((h, w), dtype=np.float32)
    inside[8:39, 12:49] = 3.0
    m = metrics(inside, box)
    assert m["mass_in_bbox"] == 1.0 and m["mass_on_ring"] == 0.0
    m = metrics(np.ones((h, w), dtype=np.float32), box)
    assert m["mass_in_bbox"] == m["bbox_area"] == round(inside_area / (h * w), 6)
    assert m["mass_on_ring"] == round((41 * 35 - inside_area) / (h * w), 6)
    outside = np.ones((h, w), dtype=np.float32)
    outside[6:41, 10:51] = 0.0
    m = metrics(outside, box)
    assert m["mass_in_bbox"] == 0.0 and m["mass_on_ring"] == 0.0
    # A box thinner than two rings is all ring: nothing inside to measure.
    m = metrics(np.ones((h, w), dtype=np.float32), [30, 10, 32, 50])
    assert m["mass_in_bbox"] == 0.0 and m["bbox_area"] == 0.0 and m["mass_on_ring"] == round(3 * 41 / (h * w), 6)
    assert metrics(np.ones((480, 640), dtype=np.float32), [100, 100, 300, 300])["ring_px"] == 3


def test_the_ring_is_exactly_the_pixels_box_prompt_draws() -> None:
    """The map of draw_box's red pixels is all ring and no inside, and no other pixel is on the ring:
    the region saliency leaves out is the drawn border, pixel for pixel, for any box and frame size."""
    from orienteer.jobs.model.boxes import RED, draw_box, line_width
    from orienteer.jobs.model.saliency import metrics

    rng = np.random.default_rng(5)
    for _ in range(150):
        w, h = (int(v) for v in rng.integers(8, 400, 2))
        box = [float(v) for v in rng.uniform(-10, max(w, h) + 10, 4)]
        drawn = np.asarray(draw_box(Image.new("RGB", (w, h), (0, 0, 0)), box))
        red = np.all(drawn == RED, axis=-1)
        on_red = metrics(red.astype(np.float32), box)
        assert on_red["mass_on_ring"] == 1.0 and on_red["mass_in_bbox"] == 0.0, (w, h, box)
        assert metrics((~red).astype(np.float32), box)["mass_on_ring"] == 0.0, (w, h, box)
        assert on_red["ring_px"] == line_width((w, h))


def test_frame_files(tmp_path: Path) -> None:
    from orienteer.jobs.model.saliency import write_frame_files

    sal = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    paths = write_frame_files(sal, Image.new("RGB", (64, 48), "white"), tmp_path, "frame0")
    assert Image.open(paths["saliency"]).size == (64, 48) and Image.open(paths["saliency"]).mode == "L"
    assert Image.open(paths["saliency-overlay"]).size == (64, 48)
    assert np.array_equal(np.load(paths["saliency-raw"]), sal)


def test_precomputed_rope_positions_give_the_same_gradients(tiny: Any) -> None:
    """The saliency job passes the encoder threads' rope positions: gradients are unchanged."""
    from orienteer.jobs.model.batching import collate, rope_positions
    from orienteer.jobs.model.saliency import pixel_gradients

    a = _encoded(tiny.processor, [(160, 120), (90, 70)])
    b = _encoded(tiny.processor, [(300, 200)])
    positions = rope_positions(tiny.model)
    for enc in (a, b):
        enc.position_ids = positions(enc)
    target = tiny.tokenizer.convert_tokens_to_ids("A")
    plain, _ = pixel_gradients(tiny.model, collate([a, b], 0), [target, target])
    ahead, _ = pixel_gradients(tiny.model, collate([a, b], 0, positions=True), [target, target])
    assert plain.abs().sum() > 0
    assert torch.equal(ahead, plain)
