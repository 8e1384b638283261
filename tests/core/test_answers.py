"""Answer parsing and scoring (ARCHITECTURE.md section 4)."""

from __future__ import annotations

import random
import re

import pytest

from orienteer.core.answers import (
    PARSER_NEEDS_OPTIONS,
    PARSERS,
    Outcome,
    classify,
    get_parser,
    parse_choices,
    split_option_line,
    strict_letter,
    viewspatial_letter,
)

OPTIONS = {"A": "right", "B": "left", "C": "front-left", "D": "back"}


def official_viewspatial(response: str) -> str | None:
    """The two lines of ViewSpatial-Bench's evaluate.py, copied literally as the reference."""
    last_line = response.split("\n")[-1]
    match = re.search(r"\b([A-D])\b", last_line, re.IGNORECASE)
    return match.group(1).upper() if match else None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("A", "A"),
        ("A.", "A"),
        ("(C) front-left", "C"),
        ("The answer is B", "B"),
        ("The answer is B.", "B"),
        ("A\nB", "B"),  # only the last line counts
        ("Let me think. The cup is at A.\nSo the answer is D", "D"),
        ("D\n", None),  # last line is empty
        ("C\r\n", None),  # '\r\n' ends with an empty last line too
        ("B\r", "B"),  # '\r' is not a line break for the official rule
        ("foo\r\nB", "B"),
        ("It is a cup", "A"),  # lower-case article 'a' matches: official behaviour
        ("right", None),  # no letter
        ("", None),
        ("E", None),  # letters past D are not matched
        ("Apple", None),  # 'A' inside a word is not a word
        ("Bob and Dave", None),
        ("b", "B"),
        ("Options: A or B", "A"),  # first match wins
        ("answer:C", "C"),
        ("A_", None),  # '_' is a word character
        ("A1", None),
    ],
)
def test_viewspatial_letter(reply: str, expected: str | None) -> None:
    assert viewspatial_letter(reply) == expected
    assert official_viewspatial(reply) == expected


def test_viewspatial_letter_missing_reply() -> None:
    assert viewspatial_letter(None) is None
    assert viewspatial_letter(float("nan")) is None  # type: ignore[arg-type]


def _generated_replies(count: int) -> list[str]:
    rng = random.Random(20240611)
    pieces = [
        "A", "B", "C", "D", "E", "a", "b", "c", "d", "e", "(A)", "B.", "C)", "D:", "Apple",
        "Bad", "Cd", "right", "left", "front-left", "The answer is", "answer:", "I think",
        "a cup", "is", "\n", "\r\n", "\r", " ", "  ", ".", ",", "\t", "_A", "A_", "1A", "é",
        "Ä", "**B**", "[C]", "\n\n", "option", "D-E", "x", "é A",
    ]
    replies = []
    for _ in range(count):
        n = rng.randint(0, 8)
        replies.append("".join(rng.choice(pieces) + rng.choice(["", " ", "\n"]) for _ in range(n)))
    return replies


def test_viewspatial_letter_matches_official_on_generated_replies() -> None:
    replies = _generated_replies(500)
    assert len(set(replies)) > 200
    results = [viewspatial_letter(r) for r in replies]
    assert results == [official_viewspatial(r) for r in replies]
    # the sample exercises both outcomes, not only one
    assert results.count(None) > 20
    assert len([r for r in results if r is not None]) > 100


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("A", "A"),
        ("A.", "A"),
        ("(A)", "A"),
        ("A)", "A"),
        ("A:", "A"),
        ("A: right", "A"),
        ("A. left", "A"),  # the letter wins over a label that disagrees
        ("A) left", "A"),
        ("(B) left", "B"),
        ("  C.  ", "C"),
        ("\nD\n", "D"),
        ("E", "E"),  # outside the options: returned, classified invalid_option later
        ("left", "B"),  # equals a label
        ("LEFT", "B"),
        ("  Front-Left ", "C"),
        ("I think A", None),
        ("I think", None),
        ("A left", None),
        ("Apple", None),
        ("a", None),
        ("a.", None),
        ("The answer is A", None),
        ("left.", None),  # not exactly a label
        ("front", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_strict_letter(reply: str | None, expected: str | None) -> None:
    assert strict_letter(reply, OPTIONS) == expected


def test_strict_letter_nan_is_missing() -> None:
    assert strict_letter(float("nan"), OPTIONS) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A. right", ("A", "right")),
        ("A) right", ("A", "right")),
        ("A: right", ("A", "right")),
        ("(A) right", ("A", "right")),
        ("  B.front-left  ", ("B", "front-left")),
        ("C. the red cup", ("C", "the red cup")),
    ],
)
def test_split_option_line(line: str, expected: tuple[str, str]) -> None:
    assert split_option_line(line) == expected


@pytest.mark.parametrize("line", ["right", "A right", "a. right", "A.", "A. ", "", "AB. right"])
def test_split_option_line_rejects(line: str) -> None:
    with pytest.raises(ValueError, match="expected an option line like 'A. right'"):
        split_option_line(line)


def test_parse_choices_viewspatial_string() -> None:
    text = "A. back-left\nB. front-right\nC. back-right\nD. front-left"
    options = parse_choices(text)
    assert options == {"A": "back-left", "B": "front-right", "C": "back-right", "D": "front-left"}
    assert list(options) == ["A", "B", "C", "D"]


def test_parse_choices_tolerates_crlf_and_blank_lines() -> None:
    assert parse_choices("\r\nA. right\r\n\r\nB. left\r\n") == {"A": "right", "B": "left"}


def test_parse_choices_keeps_given_order() -> None:
    assert list(parse_choices("B. left\nA. right")) == ["B", "A"]


def test_parse_choices_malformed_line() -> None:
    with pytest.raises(ValueError, match=r"choices line 2: expected an option line like 'A\. right'"):
        parse_choices("A. right\nleft")


def test_parse_choices_duplicate_letter() -> None:
    with pytest.raises(ValueError, match="duplicate option letter 'A'"):
        parse_choices("A. right\nA. left")


def test_parse_choices_empty() -> None:
    with pytest.raises(ValueError, match="no options"):
        parse_choices("\n \n")


@pytest.mark.parametrize(
    ("letter", "expected"),
    [("B", Outcome.CORRECT), ("A", Outcome.WRONG), (None, Outcome.UNPARSED), ("E", Outcome.INVALID_OPTION)],
)
def test_classify(letter: str | None, expected: Outcome) -> None:
    assert classify(letter, OPTIONS, "B") is expected


def test_classify_rejects_gold_outside_options() -> None:
    with pytest.raises(ValueError, match="gold letter 'E'"):
        classify("A", OPTIONS, "E")


def test_outcome_values() -> None:
    assert [o.value for o in Outcome] == ["correct", "wrong", "unparsed", "invalid_option"]
    assert f"{Outcome.WRONG}" == "wrong"


def test_parser_registry() -> None:
    assert set(PARSERS) == {"viewspatial", "strict"}
    assert PARSER_NEEDS_OPTIONS == {"viewspatial": False, "strict": True}
    assert get_parser("viewspatial")("So: a", {}) == "A"  # options ignored
    assert get_parser("strict")("left", OPTIONS) == "B"
    with pytest.raises(ValueError, match="valid parsers: viewspatial, strict"):
        get_parser("lenient")
