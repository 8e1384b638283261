"""Prompt templates (core.prompts): upstream's exact text, the older newline text, stable template hashes."""

from __future__ import annotations

import pytest

from orienteer.core.prompts import (
    OFFICIAL_SUFFIX,
    PROMPT_NAMES,
    PROMPTS,
    canonical_template,
    choices_text,
    prompt_text,
    render,
    style_of,
    template_hash,
)

OPTIONS = {"A": "left", "B": "front-right", "C": "back", "D": "above"}
QUESTION = "Where is the lamp relative to the sofa?"
CHOICES = "A. left\nB. front-right\nC. back\nD. above"


def test_official_is_evaluate_py_concatenation() -> None:
    upstream = QUESTION + CHOICES + "\nReply only to the corresponding option.\nAnswer:"  # evaluate.py, line for line
    assert choices_text(OPTIONS) == CHOICES
    assert prompt_text(QUESTION, OPTIONS, "official") == upstream
    assert prompt_text(QUESTION, OPTIONS) == upstream  # the default style


def test_other_styles_keep_their_text() -> None:
    assert prompt_text(QUESTION, OPTIONS, "official-newline") == QUESTION + "\n" + CHOICES + OFFICIAL_SUFFIX
    assert prompt_text(QUESTION, OPTIONS, "letter") == (
        QUESTION + "\n" + CHOICES + "\nAnswer with the option's letter from the given choices directly.")
    assert prompt_text(QUESTION, OPTIONS, "think").startswith(QUESTION + "\n" + CHOICES + "\nThink step by step")
    assert PROMPTS["think"][0] == PROMPTS["think"].suffix  # the CoT kind reads the suffix by index


def test_free_form_question_is_kept_whole() -> None:
    assert prompt_text("Describe the room.", {}, "official") == "Describe the room."
    assert render("Q?", {"A": "x", "B": "y"}, " | ", "!") == "Q? | A. x\nB. y!"


def test_unknown_style_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown prompt 'nope'.*official, official-newline, letter, think"):
        prompt_text(QUESTION, OPTIONS, "nope")


def test_template_hashes_are_stable_and_tell_templates_apart() -> None:
    hashes = {name: template_hash(name) for name in PROMPT_NAMES}
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in hashes.values())
    assert len(set(hashes.values())) == len(PROMPT_NAMES)
    # Pinned: a run records this hash; if the official template ever changes, the hash must change with it,
    # and this test says so loudly rather than letting old and new runs look alike.
    assert hashes["official"] == "098a0d091a0c"
    assert hashes["official-newline"] == "e8677dbbe4e6"
    assert "description" not in canonical_template("official")  # wording of the help text is not the template


def test_style_of_finds_a_template_by_its_shape() -> None:
    assert style_of("", OFFICIAL_SUFFIX) == "official"
    assert style_of("\n", OFFICIAL_SUFFIX) == "official-newline"
    assert style_of("\n", PROMPTS["letter"].suffix) == "letter"
    assert style_of("", "\nSomething else") is None
