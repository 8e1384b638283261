"""Input-gradient saliency: d(chosen letter's logit) / d(pixels), mapped back onto each frame.

Qwen2.5-VL's processor turns an image into patches ordered ``(gh/2, gw/2, 2, 2) x (C, T=2, 14, 14)``
(ARCHITECTURE.md section 8); ``patches_to_image`` inverts that order. The gradient is taken w.r.t.
``pixel_values`` (normalised pixels) and converted to raw-pixel units with the processor's
``rescale / std`` per channel, summed over the two temporal copies of a still image, then
``|.|`` summed over channels, and resized to the original image so it overlays the file itself.

Numbers per frame: ``spread`` (share of pixels holding half of the mass: 0.5 for a flat map, near
0 for a spike) and ``entropy`` (normalised, 1 = flat). On the frame the reference object's box is
on (the item's ``bbox_frame``), the research's "tunnel vision" question: ``mass_in_bbox`` (share
of the map's mass inside the box, leaving out a ring as wide as the red border box-prompt draws,
``ring_px``, so the model's response to the drawn lines is not counted as the object),
``bbox_area`` (that inside's share of the frame: what a uniform map would give) and
``mass_on_ring`` (share on the ring). The ring is the one ``boxes.draw_box`` paints, pixel for
pixel, whether or not the box was drawn on the image, so a run on undrawn images (box-prompt
``--control``) is measured on the same region.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pixel_gradients(model: Any, batch: dict[str, Any], target_ids: Sequence[int]) -> tuple[Any, Any]:
    """Gradient of each row's ``target_ids[row]`` logit (last position) w.r.t. ``pixel_values``.

    Returns ``(grad, logits)``: grad shaped like ``pixel_values`` (float32), and the target logits.
    Rows are independent, so one backward pass of their sum gives every row's own gradient.
    """
    import torch

    given = batch["pixel_values"].detach()
    pixels = (given if given.dtype == torch.float64 else given.float()).clone().requires_grad_(True)
    inputs = {**batch, "pixel_values": pixels}
    with torch.enable_grad():
        out = model(**inputs, use_cache=False, logits_to_keep=1)
        logits = out.logits[:, -1, :]
        ids = torch.as_tensor(list(target_ids), device=logits.device)
        chosen = logits.gather(1, ids[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(chosen.sum(), pixels)
    return grad, chosen.detach()


def patches_to_image(flat: Any, grid_thw: Sequence[int], channels: int = 3, patch: int = 14,
                     temporal: int = 2, merge: int = 2, reduce: str = "sum") -> Any:
    """Invert the processor's patch order for one image: ``(gh*gw, C*T*p*p)`` -> ``(C, gh*p, gw*p)``.

    ``reduce`` combines the temporal copies: ``sum`` for gradients (both copies are the same
    pixel), ``mean`` to recover the image itself.
    """
    t, gh, gw = (int(v) for v in grid_thw)
    x = flat.reshape(t, gh // merge, gw // merge, merge, merge, channels, temporal, patch, patch)
    x = x.sum(dim=(0, 6)) if reduce == "sum" else x.mean(dim=(0, 6))
    return x.permute(4, 0, 2, 5, 1, 3, 6).reshape(channels, gh * patch, gw * patch)


def split_per_image(grad: Any, grid_thw: Any) -> list[Any]:
    sizes = [int(t * h * w) for t, h, w in grid_thw.tolist()]
    return list(grad.split(sizes, dim=0))


def channel_scale(image_processor: Any) -> list[float]:
    """d(normalised pixel)/d(raw 0-255 pixel) per channel: rescale_factor / std."""
    std = image_processor.image_std if getattr(image_processor, "do_normalize", True) else [1.0, 1.0, 1.0]
    rescale = image_processor.rescale_factor if getattr(image_processor, "do_rescale", True) else 1.0
    return [float(rescale) / float(s) for s in std]


def frame_map(grad_flat: Any, grid_thw: Sequence[int], original_size: tuple[int, int], scale: Sequence[float]) -> Any:
    """One frame's saliency at its original (width, height): |raw-pixel gradient| summed over channels."""
    import torch
    import torch.nn.functional as F

    img = patches_to_image(grad_flat.float(), grid_thw, reduce="sum")
    img = img * torch.as_tensor(list(scale), dtype=img.dtype, device=img.device)[:, None, None]
    sal = img.abs().sum(0)
    width, height = original_size
    sal = F.interpolate(sal[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    return sal.clamp_min(0).detach().cpu().numpy().astype("float32")


def metrics(sal: Any, bbox: Sequence[float] | None) -> dict[str, float]:
    """``spread`` and ``entropy`` of one map (a ``(height, width)`` array at the frame's original size),
    and, when ``bbox`` is the box on this frame, ``mass_in_bbox``, ``mass_on_ring``, ``bbox_area`` and
    ``ring_px`` (see the module docstring)."""
    import numpy as np

    from orienteer.jobs.model.boxes import drawn_box

    total = float(sal.sum(dtype="float64"))
    flat = sal.reshape(-1).astype("float64")
    out: dict[str, float] = {}
    if total <= 0 or not np.isfinite(total):
        out.update(spread=float("nan"), entropy=float("nan"))
    else:
        p = np.sort(flat)[::-1] / total
        k = int(np.searchsorted(np.cumsum(p), 0.5) + 1)
        out["spread"] = round(k / p.size, 6)
        nz = p[p > 0]
        out["entropy"] = round(float(-(nz * np.log(nz)).sum() / np.log(p.size)), 6) if p.size > 1 else 0.0
    if bbox is not None and len(bbox) == 4:
        h, w = sal.shape
        box = drawn_box(bbox, (w, h))
        whole = float(sal[box.y1:box.y2 + 1, box.x1:box.x2 + 1].sum(dtype="float64"))
        inside, area = 0.0, 0
        if box.interior is not None:
            x1, y1, x2, y2 = box.interior
            inside = float(sal[y1:y2 + 1, x1:x2 + 1].sum(dtype="float64"))
            area = (x2 - x1 + 1) * (y2 - y1 + 1)
        usable = total > 0 and np.isfinite(total)
        out["mass_in_bbox"] = round(inside / total, 6) if usable else float("nan")
        out["mass_on_ring"] = round((whole - inside) / total, 6) if usable else float("nan")
        out["bbox_area"] = round(area / float(h * w), 6)
        out["ring_px"] = box.ring
    return out


def saliency_batch(model: Any, batch: dict[str, Any], target_ids: Sequence[int],
                   sizes: Sequence[Sequence[tuple[int, int]]], image_processor: Any) -> list[list[Any]]:
    """Per row, per frame: the saliency map at the frame's original size (numpy float32).

    ``sizes[row]`` are the row's frames' original sizes; the batch's ``image_grid_thw`` lists
    every frame in row order.
    """
    grad, _ = pixel_gradients(model, batch, target_ids)
    scale = channel_scale(image_processor)
    grids = batch["image_grid_thw"].tolist()
    per_image = split_per_image(grad, batch["image_grid_thw"])
    out: list[list[Any]] = []
    cursor = 0
    for row_sizes in sizes:
        out.append([frame_map(per_image[cursor + k], grids[cursor + k], size, scale) for k, size in enumerate(row_sizes)])
        cursor += len(row_sizes)
    return out


def _colormap(values: Any) -> Any:
    """A perceptually ordered dark-blue -> red -> yellow ramp (``values`` in [0, 1]) as uint8 RGB."""
    import numpy as np

    stops = np.array([[0.0, 0, 0, 40], [0.25, 60, 20, 140], [0.5, 200, 40, 90], [0.75, 250, 140, 20], [1.0, 255, 250, 160]])
    rgb = [np.interp(values, stops[:, 0], stops[:, c]) for c in (1, 2, 3)]
    return np.stack(rgb, axis=-1).astype("uint8")


def normalised(sal: Any) -> Any:
    """Map to [0, 1] by the 99.5th percentile, so one hot pixel does not wash the map out."""
    import numpy as np

    top = float(np.percentile(sal, 99.5)) if sal.size else 0.0
    if top <= 0:
        top = float(sal.max()) or 1.0
    return np.clip(sal / top, 0.0, 1.0)


def write_frame_files(sal: Any, image: Any, folder: Path, stem: str, alpha: float = 0.55) -> dict[str, Path]:
    """``stem.saliency.png`` (grayscale heat), ``stem.overlay.png`` (colour blend), ``stem.raw.npy``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    norm = normalised(sal)
    gray = folder / f"{stem}.saliency.png"
    Image.fromarray((norm * 255).round().astype("uint8"), mode="L").save(gray)
    base = np.asarray(image.convert("RGB"), dtype="float32")
    heat = _colormap(norm).astype("float32")
    weight = (alpha * norm)[..., None]
    blend = (base * (1 - weight) + heat * weight).round().clip(0, 255).astype("uint8")
    overlay = folder / f"{stem}.overlay.png"
    Image.fromarray(blend, mode="RGB").save(overlay)
    raw = folder / f"{stem}.raw.npy"
    np.save(raw, sal.astype("float32"))
    return {"saliency": gray, "saliency-overlay": overlay, "saliency-raw": raw}
