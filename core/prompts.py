"""Prompt templates: the one place every user-turn text (eval, training, export, CoT) is built from.

A style is question + separator + the choices (one ``"A. label"`` line per option, joined by
newlines, exactly as ViewSpatial-Bench stores ``choices``) + suffix. ``official`` is upstream's
``evaluate.py`` (ZJU-REAL/ViewSpatial-Bench at 2e85a5e) byte for byte: ``item["question"] +
item["choices"] + "\\nReply only to the corresponding option.\\nAnswer:"``, with *no* separator
between the question and the choices. ``official-newline`` is the text Orienteer used before
(a newline between them), kept so older runs and datasets can be reproduced.

Runs record the style's name and ``template_hash`` (a digest of the template itself, not of the
description), so two runs made with different text never look alike. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

OFFICIAL_SUFFIX = "\nReply only to the corresponding option.\nAnswer:"
OPTION_LINE = "{letter}. {label}"
OPTION_JOINER = "\n"


class PromptStyle(NamedTuple):
    """One template. A NamedTuple with ``suffix`` first, because callers index ``PROMPTS[name][0]``
    for the suffix (the CoT kind stores it on its examples)."""

    suffix: str
    description: str
    separator: str = "\n"


PROMPTS: dict[str, PromptStyle] = {
    "official": PromptStyle(
        OFFICIAL_SUFFIX,
        "ViewSpatial-Bench evaluate.py exactly: question + choices (no separator) + "
        "'Reply only to the corresponding option. Answer:'",
        "",
    ),
    "official-newline": PromptStyle(
        OFFICIAL_SUFFIX,
        "the official text with a newline between question and choices (Orienteer's 'official' before)",
    ),
    "letter": PromptStyle(
        "\nAnswer with the option's letter from the given choices directly.",
        "question + choices + 'Answer with the option's letter from the given choices directly.'",
    ),
    "think": PromptStyle(
        "\nThink step by step about the viewpoint, then give the final answer as the option letter on the last line.",
        "question + choices + an instruction to reason first and end with the letter (for generate mode / CoT)",
    ),
}
PROMPT_NAMES: tuple[str, ...] = tuple(PROMPTS)
DEFAULT_PROMPT = "official"


def get_style(style: str) -> PromptStyle:
    """The named template; ValueError naming the known styles otherwise."""
    try:
        return PROMPTS[style]
    except (KeyError, TypeError):
        raise ValueError(f"unknown prompt {style!r} (expected one of {', '.join(PROMPT_NAMES)})") from None


def choices_text(options: Mapping[str, str]) -> str:
    """``"A. left\\nB. right..."``: the choices as ViewSpatial-Bench's JSON stores them."""
    return OPTION_JOINER.join(OPTION_LINE.format(letter=letter, label=label) for letter, label in options.items())


def render(question: str, options: Mapping[str, str], separator: str, suffix: str) -> str:
    """question + separator + choices + suffix; the bare question when there are no options (a
    free-form training example keeps its whole prompt in ``question``)."""
    if not options:
        return question
    return f"{question}{separator}{choices_text(options)}{suffix}"


def prompt_text(question: str, options: Mapping[str, str], style: str = DEFAULT_PROMPT) -> str:
    """The user-turn text (no image tokens) of a question in the named style."""
    template = get_style(style)
    return render(question, options, template.separator, template.suffix)


def canonical_template(style: str) -> str:
    """The template as one canonical string (what ``template_hash`` digests): everything that decides
    the text, nothing that does not (the description)."""
    template = get_style(style)
    return json.dumps({"layout": "{question}{separator}{choices}{suffix}", "option_line": OPTION_LINE,
                       "option_joiner": OPTION_JOINER, "separator": template.separator, "suffix": template.suffix},
                      sort_keys=True, ensure_ascii=True)


def template_hash(style: str) -> str:
    """12 hex digits of sha256 over ``canonical_template``: stable across versions while the text is."""
    return hashlib.sha256(canonical_template(style).encode("utf-8")).hexdigest()[:12]


def style_of(separator: str, suffix: str) -> str | None:
    """The style whose template has this separator and suffix (first in ``PROMPTS`` order), else None."""
    for name, template in PROMPTS.items():
        if template.separator == separator and template.suffix == suffix:
            return name
    return None
