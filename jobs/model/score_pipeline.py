"""Score mode with one batch in flight: no host-device sync inside a batch, results read one batch late.

transformers' Qwen2.5-VL forward reads the GPU back several times per batch: the image grid (to lay
out windows and vision rope positions), the window boundaries, the image-token count check, the
"is the padding mask all ones?" test; and the plain loop read each row's probabilities right after
its forward. Each read empties the GPU's queue, so the card idles while Python prepares the next
kernels and the next batch is collated and copied over.

Here everything those reads computed is computed on the host, from the CPU-side image grid, with
transformers' own functions (``vision_utils``, ``get_rope_index``, ``create_causal_mask``) and our
attention plans (``vision_attention.make_plan``; windows laid out sorted by length, so the
windowed layers slice instead of gathering), and copied over from pinned memory
(``host_copy.py``). The forward calls the model's own modules in the order
``Qwen2_5_VLModel.forward`` does (embed, vision tower, image embeddings into their slots, language
model, ``lm_head`` at the last position), so the numbers are the model's. The option probabilities
are copied back asynchronously and read only after the next batch has been queued, so the GPU
goes from one batch to the next without waiting for the host.

``tests/jobs/model/test_score_pipeline.py`` checks equality with ``score.score_batch`` (transformers'
forward) and runs the launch on the ``meta`` device, where any read of device data would raise.
Models of another shape fall back to ``score_batch``, one batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from orienteer.jobs.model.batching import Encoded, collate
from orienteer.jobs.model.host_copy import to_device_async
from orienteer.jobs.model.score import Scored, letter_token_id, score_batch, scored_from_probs
from orienteer.jobs.model.vision_attention import ranges, vision_attention_mode


@dataclass
class HostBatch:
    """One score batch with everything the forward needs, on the host."""

    tag: Any
    rows: list[Encoded]
    letters: list[list[str]]
    input_ids: Any  # (B, L) left-padded
    position_ids: Any  # (3, B, L) the language model's rope positions
    masks: dict[str, Any]  # layer type -> attention mask as the language model builds it (None: plain causal)
    letter_ids: Any  # (B, K) option-letter token ids, padded with row 0's
    letter_valid: Any  # (B, K) bool
    pixel_values: Any = None
    grid: Any = None  # (images, 3) on the host
    image_slots: Any = None  # flat (row * L + column) index of every image placeholder token, in order
    vision: dict[str, Any] = field(default_factory=dict)  # the vision tower's precomputed kwargs
    segments: dict[str, list[Any]] = field(default_factory=dict)  # cu_seqlens / cu_window_seqlens -> attention plan input


@dataclass
class InFlight:
    """A launched batch: its probabilities are on their way to the host."""

    tag: Any
    rows: list[Encoded]
    letters: list[list[str]]
    probs: Any  # (B, K) float32, host (pinned) on CUDA
    done: Any = None  # a CUDA event recorded after the copy, or None when the values are ready


def supports_pipeline(model: Any) -> bool:
    """Whether ``model`` is a Qwen2.5-VL whose forward this module can lay out ahead of time."""
    inner = getattr(model, "model", None)
    visual = getattr(inner, "visual", None)
    return (visual is not None and type(visual).__name__.startswith("Qwen2_5_Vision")
            and hasattr(inner, "language_model") and hasattr(inner, "get_rope_index") and hasattr(model, "lm_head"))


def _letter_table(letters: Sequence[Sequence[str]], ids: dict[str, int]) -> tuple[Any, Any]:
    import torch

    width = max(len(row) for row in letters)
    table = torch.zeros((len(letters), width), dtype=torch.long)
    valid = torch.zeros((len(letters), width), dtype=torch.bool)
    for r, row in enumerate(letters):
        table[r, : len(row)] = torch.tensor([ids[x] for x in row], dtype=torch.long)
        table[r, len(row):] = ids[row[0]]
        valid[r, : len(row)] = True
    return table, valid


def windows_by_length(window_index: Any, cu_window: Any, cu: Any, unit: int) -> tuple[Any, Any, dict[str, list[Any]]]:
    """transformers' window layout with the windows reordered by length (stable), and the attention
    segments that go with it.

    The vision tower permutes its tokens by ``window_index`` (whole merge units) and restores the
    order at the end; what order the windows come in is free. Sorted by length, the windows of
    each length lie back to back, so the windowed layers (28 of 32 in the 3B tower) slice q, k and
    v instead of gathering them and need no scatter back. The full-attention layers gather each
    image's tokens in transformers' order, so every attention call sees exactly the sequence it
    sees in transformers' layout.
    """
    import torch

    bounds = cu_window.tolist()
    windows = [(b - a, a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    order = sorted(range(len(windows)), key=lambda w: windows[w][0])
    new_index = torch.cat([window_index[windows[w][1] // unit:windows[w][2] // unit] for w in order])
    starts = torch.zeros(len(windows), dtype=torch.long)
    lengths = torch.tensor([windows[w][0] for w in order], dtype=torch.long)
    starts[torch.tensor(order, dtype=torch.long)] = torch.cumsum(lengths, 0) - lengths
    old_start = torch.tensor([a for _, a, _ in windows], dtype=torch.long)
    size = torch.tensor([n for n, _, _ in windows], dtype=torch.long)
    # new position of every token, listed in transformers' order
    moved = torch.repeat_interleave(starts - old_start, size) + torch.arange(int(size.sum()))
    new_cu = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)]).to(cu_window.dtype)
    image_bounds = cu.tolist()
    segments: dict[str, list[Any]] = {"cu_seqlens": [moved[a:b] for a, b in zip(image_bounds[:-1], image_bounds[1:])],
                "cu_window_seqlens": ranges(new_cu.tolist())}
    return new_index, new_cu, segments


def prepare(model: Any, encoded: Sequence[Encoded], pad_id: int, letter_ids: dict[str, int], dtype: Any,
            tag: Any = None) -> HostBatch:
    """Collate ``encoded`` and compute, on the host, every value the forward would read back."""
    import torch
    from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index

    inner = model.model
    batch = collate(encoded, pad_id, positions=True)
    grid = batch.get("image_grid_thw")
    positions = batch.get("position_ids")
    if positions is None:  # not computed by the encoder threads: the model's own function, on the host
        positions, _ = inner.get_rope_index(batch["input_ids"], image_grid_thw=grid, attention_mask=batch["attention_mask"],
                                            mm_token_type_ids=batch["mm_token_type_ids"])
    lm = inner.language_model
    rows, width = batch["input_ids"].shape
    mask_args = {"config": lm.config, "inputs_embeds": torch.empty((rows, width, 1), dtype=dtype),
                 "attention_mask": batch["attention_mask"], "cache": None, "position_ids": None}
    masks = {"full_attention": create_causal_mask(**mask_args)}
    if getattr(lm, "has_sliding_layers", False):
        masks["sliding_attention"] = create_sliding_window_causal_mask(**mask_args)
    letters = [list(e.item.option_letters) for e in encoded]
    table, valid = _letter_table(letters, letter_ids)
    host = HostBatch(tag, list(encoded), letters, batch["input_ids"], positions, masks, table, valid)
    if grid is not None:
        visual = inner.visual
        cu = get_vision_cu_seqlens(grid)
        window_index, cu_window = get_vision_window_index(grid, visual.spatial_merge_size, visual.window_size,
                                                          visual.patch_size)
        segments = {"cu_seqlens": ranges(cu.tolist()), "cu_window_seqlens": ranges(cu_window.tolist())}
        if vision_attention_mode(model) == "grouped":
            window_index, cu_window, segments = windows_by_length(window_index, cu_window, cu,
                                                                  visual.spatial_merge_size ** 2)
        host.grid, host.pixel_values = grid, batch["pixel_values"]
        host.vision = {"position_ids": get_vision_position_ids(grid, visual.spatial_merge_size), "cu_seqlens": cu,
                       "window_index": window_index, "cu_window_seqlens": cu_window}
        host.segments = segments
        image_id = int(model.config.image_token_id)
        host.image_slots = (batch["input_ids"].reshape(-1) == image_id).nonzero().reshape(-1)
    return host


def launch(model: Any, host: HostBatch, device: Any) -> InFlight:
    """Queue ``host``'s forward and the copy of its option probabilities back; returns without waiting."""
    import torch

    from orienteer.jobs.model.vision_attention import register_plans

    inner = model.model
    dev = lambda t, dtype=None: to_device_async(t, device, dtype)  # noqa: E731
    with torch.inference_mode():
        embeds = inner.get_input_embeddings()(dev(host.input_ids))
        if host.grid is not None:
            vision = {key: dev(value) for key, value in host.vision.items()}
            register_plans(model, [(vision[key], host.segments[key]) for key in ("cu_seqlens", "cu_window_seqlens")])
            pixels = dev(host.pixel_values, inner.visual.dtype)
            image = inner.visual(pixels, grid_thw=host.grid, **vision).pooler_output
            rows, width, hidden = embeds.shape
            embeds = embeds.reshape(rows * width, hidden).index_copy(
                0, dev(host.image_slots), image.to(embeds.dtype)).reshape(rows, width, hidden)
        masks = {kind: None if mask is None else dev(mask) for kind, mask in host.masks.items()}
        out = inner.language_model(inputs_embeds=embeds, position_ids=dev(host.position_ids), attention_mask=masks,
                                   use_cache=False)
        logits = model.lm_head(out.last_hidden_state[:, -1:, :])[:, -1]
        picked = logits.float().gather(1, dev(host.letter_ids)).masked_fill(~dev(host.letter_valid), float("-inf"))
        probs = torch.softmax(picked, dim=-1)
    done = None
    if probs.device.type == "cuda":
        ready = torch.empty(probs.shape, dtype=probs.dtype, pin_memory=True)
        ready.copy_(probs, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        probs = ready
    return InFlight(host.tag, host.rows, host.letters, probs, done)


def collect(flight: InFlight) -> list[Scored]:
    """Wait for a launched batch and read its rows' letters and probabilities."""
    if flight.done is not None:
        flight.done.synchronize()
    table = flight.probs.tolist()
    return [scored_from_probs(letters, table[r][: len(letters)]) for r, letters in enumerate(flight.letters)]


def score_stream(model: Any, tokenizer: Any, batches: Iterable[tuple[Any, Sequence[Encoded]]], pad_id: int,
                 device: Any, dtype: Any) -> Iterator[tuple[Any, list[Encoded], list[Scored]]]:
    """Score ``(tag, encoded items)`` batches in order, yielding ``(tag, items, scores)``.

    Batch k+1 is prepared and queued before batch k's results are read, so the GPU always has the
    next batch waiting. An empty batch (every item failed to encode) is passed through in order.
    """
    ids: dict[str, int] = {}

    def letter_ids(encoded: Sequence[Encoded]) -> dict[str, int]:
        for e in encoded:
            for letter in e.item.option_letters:
                if letter not in ids:
                    ids[letter] = letter_token_id(tokenizer, letter)
        return ids

    if not supports_pipeline(model):
        from orienteer.jobs.model.batching import to_device

        for tag, encoded in batches:
            if not encoded:
                yield tag, [], []
                continue
            batch = to_device(collate(encoded, pad_id, positions=True), device, dtype)
            yield tag, list(encoded), score_batch(model, batch, [list(e.item.option_letters) for e in encoded], tokenizer)
        return
    pending: InFlight | None = None
    for tag, encoded in batches:
        if not encoded:
            if pending is not None:
                yield pending.tag, pending.rows, collect(pending)
                pending = None
            yield tag, [], []
            continue
        flight = launch(model, prepare(model, encoded, pad_id, letter_ids(encoded), dtype, tag), device)
        if pending is not None:
            yield pending.tag, pending.rows, collect(pending)
        pending = flight
    if pending is not None:
        yield pending.tag, pending.rows, collect(pending)
