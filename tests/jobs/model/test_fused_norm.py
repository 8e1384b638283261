"""One-kernel RMSNorm equals transformers' RMSNorm (bf16 within rounding; fp32 is untouched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def test_every_norm_of_both_towers_is_switched_and_restored(fresh: Any) -> None:
    from orienteer.jobs.model.fused_norm import patch_rms_norm, rms_norm_mode

    model = fresh.model
    vision = [m for m in model.model.visual.modules() if type(m).__name__.endswith("RMSNorm")]
    text = [m for m in model.model.language_model.modules() if type(m).__name__.endswith("RMSNorm")]
    assert vision and text
    assert rms_norm_mode(model) == "reference"
    assert patch_rms_norm(model, fused=True) == len(vision) + len(text)
    assert rms_norm_mode(model) == "fused"
    patch_rms_norm(model, fused=False)
    assert rms_norm_mode(model) == "reference"


def test_bf16_output_and_gradient_match_the_reference(fresh: Any) -> None:
    from orienteer.jobs.model.fused_norm import patch_rms_norm

    norm = fresh.model.model.visual.blocks[0].norm1.to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, norm.weight.numel()))
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(257, norm.weight.numel(), generator=g)).to(torch.bfloat16)
    outs, grads = [], []
    for fused in (False, True):
        patch_rms_norm(fresh.model, fused=fused)
        xi = x.clone().requires_grad_(True)
        out = norm(xi)
        out.float().pow(2).sum().backward()
        outs.append(out.float())
        grads.append(xi.grad.float())
    assert outs[1].dtype == torch.float32 and outs[1].shape == outs[0].shape
    # one bf16 rounding apart: the reference rounds before the weight multiply, the fused form after
    torch.testing.assert_close(outs[1], outs[0], atol=2e-2, rtol=1.6e-2)
    torch.testing.assert_close(grads[1], grads[0], atol=5e-2, rtol=5e-2)


def test_fp32_keeps_the_reference_maths_exactly(fresh: Any) -> None:
    from orienteer.jobs.model.fused_norm import patch_rms_norm

    norm = fresh.model.model.language_model.norm
    x = torch.randn(3, 5, norm.weight.numel())
    with torch.no_grad():
        ref = norm(x)
        patch_rms_norm(fresh.model, fused=True)
        assert torch.equal(norm(x), ref)


def test_the_loader_fuses_on_the_fast_path_only(tiny_model_dir: Path) -> None:
    from orienteer.jobs.model.fused_norm import rms_norm_mode
    from orienteer.jobs.model.loading import load_model

    assert rms_norm_mode(load_model(str(tiny_model_dir), device="cpu").model) == "fused"
    assert rms_norm_mode(load_model(str(tiny_model_dir), device="cpu", vision_attention="reference").model) == "reference"


def test_whole_fast_path_in_bf16_scores_like_the_reference(tiny_model_dir: Path) -> None:
    """Attention, patch embedding and norms together: bf16 option probabilities agree with transformers'."""
    import numpy as np
    from PIL import Image

    from orienteer.data.items import Item
    from orienteer.jobs.model.batching import collate, encode_item
    from orienteer.jobs.model.images import PixelBudget
    from orienteer.jobs.model.loading import load_model, set_fast_path
    from orienteer.jobs.model.score import score_batch

    loaded = load_model(str(tiny_model_dir), device="cpu", dtype=torch.bfloat16, vision_attention="reference")
    rng = np.random.default_rng(0)
    encoded = []
    for k, (w, h) in enumerate([(320, 240), (200, 300), (640, 480)]):
        frame = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        item = Item(f"i{k}", "t", "Where is the cup?", list("ABCD"), ["left", "right", "front", "back"], "A", ["0.jpg"])
        encoded.append(encode_item(loaded.processor, item, [frame], budget=PixelBudget(max_pixels=28 * 28 * 64)))
    batch = collate(encoded, loaded.processor.tokenizer.pad_token_id)
    batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
    probs = []
    for mode in ("reference", "auto"):
        set_fast_path(loaded.model, mode)
        scored = score_batch(loaded.model, batch, [list("ABCD")] * 3, loaded.processor.tokenizer)
        probs.append(np.array([[s.probs[x] for x in "ABCD"] for s in scored]))
    # and the eval job's own path: the score pipeline (host-side layout, windows sorted by length)
    from orienteer.jobs.model.score_pipeline import score_stream

    [(_, _, scored)] = score_stream(loaded.model, loaded.processor.tokenizer, [(0, encoded)],
                                    loaded.processor.tokenizer.pad_token_id, "cpu", torch.bfloat16)
    probs.append(np.array([[s.probs[x] for x in "ABCD"] for s in scored]))
    assert np.ptp(probs[0]) > 0.05, "the options must differ for the comparison to mean anything"
    np.testing.assert_allclose(probs[1], probs[0], atol=5e-3)  # measured 3e-4
    np.testing.assert_allclose(probs[2], probs[0], atol=5e-3)
