"""Horizontal mirroring of question text and boxes: what a left-right flipped image changes.

A flipped image keeps up/down and near/far but swaps left and right, and turns clockwise into
counterclockwise. Option *labels* are mirrored by ``directions.mirror_label`` (the taxonomy's
x-negation); this module handles free text and pixel boxes. Standard library only.

``mirror_text`` is an involution (``mirror_text(mirror_text(q)) == q``) for text whose
left/right words are in lower, Title or UPPER case, and whose rotation words are spelled
``clockwise`` / ``counterclockwise`` (the variants ``counter-clockwise`` and ``anticlockwise``
are mirrored to ``clockwise``, and ``clockwise`` always mirrors to ``counterclockwise``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# left/right as a whole word, optionally with a suffix that keeps the direction:
# leftmost, rightward(s), lefthand, right-hand (the hyphen ends the word), LEFT, Right...
_SIDE = re.compile(r"(?<![A-Za-z])(left|right)(most|wards?|hand(?:ed)?)?(?![A-Za-z])", re.IGNORECASE)

# Phrases where 'left'/'right' is not a side: 'right angle', 'right now', 'the right answer',
# 'who left', 'has left'. Each pattern accepts both words in the slot, so whether a word is
# protected never depends on which of the two it currently is: that keeps the involution.
_PROTECTED = re.compile(
    r"(?<![A-Za-z])(?:"
    r"(?:left|right)(?=[ -]angle[sd]?\b|[ -]angled\b|[ -]triangles?\b)"
    r"|(?:left|right)(?= (?:now|answers?|options?|choices?)\b)"
    r"|(?<=\bwho )(?:left|right)|(?<=\bhas )(?:left|right)|(?<=\bhave )(?:left|right)|(?<=\bhad )(?:left|right)"
    r")(?![A-Za-z])",
    re.IGNORECASE,
)

_ROTATION = re.compile(
    r"(?<![A-Za-z])(counter-?clockwise|anti-?clockwise|clockwise)(?![A-Za-z])", re.IGNORECASE
)


def _same_case(template: str, word: str) -> str:
    """``word`` in the case style of ``template``: UPPER, Title or lower."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _swap_side(match: re.Match[str]) -> str:
    base, suffix = match.group(1), match.group(2) or ""
    other = "right" if base.lower() == "left" else "left"
    return _same_case(base, other) + suffix


def _swap_rotation(match: re.Match[str]) -> str:
    word = match.group(1)
    other = "counterclockwise" if word.lower() == "clockwise" else "clockwise"
    return _same_case(word, other)


def mirror_text(text: str) -> str:
    """The text as it reads for the horizontally flipped image: left <-> right, clockwise <-> counterclockwise.

    Whole words only ('upright', 'bright', 'copyright' stay), case kept per word, and the
    suffixed forms leftmost/rightmost, leftward(s)/rightward(s), lefthand/righthand follow;
    'left-hand', 'left side', 'to the left of' follow because the hyphen or space ends the word.
    Idioms where the word is not a side stay: 'right angle', 'right now', 'the right answer/
    option/choice', and the verb 'left' after 'who', 'has', 'have', 'had'.
    """
    if not text:
        return text
    protected = {m.start() for m in _PROTECTED.finditer(text)}

    def side(match: re.Match[str]) -> str:
        return match.group(0) if match.start() in protected else _swap_side(match)

    return _ROTATION.sub(_swap_rotation, _SIDE.sub(side, text))


def mirror_bbox(bbox: Sequence[float], width: float) -> list[float]:
    """``[x1, y1, x2, y2]`` in pixel coordinates of an image ``width`` pixels wide, after a left-right flip.

    Coordinates are continuous (the left edge of the image is 0, the right edge ``width``), so
    x -> width - x and the two x values trade places to keep x1 <= x2. An involution, exact for
    integers (and for floats up to rounding of ``width - x``).
    """
    if len(bbox) != 4:
        raise ValueError(f"bbox must be 4 numbers [x1, y1, x2, y2], got {list(bbox)!r}")
    if not width > 0:
        raise ValueError(f"image width must be positive, got {width!r}")
    x1, y1, x2, y2 = bbox
    return [width - x2, y1, width - x1, y2]
