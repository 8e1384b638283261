"""Qwen2.5-VL's patch embedding as one matrix product instead of a Conv3d.

The vision tower embeds each 2x14x14 RGB patch with ``nn.Conv3d(kernel_size == stride)``: no
window overlaps another, so it is exactly a linear map of the flattened patch. cuDNN has no good
kernel for that shape on several PyTorch/cuDNN/GPU combinations (im2col plus a fill, or worse:
transformers#45750 reports 60x to 50,000x slowdowns; vLLM and SGLang ship the same substitution,
and transformers 5 offers it as an opt-in load-time fusion). Here it is patched onto the loaded
module at run time: the weights are untouched (a view of the Conv3d weight is the Linear weight),
so checkpoints, adapters and ``save_pretrained`` see the original model. Gradients flow to the
pixels as before (saliency needs them).
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.model.forward_patch import is_patched, set_forward


def _linear_forward(self: Any, hidden_states: Any) -> Any:
    """Drop-in for ``Qwen2_5_VisionPatchEmbed.forward``: same input rows, same output, one GEMM."""
    import torch.nn.functional as F

    weight = self.proj.weight  # (embed_dim, channels, t, p, p): flattened in the order the input rows are
    flat = weight.reshape(weight.shape[0], -1)
    rows = hidden_states.reshape(-1, flat.shape[1]).to(dtype=weight.dtype)
    return F.linear(rows, flat, self.proj.bias)


def _patch_embed_modules(model: Any) -> list[Any]:
    import torch.nn as nn

    found = []
    for module in model.modules():
        proj = getattr(module, "proj", None)
        if type(module).__name__.endswith("VisionPatchEmbed") and isinstance(proj, nn.Conv3d):
            # only the degenerate case is a linear map: no overlap, no padding, no dilation, no groups
            if (tuple(proj.kernel_size) == tuple(proj.stride) and proj.padding in ((0, 0, 0), "valid")
                    and tuple(proj.dilation) == (1, 1, 1) and proj.groups == 1):
                found.append(module)
    return found


def patch_patch_embed(model: Any, linear: bool = True) -> int:
    """Switch ``model``'s vision patch embedding to the GEMM (``linear``) or back to Conv3d; the count patched."""
    modules = _patch_embed_modules(model)
    return set_forward(modules, _linear_forward if linear else None)


def patch_embed_mode(model: Any) -> str:
    """``linear`` or ``conv3d`` (``none`` when the model has no such patch embedding)."""
    modules = _patch_embed_modules(model)
    if not modules:
        return "none"
    return "linear" if is_patched(modules[0]) else "conv3d"
