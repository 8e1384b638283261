"""Answer parsing and scoring: reply text -> option letter -> outcome.

ARCHITECTURE.md section 4 is the contract. The `viewspatial` parser must reproduce the
official ViewSpatial-Bench numbers exactly, quirks included; `strict` is the honest one.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping

Parser = Callable[[str | None, Mapping[str, str]], str | None]

# Official evaluate.py: re.search(r"\b([A-D])\b", last_line, re.IGNORECASE).
_VIEWSPATIAL_RE = re.compile(r"\b([A-D])\b", re.IGNORECASE)
# 'A' at the end, 'A.', 'A)', 'A:' (then anything), or '(A)' (then anything).
_STRICT_RE = re.compile(r"\(([A-Z])\)|([A-Z])(?:$|[.):])")
_OPTION_LINE_RE = re.compile(r"\s*(?:\(([A-Z])\)|([A-Z])[.):])\s*(\S.*?)\s*")


def _as_text(reply: object) -> str | None:
    """None and NaN (pandas' empty cell) mean 'no reply'; anything else is text."""
    if reply is None or (isinstance(reply, float) and math.isnan(reply)):
        return None
    return reply if isinstance(reply, str) else str(reply)


def viewspatial_letter(reply: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """The official ViewSpatial-Bench rule, byte for byte: last '\\n'-line, first \\b[A-D]\\b.

    It matches a lower-case article ('a cup' -> 'A') and never sees letters past D; that is
    the official behaviour and is kept so imported numbers reproduce. `options` is ignored.
    """
    text = _as_text(reply)
    if text is None:
        return None
    last = text.split("\n")[-1]
    match = _VIEWSPATIAL_RE.search(last)
    return match.group(1).upper() if match else None


def strict_letter(reply: str | None, options: Mapping[str, str]) -> str | None:
    """A letter only when the reply plainly gives one: it starts with 'A', 'A.', 'A)', 'A:',
    '(A)' (label may follow), or the whole reply is an option's label (case-insensitive).

    'I think A' is unparsed: guessing which letter a sentence meant is what this parser
    refuses to do. The letter may lie outside `options`; `classify` calls that invalid_option.
    """
    text = _as_text(reply)
    if text is None:
        return None
    text = text.strip()
    match = _STRICT_RE.match(text)
    if match:
        return match.group(1) or match.group(2)
    wanted = text.casefold()
    for letter, label in options.items():
        if label.strip().casefold() == wanted:
            return letter
    return None


def split_option_line(line: str) -> tuple[str, str]:
    """'A. right' -> ('A', 'right'); also 'A) right', 'A: right', '(A) right'."""
    match = _OPTION_LINE_RE.fullmatch(line)
    if not match:
        raise ValueError(
            f"expected an option line like 'A. right', 'A) right', 'A: right' or '(A) right' "
            f"(an upper-case letter, then a label), got {line!r}"
        )
    return match.group(1) or match.group(2), match.group(3)


def parse_choices(text: str) -> dict[str, str]:
    """ViewSpatial's `choices` string ('A. right\\nB. left...') -> ordered {letter: label}."""
    options: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            letter, label = split_option_line(line)
        except ValueError as err:
            raise ValueError(f"choices line {number}: {err}") from None
        if letter in options:
            raise ValueError(f"choices line {number}: duplicate option letter {letter!r} in {text!r}")
        options[letter] = label
    if not options:
        raise ValueError(f"choices text holds no options: {text!r}")
    return options


class Outcome(str, enum.Enum):
    """How one prediction scores; unparsed and invalid_option are wrong too, but reported apart."""

    CORRECT = "correct"
    WRONG = "wrong"
    UNPARSED = "unparsed"
    INVALID_OPTION = "invalid_option"

    def __str__(self) -> str:
        """The stored value, so f-strings give 'correct', not 'Outcome.CORRECT'."""
        return self.value


def classify(letter: str | None, options: Mapping[str, str], answer_letter: str) -> Outcome:
    """Score a parsed letter against the item's options and gold letter.

    Raises ValueError when the gold letter is not an option: that is a data error, and
    scoring it would silently count every answer wrong.
    """
    if answer_letter not in options:
        raise ValueError(f"gold letter {answer_letter!r} is not among the options {list(options)}")
    if letter is None:
        return Outcome.UNPARSED
    if letter not in options:
        return Outcome.INVALID_OPTION
    return Outcome.CORRECT if letter == answer_letter else Outcome.WRONG


PARSERS: dict[str, Parser] = {"viewspatial": viewspatial_letter, "strict": strict_letter}
PARSER_NEEDS_OPTIONS: dict[str, bool] = {"viewspatial": False, "strict": True}


def get_parser(name: str) -> Parser:
    """The parser called `name`; a wrong name lists the valid ones."""
    try:
        return PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown parser {name!r}; valid parsers: {', '.join(PARSERS)}") from None
