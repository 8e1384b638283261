"""Turning items into model batches: encode, plan by sequence length, prefetch in threads.

Throughput comes from three things here. Batches group items of similar token length, so little
of a batch is padding. Preprocessing (JPEG decode, resize, patchify, tokenize) runs in a thread
pool a few batches ahead of the model, so the GPU never waits for the CPU. And the plan is a pure
function of the item list, lengths and batch size, so a resumed eval forms the same batches as an
uninterrupted one and gets bit-identical numbers.

Each item is encoded on its own (its own frame sizing, ``images.PixelBudget`` or ``images.UpstreamResize``)
and batches are collated with LEFT padding, so the last position of every row is its answer
position.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orienteer.data.items import Item
from orienteer.jobs.model.images import PATCH_FACTOR, FrameSizing, PixelBudget, image_size, load_images
from orienteer.jobs.model.prompt import DEFAULT_PROMPT, build_messages, chat_text, user_turn

IMAGE_TOKEN = "<|image_pad|>"
_TOKENIZER_LOCK = threading.Lock()  # HF fast tokenizers are not safe to call from many threads at once


@dataclass
class Encoded:
    """One item ready for the model: unpadded token ids and its frames' patches."""

    item: Item
    input_ids: Any  # (L,) long
    mm_token_type_ids: Any  # (L,) int: 1 at image placeholder tokens
    pixel_values: Any  # (patches, C*T*14*14) float
    image_grid_thw: Any  # (frames, 3) long
    sizes: list[tuple[int, int]] = field(default_factory=list)  # original (width, height) per frame
    position_ids: Any = None  # (3, L) long: the model's 3-D rope positions, when computed ahead (rope_positions)

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class Failed:
    """An item that could not be encoded (missing or unreadable image): reported and skipped."""

    item: Item
    error: str


def encode_prompt(processor: Any, text: str, frames: Sequence[Any], budget: FrameSizing, item_id: str,
                  device: str | None = None) -> tuple[list[int], Any, Any]:
    """Token ids of a rendered chat ``text`` and its frames' ``pixel_values`` and ``image_grid_thw``.

    What ``processor(text=..., images=...)`` does, by hand (image processor, placeholder expansion,
    tokenizer) so that each item gets its own pixel budget and the tokenizer call can be serialised
    while image work runs in parallel. ``device="cuda"`` resizes and patchifies on the GPU (the CPU
    then only decodes JPEGs): at 640x480 the CPU-side processor otherwise caps an H100 eval below
    the model's own rate.
    """
    import torch

    if frames:
        image_proc = processor.image_processor
        extra = {"device": device} if device is not None and device != "cpu" else {}
        pix = image_proc(images=list(frames), size=budget.size_kwargs(len(frames)), return_tensors="pt", **extra)
        pixel_values, grid = pix["pixel_values"], pix["image_grid_thw"]
        merge = int(image_proc.merge_size) ** 2
        pieces = text.split(IMAGE_TOKEN)
        if len(pieces) != len(frames) + 1:
            raise ValueError(f"item {item_id}: chat template produced {len(pieces) - 1} image slots for {len(frames)} frames")
        expanded = pieces[0]
        for thw, rest in zip(grid.tolist(), pieces[1:]):
            expanded += IMAGE_TOKEN * (thw[0] * thw[1] * thw[2] // merge) + rest
        text = expanded
    else:
        pixel_values = torch.zeros((0, 3 * 2 * 14 * 14))
        grid = torch.zeros((0, 3), dtype=torch.long)
    with _TOKENIZER_LOCK:
        ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids, pixel_values, grid.cpu()


def image_token_mask(processor: Any, input_ids: Any) -> Any:
    """``mm_token_type_ids``: 1 at the image placeholder tokens, 0 elsewhere."""
    import torch

    return (input_ids == int(processor.image_token_id)).to(torch.int64)


def encode_item(processor: Any, item: Item, frames: Sequence[Any], style: str = DEFAULT_PROMPT,
                budget: FrameSizing | None = None, device: str | None = None, user_text: str | None = None) -> Encoded:
    """Encode ``item`` with its loaded ``frames`` for the model (``encode_prompt`` on its eval prompt, or
    on ``user_text`` instead of the style's text: a CoT teacher's per-item prompt)."""
    import torch

    messages = ([user_turn(user_text, len(frames))] if user_text is not None
                else build_messages(item, style, n_images=len(frames)))
    text = chat_text(processor, messages)
    sizing = budget or PixelBudget()
    # upstream mode resizes the decoded frames first (fetch_image); sizes stay the originals' (saliency maps back to them)
    ids, pixel_values, grid = encode_prompt(processor, text, sizing.prepare(frames), sizing, item.item_id, device)
    input_ids = torch.tensor(ids, dtype=torch.long)
    return Encoded(item, input_ids, image_token_mask(processor, input_ids), pixel_values, grid,
                   [tuple(f.size) for f in frames])


def rope_positions(model: Any) -> Callable[[Encoded], Any] | None:
    """``positions(encoded)``: one item's (3, L) rope positions, as the model computes them; ``None``
    for models without Qwen2.5-VL's ``get_rope_index``.

    Qwen2.5-VL computes these inside its forward, between the vision tower and the language model,
    in a Python loop over the batch's rows with a host-device sync per row: on a GPU the card waits
    for it every batch. The value of a row depends on that row alone (padding gets 0s), so the
    encoder threads compute it per item on the CPU and ``collate`` lays the rows out.
    """
    inner = getattr(model, "model", None)
    get_rope_index = getattr(inner, "get_rope_index", None)
    if get_rope_index is None:
        return None

    def positions(enc: Encoded) -> Any:
        grid = enc.image_grid_thw if enc.image_grid_thw.shape[0] else None
        pos, _ = get_rope_index(enc.input_ids[None], mm_token_type_ids=enc.mm_token_type_ids[None], image_grid_thw=grid)
        return pos[:, 0, :]

    return positions


def collate(batch: Sequence[Encoded], pad_id: int, positions: bool = False) -> dict[str, Any]:
    """Left-pad token ids into one batch; concatenate every frame's patches in row order.

    ``positions``: also lay out the items' precomputed rope positions (``rope_positions``) as the
    model's ``position_ids``, exactly as its own ``get_rope_index`` would for this padded batch;
    for one forward pass (score, saliency), not for ``generate``, which tracks positions itself.
    """
    import torch

    width = max(e.length for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    mm = torch.zeros((len(batch), width), dtype=torch.int64)
    for row, e in enumerate(batch):
        ids[row, width - e.length:] = e.input_ids
        mask[row, width - e.length:] = 1
        mm[row, width - e.length:] = e.mm_token_type_ids
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm}
    if positions and all(e.position_ids is not None for e in batch):
        pos = torch.zeros((3, len(batch), width), dtype=torch.long)  # padding: 0, as get_rope_index does
        for row, e in enumerate(batch):
            pos[:, row, width - e.length:] = e.position_ids
        out["position_ids"] = pos
    if any(e.image_grid_thw.shape[0] for e in batch):
        out["pixel_values"] = torch.cat([e.pixel_values for e in batch], dim=0)
        out["image_grid_thw"] = torch.cat([e.image_grid_thw for e in batch], dim=0)
    return out


def to_device(batch: dict[str, Any], device: str, dtype: Any = None) -> dict[str, Any]:
    """Move a collated batch; pixel values take the model's dtype (bf16 on GPUs)."""
    moved = {}
    for key, value in batch.items():
        if key == "pixel_values" and dtype is not None:
            moved[key] = value.to(device=device, dtype=dtype, non_blocking=True)
        else:
            moved[key] = value.to(device, non_blocking=True)
    return moved


def estimate_length(processor: Any, item: Item, paths: Sequence[Path], budget: FrameSizing,
                    style: str = DEFAULT_PROMPT) -> int:
    """Token count of ``item`` from image headers and the prompt text, without decoding images."""
    n_image = 0
    for path in paths:
        width, height = image_size(path)
        h, w = budget.frame_size(height, width, len(paths))
        n_image += (h // PATCH_FACTOR) * (w // PATCH_FACTOR)
    text = chat_text(processor, build_messages(item, style, n_images=len(paths)))
    with _TOKENIZER_LOCK:
        n_text = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    return n_text + n_image - len(paths)


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, ties in input order).

    Longest first: the first batch is the biggest, so running out of memory shows up at once.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class Prefetcher:
    """Encode the items of upcoming batches in a thread pool while the model runs the current one.

    ``encode(item)`` returns an ``Encoded`` or raises; failures come back as ``Failed`` records so
    one bad file never stops an eval.
    """

    def __init__(self, batches: Sequence[Sequence[Item]], encode: Callable[[Item], Encoded],
                 workers: int | None = None, depth: int = 3) -> None:
        self.batches = batches
        self.encode = encode
        self.workers = workers or default_workers()
        self.depth = max(1, depth)

    def _safe(self, item: Item) -> Encoded | Failed:
        try:
            return self.encode(item)
        except Exception as exc:  # noqa: BLE001 - reported per item, the eval goes on
            return Failed(item, " ".join(str(exc).split()) or type(exc).__name__)

    def __iter__(self) -> Iterator[tuple[list[Encoded], list[Failed]]]:
        pending: deque[list[Future[Encoded | Failed]]] = deque()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="orienteer-prep") as pool:
            it = iter(self.batches)
            for batch in it:
                pending.append([pool.submit(self._safe, item) for item in batch])
                if len(pending) >= self.depth:
                    break
            while pending:
                futures = pending.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append([pool.submit(self._safe, item) for item in nxt])
                results = [f.result() for f in futures]
                yield ([r for r in results if isinstance(r, Encoded)], [r for r in results if isinstance(r, Failed)])


def item_encoder(processor: Any, root: Path, style: str, budget: FrameSizing,
                 device: str | None = None, positions: Callable[[Encoded], Any] | None = None,
                 text_for: Callable[[Item], str] | None = None) -> Callable[[Item], Encoded]:
    """``encode(item)`` for the prefetcher: load the frames from disk, ``encode_item``, and its rope
    positions when ``positions`` (``rope_positions(model)``) is given. ``text_for(item)``: a per-item
    user text in place of the style's (the CoT teacher's gold-bearing prompt)."""

    on_gpu = device is not None and str(device).startswith("cuda")

    def encode(item: Item) -> Encoded:
        frames = load_images(item, root)
        text = text_for(item) if text_for is not None else None
        if on_gpu:
            enc = _encode_on_side_stream(processor, item, frames, style, budget, str(device), text)
        else:
            enc = encode_item(processor, item, frames, style, budget, device=device, user_text=text)
        if positions is not None:
            enc.position_ids = positions(enc)
        return enc

    return encode


_THREAD_STREAMS = threading.local()


def _encode_on_side_stream(processor: Any, item: Item, frames: Sequence[Any], style: str, budget: FrameSizing,
                           device: str, user_text: str | None = None) -> Encoded:
    """``encode_item`` with the resize on the GPU, on this thread's own CUDA stream.

    The image processor reads results back (a sync). On the stream the model uses, each such read
    would wait for every batch queued there, and the score pipeline keeps one queued: the threads
    would encode about one item per batch. On their own stream they wait for their own work only.
    The result is complete when this returns (the stream is synchronised), and its memory is marked
    as used by the model's stream, so the allocator does not hand it out again while a batch made
    from it is still queued there.
    """
    import torch

    stream = getattr(_THREAD_STREAMS, "stream", None)
    if stream is None:
        stream = _THREAD_STREAMS.stream = torch.cuda.Stream(device=device)
    consumer = torch.cuda.default_stream(device)  # the stream the job's main thread queues the model on
    with torch.cuda.stream(stream):  # inputs are host images: nothing to wait for on the model's stream
        enc = encode_item(processor, item, frames, style, budget, device=device, user_text=user_text)
    stream.synchronize()
    if enc.pixel_values.is_cuda:
        enc.pixel_values.record_stream(consumer)
    return enc
