"""One-kernel SwiGLU: the same maths as transformers' MLPs (bf16 rounding apart), fp32 and gradients untouched."""

from __future__ import annotations

from typing import Any

import pytest
import torch


def _mlps(model: Any) -> list[Any]:
    from orienteer.jobs.model.fused_swiglu import _mlp_modules

    return _mlp_modules(model)


def test_both_towers_mlps_are_found_and_switched(fresh: Any) -> None:
    from orienteer.jobs.model.fused_swiglu import patch_swiglu, swiglu_mode

    config = fresh.model.config
    n = config.vision_config.depth + config.text_config.num_hidden_layers
    assert len(_mlps(fresh.model)) == n
    assert swiglu_mode(fresh.model) == "reference"
    assert patch_swiglu(fresh.model) == n and swiglu_mode(fresh.model) == "fused"
    assert patch_swiglu(fresh.model, fused=False) == n and swiglu_mode(fresh.model) == "reference"


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_half_precision_output_is_transformers_within_rounding(fresh: Any, tower: str) -> None:
    from orienteer.jobs.model.fused_swiglu import patch_swiglu

    model = fresh.model.to(torch.bfloat16)
    mlp = [m for m in _mlps(model) if (type(m).__name__ == "Qwen2_5_VLMLP") == (tower == "vision")][0]
    x = torch.randn(37, mlp.gate_proj.in_features, dtype=torch.bfloat16)
    with torch.no_grad():
        ref = mlp(x)
        patch_swiglu(model)
        fused = mlp(x)
    assert fused.dtype == torch.bfloat16 and fused.shape == ref.shape
    torch.testing.assert_close(fused.float(), ref.float(), atol=2e-2, rtol=2e-2)


def test_fp32_and_gradients_run_transformers_own_ops(fresh: Any) -> None:
    from orienteer.jobs.model.fused_swiglu import patch_swiglu

    mlp = _mlps(fresh.model)[0]
    x = torch.randn(11, mlp.gate_proj.in_features)
    with torch.no_grad():
        ref = mlp(x)
    patch_swiglu(fresh.model)
    with torch.no_grad():
        assert torch.equal(mlp(x), ref)  # fp32: bit for bit
    half = mlp.to(torch.bfloat16)
    for p in half.parameters():
        p.requires_grad_(True)
    xb = x.to(torch.bfloat16).requires_grad_(True)
    out = half(xb)  # autograd needed: the eager pair, so saliency's backward pass works
    out.float().sum().backward()
    assert xb.grad is not None and xb.grad.abs().sum() > 0
    with torch.no_grad():
        expected = half.down_proj(half.act_fn(half.gate_proj(xb)) * half.up_proj(xb))
    assert torch.equal(out.detach(), expected)


def test_triton_kernel_matches_under_the_interpreter(run_under_triton_interpreter: Any) -> None:
    """The CUDA kernel's code, run by Triton's CPU interpreter: odd sizes, fp32 and bf16."""
    script = (
        "import torch\n"
        "from orienteer.jobs.model.fused_swiglu import _eager, silu_mul_triton\n"
        "for dtype in (torch.float32, torch.bfloat16):\n"
        "    for shape in ((3, 5), (1000, 37), (2049,)):\n"
        "        g, u = torch.randn(shape).mul(4).to(dtype), torch.randn(shape).to(dtype)\n"
        "        got, want = silu_mul_triton(g, u, block=256), _eager(g, u)\n"
        "        assert got.dtype == dtype and got.shape == want.shape\n"
        "        tol = 1e-6 if dtype == torch.float32 else 1e-2\n"
        "        torch.testing.assert_close(got.float(), want.float(), atol=tol, rtol=tol)\n"
        "print('ok')\n"
    )
    run_under_triton_interpreter(script)
