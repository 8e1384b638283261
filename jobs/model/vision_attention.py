"""A faster attention for Qwen2.5-VL's vision tower, patched onto a loaded model.

transformers' sdpa path splits the packed patch sequence at every window boundary and calls SDPA
once per window, in a Python loop: a 640x480 image has ~30 windows, so a batch of 64 images makes
~2,000 kernel launches per layer, 28 windowed layers deep (ARCHITECTURE.md section 9: the tower
was the bottleneck at ~45 ms/image). Two replacements, same maths:

- ``grouped`` (what ``auto`` picks): windows of equal length (all interior windows of an image, all
  images of one size) are gathered into one dense ``(n_windows, heads, len, dim)`` tensor and go
  through one SDPA call; a batch has only a handful of distinct lengths (edge and corner windows).
  Works everywhere; on an H100 its attention output is bit-identical to the reference's.
- ``varlen``: one flash-attention call over the packed sequence with ``cu_seqlens``
  (``torch.nn.attention.varlen``), CUDA with fp16/bf16 only; no faster than ``grouped`` there.

In half precision the rotary embedding of q and k is one fused kernel with the reference's fp32
maths (``fused_rotary.py``; the reference makes ~9 passes over tensors of q and k's size, ~30% of
the tower's GPU time once attention is fixed); with autograd (saliency) it is a few ops in the
model dtype, differing from the reference by bf16 rounding. In fp32 (CPU) it is the reference's code.

Measured on one H100, 3B shapes, 640x480 (bench/bench_gpu.py): tower 22.6 -> 83 images/s.
Every fast mode also switches the patch embedding from Conv3d to one GEMM (``patch_embed.py``).
The plan (which tokens form which group) is computed once per ``cu_seqlens`` tensor, i.e. once per
forward pass for all layers, not once per layer, or ahead of the forward on the host
(``register_plans``). Groups of windows that lie back to back are plain slices: score mode lays
the windows out sorted by length (``score_pipeline.windows_by_length``), so its windowed layers
gather nothing. Gradients flow through both modes (saliency needs them).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from orienteer.jobs.model.forward_patch import is_patched, set_forward
from orienteer.jobs.settings import VISION_ATTENTION_MODES

MODES = VISION_ATTENTION_MODES  # declared torch-free in jobs.settings, where the kinds read it
_MAX_PLANS = 4


class _PlanCache:
    """Per-``cu_seqlens`` plans shared by all attention layers of one vision tower."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, dict[str, Any]]] = []
        self.modules: list[Any] = []
        self.rotary: tuple[Any, Any, Any] | None = None  # (fp32 cos it came from, cos, sin) in the model dtype

    def half_rotary(self, cos: Any, sin: Any, dtype: Any) -> tuple[Any, Any]:
        """cos and sign-folded sin in ``dtype``, shaped to broadcast over (tokens, q/k, heads, dim); once per forward."""
        import torch

        if self.rotary is None or self.rotary[0] is not cos:
            half = sin.shape[-1] // 2
            signed = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
            self.rotary = (cos, cos.to(dtype)[:, None, None, :], signed.to(dtype)[:, None, None, :])
        return self.rotary[1], self.rotary[2]

    def get(self, cu_seqlens: Any) -> dict[str, Any]:
        for tensor, plan in self.entries:
            if tensor is cu_seqlens:
                return plan
        # reads cu_seqlens back from the device (a sync) unless the caller registered a plan with put()
        return self.put(cu_seqlens, make_plan(ranges(cu_seqlens.tolist()), cu_seqlens.device))

    def put(self, cu_seqlens: Any, plan: dict[str, Any]) -> dict[str, Any]:
        """Register ``plan`` for this ``cu_seqlens`` tensor (planned on the host ahead of the forward)."""
        self.entries.append((cu_seqlens, plan))
        del self.entries[:-_MAX_PLANS]
        return plan


def ranges(bounds: Sequence[int]) -> list[range]:
    """The token ranges of packed sequences from their cumulative bounds (``cu_seqlens``)."""
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def make_plan(segments: Sequence[Any], device: Any) -> dict[str, Any]:
    """Which tokens form which equal-length group, from the host-side ``segments``.

    A segment is one attention sequence (a window, or a whole image in the full-attention layers):
    a ``range`` of packed token positions, or a 1-D tensor of positions (tokens laid out apart, in
    the order attention sees them). A group of equal-length ranges that lie back to back is a plain
    slice of q, k and v; anything else is gathered. When the slices tile the sequence in group order
    (``score_pipeline`` lays windows out sorted by length for this) the outputs need no scatter back.
    Built on the host and copied to ``device`` without waiting for it, so a plan made ahead of time
    puts no host-device sync into the forward.
    """
    import torch

    from orienteer.jobs.model.host_copy import to_device_async

    lengths = [len(seg) for seg in segments]
    by_length: dict[int, list[Any]] = {}
    for seg, length in zip(segments, lengths):
        if length:
            by_length.setdefault(length, []).append(seg)
    groups: list[tuple[int, int, Any, int]] = []  # (length, count, gather index or None, start of the slice)
    order = []
    tiled = 0  # how far the slices so far tile the sequence from 0, in group order (-1: they do not)
    for length, segs in sorted(by_length.items()):
        start = segs[0].start if isinstance(segs[0], range) else -1
        if start >= 0 and all(isinstance(g, range) and g.start == start + j * length for j, g in enumerate(segs)):
            idx = torch.arange(start, start + len(segs) * length)
            groups.append((length, len(segs), None, start))
            tiled = tiled + len(segs) * length if tiled == start else -1
        else:
            if all(isinstance(g, range) for g in segs):
                idx = (torch.tensor([g.start for g in segs])[:, None] + torch.arange(length)[None, :]).reshape(-1)
            else:
                idx = torch.cat([torch.arange(g.start, g.stop) if isinstance(g, range) else torch.as_tensor(g) for g in segs])
            groups.append((length, len(segs), to_device_async(idx, device), 0))
            tiled = -1
        order.append(idx)
    in_order = tiled == sum(lengths)
    return {
        "groups": groups,
        "inverse": None if in_order or not order else to_device_async(torch.argsort(torch.cat(order)), device),
        "max_len": max(lengths) if lengths else 0,
        "cu32": to_device_async(torch.tensor(list(accumulate(lengths, initial=0)), dtype=torch.int32), device),
    }


def register_plans(model: Any, planned: Sequence[tuple[Any, Sequence[Any]]]) -> bool:
    """Give the patched vision attention of ``model`` the plans of these ``(device cu_seqlens tensor,
    host segments)`` pairs, so the forward that receives those tensors never reads them back; False
    when the model's vision attention is not patched."""
    modules = _attention_modules(model)
    cache = getattr(modules[0], "_orienteer_plans", None) if modules and is_patched(modules[0]) else None
    if cache is None:
        return False
    for tensor, segments in planned:
        cache.put(tensor, make_plan(segments, tensor.device))
    return True


def grouped_attention(q: Any, k: Any, v: Any, plan: dict[str, Any], scale: float) -> Any:
    """Block-diagonal attention over packed ``(tokens, heads, dim)`` tensors, one SDPA per window length."""
    import torch
    import torch.nn.functional as F

    heads, dim = q.shape[1], q.shape[2]
    outputs = []
    for length, count, flat, start in plan["groups"]:
        if flat is None:
            qs, ks, vs = (t[start:start + count * length].reshape(count, length, heads, dim) for t in (q, k, v))
        else:
            qs, ks, vs = (t.index_select(0, flat).reshape(count, length, heads, dim) for t in (q, k, v))
        out = F.scaled_dot_product_attention(
            qs.transpose(1, 2), ks.transpose(1, 2), vs.transpose(1, 2), scale=scale, is_causal=False
        )
        outputs.append(out.transpose(1, 2).reshape(count * length, heads, dim))
    joined = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
    return joined if plan["inverse"] is None else joined.index_select(0, plan["inverse"])


def varlen_attention(q: Any, k: Any, v: Any, plan: dict[str, Any], scale: float) -> Any:
    """One flash-attention call over the packed sequence (CUDA, fp16/bf16)."""
    from torch.nn.attention.varlen import varlen_attn

    cu = plan["cu32"]
    return varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, plan["max_len"], plan["max_len"], scale=scale)


def _fast_forward(self: Any, hidden_states: Any, cu_seqlens: Any, position_embeddings: Any = None,
                  max_seqlen: int | None = None, **kwargs: Any) -> Any:
    """Drop-in for ``Qwen2_5_VLVisionAttention.forward`` (same projections, rotary and output)."""
    import torch
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    from orienteer.jobs.model.fused_rotary import vision_rotary_op
    from orienteer.jobs.model.triton_ops import needs_autograd

    seq_length = hidden_states.shape[0]
    qkv = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1)
    cos, sin = position_embeddings
    if qkv.dtype in (torch.float16, torch.bfloat16) and not needs_autograd(qkv):
        # inference: one kernel reads q and k once and writes them once, in fp32 maths like the
        # reference (fused_rotary.py), where transformers makes ~9 passes over tensors of their size
        rotated = vision_rotary_op()(qkv[:, :2], cos, sin)
        q, k, v = rotated[:, 0], rotated[:, 1], qkv[:, 2]
    elif qkv.dtype in (torch.float16, torch.bfloat16):
        # with autograd (saliency): q and k together in the model dtype, out of place; the result
        # differs from the reference's fp32 maths by bf16 rounding only
        c, s = self._orienteer_plans.half_rotary(cos, sin, qkv.dtype)
        qk = qkv[:, :2]
        half = qk.shape[-1] // 2
        qk = qk * c + torch.cat((qk[..., half:], qk[..., :half]), dim=-1) * s
        q, k, v = qk[:, 0], qk[:, 1], qkv[:, 2]
    else:
        q, k, v = qkv.permute(1, 0, 2, 3).unbind(0)
        q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    plan = self._orienteer_plans.get(cu_seqlens)
    if self._orienteer_mode == "varlen":
        try:
            out = varlen_attention(q, k, v, plan, self.scaling)
        except (RuntimeError, TypeError, ImportError, NotImplementedError) as exc:
            _fall_back(self, exc)
            out = grouped_attention(q, k, v, plan, self.scaling)
    else:
        out = grouped_attention(q, k, v, plan, self.scaling)
    return self.proj(out.reshape(seq_length, -1))


def _fall_back(module: Any, exc: BaseException) -> None:
    """varlen failed at run time (old torch, unsupported head size): use ``grouped`` from now on."""
    import sys

    print(f"warning: varlen vision attention failed ({type(exc).__name__}: {exc}); using grouped", file=sys.stderr, flush=True)
    for m in module._orienteer_plans.modules:
        m._orienteer_mode = "grouped"


def _varlen_works(device: Any, dtype: Any) -> bool:
    """Probe ``varlen_attn`` once on small tensors: present, and accepts our call on this GPU."""
    import torch

    try:
        from torch.nn.attention.varlen import varlen_attn

        q = torch.randn(8, 2, 16, device=device, dtype=dtype)
        cu = torch.tensor([0, 4, 8], device=device, dtype=torch.int32)
        out = varlen_attn(q, q, q, cu, cu, 4, 4, scale=0.25)
        return isinstance(out, torch.Tensor) and tuple(out.shape) == (8, 2, 16)
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def _attention_modules(model: Any) -> list[Any]:
    return [m for m in model.modules() if type(m).__name__ == "Qwen2_5_VLVisionAttention"]


def resolve_mode(model: Any, mode: str) -> str:
    """``auto`` -> ``grouped`` (as fast as ``varlen`` on an H100 and bit-identical to the reference's
    SDPA kernels); ``varlen`` only where it works (CUDA, half precision), else ``grouped``."""
    if mode not in MODES:
        from orienteer.data.errors import OrienteerError

        raise OrienteerError(f"vision attention {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "varlen":
        param = next(model.parameters())
        return "varlen" if param.device.type == "cuda" and _varlen_works(param.device, param.dtype) else "grouped"
    if mode == "auto":
        return "grouped"
    return mode


def patch_vision_attention(model: Any, mode: str = "auto") -> str:
    """Switch every vision attention layer of ``model`` to ``mode``; returns the mode in effect.

    Every mode but ``reference`` also switches the patch embedding to one GEMM (``patch_embed.py``);
    ``reference`` restores transformers' own forwards. Models without Qwen2.5-VL vision attention
    are left alone (returns ``"none"``).
    """
    from orienteer.jobs.model.patch_embed import patch_patch_embed

    modules = _attention_modules(model)
    if not modules:
        return "none"
    chosen = resolve_mode(model, mode)
    # The fast tower also embeds patches with one GEMM (patch_embed.py); reference is transformers' own.
    patch_patch_embed(model, linear=chosen != "reference")
    if chosen == "reference":
        set_forward(modules, None)
        return chosen
    cache = _PlanCache()
    cache.modules = modules
    for module in modules:
        module._orienteer_mode = chosen
        module._orienteer_plans = cache
    set_forward(modules, _fast_forward)
    return chosen


def vision_attention_mode(model: Any) -> str:
    """The mode currently patched onto ``model`` (``reference`` when unpatched)."""
    modules = _attention_modules(model)
    if not modules:
        return "none"
    return getattr(modules[0], "_orienteer_mode", "reference") if is_patched(modules[0]) else "reference"
