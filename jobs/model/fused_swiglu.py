"""SwiGLU's ``silu(gate) * up`` in one kernel for half-precision inference, patched onto the MLPs.

Both towers' MLPs compute ``down(silu(gate(x)) * up(x))``. Eagerly that is two element-wise kernels
over the intermediate activations (11,008 wide in the 3B language model, 3,420 in the vision
tower): SiLU reads ``gate`` and writes a copy, the multiply reads both and writes a third. One
kernel reads ``gate`` and ``up`` once and writes once: about 46 GB less traffic per batch of 32 at
640x480 (``bench/bench_census.py``), ~4% of the batch's roofline floor.

``orienteer::silu_mul`` is a custom op of ``triton_ops.py`` (Triton on CUDA, eager maths elsewhere,
shape-only on ``meta``; the eager maths if the kernel cannot run). It computes in fp32 and rounds
once, where the eager pair rounds twice: outputs differ by bf16 rounding. Only half-precision
inputs without autograd take it: fp32 (the CPU) runs transformers' code exactly, and saliency's
backward pass goes through the eager ops.
"""

from __future__ import annotations

import functools
from typing import Any

from orienteer.jobs.model.forward_patch import is_patched, set_forward


def _eager(gate: Any, up: Any) -> Any:
    import torch.nn.functional as F

    return (F.silu(gate.float()) * up.float()).to(gate.dtype)


def _fake(gate: Any, up: Any) -> Any:
    import torch

    return torch.empty_like(gate)


@functools.cache
def _triton_kernel() -> Any:
    """Built (and JIT-compiled on first launch) once per process."""
    import triton
    import triton.language as tl

    @triton.jit
    def silu_mul_kernel(gate_ptr, up_ptr, out_ptr, n, BLOCK: tl.constexpr):  # noqa: N803 - Triton's style
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        g = tl.load(gate_ptr + offs, mask=mask).to(tl.float32)
        u = tl.load(up_ptr + offs, mask=mask).to(tl.float32)
        tl.store(out_ptr + offs, (g / (1.0 + tl.exp(-g)) * u).to(out_ptr.dtype.element_ty), mask=mask)

    return silu_mul_kernel


def silu_mul_triton(gate: Any, up: Any, block: int = 2048) -> Any:
    """The Triton kernel on contiguous tensors of one shape (CUDA, or the CPU under ``TRITON_INTERPRET=1``)."""
    import torch
    import triton

    gate, up = gate.contiguous(), up.contiguous()
    out = torch.empty_like(gate)
    n = gate.numel()
    if n:
        _triton_kernel()[(triton.cdiv(n, block),)](gate, up, out, n, BLOCK=block)
    return out


def silu_mul_op() -> Any:
    """``orienteer::silu_mul(gate, up)`` (``triton_ops.fused_op``)."""
    from orienteer.jobs.model.triton_ops import fused_op

    return fused_op("silu_mul", "(Tensor gate, Tensor up) -> Tensor", _eager, _fake, silu_mul_triton)


def _fused_forward(self: Any, hidden_state: Any) -> Any:
    """Drop-in for ``Qwen2MLP`` / ``Qwen2_5_VLMLP.forward`` (gate, up, down projections, SiLU)."""
    import torch

    from orienteer.jobs.model.triton_ops import needs_autograd

    gate, up = self.gate_proj(hidden_state), self.up_proj(hidden_state)
    if gate.dtype in (torch.float16, torch.bfloat16) and not needs_autograd(gate, up):
        return self.down_proj(silu_mul_op()(gate, up))
    return self.down_proj(self.act_fn(gate) * up)


def _mlp_modules(model: Any) -> list[Any]:
    import torch.nn as nn

    return [m for m in model.modules()
            if all(isinstance(getattr(m, name, None), nn.Linear) for name in ("gate_proj", "up_proj", "down_proj"))
            and type(getattr(m, "act_fn", None)).__name__ in ("SiLUActivation", "SiLU")]


def patch_swiglu(model: Any, fused: bool = True) -> int:
    """Switch every SiLU-gated MLP of ``model`` to the fused form, or back; the number switched."""
    return set_forward(_mlp_modules(model), _fused_forward if fused else None)


def swiglu_mode(model: Any) -> str:
    """``fused`` or ``reference`` (``none`` when the model has no SiLU-gated MLP)."""
    modules = _mlp_modules(model)
    if not modules:
        return "none"
    return "fused" if is_patched(modules[0]) else "reference"
