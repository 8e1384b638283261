"""Direction taxonomy: turn option labels into 3-D vectors and name the kind of mistake.

ARCHITECTURE.md section 5 is the contract. Labels become integer vectors (x right, y front,
z up) so that every comparison is exact integer arithmetic, never a float angle.
"""

from __future__ import annotations

import enum
import functools
import re

Vector = tuple[int, int, int]
"""(x, y, z): x = right(+1)/left(-1), y = front(+1)/back(-1), z = up(+1)/down(-1)."""

# word -> (axis index, sign); the only words a direction label may contain.
_WORDS: dict[str, tuple[int, int]] = {
    "right": (0, 1),
    "left": (0, -1),
    **{w: (1, 1) for w in ("front", "forward", "ahead")},
    **{w: (1, -1) for w in ("back", "behind", "backward", "rear")},
    **{w: (2, 1) for w in ("above", "up", "top", "over")},
    **{w: (2, -1) for w in ("down", "below", "bottom", "under", "beneath")},
}
_SEPARATORS = re.compile(r"[-_\s]+")

VIEWSPATIAL_LABELS: tuple[str, ...] = (
    "front", "back", "left", "right",
    "front-left", "front-right", "back-left", "back-right",
    "above", "down",
    "front-up", "front-down", "back-up", "back-down",
    "above-left", "above-right", "down-left", "down-right",
)
"""The 18 option labels that occur in ViewSpatial-Bench."""


def _clean(label: str) -> str:
    """Strip surrounding whitespace and one trailing period ('left.' is 'left')."""
    text = label.strip()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text


def direction_vector(label: str) -> Vector | None:
    """The label's direction as an integer vector, or None when it is not a direction.

    Every token must be a direction word and no axis may get two opposite words
    ('left-right' is not a direction). A word repeated on its axis ('up above') still
    means one unit step, so each axis is the sign of its sum: the vector names a
    direction, and 'up above' must be the same direction as 'above'.
    """
    if not isinstance(label, str):
        return None
    return _vector(label)


@functools.lru_cache(maxsize=8192)
def _vector(label: str) -> Vector | None:
    """Cached: benchmarks repeat a handful of labels tens of thousands of times."""
    tokens = [t for t in _SEPARATORS.split(_clean(label).lower()) if t]
    if not tokens:
        return None
    signs: list[set[int]] = [set(), set(), set()]
    for token in tokens:
        hit = _WORDS.get(token)
        if hit is None:
            return None
        signs[hit[0]].add(hit[1])
    if any(len(s) > 1 for s in signs):
        return None
    x, y, z = (next(iter(s)) if s else 0 for s in signs)
    return (x, y, z)


def is_direction(label: str) -> bool:
    """True when `direction_vector` understands the label."""
    return direction_vector(label) is not None


class Category(str, enum.Enum):
    """Why a wrong answer is wrong; values are stable names stored in the workspace."""

    SAME_DIRECTION = "same_direction"
    HORIZONTAL = "horizontal"
    VERTICAL = "vertical"
    DEPTH = "depth"
    OPPOSITE = "opposite"
    ADJACENT = "adjacent"
    ORTHOGONAL = "orthogonal"
    OBTUSE = "obtuse"
    NON_DIRECTIONAL = "non_directional"
    UNPARSED = "unparsed"
    INVALID_OPTION = "invalid_option"
    # An item of the benchmark the run's file has no row for: counted wrong (as upstream scores it), no reply.
    UNANSWERED = "unanswered"

    def __str__(self) -> str:
        """The stored value, so f-strings and SQL parameters get 'horizontal', not 'Category.X'."""
        return self.value


CATEGORY_ORDER: tuple[Category, ...] = tuple(Category)
"""Display order: geometric categories first (in rule order), then the non-geometric ones."""

CATEGORY_DISPLAY: dict[Category, str] = {
    Category.SAME_DIRECTION: "Same direction",
    Category.HORIZONTAL: "Horizontal (L<->R)",
    Category.VERTICAL: "Vertical flip",
    Category.DEPTH: "Depth (F<->B)",
    Category.OPPOSITE: "Opposite",
    Category.ADJACENT: "Adjacent",
    Category.ORTHOGONAL: "Orthogonal (90 deg)",
    Category.OBTUSE: "Obtuse",
    Category.NON_DIRECTIONAL: "Non-directional",
    Category.UNPARSED: "Unparsed",
    Category.INVALID_OPTION: "Invalid option",
    Category.UNANSWERED: "Unanswered",
}


def _norm_name(name: str) -> str:
    """Casefold and collapse any run of punctuation/space to '_' ('L<->R' -> 'l_r')."""
    return re.sub(r"[^0-9a-z]+", "_", name.casefold()).strip("_")


_ALIASES: dict[str, Category] = {
    "same": Category.SAME_DIRECTION, "synonym": Category.SAME_DIRECTION,
    "mirror": Category.HORIZONTAL, "lr": Category.HORIZONTAL, "l_r": Category.HORIZONTAL,
    "left_right": Category.HORIZONTAL, "x": Category.HORIZONTAL,
    "flip": Category.VERTICAL, "ud": Category.VERTICAL, "up_down": Category.VERTICAL,
    "z": Category.VERTICAL,
    "fb": Category.DEPTH, "f_b": Category.DEPTH, "front_back": Category.DEPTH,
    "y": Category.DEPTH,
    "reverse": Category.OPPOSITE, "180": Category.OPPOSITE,
    "acute": Category.ADJACENT, "near": Category.ADJACENT,
    "90": Category.ORTHOGONAL, "perpendicular": Category.ORTHOGONAL,
    "right_angle": Category.ORTHOGONAL,
    "non_direction": Category.NON_DIRECTIONAL, "nondirectional": Category.NON_DIRECTIONAL,
    "non_dir": Category.NON_DIRECTIONAL,
    "no_letter": Category.UNPARSED, "unparseable": Category.UNPARSED,
    "invalid": Category.INVALID_OPTION,
    "missing": Category.UNANSWERED, "no_answer": Category.UNANSWERED, "not_answered": Category.UNANSWERED,
}
_NAME_INDEX: dict[str, Category] = {
    **_ALIASES,
    **{_norm_name(c.name): c for c in Category},
    **{_norm_name(d): c for c, d in CATEGORY_DISPLAY.items()},
    **{_norm_name(c.value): c for c in Category},
}


def category_from_name(name: str) -> Category:
    """Parse a user-typed category (value, display name or alias such as 'mirror', '90').

    CLI filters and TUI search boxes take free text; a typo must fail loudly with the list
    of valid names rather than silently matching nothing.
    """
    if isinstance(name, Category):
        return name
    hit = _NAME_INDEX.get(_norm_name(str(name)))
    if hit is None:
        valid = ", ".join(c.value for c in CATEGORY_ORDER)
        raise ValueError(f"unknown error category {name!r}; valid names: {valid}")
    return hit


def _dot(a: Vector, b: Vector) -> int:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def categorize(gold_label: str, pred_label: str) -> Category:
    """Category of a wrong answer whose predicted letter is a valid option.

    The first matching rule wins (section 5). The sign of the integer dot product decides
    the angle class exactly: > 0 under 90 degrees, == 0 right angle, < 0 over 90 degrees.
    """
    g = direction_vector(gold_label)
    p = direction_vector(pred_label)
    if g is None or p is None:
        return Category.NON_DIRECTIONAL
    gx, gy, gz = g
    if p == g:
        return Category.SAME_DIRECTION
    if gx != 0 and p == (-gx, gy, gz):
        return Category.HORIZONTAL
    if gz != 0 and p == (gx, gy, -gz):
        return Category.VERTICAL
    if gy != 0 and p == (gx, -gy, gz):
        return Category.DEPTH
    if p == (-gx, -gy, -gz):
        return Category.OPPOSITE
    dot = _dot(g, p)
    if dot > 0:
        return Category.ADJACENT
    if dot == 0:
        return Category.ORTHOGONAL
    return Category.OBTUSE


_LEFT_RIGHT = re.compile(r"(?<![A-Za-z])(left|right)(?![A-Za-z])", re.IGNORECASE)


def _swap_word(match: re.Match[str]) -> str:
    """'left' <-> 'right', keeping UPPER, Title or lower case."""
    word = match.group(1)
    other = "right" if word.lower() == "left" else "left"
    if word.isupper():
        return other.upper()
    if word[0].isupper():
        return other.capitalize()
    return other


def mirror_label(label: str) -> str:
    """The label as seen in a horizontally flipped image: left and right swap, nothing else.

    Separators, other words and the case style stay as they were, so the flipped benchmark
    reads like the original. An involution for words in lower, UPPER or Title case.
    """
    return _LEFT_RIGHT.sub(_swap_word, label)
