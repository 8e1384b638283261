"""Reference-object extraction over every ViewSpatial-Bench question template, and the rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orienteer.core.phrases import (
    BOX_MARKER,
    TEMPLATES,
    boxed_phrase,
    coverage,
    find_reference,
    rewrite_question,
    strip_determiner,
)

REAL_BENCH = Path(__file__).resolve().parents[3] / (
    "shared/reference/viewspatial/official_ZJU-REAL_ViewSpatial-Bench/ViewSpatial-Bench.json"
)

# One real question per template (copied from ViewSpatial-Bench.json), with the expected phrase and
# the expected rewrite; together they cover every template (checked below).
CASES: list[tuple[str, str, str, str]] = [
    ("Could you tell me the location of the counter in comparison to the refrigerator?",
     "camera_location_in_comparison", "the refrigerator",
     "Could you tell me the location of the counter in comparison to the refrigerator in the red bounding box?"),
    ("How is the refrigerator positioned with respect to the cabinet?", "camera_with_respect_to", "the cabinet",
     "How is the refrigerator positioned with respect to the cabinet in the red bounding box?"),
    ("Can you describe the position of the table relative to the door?", "camera_position_relative_to", "the door",
     "Can you describe the position of the table relative to the door in the red bounding box?"),
    ("If you're looking at the shelves, where would you find the chair?", "camera_looking_at", "the shelves",
     "If you're looking at the shelves in the red bounding box, where would you find the chair?"),
    ("Where is the whiteboard in relation to the sofa?", "camera_in_relation_to", "the sofa",
     "Where is the whiteboard in relation to the sofa in the red bounding box?"),
    ("Where is the bookshelf located compared to the chair from the camera's perspective?", "camera_located_compared",
     "the chair",
     "Where is the bookshelf located compared to the chair in the red bounding box from the camera's perspective?"),
    ("Taking the camera lens as the front, what direction is the woman holding a mobile phone looking toward?",
     "camera_lens_looking_toward", "the woman holding a mobile phone",
     "Taking the camera lens as the front, what direction is the woman holding a mobile phone in the red bounding "
     "box looking toward?"),
    ("Considering the camera's perspective as the front, what direction is the man facing within the picture?",
     "camera_perspective_facing_within", "the man",
     "Considering the camera's perspective as the front, what direction is the man in the red bounding box facing "
     "within the picture?"),
    ("With the camera's viewpoint as the front, which direction is the girl facing in the image?",
     "camera_viewpoint_which_direction", "the girl",
     "With the camera's viewpoint as the front, which direction is the girl in the red bounding box facing in the "
     "image?"),
    ("Taking the camera's viewpoint as the front, which way is the man wearing the blue hat facing in the image?",
     "camera_viewpoint_which_way", "the man wearing the blue hat",
     "Taking the camera's viewpoint as the front, which way is the man wearing the blue hat in the red bounding box "
     "facing in the image?"),
    ("Picture yourself as the man in a white hat; which way are you looking in the scene?",
     "person_picture_yourself_as", "the man in a white hat",
     "Picture yourself as the man in a white hat in the red bounding box; which way are you looking in the scene?"),
    ("As the bus driver in the photo, in which direction are you facing?", "person_as_in_photo", "the bus driver",
     "As the bus driver in the red bounding box in the photo, in which direction are you facing?"),
    ("Imagine you're the man in this image — which direction are you facing?", "person_imagine_you_are", "the man",
     "Imagine you're the man in the red bounding box in this image — which direction are you facing?"),
    ("Imagine you're zebra in this image — which direction are you facing?", "person_imagine_you_are", "zebra",
     "Imagine you're the zebra in the red bounding box in this image — which direction are you facing?"),
    ("Suppose you are in the man in white’s position, what direction are you facing?", "person_suppose_position",
     "the man in white",
     "Suppose you are in the position of the man in white in the red bounding box, what direction are you facing?"),
    ("From the perspective of the person wearing the white hat, where is the person wearing the black hat located "
     "relative to him?", "person_from_perspective_of", "the person wearing the white hat",
     "From the perspective of the person wearing the white hat in the red bounding box, where is the person wearing "
     "the black hat located relative to him?"),
    ("From this perspective of the horse, where is the trolley located?", "person_from_perspective_of", "the horse",
     "From this perspective of the horse in the red bounding box, where is the trolley located?"),
    ("From this woman's perspective, where is the man in green positioned?", "person_from_possessive_perspective",
     "this woman",
     "From the perspective of this woman in the red bounding box, where is the man in green positioned?"),
    ("Which hand is this woman using to hold the wine glass?", "person_which_hand", "this woman",
     "Which hand is this woman in the red bounding box using to hold the wine glass?"),
    ("Which hand does the man in white use to hold the tennis racket?", "person_which_hand", "the man in white",
     "Which hand does the man in white in the red bounding box use to hold the tennis racket?"),
    ("Which hand is this man wearing blue shorts in using to hold the racket?", "person_which_hand",
     "this man wearing blue shorts",
     "Which hand is this man wearing blue shorts in the red bounding box in using to hold the racket?"),
    ("Which foot of this girl is standing on the skateboard?", "person_which_hand", "this girl",
     "Which foot of this girl in the red bounding box is standing on the skateboard?"),
    ("Which hand did this man raise?", "person_which_hand", "this man",
     "Which hand did this man in the red bounding box raise?"),
    ("Imagine standing at counter looking towards television, where is sink?", "scene_imagine_standing_looking",
     "counter", "Imagine standing at the counter in the red bounding box looking towards television, where is sink?"),
    ("Standing at door, gazing at pillow, where should books be?", "scene_standing_gazing", "door",
     "Standing at the door in the red bounding box, gazing at pillow, where should books be?"),
    ("When positioned at curtain facing television, where can you find floor mat?", "scene_positioned_at_facing",
     "curtain",
     "When positioned at the curtain in the red bounding box facing television, where can you find floor mat?"),
    ("If you stand at shelves facing counter, where is table?", "scene_stand_at_facing", "shelves",
     "If you stand at the shelves in the red bounding box facing counter, where is table?"),
]


@pytest.mark.parametrize("question, template, phrase, rewritten", CASES, ids=[c[1] for c in CASES])
def test_each_template_finds_the_reference_and_rewrites(question, template, phrase, rewritten):
    found = find_reference(question)
    assert found is not None, question
    assert (found.template, found.phrase) == (template, phrase)
    assert question[found.start:found.end] == phrase
    assert rewrite_question(found) == rewritten


def test_the_cases_cover_every_template():
    assert {c[1] for c in CASES} == {t.name for t in TEMPLATES}


def test_targets_are_read_where_the_template_names_one():
    assert find_reference("Where is the whiteboard in relation to the sofa?").target == "the whiteboard"
    assert find_reference("If you stand at shelves facing counter, where is table?").target == "table"
    assert find_reference("Which hand did this man raise?").target is None


def test_straight_and_typographic_apostrophes():
    assert find_reference("Suppose you are in the girl's position, what direction are you facing?").phrase == "the girl"
    assert find_reference("From the dog’s perspective, where is the bowl?").phrase == "the dog"


def test_a_question_no_template_knows_is_a_miss():
    assert find_reference("What colour is the car?") is None
    assert find_reference("") is None
    report = coverage(["What colour is the car?", CASES[0][0]])
    assert report.total == 2 and report.matched == 1
    assert report.misses == ["What colour is the car?"]
    assert report.by_template["camera_location_in_comparison"] == 1


def test_noun_and_boxed_phrase():
    assert strip_determiner("this man in red") == "man in red"
    assert strip_determiner("an apple") == "apple"
    assert strip_determiner("theatre seat") == "theatre seat"
    assert boxed_phrase("boy") == f"the boy {BOX_MARKER}"
    assert boxed_phrase("this boy") == f"this boy {BOX_MARKER}"


@pytest.mark.skipif(not REAL_BENCH.is_file(), reason="the real ViewSpatial-Bench.json is not on this machine")
def test_every_real_question_matches_a_template_of_its_own_task():
    items = json.loads(REAL_BENCH.read_text(encoding="utf-8"))
    report = coverage(item["question"] for item in items)
    assert report.misses == []
    assert all(count > 0 for count in report.by_template.values())
    hints = {t.name: t.task_hint for t in TEMPLATES}
    for item in items:
        found = find_reference(item["question"])
        assert hints[found.template] == item["question_type"], item["question"]
        assert found.noun and BOX_MARKER in rewrite_question(found)
