"""Prompt builders, selected by name and recorded with every run, so numbers stay comparable.

``official`` is exactly the upstream ViewSpatial-Bench ``evaluate.py`` prompt: the question, a newline,
the choices (``"A. left\\nB. right..."``) and ``"\\nReply only to the corresponding option.\\nAnswer:"``,
as one user turn with the image(s) first, in the model's chat template. The training kinds build
their conversations here too (user turn = prompt, assistant turn = target), so training and
evaluation see the same text. Pure Python: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.formats import sharegpt
from orienteer.data.formats.sharegpt import OFFICIAL_SUFFIX
from orienteer.data.items import Item

# name -> (suffix after the choices, one-line description)
PROMPTS: dict[str, tuple[str, str]] = {
    "official": (OFFICIAL_SUFFIX, "ViewSpatial-Bench evaluate.py: question + choices + 'Reply only to the corresponding option. Answer:'"),
    "letter": ("\nAnswer with the option's letter from the given choices directly.",
               "question + choices + 'Answer with the option's letter from the given choices directly.'"),
    "think": ("\nThink step by step about the viewpoint, then give the final answer as the option letter on the last line.",
              "question + choices + an instruction to reason first and end with the letter (for generate mode / CoT)"),
}
PROMPT_NAMES: tuple[str, ...] = tuple(PROMPTS)
DEFAULT_PROMPT = "official"


def prompt_text(item: Item, style: str = DEFAULT_PROMPT) -> str:
    """The user-turn text of ``item`` in the named style: the question, its ``"A. label"`` lines
    (exactly as the ViewSpatial JSON stores the choices), the style's suffix. The same text the
    data layer exports and trains on (``data.formats.sharegpt.prompt_text``)."""
    if style not in PROMPTS:
        raise OrienteerError(f"unknown prompt {style!r} (expected one of {', '.join(PROMPT_NAMES)})")
    return sharegpt.prompt_text(item.question, item.options, PROMPTS[style][0])


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
