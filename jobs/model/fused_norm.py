"""RMSNorm in one kernel for half-precision models, patched onto the loaded modules.

transformers' ``Qwen2_5_VLRMSNorm`` upcasts to fp32 and runs five element-wise kernels (cast,
square, mean, rsqrt-multiply, cast back) plus the weight multiply: each reads or writes the whole
activation, in fp32 for most of them. With 64 norms in the vision tower and 72 in the 3B language
model, that is about a tenth of a forward pass's memory traffic at 640x480 and batch 32 (estimate
from tensor sizes; ``bench/bench_gpu.py`` times it). ``torch.nn.functional.rms_norm`` computes the
same thing in fp32 inside one fused kernel on CUDA (``aten::_fused_rms_norm``) and rounds once at
the end, where the reference rounds before the weight multiply: outputs differ by bf16 rounding.

Only half-precision inputs with a weight of the same dtype take the fused path; fp32 (the CPU)
keeps transformers' own code, so CPU numbers are the reference's exactly.
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.model.forward_patch import is_patched, set_forward


def _fused_forward(self: Any, hidden_states: Any) -> Any:
    """Drop-in for an HF ``*RMSNorm.forward`` (``weight``, ``variance_epsilon``)."""
    import torch
    import torch.nn.functional as F

    weight = self.weight
    if hidden_states.dtype in (torch.float16, torch.bfloat16) and weight.dtype == hidden_states.dtype:
        return F.rms_norm(hidden_states, (hidden_states.shape[-1],), weight, self.variance_epsilon)
    return type(self).forward(self, hidden_states)


def _norm_modules(model: Any) -> list[Any]:
    import torch.nn as nn

    return [m for m in model.modules()
            if type(m).__name__.endswith("RMSNorm") and isinstance(getattr(m, "weight", None), nn.Parameter)
            and isinstance(getattr(m, "variance_epsilon", None), float) and m.weight.dim() == 1]


def patch_rms_norm(model: Any, fused: bool = True) -> int:
    """Switch every HF-style RMSNorm of ``model`` to the fused form, or back; the number switched."""
    modules = _norm_modules(model)
    return set_forward(modules, _fused_forward if fused else None)


def rms_norm_mode(model: Any) -> str:
    """``fused`` or ``reference`` (``none`` when the model has no HF-style RMSNorm)."""
    modules = _norm_modules(model)
    if not modules:
        return "none"
    return "fused" if is_patched(modules[0]) else "reference"
