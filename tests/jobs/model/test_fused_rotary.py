"""The fused vision rotary: transformers' fp32 maths in one kernel; the autograd path stays close to it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image


def test_eager_op_is_transformers_rotary() -> None:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    from orienteer.jobs.model.fused_rotary import vision_rotary_op

    qkv = torch.randn(33, 3, 4, 16, dtype=torch.bfloat16)
    ang = torch.randn(33, 8)
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    got = vision_rotary_op()(qkv[:, :2], cos, sin)
    q, k = apply_rotary_pos_emb_vision(qkv[:, 0], qkv[:, 1], cos, sin)
    assert torch.equal(got[:, 0], q) and torch.equal(got[:, 1], k)
    meta = vision_rotary_op()(qkv[:, :2].to("meta"), cos.to("meta"), sin.to("meta"))
    assert meta.shape == (33, 2, 4, 16) and meta.dtype == torch.bfloat16


def test_triton_kernel_matches_under_the_interpreter(run_under_triton_interpreter: Any) -> None:
    """The CUDA kernel's code run by Triton's CPU interpreter, on a strided view of a qkv tensor. fp32:
    bit for bit. bf16: within one bf16 step, since the interpreter truncates where GPUs round to nearest."""
    script = (
        "import torch\n"
        "from orienteer.jobs.model.fused_rotary import _eager, vision_rotary_triton\n"
        "torch.manual_seed(0)\n"
        "for dtype in (torch.float32, torch.bfloat16):\n"
        "    for tokens, heads, dim in ((7, 3, 16), (130, 16, 80), (65, 2, 8)):\n"
        "        qkv = torch.randn(tokens, 3, heads, dim).to(dtype)\n"
        "        ang = torch.randn(tokens, dim // 2) * 3\n"
        "        cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()\n"
        "        got, want = vision_rotary_triton(qkv[:, :2], cos, sin, block_rows=16), _eager(qkv[:, :2], cos, sin)\n"
        "        assert got.dtype == dtype and got.shape == want.shape and got.is_contiguous()\n"
        "        if dtype == torch.float32:\n"
        "            assert torch.equal(got, want), (got - want).abs().max()\n"
        "        else:\n"
        "            step = want.float().abs().clamp(min=1e-30) * 2 ** -7\n"
        "            assert bool(((got.float() - want.float()).abs() <= step).all())\n"
        "print('ok')\n"
    )
    run_under_triton_interpreter(script)


def test_autograd_path_stays_within_bf16_rounding_of_the_reference(fresh: Any) -> None:
    """With gradients (saliency) the tower uses the few-op rotary in bf16, not the fused op."""
    from orienteer.jobs.model.vision_attention import patch_vision_attention

    model = fresh.model.to(torch.bfloat16)
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in ((640, 480), (200, 300))]
    out = fresh.processor.image_processor(images=frames, return_tensors="pt")
    pixels, grid = out["pixel_values"].to(torch.bfloat16), out["image_grid_thw"]
    visual = model.model.visual
    with torch.no_grad():
        ref = visual(pixels, grid_thw=grid).pooler_output.float()
    patch_vision_attention(model, "grouped")
    x = pixels.clone().requires_grad_(True)
    fast = visual(x, grid_thw=grid).pooler_output
    fast.float().pow(2).sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad.float()).all())
    assert (fast.detach().float() - ref).abs().max().item() <= 3e-2 * max(1.0, ref.abs().max().item())
