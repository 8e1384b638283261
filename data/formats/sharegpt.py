"""Conversation records (ShareGPT / LLaVA style) <-> Orienteer's training examples.

Qwen2.5-VL fine-tuning tools read one of two shapes:

- ``sharegpt`` (LLaMA-Factory's multimodal ShareGPT, OpenAI roles)::

    {"messages": [{"role": "user", "content": "<image>Question...\\nA. left\\n..."},
                  {"role": "assistant", "content": "A. left"}], "images": ["/abs/a.jpg"]}

- ``llava`` (LLaVA and Qwen's own qwen-vl-finetune)::

    {"conversations": [{"from": "human", "value": "<image>\\nQuestion..."},
                       {"from": "gpt", "value": "A. left"}], "image": "/abs/a.jpg"}

  (``image`` is a list when there are several; ``images`` is read too.)

The user turn is a prompt of ``core.prompts``: the question, the choices (one ``A. label`` line per
option) and an instruction; one ``<image>`` token per image goes before the text. An example says
which template it trains on: ``prompt`` (a style name: ``official``, ``official-newline``...), else
``prompt_suffix`` (an instruction of its own, written by older versions and the CoT kind: the
question, a newline, the choices, the suffix; ``prompt_separator`` replaces that newline), else
``official`` (upstream's exact text, no separator between question and choices).

Reading a record back recovers question, options and answer when the prompt is question, choices
and instruction in either shape (choices on the line after the question, or glued to its end as
upstream's ``question + choices`` gives), and only when rendering them again gives the very same
text; the template is kept (a style name, or ``prompt_suffix``/``prompt_separator``), so the
prompt exports unchanged and training sees exactly the imported text. Any other prompt is kept
whole as a *free-form* example (question = the prompt, no options, no answer), so a dataset can
hold examples that are not multiple-choice questions. An optional system turn is kept as ``system``.

A conversation of more user/assistant pairs (LLaMA-Factory's ``mllm_demo.json``, LLaVA instruction
data) is a *multi-turn* example: its ``turns`` (``{"role": "user"|"assistant", "content"}``, texts as
written, ``<image>`` tokens where they were) are kept whole and exported turn for turn; ``question``
is its first user turn and ``target`` its last reply, for listings. Training learns every reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orienteer.core import prompts
from orienteer.core.answers import split_option_line, strict_letter, viewspatial_letter
from orienteer.core.prompts import OFFICIAL_SUFFIX  # noqa: F401 - callers read it here

SHAREGPT = "sharegpt"
LLAVA = "llava"
STYLES = (SHAREGPT, LLAVA)
LEGACY_SEPARATOR = "\n"  # between question and choices in examples that carry only a prompt_suffix
IMAGE_TOKEN = "<image>"
USER = "user"
ASSISTANT = "assistant"

_USER_ROLES = {"user", "human"}
_ASSISTANT_ROLES = {"assistant", "gpt", "model", "bot"}
_SYSTEM_ROLES = {"system"}


def example_prompt(example: Mapping[str, Any]) -> str:
    """The user prompt of a canonical example (what training and export show the model): its
    ``prompt`` style, else its own ``prompt_suffix`` (newline separator unless ``prompt_separator``),
    else ``official``. Raises ValueError for an unknown style name."""
    question = example["question"]
    options = example.get("options") or {}
    style = example.get("prompt")
    if style is not None:
        return prompts.prompt_text(question, options, style)
    suffix = example.get("prompt_suffix")
    if suffix is not None:
        return prompts.render(question, options, example.get("prompt_separator", LEGACY_SEPARATOR), suffix)
    return prompts.prompt_text(question, options, prompts.DEFAULT_PROMPT)


def to_record(example: Mapping[str, Any], style: str) -> dict[str, Any]:
    """One canonical example as a conversation record of ``style`` (``sharegpt`` or ``llava``).

    A multi-turn example (``turns``) is written turn for turn as it was imported; ``<image>`` tokens
    go before the first user turn only when its turns hold none (the tools need one per image).
    """
    images = list(example.get("images") or [])
    record: dict[str, Any] = {"id": example["item_id"]}
    if style not in STYLES:
        raise ValueError(f"unknown conversation style {style!r} (expected one of {', '.join(STYLES)})")
    token = IMAGE_TOKEN if style == SHAREGPT else IMAGE_TOKEN + "\n"
    turns = example.get("turns")
    if turns:
        pairs = [(str(t["role"]), str(t["content"])) for t in turns]
        if images and not any(IMAGE_TOKEN in text for _, text in pairs):
            pairs[0] = (pairs[0][0], token * len(images) + pairs[0][1])
    else:
        pairs = [(USER, token * len(images) + example_prompt(example)), (ASSISTANT, example["target"])]
    if example.get("system"):
        pairs.insert(0, ("system", example["system"]))
    if style == SHAREGPT:
        record["messages"] = [{"role": role, "content": text} for role, text in pairs]
        record["images"] = images
    else:
        names = {USER: "human", ASSISTANT: "gpt", "system": "system"}
        record["conversations"] = [{"from": names[role], "value": text} for role, text in pairs]
        if images:
            record["image"] = images[0] if len(images) == 1 else images
    return record


def record_style(record: Mapping[str, Any]) -> str | None:
    """``sharegpt`` / ``llava`` when the record is a conversation, None for anything else."""
    if "messages" in record:
        return SHAREGPT
    if "conversations" in record:
        return LLAVA
    return None


def from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A conversation record as a raw example dict (not yet normalised).

    One user and one assistant turn give a question example (parsed as ``_parse_prompt`` says); more
    give a *multi-turn* example: its ``turns`` kept as written (``<image>`` tokens included, so it
    exports unchanged), ``question`` the first user turn and ``target`` the last reply (what listings
    show). Raises ValueError (with what was expected) for turns that do not alternate user/assistant
    from a user turn to an assistant turn, or whose ``<image>`` tokens do not match the images.
    """
    style = record_style(record)
    turns = record.get("messages") if style == SHAREGPT else record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise ValueError("expected a non-empty list of turns under 'messages' or 'conversations'")
    system: str | None = None
    pairs: list[tuple[str, str, int]] = []
    for number, turn in enumerate(turns, start=1):
        role, text, n_image_parts = _turn(turn, number)
        if role in _SYSTEM_ROLES and number == 1:
            system = text
            continue
        want = USER if len(pairs) % 2 == 0 else ASSISTANT
        if (role in _USER_ROLES and want == USER) or (role in _ASSISTANT_ROLES and want == ASSISTANT):
            pairs.append((want, text, n_image_parts))
            continue
        raise ValueError(f"turn {number} ({role!r}): expected {'a user' if want == USER else 'an assistant'} turn "
                         "(an optional system turn first, then user and assistant turns in turn)")
    if not pairs or len(pairs) % 2:
        raise ValueError("expected one user turn followed by one assistant turn, and the same for each further turn")
    images = _images(record)
    n_tokens = sum(text.count(IMAGE_TOKEN) for _, text, _ in pairs)
    n_parts = sum(parts for _, _, parts in pairs)
    if n_tokens and n_tokens != len(images):
        raise ValueError(f"the turns have {n_tokens} {IMAGE_TOKEN} token(s) but the record has {len(images)} image(s)")
    if n_parts and n_parts != len(images) and not n_tokens:
        raise ValueError(f"the turns have {n_parts} image part(s) but the record has {len(images)} image(s)")
    first = _strip_tokens(pairs[0][1])
    example: dict[str, Any]
    if len(pairs) == 2:
        example = {"images": images, "target": pairs[1][1], **_parse_prompt(first, pairs[1][1])}
    else:
        kept = [{"role": role, "content": text if not parts or IMAGE_TOKEN in text else IMAGE_TOKEN * parts + text}
                for role, text, parts in pairs]
        example = {"images": images, "question": first if first.strip() else pairs[0][1], "options": {},
                   "answer": None, "target": pairs[-1][1], "turns": kept}
    if record.get("id") is not None:
        example["item_id"] = str(record["id"])
    if system:
        example["system"] = system
    return example


def _strip_tokens(text: str) -> str:
    """``text`` without its ``<image>`` tokens (and the newline LLaVA puts after each)."""
    return re.sub(re.escape(IMAGE_TOKEN) + r"\n?", "", text)


def check_turns(turns: Any, n_images: int) -> str | None:
    """What is wrong with a stored multi-turn example's ``turns``, or None: at least two user/assistant
    pairs of text, in turn, from a user turn to an assistant turn, with no ``<image>`` token or one per image."""
    if not isinstance(turns, list) or len(turns) < 4 or len(turns) % 2:
        return "turns must be a list of user/assistant turns in pairs (at least two pairs), got " + repr(turns)[:200]
    for number, turn in enumerate(turns, start=1):
        want = USER if number % 2 else ASSISTANT
        if not isinstance(turn, Mapping) or turn.get("role") != want or not isinstance(turn.get("content"), str):
            return f"turn {number}: expected {{'role': {want!r}, 'content': text}}, got {turn!r}"[:300]
    n_tokens = sum(t["content"].count(IMAGE_TOKEN) for t in turns)
    if n_tokens and n_tokens != n_images:
        return f"the turns have {n_tokens} {IMAGE_TOKEN} token(s) but the example has {n_images} image(s)"
    return None


def is_multi_turn(example: Mapping[str, Any]) -> bool:
    """True for an example of more than one user turn (it trains and exports from ``turns``)."""
    return bool(example.get("turns"))


def _turn(turn: Any, number: int) -> tuple[str, str, int]:
    """(role, text, number of image parts) of one turn in either style."""
    if not isinstance(turn, Mapping):
        raise ValueError(f"turn {number}: expected an object with role/content or from/value")
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if not isinstance(role, str):
        raise ValueError(f"turn {number}: expected a 'role' (or 'from') string")
    role = role.strip().lower()
    if role not in _USER_ROLES | _ASSISTANT_ROLES | _SYSTEM_ROLES:
        raise ValueError(f"turn {number}: unknown role {role!r} (expected user/human, assistant/gpt or system)")
    if isinstance(content, str):
        return role, content, 0
    if isinstance(content, list):  # OpenAI-style parts: [{"type": "image"}, {"type": "text", "text": ...}]
        texts: list[str] = []
        n_images = 0
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in ("image", "image_url"):
                n_images += 1
            else:
                raise ValueError(f"turn {number}: content parts must be {{'type': 'text'|'image', ...}}, got {part!r}")
        return role, "".join(texts), n_images
    raise ValueError(f"turn {number}: expected the content (or value) to be text")


def _images(record: Mapping[str, Any]) -> list[str]:
    value = record.get("images", record.get("image"))
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise ValueError(f"expected 'images' (or 'image') to be a path or a list of paths, got {value!r}")


def _parse_prompt(text: str, reply: str) -> dict[str, Any]:
    """question/options/answer (and the template) when the prompt is question, choices, instruction.

    The option block is the last run of lines ``A. label``, ``B. label``... lettered from A in
    order, at least two, with a non-empty question above it; its ``A.`` line may also be glued to the
    end of the question's last line (upstream's ``question + choices``). The lines after the block
    are the instruction. The parse stands only if rendering it again gives ``text`` exactly; any
    other prompt is free-form.
    """
    free: dict[str, Any] = {"question": text, "options": {}, "answer": None}
    lines = text.split("\n")
    end = len(lines) - 1
    while end >= 0 and _option(lines[end]) is None:
        end -= 1
    options: list[tuple[str, str]] = []
    start = end
    while start >= 0:
        option = _option(lines[start])
        if option is None:
            break
        options.insert(0, option)
        if option[0] == "A":
            break
        start -= 1
    separator = "\n"
    question_lines = lines[:start]
    if start >= 0 and options and options[0][0] == "B" and _option(lines[start]) is None:
        glued = _split_glued(lines[start])
        if glued is not None:
            head, first = glued
            options.insert(0, first)
            question_lines = [*lines[:start], head]
            separator = ""
    letters = [letter for letter, _ in options]
    question = "\n".join(question_lines)
    if len(options) < 2 or letters != [chr(ord("A") + i) for i in range(len(letters))] or not question.strip():
        return free
    suffix = "".join("\n" + line for line in lines[end + 1:])
    as_dict = dict(options)
    if prompts.render(question, as_dict, separator, suffix) != text:
        return free  # e.g. 'A) left' or stray spaces: exported again it would not be the text it was
    parsed: dict[str, Any] = {"question": question, "options": as_dict, "answer": _reply_letter(reply, as_dict)}
    style = prompts.style_of(separator, suffix)
    if style is not None:
        parsed["prompt"] = style
    else:
        parsed["prompt_suffix"] = suffix
        if separator != LEGACY_SEPARATOR:
            parsed["prompt_separator"] = separator
    return parsed


def _split_glued(line: str) -> tuple[str, tuple[str, str]] | None:
    """``"Where is it?A. left"`` -> ``("Where is it?", ("A", "left"))``: the last ``A. `` in the line
    that starts an option line after a non-empty question; None when there is none."""
    pos = line.rfind("A. ")
    while pos > 0:
        option = _option(line[pos:])
        if option is not None and option[0] == "A" and line[:pos].strip():
            return line[:pos], option
        pos = line.rfind("A. ", 0, pos)
    return None


def _option(line: str) -> tuple[str, str] | None:
    try:
        return split_option_line(line)
    except ValueError:
        return None


def _reply_letter(reply: str, options: Mapping[str, str]) -> str | None:
    """The option a reply gives: 'A. left' or a bare label, else the official last-line rule
    (a chain-of-thought reply ends with its letter)."""
    letter = strict_letter(reply, options) or viewspatial_letter(reply, options)
    return letter if letter in options else None
