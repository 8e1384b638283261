"""Mirroring for the flip job: the 18 labels, question text and boxes."""

from __future__ import annotations

import json
import re

import pytest

from orienteer.core.directions import VIEWSPATIAL_LABELS, Category, categorize, direction_vector, mirror_label
from orienteer.core.mirror import mirror_bbox, mirror_text
from tests.conftest import REAL_BENCH, make_viewspatial_items

# The x-negation of every ViewSpatial label, written out by hand (not computed).
MIRRORED = {
    "front": "front", "back": "back", "left": "right", "right": "left",
    "front-left": "front-right", "front-right": "front-left", "back-left": "back-right", "back-right": "back-left",
    "above": "above", "down": "down",
    "front-up": "front-up", "front-down": "front-down", "back-up": "back-up", "back-down": "back-down",
    "above-left": "above-right", "above-right": "above-left", "down-left": "down-right", "down-right": "down-left",
}


def test_table_covers_all_18_labels():
    assert sorted(MIRRORED) == sorted(VIEWSPATIAL_LABELS)
    assert len(MIRRORED) == 18


@pytest.mark.parametrize("label", VIEWSPATIAL_LABELS)
def test_mirror_label_is_the_x_negation(label):
    mirrored = mirror_label(label)
    assert mirrored == MIRRORED[label]
    x, y, z = direction_vector(label)
    assert direction_vector(mirrored) == (-x, y, z)
    assert mirror_label(mirrored) == label
    if x != 0:
        assert categorize(label, mirrored) is Category.HORIZONTAL


def test_mirror_label_is_a_bijection_on_the_labels():
    assert sorted(mirror_label(label) for label in VIEWSPATIAL_LABELS) == sorted(VIEWSPATIAL_LABELS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Is the cup on the left of the plate?", "Is the cup on the right of the plate?"),
        ("the person on the left", "the person on the right"),
        ("Left or Right?", "Right or Left?"),
        ("TURN LEFT, then RIGHT", "TURN RIGHT, then LEFT"),
        ("the leftmost chair and the rightmost lamp", "the rightmost chair and the leftmost lamp"),
        ("in his left-hand glove, her right hand", "in his right-hand glove, her left hand"),
        ("moving leftwards; a Righthanded player", "moving rightwards; a Lefthanded player"),
        ("on the left side of the sofa", "on the right side of the sofa"),
        ("front-left of the desk", "front-right of the desk"),
        ("It rotates clockwise.", "It rotates counterclockwise."),
        ("Counterclockwise from the door", "Clockwise from the door"),
    ],
)
def test_mirror_text_swaps_sides(text, expected):
    assert mirror_text(text) == expected
    assert mirror_text(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "the upright trunk of the tree",
        "the woleftman in black clothes",  # a typo in the real benchmark: not a whole word
        "a bright lamp under the copyright notice",
        "Is this a right angle? Pick the right answer.",
        "a right-angled corner, right now",
        "the man who left the room, and she has left",
        "Where is the cabinet from the perspective of the woman in red?",
        "",
    ],
)
def test_mirror_text_leaves_other_words(text):
    assert mirror_text(text) == text


def test_mirror_text_is_an_involution_on_questions():
    questions = [item["question"] for item in make_viewspatial_items(60)] + [
        "From the perspective of the man on the left, where is the dog to his Right?",
        "Imagine standing at the LEFT door facing the window; turn clockwise. Where is the rightmost bed?",
        "Which hand is the boy holding the racket with? His left-hand or right-hand?",
        "The man who left is on the left side; is that a right angle?",
    ]
    for question in questions:
        assert mirror_text(mirror_text(question)) == question
    changed = [q for q in questions if mirror_text(q) != q]
    assert len(changed) == 4


def test_rotation_variants_map_to_clockwise():
    """Documented: only clockwise/counterclockwise form a pair; other spellings normalise."""
    assert mirror_text("anticlockwise") == "clockwise"
    assert mirror_text("counter-clockwise") == "clockwise"


@pytest.mark.skipif(not REAL_BENCH.is_file(), reason="the real ViewSpatial-Bench.json is not on this machine")
def test_mirror_text_on_the_real_benchmark():
    questions = [item["question"] for item in json.loads(REAL_BENCH.read_text(encoding="utf-8"))]
    assert len(questions) == 5712
    for question in questions:
        assert mirror_text(mirror_text(question)) == question
        whole_word = re.search(r"(?<![A-Za-z])(left|right)", question, re.IGNORECASE)
        assert (mirror_text(question) != question) == bool(whole_word)


def test_mirror_bbox():
    assert mirror_bbox([10, 20, 30, 40], 100) == [70, 20, 90, 40]
    assert mirror_bbox(mirror_bbox([10, 20, 30, 40], 100), 100) == [10, 20, 30, 40]
    assert mirror_bbox([0, 0, 100, 50], 100) == [0, 0, 100, 50]
    box = [12.5, 3.0, 47.25, 9.0]
    assert mirror_bbox(mirror_bbox(box, 640), 640) == box
    x1, _, x2, _ = mirror_bbox(box, 640)
    assert x1 <= x2


@pytest.mark.parametrize("bbox, width", [([1, 2, 3], 10), ([1, 2, 3, 4, 5], 10), ([1, 2, 3, 4], 0)])
def test_mirror_bbox_refuses_bad_input(bbox, width):
    with pytest.raises(ValueError):
        mirror_bbox(bbox, width)
