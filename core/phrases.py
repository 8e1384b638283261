"""The reference object of a perspective question, and the question rewritten to point at a box.

Visual prompting (the box-prompt job) needs to know *which* object a question takes as its
reference ("From the perspective of the man in red clothes, ..." -> "the man in red clothes"), so
a detector can find it and the question can be rewritten to name the box drawn around it. The
ViewSpatial-Bench questions come from a small set of templates; each is one regular expression
here, named so a coverage report can say which template matched how often and list the misses.

The reference is the object whose viewpoint, orientation or position the answer depends on:
the person/animal whose perspective is taken, the object whose facing direction is asked, the
object another is located *relative to* (camera questions), or the place one stands at (scene
simulation). ``target`` is the object being located, where the template names one cleanly.
Standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

BOX_MARKER = "in the red bounding box"

_DETERMINER = re.compile(r"^(?:the|this|that|a|an|these|those)\s+", re.IGNORECASE)
# A possessive written with a straight or a typographic apostrophe.
_POSS = r"(?:'s|’s|'|’)"


@dataclass(frozen=True)
class Template:
    """One question template: a full-match regex with a ``ref`` group (and maybe ``target``).

    ``possessive`` is set for templates that name the reference as "X's <noun>" ("From the man's
    perspective", "in the girl’s position"); the rewrite turns them into "the <noun> of X ..."
    because "the man in the red bounding box's perspective" is not English. Such patterns also
    have a ``whole`` group spanning "X's <noun>".
    """

    name: str
    task_hint: str
    pattern: re.Pattern[str]
    possessive: str | None = None


def _t(name: str, task_hint: str, regex: str, possessive: str | None = None) -> Template:
    return Template(name, task_hint, re.compile(regex, re.IGNORECASE), possessive)


# A reference phrase never runs across a comma, question mark or dash that ends the clause.
_NP = r"[^,?;—]+?"

TEMPLATES: tuple[Template, ...] = (
    # Camera perspective - Relative Direction: the reference is what the target is located against.
    _t("camera_location_in_comparison", "Camera perspective - Relative Direction",
       rf"Could you tell me the location of (?P<target>{_NP}) in comparison to (?P<ref>{_NP})\?"),
    _t("camera_with_respect_to", "Camera perspective - Relative Direction",
       rf"How is (?P<target>{_NP}) positioned with respect to (?P<ref>{_NP})\?"),
    _t("camera_looking_at", "Camera perspective - Relative Direction",
       rf"If you(?:'re| are) looking at (?P<ref>{_NP}), where would you find (?P<target>{_NP})\?"),
    _t("camera_located_compared", "Camera perspective - Relative Direction",
       rf"Where is (?P<target>{_NP}) located compared to (?P<ref>{_NP}) from the camera{_POSS} perspective\?"),
    _t("camera_in_relation_to", "Camera perspective - Relative Direction",
       rf"Where is (?P<target>{_NP}) in relation to (?P<ref>{_NP})\?"),
    _t("camera_position_relative_to", "Camera perspective - Relative Direction",
       rf"Can you describe the position of (?P<target>{_NP}) relative to (?P<ref>{_NP})\?"),
    # Camera perspective - Object View Orientation: the reference is the object whose facing is asked.
    _t("camera_viewpoint_which_way", "Camera perspective - Object View Orientation",
       rf"Taking the camera{_POSS} viewpoint as the front, which way is (?P<ref>{_NP}) facing in the image\?"),
    _t("camera_lens_looking_toward", "Camera perspective - Object View Orientation",
       rf"Taking the camera lens as the front, what direction is (?P<ref>{_NP}) looking towards?\?"),
    _t("camera_viewpoint_which_direction", "Camera perspective - Object View Orientation",
       rf"With the camera{_POSS} viewpoint as the front, which direction is (?P<ref>{_NP}) facing in the image\?"),
    _t("camera_perspective_facing_within", "Camera perspective - Object View Orientation",
       rf"Considering the camera{_POSS} perspective as the front, what direction is (?P<ref>{_NP}) facing "
       rf"within the picture\?"),
    # Person perspective - Object View Orientation: you are the reference object.
    _t("person_imagine_you_are", "Person perspective - Object View Orientation",
       rf"Imagine you(?:'re|’re| are) (?P<ref>{_NP}) in this image\s*[—–-]+\s*which direction are you facing\?"),
    _t("person_picture_yourself_as", "Person perspective - Object View Orientation",
       rf"Picture yourself as (?P<ref>{_NP}); which way are you looking in the scene\?"),
    _t("person_suppose_position", "Person perspective - Object View Orientation",
       rf"Suppose you are in (?P<whole>(?P<ref>{_NP}){_POSS} position), what direction are you facing\?",
       possessive="position"),
    _t("person_as_in_photo", "Person perspective - Object View Orientation",
       rf"As (?P<ref>{_NP}) in the photo, in which direction are you facing\?"),
    # Person perspective - Relative Direction: the reference is whose perspective (or hand) it is.
    _t("person_from_perspective_of", "Person perspective - Relative Direction",
       rf"From (?:the|this) perspective of (?P<ref>{_NP}), (?P<rest>.+)"),
    _t("person_from_possessive_perspective", "Person perspective - Relative Direction",
       rf"From (?P<whole>(?P<ref>{_NP}){_POSS} perspective), (?P<rest>.+)", possessive="perspective"),
    _t("person_which_hand", "Person perspective - Relative Direction",
       rf"Which (?:hand|foot) (?:is|does|did|of) (?P<ref>{_NP}) "
       rf"(?:(?:in )?using|holding|use|hold|wear|raise|touch|feed|is)\b(?P<rest>.*)\?"),
    # Person perspective - Scene Simulation Relative Direction: where you stand is the reference.
    _t("scene_stand_at_facing", "Person perspective - Scene Simulation Relative Direction",
       rf"If you stand at (?P<ref>{_NP}) facing (?P<facing>{_NP}), where is (?P<target>{_NP})\?"),
    _t("scene_imagine_standing_looking", "Person perspective - Scene Simulation Relative Direction",
       rf"Imagine standing at (?P<ref>{_NP}) looking towards? (?P<facing>{_NP}), where is (?P<target>{_NP})\?"),
    _t("scene_positioned_at_facing", "Person perspective - Scene Simulation Relative Direction",
       rf"When positioned at (?P<ref>{_NP}) facing (?P<facing>{_NP}), where can you find (?P<target>{_NP})\?"),
    _t("scene_standing_gazing", "Person perspective - Scene Simulation Relative Direction",
       rf"Standing at (?P<ref>{_NP}), gazing at (?P<facing>{_NP}), where should (?P<target>{_NP}) be\?"),
)


@dataclass(frozen=True)
class PhraseMatch:
    """Where a question's reference object is named, and by which template."""

    question: str
    template: str
    phrase: str
    start: int
    end: int
    target: str | None = None
    whole_start: int | None = None
    whole_end: int | None = None
    possessive: str | None = None

    @property
    def noun(self) -> str:
        """The phrase without its determiner ("this man in red" -> "man in red"): what a detector reads."""
        return strip_determiner(self.phrase)


def strip_determiner(phrase: str) -> str:
    """Drop one leading "the/this/that/a/an/these/those"."""
    return _DETERMINER.sub("", phrase.strip(), count=1)


def find_reference(question: str) -> PhraseMatch | None:
    """The reference object of ``question`` by the first template that matches it whole, else None."""
    text = question.strip()
    offset = question.find(text) if text else 0
    for template in TEMPLATES:
        match = template.pattern.fullmatch(text)
        if match is None:
            continue
        phrase = match.group("ref").strip()
        if not phrase:
            continue
        start = offset + match.start("ref")
        groups = match.groupdict()
        whole = (offset + match.start("whole"), offset + match.end("whole")) if groups.get("whole") else (None, None)
        target = groups.get("target")
        return PhraseMatch(
            question=question,
            template=template.name,
            phrase=phrase,
            start=start,
            end=start + len(match.group("ref")),
            target=target.strip() if target else None,
            whole_start=whole[0],
            whole_end=whole[1],
            possessive=template.possessive,
        )
    return None


def boxed_phrase(phrase: str, marker: str = BOX_MARKER) -> str:
    """ "boy" -> "the boy in the red bounding box"; an existing determiner is kept ("this man ...")."""
    phrase = phrase.strip()
    if not _DETERMINER.match(phrase):
        phrase = "the " + phrase
    return f"{phrase} {marker}"


def rewrite_question(match: PhraseMatch, marker: str = BOX_MARKER) -> str:
    """The question pointing at the box: "... of the boy, ..." -> "... of the boy in the red bounding box, ...".

    Possessive forms are turned around: "From the man's perspective, ..." -> "From the perspective of
    the man in the red bounding box, ...".
    """
    q = match.question
    boxed = boxed_phrase(match.phrase, marker)
    if match.possessive and match.whole_start is not None and match.whole_end is not None:
        return q[: match.whole_start] + f"the {match.possessive} of {boxed}" + q[match.whole_end :]
    return q[: match.start] + boxed + q[match.end :]


@dataclass(frozen=True)
class Coverage:
    """How many questions each template matched, and the questions none matched."""

    total: int
    by_template: dict[str, int]
    misses: list[str]

    @property
    def matched(self) -> int:
        return self.total - len(self.misses)


def coverage(questions: Iterable[str]) -> Coverage:
    """Run the extractor over many questions: per-template counts and the misses, for a report."""
    counts: Counter[str] = Counter()
    misses: list[str] = []
    total = 0
    for question in questions:
        total += 1
        found = find_reference(question)
        if found is None:
            misses.append(question)
        else:
            counts[found.template] += 1
    return Coverage(total, {t.name: counts.get(t.name, 0) for t in TEMPLATES}, misses)
