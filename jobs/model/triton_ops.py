"""Fused element-wise kernels as PyTorch custom ops: Triton on CUDA, eager maths elsewhere.

Each op (``fused_swiglu.py``, ``fused_rotary.py``) is registered once under ``orienteer::`` with three
implementations: a Triton kernel for CUDA tensors, the same maths in eager PyTorch for every other
device, and a shape-only one for ``meta`` (so ``bench/bench_census.py`` counts one kernel). If a
Triton kernel cannot run (no Triton, a compile error on this GPU), the op says so once on stderr and
uses the eager maths from then on: a job never fails for want of a fast kernel. Kernels are tested
under Triton's CPU interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

_OPS: dict[str, Any] = {}
_FAILED: set[str] = set()


def fused_op(name: str, schema: str, eager: Callable[..., Any], fake: Callable[..., Any],
             triton_impl: Callable[..., Any]) -> Any:
    """The custom op ``orienteer::name`` (registered on first call; the schema is given because
    the modules use postponed annotations, which ``custom_op`` cannot read)."""
    if name in _OPS:
        return _OPS[name]
    import torch

    op = torch.library.custom_op(f"orienteer::{name}", eager, mutates_args=(), schema=schema)
    op.register_fake(fake)

    def on_cuda(*args: Any) -> Any:
        if name not in _FAILED:
            try:
                return triton_impl(*args)
            except Exception as exc:  # noqa: BLE001 - any failure: the same maths, eagerly
                _FAILED.add(name)
                print(f"warning: fused kernel {name} unavailable ({type(exc).__name__}: {exc}); using eager ops",
                      file=sys.stderr, flush=True)
        return eager(*args)

    op.register_kernel("cuda", on_cuda)
    _OPS[name] = op
    return op


def needs_autograd(*tensors: Any) -> bool:
    """Whether a backward pass will go through these tensors (then the eager ops run: saliency)."""
    import torch

    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
