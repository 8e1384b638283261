"""Direction taxonomy (ARCHITECTURE.md section 5)."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

from orienteer.core.directions import (
    CATEGORY_DISPLAY,
    CATEGORY_ORDER,
    VIEWSPATIAL_LABELS,
    Category,
    categorize,
    category_from_name,
    direction_vector,
    is_direction,
    mirror_label,
)

# Written out by hand, independently of the module's word table: (x right, y front, z up).
HAND_VECTORS: dict[str, tuple[int, int, int]] = {
    "front": (0, 1, 0),
    "back": (0, -1, 0),
    "left": (-1, 0, 0),
    "right": (1, 0, 0),
    "front-left": (-1, 1, 0),
    "front-right": (1, 1, 0),
    "back-left": (-1, -1, 0),
    "back-right": (1, -1, 0),
    "above": (0, 0, 1),
    "down": (0, 0, -1),
    "front-up": (0, 1, 1),
    "front-down": (0, 1, -1),
    "back-up": (0, -1, 1),
    "back-down": (0, -1, -1),
    "above-left": (-1, 0, 1),
    "above-right": (1, 0, 1),
    "down-left": (-1, 0, -1),
    "down-right": (1, 0, -1),
}


def test_viewspatial_labels_are_the_18() -> None:
    assert len(VIEWSPATIAL_LABELS) == 18
    assert set(VIEWSPATIAL_LABELS) == set(HAND_VECTORS)


@pytest.mark.parametrize("label", list(HAND_VECTORS))
def test_vectors_of_viewspatial_labels(label: str) -> None:
    assert direction_vector(label) == HAND_VECTORS[label]
    assert is_direction(label)


def test_architecture_vector_examples() -> None:
    assert direction_vector("front-left") == (-1, 1, 0)
    assert direction_vector("front-up") == (0, 1, 1)


ARCHITECTURE_EXAMPLES = [
    ("left", "right", Category.HORIZONTAL),
    ("front-left", "front-right", Category.HORIZONTAL),
    ("above", "down", Category.VERTICAL),
    ("front-up", "front-down", Category.VERTICAL),
    ("front", "back", Category.DEPTH),
    ("front-left", "back-left", Category.DEPTH),
    ("front-left", "back-right", Category.OPPOSITE),
    ("front", "front-left", Category.ADJACENT),
    ("front", "left", Category.ORTHOGONAL),
    ("front", "above", Category.ORTHOGONAL),
    ("front", "back-left", Category.OBTUSE),
]


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    ARCHITECTURE_EXAMPLES,
    ids=[f"{g}->{p}={c.value}" for g, p, c in ARCHITECTURE_EXAMPLES],
)
def test_architecture_category_examples(gold: str, pred: str, expected: Category) -> None:
    assert categorize(gold, pred) is expected
    # every example in section 5 is symmetric, so the reverse pair lands in the same category
    assert categorize(pred, gold) is expected


def test_same_direction_for_two_spellings() -> None:
    assert categorize("front", "forward") is Category.SAME_DIRECTION
    assert categorize("above-left", "left up") is Category.SAME_DIRECTION


def _expected_category(gold: tuple[int, int, int], pred: tuple[int, int, int]) -> Category:
    """Section 5 rules restated with float angles and per-rule component checks."""
    if all(a == b for a, b in zip(gold, pred)):
        return Category.SAME_DIRECTION
    for axis, category in ((0, Category.HORIZONTAL), (2, Category.VERTICAL), (1, Category.DEPTH)):
        others_equal = all(pred[i] == gold[i] for i in range(3) if i != axis)
        if gold[axis] != 0 and pred[axis] == -gold[axis] and others_equal:
            return category
    if all(a == -b for a, b in zip(gold, pred)):
        return Category.OPPOSITE
    cos = sum(a * b for a, b in zip(gold, pred)) / (math.hypot(*gold) * math.hypot(*pred))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    if abs(angle - 90.0) < 1e-9:
        return Category.ORTHOGONAL
    return Category.ADJACENT if angle < 90.0 else Category.OBTUSE


def test_exhaustive_pairs_match_independent_definition() -> None:
    pairs = list(itertools.product(VIEWSPATIAL_LABELS, repeat=2))
    assert len(pairs) == 324
    mismatches = [
        (g, p, categorize(g, p), _expected_category(HAND_VECTORS[g], HAND_VECTORS[p]))
        for g, p in pairs
        if categorize(g, p) is not _expected_category(HAND_VECTORS[g], HAND_VECTORS[p])
    ]
    assert mismatches == []


def test_exhaustive_pair_counts_are_pinned() -> None:
    counts = Counter(categorize(g, p) for g, p in itertools.product(VIEWSPATIAL_LABELS, repeat=2))
    # 18 distinct vectors -> only the diagonal is same_direction; each of the 10 labels with a
    # non-zero x (z, y) has its flip in the set; the 12 two-axis labels have their negation in
    # the set (single-axis negations are already flips); negation maps adjacent <-> obtuse.
    assert counts == {
        Category.SAME_DIRECTION: 18,
        Category.HORIZONTAL: 10,
        Category.VERTICAL: 10,
        Category.DEPTH: 10,
        Category.OPPOSITE: 12,
        Category.ADJACENT: 96,
        Category.ORTHOGONAL: 72,
        Category.OBTUSE: 96,
    }
    assert sum(counts.values()) == 324


SYNONYMS = [
    ("forward", "front"),
    ("ahead", "front"),
    ("behind", "back"),
    ("backward", "back"),
    ("rear", "back"),
    ("up", "above"),
    ("top", "above"),
    ("over", "above"),
    ("below", "down"),
    ("bottom", "down"),
    ("under", "down"),
    ("beneath", "down"),
    ("forward-left", "front-left"),
    ("behind_right", "back-right"),
    ("rear left", "back-left"),
    ("ahead up", "front-up"),
    ("top_left", "above-left"),
    ("beneath-right", "down-right"),
    ("FRONT-LEFT", "front-left"),
    ("Front Left", "front-left"),
    ("front_left", "front-left"),
    ("front  -  left", "front-left"),
    ("  left.  ", "left"),
    ("Back-Down.", "back-down"),
    ("left front", "front-left"),
    ("up above", "above"),
]


@pytest.mark.parametrize(("variant", "canonical"), SYNONYMS)
def test_synonyms_and_separators(variant: str, canonical: str) -> None:
    assert direction_vector(variant) == direction_vector(canonical)
    assert direction_vector(variant) is not None


@pytest.mark.parametrize(
    "label", ["left-right", "front-back", "up-down", "table", "", "   ", ".", "-", "left of", "leftward"]
)
def test_non_directions(label: str) -> None:
    assert direction_vector(label) is None
    assert not is_direction(label)
    assert categorize("left", label) is Category.NON_DIRECTIONAL
    assert categorize(label, "left") is Category.NON_DIRECTIONAL


def test_three_axis_label() -> None:
    assert direction_vector("front-left-up") == (-1, 1, 1)
    assert categorize("front-left-up", "front-right-up") is Category.HORIZONTAL


@pytest.mark.parametrize("label", VIEWSPATIAL_LABELS)
def test_mirror_label_on_viewspatial_labels(label: str) -> None:
    mirrored = mirror_label(label)
    assert mirror_label(mirrored) == label
    x, y, z = HAND_VECTORS[label]
    assert direction_vector(mirrored) == (-x, y, z)
    assert mirrored in VIEWSPATIAL_LABELS


@pytest.mark.parametrize(
    ("label", "mirrored"),
    [
        ("front-left", "front-right"),
        ("above-left", "above-right"),
        ("Left", "Right"),
        ("RIGHT", "LEFT"),
        ("back", "back"),
        ("Front_Right", "Front_Left"),
        ("left.", "right."),
        ("the cup on the left", "the cup on the right"),
        ("leftover", "leftover"),
    ],
)
def test_mirror_label_examples(label: str, mirrored: str) -> None:
    assert mirror_label(label) == mirrored
    assert mirror_label(mirrored) == label


def test_category_values_order_and_display() -> None:
    assert [c.value for c in CATEGORY_ORDER] == [
        "same_direction", "horizontal", "vertical", "depth", "opposite", "adjacent",
        "orthogonal", "obtuse", "non_directional", "unparsed", "invalid_option", "unanswered",
    ]
    assert set(CATEGORY_DISPLAY) == set(Category)
    assert CATEGORY_DISPLAY[Category.HORIZONTAL] == "Horizontal (L<->R)"
    assert CATEGORY_DISPLAY[Category.VERTICAL] == "Vertical flip"
    assert CATEGORY_DISPLAY[Category.DEPTH] == "Depth (F<->B)"
    assert CATEGORY_DISPLAY[Category.ORTHOGONAL] == "Orthogonal (90 deg)"
    assert Category("horizontal") is Category.HORIZONTAL
    assert Category.HORIZONTAL == "horizontal"
    assert f"{Category.OBTUSE}" == "obtuse"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("horizontal", Category.HORIZONTAL),
        ("mirror", Category.HORIZONTAL),
        ("LR", Category.HORIZONTAL),
        ("Horizontal (L<->R)", Category.HORIZONTAL),
        ("flip", Category.VERTICAL),
        ("Vertical flip", Category.VERTICAL),
        ("90", Category.ORTHOGONAL),
        ("Orthogonal (90 deg)", Category.ORTHOGONAL),
        ("same direction", Category.SAME_DIRECTION),
        ("Non-directional", Category.NON_DIRECTIONAL),
        ("INVALID_OPTION", Category.INVALID_OPTION),
        ("depth", Category.DEPTH),
        (Category.OBTUSE, Category.OBTUSE),
    ],
)
def test_category_from_name(name: str, expected: Category) -> None:
    assert category_from_name(name) is expected


def test_category_from_name_rejects_unknown_with_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: same_direction, horizontal"):
        category_from_name("sideways")
