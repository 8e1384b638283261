"""The vision tower's rotary embedding of q and k in one kernel (half-precision inference).

transformers applies it as ``x * cos + rotate_half(x) * sin`` in fp32: it upcasts q and k, builds a
rotated copy, multiplies, adds and casts back, each a pass over tensors as large as q and k. At
640x480 and batch 32 that was the largest element-wise cost of the tower after attention itself.
``orienteer::vision_rotary`` reads q and k once and writes them once, computing in fp32 with the
fp32 tables as the reference does: per element ``x1 c1 - x2 s1`` (first half of the head) and
``x2 c2 + x1 s2`` (second half), rounded once. The result equals transformers' up to the order
of one multiply-add (tested under Triton's CPU interpreter); ``bench/bench_census.py`` counts
the traffic it saves.

Used by ``vision_attention._fast_forward`` for half-precision inputs without autograd; saliency's
backward pass and fp32 keep the eager maths. A custom op of ``triton_ops.py``.
"""

from __future__ import annotations

import functools
from typing import Any


def _eager(qk: Any, cos: Any, sin: Any) -> Any:
    """transformers' ``apply_rotary_pos_emb_vision`` on ``qk`` = (tokens, 2, heads, dim): fp32, rounded once."""
    import torch
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    q, k = apply_rotary_pos_emb_vision(qk[:, 0], qk[:, 1], cos, sin)
    return torch.stack((q, k), dim=1)


def _fake(qk: Any, cos: Any, sin: Any) -> Any:
    import torch

    return torch.empty(qk.shape, dtype=qk.dtype, device=qk.device)


@functools.cache
def _triton_kernel() -> Any:
    """Built (and JIT-compiled on first launch) once per process."""
    import triton
    import triton.language as tl

    @triton.jit
    def rotary_kernel(qk_ptr, cos_ptr, sin_ptr, out_ptr, n_rows, rows_per_token, token_stride,  # noqa: N803
                      HALF: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
        # one row = one head of q or of k of one token; rows of a token are contiguous in qk
        rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
        token = rows // rows_per_token
        src = token * token_stride + (rows % rows_per_token) * (2 * HALF)
        d = tl.arange(0, BLOCK_D)
        mask = (rows < n_rows)[:, None] & (d < HALF)[None, :]
        col = d[None, :]
        x1 = tl.load(qk_ptr + src[:, None] + col, mask=mask).to(tl.float32)
        x2 = tl.load(qk_ptr + src[:, None] + HALF + col, mask=mask).to(tl.float32)
        table = token[:, None] * (2 * HALF) + col
        c1 = tl.load(cos_ptr + table, mask=mask)
        c2 = tl.load(cos_ptr + table + HALF, mask=mask)
        s1 = tl.load(sin_ptr + table, mask=mask)
        s2 = tl.load(sin_ptr + table + HALF, mask=mask)
        dst = rows[:, None] * (2 * HALF) + col
        kind = out_ptr.dtype.element_ty
        tl.store(out_ptr + dst, (x1 * c1 - x2 * s1).to(kind), mask=mask)
        tl.store(out_ptr + dst + HALF, (x2 * c2 + x1 * s2).to(kind), mask=mask)

    return rotary_kernel


def vision_rotary_triton(qk: Any, cos: Any, sin: Any, block_rows: int = 64) -> Any:
    """The Triton kernel. ``qk``: (tokens, 2, heads, dim), rows of a token contiguous (a view of the
    qkv projection is fine); ``cos``/``sin``: (tokens, dim). Returns a contiguous (tokens, 2, heads, dim)."""
    import torch
    import triton

    tokens, two, heads, dim = qk.shape
    if qk.stride(3) != 1 or qk.stride(2) != dim or qk.stride(1) != heads * dim:
        qk = qk.contiguous()
    cos, sin = cos.float().contiguous(), sin.float().contiguous()
    out = torch.empty((tokens, two, heads, dim), dtype=qk.dtype, device=qk.device)
    n_rows = tokens * two * heads
    if n_rows:
        half = dim // 2
        _triton_kernel()[(triton.cdiv(n_rows, block_rows),)](
            qk, cos, sin, out, n_rows, two * heads, qk.stride(0),
            HALF=half, BLOCK_R=block_rows, BLOCK_D=triton.next_power_of_2(half))
    return out


def vision_rotary_op() -> Any:
    """``orienteer::vision_rotary(qk, cos, sin)`` (``triton_ops.fused_op``)."""
    from orienteer.jobs.model.triton_ops import fused_op

    return fused_op("vision_rotary", "(Tensor qk, Tensor cos, Tensor sin) -> Tensor", _eager, _fake,
                    vision_rotary_triton)
