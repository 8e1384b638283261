"""Prompt builders, selected by name and recorded with every run, so numbers stay comparable.

The templates live in ``orienteer.core.prompts`` (one copy for eval, training, export and CoT).
``official`` is exactly the upstream ViewSpatial-Bench ``evaluate.py`` prompt: the question, the
choices right after it (``"...?A. left\\nB. right..."``, no separator) and ``"\\nReply only to the
corresponding option.\\nAnswer:"``, as one user turn with the image(s) first, in the model's chat
template; ``official-newline`` is the same with a newline after the question (Orienteer's text
before). The training kinds build their conversations here too (user turn = prompt, assistant
turn = target), so training and evaluation see the same text. Pure Python: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orienteer.core import prompts
from orienteer.core.prompts import DEFAULT_PROMPT, OFFICIAL_SUFFIX, PROMPT_NAMES, PROMPTS, template_hash
from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item

__all__ = ["DEFAULT_PROMPT", "OFFICIAL_SUFFIX", "PROMPTS", "PROMPT_NAMES", "build_messages", "chat_text",
           "check_prompt", "prompt_text", "template_hash", "user_message", "user_turn"]


def check_prompt(style: str) -> str:
    """``style`` when it names a template; an OrienteerError (one line, the known names) otherwise."""
    if style not in PROMPTS:
        raise OrienteerError(f"unknown prompt {style!r} (expected one of {', '.join(PROMPT_NAMES)})")
    return style


def prompt_text(item: Item, style: str = DEFAULT_PROMPT) -> str:
    """The user-turn text of ``item`` in the named style (``core.prompts``): the same text the data
    layer exports and trains on."""
    return prompts.prompt_text(item.question, item.options, check_prompt(style))


def user_turn(text: str, n_images: int) -> dict[str, Any]:
    """One user turn: an image entry per frame (before the text, as upstream does), then ``text``."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def user_message(item: Item, style: str = DEFAULT_PROMPT, n_images: int | None = None) -> dict[str, Any]:
    """The user turn of ``item``: its frames (all of ``item.images`` unless ``n_images``), then the prompt."""
    return user_turn(prompt_text(item, style), len(item.images) if n_images is None else n_images)


def build_messages(item: Item, style: str = DEFAULT_PROMPT, target: str | None = None,
                   n_images: int | None = None) -> list[dict[str, Any]]:
    """The conversation for ``item``; with ``target`` the assistant turn that training learns."""
    messages = [user_message(item, style, n_images)]
    if target is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": target}]})
    return messages


def chat_text(processor: Any, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
    """Render ``messages`` with the processor's chat template (image placeholders not yet expanded)."""
    return processor.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
