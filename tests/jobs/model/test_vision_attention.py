"""The fast vision attention equals transformers' reference implementation (values and gradients)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image


def _pixels(processor: Any, sizes: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    out = processor.image_processor(images=frames, return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


# Sizes chosen so windows have several lengths (edge and corner windows) and images differ in size.
SIZES = [(640, 480), (200, 300), (640, 480), (90, 100)]


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_grouped_equals_reference(fresh: Any, dtype: torch.dtype, atol: float) -> None:
    from orienteer.jobs.model.vision_attention import patch_vision_attention, vision_attention_mode

    model = fresh.model.to(dtype)
    pixels, grid = _pixels(fresh.processor, SIZES)
    pixels = pixels.to(dtype)
    visual = model.model.visual
    with torch.no_grad():
        assert vision_attention_mode(model) == "reference"
        ref = visual(pixels, grid_thw=grid).pooler_output.float()
        assert patch_vision_attention(model, "grouped") == "grouped"
        fast = visual(pixels, grid_thw=grid).pooler_output.float()
    assert fast.shape == ref.shape
    scale = ref.abs().max().item()
    assert (fast - ref).abs().max().item() <= atol * max(1.0, scale)
    assert patch_vision_attention(model, "reference") == "reference"
    with torch.no_grad():
        again = visual(pixels, grid_thw=grid).pooler_output.float()
    assert torch.equal(again, ref)


def test_grouped_gradients_equal_reference(fresh: Any) -> None:
    from orienteer.jobs.model.vision_attention import patch_vision_attention

    pixels, grid = _pixels(fresh.processor, SIZES[:2])
    visual = fresh.model.model.visual
    grads = []
    for mode in ("reference", "grouped"):
        patch_vision_attention(fresh.model, mode)
        x = pixels.clone().requires_grad_(True)
        visual(x, grid_thw=grid).pooler_output.pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-4)


def test_auto_is_grouped_on_cpu_and_unknown_mode_is_refused(fresh: Any) -> None:
    from orienteer.data.errors import OrienteerError
    from orienteer.jobs.model.vision_attention import patch_vision_attention

    assert patch_vision_attention(fresh.model, "auto") == "grouped"
    with pytest.raises(OrienteerError, match="vision attention"):
        patch_vision_attention(fresh.model, "fastest")
