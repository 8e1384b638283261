"""The GEMM patch embedding equals transformers' Conv3d one (values and pixel gradients)."""

from __future__ import annotations

from typing import Any

import pytest
import torch


def _patch_rows(module: Any, n: int, seed: int = 0) -> torch.Tensor:
    """Rows as the processor makes them: one flattened (channels, t, p, p) patch per row."""
    g = torch.Generator().manual_seed(seed)
    width = module.in_channels * module.temporal_patch_size * module.patch_size ** 2
    return torch.randn(n, width, generator=g)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_linear_equals_conv3d(fresh: Any, dtype: torch.dtype, atol: float) -> None:
    from orienteer.jobs.model.patch_embed import patch_embed_mode, patch_patch_embed

    module = fresh.model.model.visual.patch_embed.to(dtype)
    rows = _patch_rows(module, 300).to(dtype)
    assert patch_embed_mode(fresh.model) == "conv3d"
    with torch.no_grad():
        ref = module(rows).float()
        assert patch_patch_embed(fresh.model, linear=True) == 1
        assert patch_embed_mode(fresh.model) == "linear"
        fast = module(rows).float()
        patch_patch_embed(fresh.model, linear=False)
        again = module(rows).float()
    assert fast.shape == ref.shape == (300, module.embed_dim)
    assert (fast - ref).abs().max().item() <= atol * max(1.0, ref.abs().max().item())
    assert torch.equal(again, ref), "switching back restores transformers' own forward"


def test_pixel_gradients_are_unchanged(fresh: Any) -> None:
    from orienteer.jobs.model.patch_embed import patch_patch_embed

    module = fresh.model.model.visual.patch_embed
    grads = []
    for linear in (False, True):
        patch_patch_embed(fresh.model, linear=linear)
        x = _patch_rows(module, 64, seed=1).requires_grad_(True)
        module(x).pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


def test_fast_tower_modes_switch_the_patch_embedding_too(fresh: Any) -> None:
    from orienteer.jobs.model.patch_embed import patch_embed_mode
    from orienteer.jobs.model.vision_attention import patch_vision_attention

    patch_vision_attention(fresh.model, "auto")
    assert patch_embed_mode(fresh.model) == "linear"
    patch_vision_attention(fresh.model, "reference")
    assert patch_embed_mode(fresh.model) == "conv3d"


def test_models_without_it_are_left_alone() -> None:
    from orienteer.jobs.model.patch_embed import patch_embed_mode, patch_patch_embed

    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, kernel_size=2, stride=1))
    assert patch_patch_embed(net) == 0
    assert patch_embed_mode(net) == "none"
