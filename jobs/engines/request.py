"""One item as an OpenAI chat-completions request: the same text and frame sizes as the in-process path.

The text is ``jobs.model.prompt``'s (the style's user turn; or a teacher's own text); the frames come
first, as in ``prompt.user_turn``. Each frame is resized here, with Pillow, to exactly the size the
model's processor gives it in-process (``images.FrameSizing.frame_size``: ``--resize upstream`` or the
pixel budget), then sent losslessly as a PNG data URL. Its sides are multiples of 28 and its area lies
inside the Qwen2-VL processor's default range, so the server's processor keeps that size: the server's
model sees as many image tokens per frame as the in-process model would.

Greedy unless a temperature is given; score mode asks for one token with ``top_logprobs``. Only
standard OpenAI fields are sent (a hosted API refuses unknown ones).
"""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.items import Item

TOP_LOGPROBS = 20  # the most OpenAI allows, and vLLM's default --max-logprobs
IMAGE_FORMAT = "PNG"


@dataclass(frozen=True)
class Frame:
    """One frame as sent: its size after resizing, and the data URL."""

    width: int
    height: int
    url: str


def item_frames(item: Item, root: Path, sizing: Any) -> list[Frame]:
    """The item's frames as the model would see them in-process, encoded as data URLs.

    Raises ``images.MissingImage`` / ``OrienteerError`` for a missing or unreadable file, as the
    in-process encoder does."""
    from PIL import Image

    from orienteer.jobs.model.images import load_images

    originals = load_images(item, root)
    prepared = sizing.prepare(originals)
    frames = []
    for original, image in zip(originals, prepared):
        width, height = original.size
        target_h, target_w = sizing.frame_size(height, width, len(originals))
        if image.size != (target_w, target_h):
            image = image.resize((target_w, target_h), Image.Resampling.BICUBIC)  # the Qwen2-VL processor's resample
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=IMAGE_FORMAT)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        frames.append(Frame(target_w, target_h, f"data:image/{IMAGE_FORMAT.lower()};base64,{data}"))
    return frames


def user_content(text: str, frames: Sequence[Frame]) -> list[dict[str, Any]]:
    """The user turn's content: every frame, then the text (``prompt.user_turn``'s order)."""
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": f.url}} for f in frames]
    content.append({"type": "text", "text": text})
    return content


def chat_body(model: str, text: str, frames: Sequence[Frame], mode: str, max_new_tokens: int,
              temperature: float | None = None, seed: int | None = None) -> dict[str, Any]:
    """The chat-completions request. ``mode`` score: one token, greedy, with the top log-probabilities;
    generate: up to ``max_new_tokens``, greedy, or sampled at ``temperature`` with ``seed``."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": user_content(text, frames)}]}
    if mode == "score":
        body.update({"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": TOP_LOGPROBS})
        return body
    body.update({"max_tokens": int(max_new_tokens), "temperature": float(temperature) if temperature else 0})
    if temperature:
        body["top_p"] = 1.0  # no nucleus cut, as the in-process sampler (a model's generation_config may set one)
        if seed is not None:
            body["seed"] = int(seed)
    return body


def elided(body: dict[str, Any], frames: Sequence[Frame]) -> dict[str, Any]:
    """``body`` with each image's base64 data replaced by its size (``orienteer prompt`` shows this)."""
    shown = copy.deepcopy(body)
    sizes = iter(frames)
    for message in shown.get("messages", []):
        for part in message.get("content", []):
            if isinstance(part, dict) and part.get("type") == "image_url":
                frame = next(sizes, None)
                url = part["image_url"]["url"]
                head = url.split(",", 1)[0]
                size = f"{frame.width}x{frame.height} (WxH), " if frame is not None else ""
                part["image_url"]["url"] = f"{head},<{size}{len(url) - len(head) - 1} base64 characters elided>"
    return shown
