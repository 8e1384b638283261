"""The demo workspace's data: a rendered ViewSpatial-style benchmark and three model runs.

Orienteer must be explorable before anyone has a GPU or a real results file, so
`generate_demo_files` writes, in a few seconds and byte-for-byte reproducibly from a seed:

* ``images/``: Pillow-rendered 320x240 scenes (see `orienteer.demo.render`) in which the
  gold answer is true in the picture;
* ``bench.jsonl``: items of the five ViewSpatial-Bench tasks, in the real file's proportions,
  with its question templates, 4 options (2 for "Which hand ..."), and all 18 gold labels;
* ``scene_layout.jsonl``: per item and frame, where every thing was drawn (pixel box, floor
  point, world coordinates, yaws), so tests and curious users can check the geometry;
* ``preds/``: three runs in three import formats, each with its own synthetic error pattern.

Direction conventions (the same frame for every task, as in ViewSpatial-Bench):
a frame's *front* is where its owner looks. For the camera that is into the scene, so in
camera-perspective items "front" means farther from the camera than the reference, and a
person facing the camera faces "back" (ViewSpatial's own labelling of COCO people).
Person object-view-orientation is the head's yaw relative to the body, as in the benchmark.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from orienteer.core.answers import viewspatial_letter
from orienteer.core.directions import VIEWSPATIAL_LABELS, Category, categorize, direction_vector, mirror_label
from orienteer.demo import render as R
from orienteer.demo.render import Camera, Thing

CAMERA_RD = "Camera perspective - Relative Direction"
CAMERA_OVO = "Camera perspective - Object View Orientation"
PERSON_OVO = "Person perspective - Object View Orientation"
PERSON_RD = "Person perspective - Relative Direction"
SCENE_SIM = "Person perspective - Scene Simulation Relative Direction"
TASKS: tuple[str, ...] = (CAMERA_RD, CAMERA_OVO, PERSON_OVO, PERSON_RD, SCENE_SIM)

TASK_COUNTS: dict[str, int] = {CAMERA_RD: 1773, CAMERA_OVO: 996, PERSON_OVO: 996, PERSON_RD: 842, SCENE_SIM: 1105}
"""Items per task in the real ViewSpatial-Bench (5,712); the demo keeps these proportions."""

HORIZONTAL: tuple[str, ...] = tuple(R.LABEL_ANGLES)

GOLD_WEIGHTS: dict[str, dict[str, int]] = {
    # gold-label counts of the real file, so the demo's label mix looks like the benchmark's
    CAMERA_RD: {
        "right": 283, "down": 260, "left": 235, "above": 116, "back-down": 108, "front-left": 92,
        "front-right": 87, "front": 81, "back": 72, "down-left": 72, "down-right": 68, "back-left": 64,
        "back-right": 61, "front-up": 57, "above-right": 41, "above-left": 35, "front-down": 26, "back-up": 15,
    },
    CAMERA_OVO: {"back": 267, "left": 204, "back-right": 152, "right": 146, "back-left": 140,
                 "front-left": 34, "front": 33, "front-right": 20},
    # head relative to body: it cannot turn backwards (the real file's 10 "back" items are noise)
    PERSON_OVO: {"front": 570, "front-right": 146, "front-left": 141, "right": 78, "left": 51},
    PERSON_RD: {"right": 231, "front": 199, "left": 167, "front-right": 72, "back": 61,
                "front-left": 53, "back-right": 30, "back-left": 29},
    SCENE_SIM: {"front": 292, "front-right": 216, "front-left": 200, "right": 118, "left": 113,
                "back-left": 64, "back-right": 63, "back": 39},
}
OPTION_POOLS: dict[str, tuple[str, ...]] = {
    CAMERA_RD: VIEWSPATIAL_LABELS, CAMERA_OVO: HORIZONTAL, PERSON_OVO: HORIZONTAL,
    PERSON_RD: HORIZONTAL, SCENE_SIM: HORIZONTAL,
}
HAND_SHARE = 0.12  # share of person relative-direction items asked as "Which hand ..." (real: 20%)
CONFUSER_RATE = 0.4  # chance to force the mirror (or a flip) among the distractors
LETTERS = "ABCD"

CAMERA_RD_TEMPLATES = (
    "How is the {target} positioned with respect to the {ref}?",
    "Could you tell me the location of the {target} in comparison to the {ref}?",
    "Where is the {target} in relation to the {ref}?",
    "Where is the {target} located compared to the {ref} from the camera's perspective?",
    "Can you describe the position of the {target} relative to the {ref}?",
    "If you're looking at the {ref}, where would you find the {target}?",
)
CAMERA_OVO_TEMPLATES = (
    "Taking the camera lens as the front, what direction is the {person} looking toward?",
    "Taking the camera's viewpoint as the front, which way is the {person} facing in the image?",
    "With the camera's viewpoint as the front, which direction is the {person} facing in the image?",
    "Considering the camera's perspective as the front, what direction is the {person} facing within the picture?",
)
PERSON_OVO_TEMPLATES = (
    "As the {person} in the photo, in which direction are you facing?",
    "Imagine you're the {person} in this image \u2014 which direction are you facing?",
    "Picture yourself as the {person}; which way are you looking in the scene?",
    "Suppose you are in the {person}\u2019s position, what direction are you facing?",
)
PERSON_RD_TEMPLATES = (
    "From the perspective of the {person}, where is the {target} located?",
    "From the perspective of the {person}, where is the {target}?",
    "From the perspective of the {person}, where is the {target} positioned?",
    "From the perspective of the {person}, in which direction is the {target}?",
)
PERSON_RD_SHORT_TEMPLATES = (  # only for a bare kind: "From this man's perspective ..."
    "From this {person}'s perspective, where is the {target} located?",
    "From this {person}'s perspective, where is the {target} positioned?",
    "From the {person}'s perspective, where is the {target} located?",
    "From this {person}'s perspective, in which direction is the {target}?",
)
HAND_TEMPLATES = (
    "Which hand is this {person} using to hold the {item}?",
    "Which hand does this {person} use to hold the {item}?",
    "Which hand is the {person} holding the {item} with?",
)
SCENE_TEMPLATES = (
    "If you stand at {a} facing {b}, where is {c}?",
    "Imagine standing at {a} looking towards {b}, where is {c}?",
    "When positioned at {a} facing {b}, where can you find {c}?",
    "Standing at {a}, gazing at {b}, where should {c} be?",
)
CLOTHES: dict[str, R.Color] = {
    "red": (200, 50, 50), "blue": (50, 80, 190), "green": (60, 150, 70), "yellow": (225, 190, 40),
    "white": (232, 232, 228), "black": (45, 45, 48), "grey": (130, 130, 135), "orange": (230, 130, 40),
}

OFFICIAL_SUFFIX = "\nReply only to the corresponding option.\nAnswer:"
CSV_HEADER = ("ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect")


@dataclass(frozen=True)
class DemoRun:
    """One synthetic prediction file and how to import it."""

    name: str
    path: Path
    format: str
    model: str
    notes: str


@dataclass(frozen=True)
class DemoBundle:
    """What `generate_demo_files` wrote: the benchmark, its image root and the runs."""

    bench_path: Path
    images_root: Path
    runs: tuple[DemoRun, ...]
    train_path: Path | None = None
    """The training split (``train.jsonl``: other scenes, ids ``train_NNNNNN``), for leak-free fix loops."""


# --------------------------------------------------------------------------- planning


def _rng(seed: int | str, *parts: object) -> random.Random:
    """An independent, reproducible stream per purpose (string seeds hash with SHA-512)."""
    return random.Random("orienteer-demo/" + "/".join(str(p) for p in (seed, *parts)))


def _task_counts(n_items: int) -> dict[str, int]:
    """Items per task in the real proportions (largest remainder; from 5 items up, every task has one)."""
    total = sum(TASK_COUNTS.values())
    exact = {t: n_items * c / total for t, c in TASK_COUNTS.items()}
    counts = {t: int(v) for t, v in exact.items()}
    for t in sorted(TASKS, key=lambda t: exact[t] - counts[t], reverse=True)[: n_items - sum(counts.values())]:
        counts[t] += 1
    if n_items >= len(TASKS):
        for t in TASKS:
            if counts[t] == 0:
                donor = max(counts, key=counts.get)  # type: ignore[arg-type]
                counts[donor] -= 1
                counts[t] = 1
    return counts


def _plan(n_items: int, rng: random.Random) -> list[tuple[str, str]]:
    """(task, gold label) per item, tasks in blocks like the real file.

    Every label a task can have appears once before the rest follows the real frequencies,
    so even a small demo (from about 60 items up) has all 18 labels as gold answers.
    """
    plan: list[tuple[str, str]] = []
    for task, count in _task_counts(n_items).items():
        labels = list(GOLD_WEIGHTS[task])
        rng.shuffle(labels)
        golds = labels[:count]
        weights = [GOLD_WEIGHTS[task][lab] for lab in GOLD_WEIGHTS[task]]
        golds += rng.choices(list(GOLD_WEIGHTS[task]), weights, k=count - len(golds))
        rng.shuffle(golds)
        plan += [(task, g) for g in golds]
    return plan


# --------------------------------------------------------------------------- scenes


@dataclass
class _Draft:
    """A question and the scene(s) that make its gold answer true."""

    task: str
    question: str
    gold: str
    frames: list[tuple[tuple[Thing, ...], Camera]]
    reference: str  # Thing.name of the reference in frame 0
    reference_phrase: str
    fixed_options: tuple[str, ...] | None = None


class _Retry(Exception):
    """A random layout broke a constraint; draw another."""


def _person_phrase(rng: random.Random, kind: str) -> tuple[str, R.Color | None, bool]:
    """("man in red clothes", shirt colour, bare?) : sometimes a clothes colour, as in COCO questions."""
    if rng.random() < 0.45:
        color = rng.choice(list(CLOTHES))
        form = rng.choice(("{k} in {c}", "{k} in {c} clothes"))
        return form.format(k=kind, c=color), CLOTHES[color], False
    return kind, None, True


def _fits(placed: R.Placed | None, others: Sequence[R.Placed], max_overlap: float = 0.25, tags: bool = False) -> bool:
    """Inside the picture and not hidden by (nor hiding) the things already placed."""
    return placed is not None and R.inside(placed) and all(R.overlap(placed, o, tags) <= max_overlap for o in others)


def _add_extras(rng: random.Random, things: list[Thing], camera: Camera, count: int,
                xs: tuple[float, float], ys: tuple[float, float]) -> None:
    """Add up to `count` unrelated objects that hide nothing (context, and something to confuse)."""
    used = {t.kind for t in things}
    placed = R.place_all(things, camera)
    for _ in range(count):
        for _attempt in range(25):
            kind = rng.choice([k for k in R.OBJECT_KINDS if k not in used])
            thing = Thing(kind, kind, rng.uniform(*xs), rng.uniform(*ys))
            p = R.place(thing, camera)
            if _fits(p, placed, 0.1, tags=True):
                things.append(thing)
                placed.append(p)  # type: ignore[arg-type]
                used.add(kind)
                break


def _elevations(rng: random.Random, z: int, ref_kind: str, tgt_kind: str) -> tuple[float, float]:
    """(reference base, target base) heights: the higher one sits on a shelf above the other's top."""
    if z > 0:
        return 0.0, R.KINDS[ref_kind].height + rng.uniform(0.3, 0.5)
    if z < 0:
        return R.KINDS[tgt_kind].height + rng.uniform(0.3, 0.5), 0.0
    return 0.0, 0.0


def _camera_relative(rng: random.Random, gold: str) -> _Draft:
    """Two objects whose offset, seen by the camera, is the gold label (x by screen order,
    front = farther, above = higher); both the world and the picture agree."""
    gx, gy, gz = direction_vector(gold)  # type: ignore[misc]
    camera = Camera()
    ref_kind, tgt_kind = rng.sample([k for k in R.OBJECT_KINDS if k != "bookshelf"], 2)
    for _ in range(400):
        rx = rng.uniform(-0.4, 0.4) if gx == 0 else rng.uniform(-1.2, 1.2)
        ry = rng.uniform(3.8, 6.5)
        dx = gx * rng.uniform(1.1, 1.9) if gx else rng.uniform(-0.12, 0.12)
        dy = gy * rng.uniform(1.8, 3.0) if gy else rng.uniform(-0.2, 0.2)
        ref_z, tgt_z = _elevations(rng, gz, ref_kind, tgt_kind)
        ref = Thing(ref_kind, ref_kind, rx, ry, ref_z, role="reference")
        tgt = Thing(tgt_kind, tgt_kind, rx + dx, ry + dy, tgt_z, role="target")
        pr, pt = R.place(ref, camera), R.place(tgt, camera)
        if not (_fits(pr, []) and _fits(pt, [pr], 0.35)):  # type: ignore[list-item]
            continue
        du = pt.center[0] - pr.center[0]  # type: ignore[union-attr]
        if (gx and (du * gx < 20)) or (not gx and abs(du) > 12):
            continue
        things = [ref, tgt]
        _add_extras(rng, things, camera, rng.choice((0, 1, 1, 2)), (-3.0, 3.0), (3.6, 9.5))
        question = rng.choice(CAMERA_RD_TEMPLATES).format(target=tgt_kind, ref=ref_kind)
        return _Draft(CAMERA_RD, question, gold, [(tuple(things), camera)], ref.name, f"the {ref_kind}")
    raise _Retry


def _person(rng: random.Random, **kw) -> tuple[Thing, str, bool]:
    """A person thing (name = kind) plus the phrase a question uses for them."""
    kind = rng.choice(R.PERSON_KINDS)
    phrase, color, bare = _person_phrase(rng, kind)
    return Thing(kind, kind, role="reference", color=color, **kw), phrase, bare


def _jitter(rng: random.Random) -> float:
    """Yaw noise that keeps a direction well inside its 45-degree sector (+-22.5)."""
    return rng.uniform(-12.0, 12.0)


def _camera_orientation(rng: random.Random, gold: str) -> _Draft:
    """A person whose body and head face the gold direction in the camera's frame."""
    camera = Camera()
    yaw = R.LABEL_ANGLES[gold] + _jitter(rng)
    for _ in range(200):
        person, phrase, _bare = _person(rng, x=rng.uniform(-1.6, 1.6), y=rng.uniform(3.4, 5.5), yaw=yaw,
                                        head_turn=rng.uniform(-8, 8))
        if not _fits(R.place(person, camera), []):
            continue
        things = [person]
        _add_extras(rng, things, camera, rng.choice((0, 1, 2)), (-3.0, 3.0), (5.0, 9.5))
        question = rng.choice(CAMERA_OVO_TEMPLATES).format(person=phrase)
        return _Draft(CAMERA_OVO, question, gold, [(tuple(things), camera)], person.name, f"the {phrase}")
    raise _Retry


HEAD_TURNS: dict[str, tuple[float, float]] = {
    # the benchmark's buckets of head-minus-body yaw: |d| <= 20 front, 20-60 front-x, 60-90 x
    "front": (-10.0, 10.0), "front-right": (30.0, 50.0), "right": (68.0, 85.0),
    "front-left": (-50.0, -30.0), "left": (-85.0, -68.0),
}


def _person_orientation(rng: random.Random, gold: str) -> _Draft:
    """A person turned (mostly) toward the camera whose head turns by the gold label."""
    camera = Camera()
    body = 180.0 + rng.uniform(-65.0, 65.0) if rng.random() < 0.85 else rng.choice((-90.0, 90.0)) + rng.uniform(-15, 15)
    turn = rng.uniform(*HEAD_TURNS[gold])
    for _ in range(200):
        person, phrase, _bare = _person(rng, x=rng.uniform(-1.4, 1.4), y=rng.uniform(3.3, 4.8), yaw=R.wrap(body),
                                        head_turn=turn)
        if not _fits(R.place(person, camera), []):
            continue
        things = [person]
        _add_extras(rng, things, camera, rng.choice((0, 1)), (-3.0, 3.0), (5.5, 9.5))
        question = rng.choice(PERSON_OVO_TEMPLATES).format(person=phrase)
        return _Draft(PERSON_OVO, question, gold, [(tuple(things), camera)], person.name, f"the {phrase}")
    raise _Retry


def _person_relative(rng: random.Random, gold: str) -> _Draft:
    """An object at the gold direction in the person's own frame (front = where they face)."""
    camera = Camera()
    tgt_kind = rng.choice(R.OBJECT_KINDS)
    for _ in range(400):
        yaw = R.wrap(rng.choice(list(R.LABEL_ANGLES.values())) + rng.uniform(-15, 15))
        person, phrase, bare = _person(rng, x=rng.uniform(-1.5, 1.5), y=rng.uniform(4.0, 6.5), yaw=yaw,
                                       head_turn=rng.uniform(-8, 8))
        dx, dy = R.unit(yaw + R.LABEL_ANGLES[gold] + _jitter(rng))
        dist = rng.uniform(1.4, 2.4)
        tgt = Thing(tgt_kind, tgt_kind, person.x + dx * dist, person.y + dy * dist, role="target")
        pp, pt = R.place(person, camera), R.place(tgt, camera)
        if not (_fits(pp, []) and _fits(pt, [pp], 0.2)) or tgt.y < 3.3:  # type: ignore[list-item]
            continue
        things = [person, tgt]
        _add_extras(rng, things, camera, rng.choice((0, 1)), (-3.0, 3.0), (3.6, 9.5))
        templates = PERSON_RD_TEMPLATES + (PERSON_RD_SHORT_TEMPLATES if bare else ())
        question = rng.choice(templates).format(person=phrase, target=tgt_kind)
        return _Draft(PERSON_RD, question, gold, [(tuple(things), camera)], person.name, f"the {phrase}")
    raise _Retry


def _which_hand(rng: random.Random, gold: str) -> _Draft:
    """A person holding something in the gold hand, turned so both hands are visible."""
    camera = Camera()
    item = rng.choice(R.HELD_KINDS)
    for _ in range(200):
        yaw = (180.0 if rng.random() < 0.75 else 0.0) + rng.uniform(-35, 35)
        person, phrase, bare = _person(rng, x=rng.uniform(-1.2, 1.2), y=rng.uniform(3.3, 4.6), yaw=R.wrap(yaw),
                                       head_turn=rng.uniform(-10, 10), held=f"{gold}:{item}")
        if not _fits(R.place(person, camera), []):
            continue
        question = rng.choice(HAND_TEMPLATES).format(person=person.kind, item=item)
        return _Draft(PERSON_RD, question, gold, [((person,), camera)], person.name, f"the {person.kind}",
                      fixed_options=("left", "right"))
    raise _Retry


ROOM = 2.5  # half-size of the scene-simulation room, metres
FRAME_COUNTS = (2, 3, 4, 5)
FRAME_WEIGHTS = (0.3, 0.25, 0.25, 0.2)


def _scene_simulation(rng: random.Random, gold: str) -> _Draft:
    """A room seen from 2-5 viewpoints around it; standing at A facing B, C lies at the gold label."""
    kinds = rng.sample([k for k in R.OBJECT_KINDS if k not in ("cup",)], 6)
    a_kind, b_kind, c_kind = kinds[:3]
    for _ in range(400):
        ax, ay = rng.uniform(-ROOM, ROOM), rng.uniform(-ROOM, ROOM)
        face = rng.uniform(-180, 180)
        fx, fy = R.unit(face)
        b_dist = rng.uniform(2.0, 3.5)
        bx, by = ax + fx * b_dist, ay + fy * b_dist
        cx_, cy_ = R.unit(face + R.LABEL_ANGLES[gold] + _jitter(rng))
        c_dist = rng.uniform(1.3, 2.6)
        cx, cy = ax + cx_ * c_dist, ay + cy_ * c_dist
        points = [(ax, ay), (bx, by), (cx, cy)]
        if any(abs(x) > ROOM or abs(y) > ROOM for x, y in points) or math.dist((bx, by), (cx, cy)) < 1.0:
            continue
        things = [Thing(a_kind, a_kind, ax, ay, role="reference"), Thing(b_kind, b_kind, bx, by, role="facing"),
                  Thing(c_kind, c_kind, cx, cy, role="target")]
        _room_extras(rng, things, kinds[3:])
        frames = _room_views(rng, tuple(things))
        if frames is None:
            continue
        question = rng.choice(SCENE_TEMPLATES).format(a=a_kind, b=b_kind, c=c_kind)
        return _Draft(SCENE_SIM, question, gold, frames, a_kind, f"the {a_kind}")
    raise _Retry


def _room_extras(rng: random.Random, things: list[Thing], kinds: Sequence[str]) -> None:
    """One to three more furniture pieces, at least 1.2 m from everything."""
    for kind in kinds[: rng.choice((1, 2, 3))]:
        for _attempt in range(30):
            x, y = rng.uniform(-ROOM, ROOM), rng.uniform(-ROOM, ROOM)
            if all(math.dist((x, y), (t.x, t.y)) >= 1.2 for t in things):
                things.append(Thing(kind, kind, x, y))
                break


def _room_views(rng: random.Random, things: tuple[Thing, ...]) -> list[tuple[tuple[Thing, ...], Camera]] | None:
    """Cameras on a circle around the room, looking at its centre, well apart in angle.

    Frame 0 must show the three named objects, so the question can be read off one picture;
    the other frames are the extra viewpoints a multi-view model can use.
    """
    n_frames = rng.choices(FRAME_COUNTS, FRAME_WEIGHTS)[0]
    angles = [rng.uniform(-180, 180)]
    while len(angles) < n_frames:
        a = rng.uniform(-180, 180)
        if all(abs(R.wrap(a - b)) >= 45 for b in angles):
            angles.append(a)
    frames = []
    for k, angle in enumerate(angles):
        ux, uy = R.unit(angle)
        radius = rng.uniform(6.0, 6.8)
        camera = Camera(-ux * radius, -uy * radius, angle + rng.uniform(-6, 6))
        if k == 0 and not _clear_view(R.place_all(things, camera)):
            return None
        frames.append((things, camera))
    return frames


def _clear_view(placed: Sequence[R.Placed]) -> bool:
    """The three named things are in the picture, apart, and not buried behind furniture."""
    keys = [p for p in placed if p.thing.role in ("reference", "facing", "target")]
    if len(keys) != 3 or not all(R.inside(p) for p in keys):
        return False
    for p in keys:
        for q in placed:
            limit = 0.15 if q.thing.role in ("reference", "facing", "target") else 0.4
            if q is not p and R.overlap(p, q, tags=True) > limit:
                return False
    return True


BUILDERS = {
    CAMERA_RD: _camera_relative, CAMERA_OVO: _camera_orientation, PERSON_OVO: _person_orientation,
    PERSON_RD: _person_relative, SCENE_SIM: _scene_simulation,
}


def _draft(seed: int | str, index: int, task: str, gold: str) -> _Draft:
    """Build item `index` from its own stream, so one item's retries never shift another's."""
    rng = _rng(seed, "item", index)
    if task == PERSON_RD and rng.random() < HAND_SHARE:
        return _which_hand(rng, rng.choice(("left", "right")))
    for _ in range(20):
        try:
            return BUILDERS[task](rng, gold)
        except _Retry:
            continue
    raise RuntimeError(f"could not lay out a {task!r} scene for {gold!r}")  # pragma: no cover


@lru_cache(maxsize=None)
def _category(gold: str, label: str) -> Category:
    """`categorize`, memoised: the demo asks about the same few label pairs thousands of times."""
    return categorize(gold, label)


@lru_cache(maxsize=None)
def _confusers(gold: str, pool: tuple[str, ...]) -> tuple[str, ...]:
    """Labels a model is likely to confuse with the gold: its mirror, else a vertical/depth flip."""
    mirror = mirror_label(gold)
    if mirror != gold and mirror in pool:
        return (mirror,)
    return tuple(lab for lab in pool if lab != gold and _category(gold, lab) in (Category.VERTICAL, Category.DEPTH))


def _options(rng: random.Random, draft: _Draft) -> dict[str, str]:
    """Four distinct labels (gold at a random letter); often the gold's mirror among them."""
    if draft.fixed_options:
        return dict(zip(LETTERS, draft.fixed_options))
    pool = OPTION_POOLS[draft.task]
    chosen = [draft.gold]
    confusers = _confusers(draft.gold, pool)
    if confusers and rng.random() < CONFUSER_RATE:
        chosen.append(rng.choice(confusers))
    rest = [lab for lab in pool if lab not in chosen]
    chosen += rng.sample(rest, 4 - len(chosen))
    rng.shuffle(chosen)
    return dict(zip(LETTERS, chosen))


@dataclass
class _Item:
    """One finished item: its JSON record plus the layout used to draw it."""

    record: dict
    layout: dict
    renders: list[tuple[tuple[Thing, ...], Camera, int, str]] = field(default_factory=list)


def _build_item(seed: int | str, index: int, task: str, gold: str, out_dir: Path, prefix: str = "demo") -> _Item:
    draft = _draft(seed, index, task, gold)
    rng = _rng(seed, "options", index)
    options = _options(rng, draft)
    answer = next(letter for letter, label in options.items() if label == draft.gold)
    item_id = f"{prefix}_{index:06d}"
    style = rng.randrange(len(R.PALETTES))
    images, frames, renders = [], [], []
    for k, (things, camera) in enumerate(draft.frames):
        rel = f"images/{item_id}_{k}.jpg"
        images.append(rel)
        renders.append((things, camera, style, str(out_dir / rel)))
        frames.append({"image": rel, "camera": [round(camera.x, 3), round(camera.y, 3), round(camera.yaw, 2)],
                       "things": [p.record() for p in R.place_all(things, camera)]})
    ref = next(t for t in draft.frames[0][0] if t.name == draft.reference)
    bbox = list(R.place(ref, draft.frames[0][1]).bbox)  # type: ignore[union-attr]
    record = {
        "item_id": item_id, "task": task, "question": draft.question, "options": options, "answer": answer,
        "images": images, "source": "demo-render", "reference_object": draft.reference_phrase, "bbox": bbox,
        "parent_item_id": None,
    }
    layout = {"item_id": item_id, "task": task, "gold": draft.gold, "frames": frames}
    return _Item(record, layout, renders)


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunProfile:
    """How a synthetic model behaves: accuracy per task and which wrong options it prefers."""

    name: str
    model: str
    format: str
    filename: str
    notes: str
    accuracy: dict[str, float]
    error_weights: dict[Category, float]
    reply_styles: dict[str, float]
    unparsed_rate: float = 0.0  # share of all items answered with no letter at all
    quirk_rate: float = 0.0  # one-line replies whose first standalone 'a' fools the official rule
    missing_rate: float = 0.0  # share of items absent from the file


BASE_STYLES = {"letter": 0.46, "dot": 0.14, "full": 0.16, "sentence": 0.08, "reasoning": 0.07,
               "lower": 0.04, "paren": 0.03, "answer": 0.02}
PROFILES: tuple[RunProfile, ...] = (
    RunProfile(
        name="qwen3b-base", model="Qwen/Qwen2.5-VL-3B-Instruct", format="viewspatial-csv",
        filename="result_qwen3b-base.csv",
        notes=("Synthetic zero-shot baseline in the official result CSV: ~40% overall, weakest on "
               "person-perspective tasks; errors dominated by left/right mirrors (it picks the mirror "
               "option when one is offered) and 90-degree confusions; ~1.5% replies without a letter."),
        accuracy={CAMERA_RD: 0.48, CAMERA_OVO: 0.38, PERSON_OVO: 0.41, PERSON_RD: 0.32, SCENE_SIM: 0.31},
        error_weights={Category.HORIZONTAL: 20.0, Category.ORTHOGONAL: 4.0, Category.ADJACENT: 1.5,
                       Category.DEPTH: 1.0, Category.VERTICAL: 1.0, Category.OPPOSITE: 0.6, Category.OBTUSE: 0.6},
        reply_styles=BASE_STYLES, unparsed_rate=0.015, quirk_rate=0.006,
    ),
    RunProfile(
        name="flip-aug", model="Qwen/Qwen2.5-VL-3B-Instruct + LoRA (flip-augmented)", format="results-json",
        filename="flip-aug.json",
        notes=("Synthetic LoRA fine-tune on horizontally flipped data: left/right mirrors almost gone and "
               "relative-direction tasks up, but worse than the base on scene simulation and object view "
               "orientation (forgetting) and more front/back (depth) errors. Its file's own `correct` comes "
               "from a prefix-match evaluator, so 'The answer is D.' replies disagree with the official rule."),
        accuracy={CAMERA_RD: 0.62, CAMERA_OVO: 0.30, PERSON_OVO: 0.33, PERSON_RD: 0.46, SCENE_SIM: 0.22},
        error_weights={Category.HORIZONTAL: 0.15, Category.ORTHOGONAL: 2.5, Category.ADJACENT: 2.0,
                       Category.DEPTH: 8.0, Category.VERTICAL: 1.5, Category.OPPOSITE: 1.0, Category.OBTUSE: 1.0},
        reply_styles={"letter": 0.7, "dot": 0.1, "full": 0.12, "sentence": 0.04, "lower": 0.02, "reasoning": 0.02},
        unparsed_rate=0.01,
    ),
    RunProfile(
        name="box-prompt", model="Qwen/Qwen2.5-VL-3B-Instruct + box prompt", format="jsonl",
        filename="box-prompt.jsonl",
        notes=("Synthetic base model prompted with the reference object's box drawn on the image, scored "
               "over option letters (probabilities): clearly better on person-perspective tasks, about the "
               "same elsewhere; ~1% of items missing from the file. When wrong it picks any wrong option "
               "alike: its raw counts lean to 90-degree and adjacent errors only because the option sets "
               "offer those most (the confusion screen's chance columns show no tendency)."),
        accuracy={CAMERA_RD: 0.49, CAMERA_OVO: 0.37, PERSON_OVO: 0.53, PERSON_RD: 0.50, SCENE_SIM: 0.40},
        error_weights={},  # a uniform wrong pick: no tendency at all, whatever the raw counts suggest
        reply_styles={"letter": 0.8, "dot": 0.08, "full": 0.1, "sentence": 0.02},
        missing_rate=0.01,
    ),
)

UNPARSED_REPLIES = (
    "I cannot determine the direction.",
    "The image does not show enough information to tell.",
    "Sorry, I can't tell from this image.",
    "It is unclear from this viewpoint.",
)
REASONING = (
    "Looking at the image, the answer is {label}.",
    "Based on the positions in the picture, it is {label}.",
    "From that viewpoint it would be {label}.",
)

def _prefix_letter(reply: str) -> str | None:
    """A naive evaluator's rule: the reply starts with the letter (used for flip-aug's verdicts)."""
    match = re.match(r"\s*\(?([A-Da-d])(?![A-Za-z])", reply)
    return match.group(1).upper() if match else None


def _format_reply(rng: random.Random, style: str, letter: str, label: str) -> str:
    """A reply in one of the forms real VLMs produce for a multiple-choice prompt."""
    forms = {
        "letter": letter,
        "dot": f"{letter}.",
        "full": f"{letter}. {label}",
        "sentence": f"The answer is {letter}.",
        "reasoning": f"{rng.choice(REASONING).format(label=label)}\n{letter}",
        "lower": rng.choice((letter.lower(), f"{letter.lower()}. {label}")),
        "paren": f"({letter})",
        "answer": f"Answer: {letter}",
    }
    return forms[style]


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class Prediction:
    """One simulated answer: the raw reply, the intended letter, and optional probabilities."""

    index: int
    reply: str
    letter: str | None
    probs: dict[str, float] | None = None


def _correct_sets(records: Sequence[dict], profile: RunProfile, seed: int) -> set[int]:
    """Which items the run answers right: exactly round(acc * n) per task, chosen by a score
    that shares a per-item difficulty with the other runs (so runs agree on hard items)."""
    difficulty = _rng(seed, "difficulty")
    shared = [difficulty.gauss(0, 1) for _ in records]
    own = _rng(seed, "run", profile.name, "correct")
    by_task: dict[str, list[tuple[float, int]]] = {}
    for i, rec in enumerate(records):
        score = math.sqrt(0.45) * shared[i] + math.sqrt(0.55) * own.gauss(0, 1)
        by_task.setdefault(rec["task"], []).append((score, i))
    correct: set[int] = set()
    for task, scored in by_task.items():
        scored.sort()
        k = round(profile.accuracy[task] * len(scored))
        correct.update(i for _, i in scored[:k])
    return correct


def _wrong_letter(rng: random.Random, options: dict[str, str], answer: str, weights: dict[Category, float]) -> str:
    """A wrong option drawn by the run's appetite for each error category."""
    gold = options[answer]
    letters = [letter for letter in options if letter != answer]
    w = [weights.get(_category(gold, options[letter]), 1.0) for letter in letters]
    return rng.choices(letters, w)[0]


def _probabilities(rng: random.Random, letters: Sequence[str], chosen: str, correct: bool) -> dict[str, float]:
    """Option probabilities summing to 1 (4 decimals) whose argmax is the chosen letter."""
    others = [letter for letter in letters if letter != chosen]
    while True:
        top = rng.uniform(0.45, 0.97) if correct else rng.uniform(0.36, 0.8)
        if len(letters) == 2:
            top = max(top, 0.52)
        raw = [rng.random() + 0.05 for _ in others]
        rest = [round((1 - top) * r / sum(raw), 4) for r in raw]
        top = round(1 - sum(rest), 4)
        if all(r < top for r in rest):
            probs = dict(zip(others, rest))
            probs[chosen] = top
            return {letter: probs[letter] for letter in letters}


def simulate_run(records: Sequence[dict], profile: RunProfile, seed: int) -> list[Prediction]:
    """Replies of one synthetic model to every item (missing items left out)."""
    rng = _rng(seed, "run", profile.name, "replies")
    correct = _correct_sets(records, profile, seed)
    styles, style_w = list(profile.reply_styles), list(profile.reply_styles.values())
    n = len(records)
    wrong = [i for i in range(n) if i not in correct]
    unparsed = set(rng.sample(wrong, min(len(wrong), round(profile.unparsed_rate * n))))
    right = [i for i in sorted(correct) if records[i]["answer"] != "A"]
    quirky = set(rng.sample(right, min(len(right), round(profile.quirk_rate * n))))
    missing = set(rng.sample(range(n), round(profile.missing_rate * n)))
    preds = []
    for i, rec in enumerate(records):
        options, answer = rec["options"], rec["answer"]
        if i in unparsed:
            reply, letter = rng.choice(UNPARSED_REPLIES), None
        else:
            letter = answer if i in correct else _wrong_letter(rng, options, answer, profile.error_weights)
            if i in quirky:  # names the right letter, but the official rule stops at "a"
                reply = f"It is {options[letter]} of a {rec['reference_object'].split()[-1]}, so {letter}."
            else:
                reply = _format_reply(rng, rng.choices(styles, style_w)[0], letter, options[letter])
        probs = None
        if profile.format == "jsonl" and letter is not None:
            probs = _probabilities(rng, list(options), letter, letter == answer)
        if i not in missing:
            preds.append(Prediction(i, reply, letter, probs))
    return preds


def _gold_text(rec: dict) -> str:
    return f"{rec['answer']}. {rec['options'][rec['answer']]}"


def _write_official_csv(path: Path, records: Sequence[dict], preds: Sequence[Prediction]) -> None:
    """The upstream evaluate.py output: csv.writer (CRLF rows), bool verdicts as True/False."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for p in preds:
            rec = records[p.index]
            verdict = viewspatial_letter(p.reply) == rec["answer"]  # the official evaluate.py verdict
            writer.writerow([p.index, rec["question"] + OFFICIAL_SUFFIX, rec["task"], p.reply, _gold_text(rec), verdict])


def _write_results_json(path: Path, records: Sequence[dict], preds: Sequence[Prediction]) -> None:
    """{"results": [...]} keyed by the plain integer index (as a string) and a naive verdict."""
    rows = [{"id": str(p.index), "pred": p.reply, "gt": _gold_text(records[p.index]),
             "correct": _prefix_letter(p.reply) == records[p.index]["answer"]} for p in preds]
    path.write_text(json.dumps({"results": rows}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _write_flat_jsonl(path: Path, records: Sequence[dict], preds: Sequence[Prediction]) -> None:
    """One {"id", "pred", "probs"} object per line, keyed by item_id."""
    lines = [json.dumps({"id": records[p.index]["item_id"], "pred": p.reply, "probs": p.probs}, ensure_ascii=False)
             for p in preds]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


WRITERS = {"viewspatial-csv": _write_official_csv, "results-json": _write_results_json, "jsonl": _write_flat_jsonl}


# --------------------------------------------------------------------------- entry point


def _default_workers(n_images: int) -> int:
    """Two forked renderers when that is safe and worth it; one otherwise (e.g. under a TUI's threads)."""
    if n_images < 200 or threading.active_count() > 1 or (os.cpu_count() or 1) < 2:
        return 1
    return 2


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def generate_demo_files(out_dir: Path, seed: int = 7, n_items: int = 1000, *, workers: int | None = None,
                        n_train: int | None = None) -> DemoBundle:
    """Write the demo benchmark, its images, its scene layout and three runs into `out_dir`, and a
    training split of `n_train` other items (default a quarter of `n_items`; 0: none) as `train.jsonl`.

    Everything comes from `seed` through independent sub-streams (`_rng`), so the same seed
    gives byte-identical files whatever `workers` is; runs never perturb the benchmark, and the
    training split (its own stream, `"{seed}/train"`) never changes the test items.
    """
    if n_items < 1:
        raise ValueError("n_items must be at least 1")
    n_train = n_items // 4 if n_train is None else n_train
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "preds").mkdir(exist_ok=True)
    plan = _plan(n_items, _rng(seed, "plan"))
    items = [_build_item(seed, i, task, gold, out_dir) for i, (task, gold) in enumerate(plan)]
    train_seed = f"{seed}/train"
    train = ([_build_item(train_seed, i, task, gold, out_dir, prefix="train")
              for i, (task, gold) in enumerate(_plan(n_train, _rng(train_seed, "plan")))] if n_train > 0 else [])
    renders = [r for item in [*items, *train] for r in item.renders]
    R.render_all(renders, workers if workers is not None else _default_workers(len(renders)))
    records = [item.record for item in items]
    bench_path = out_dir / "bench.jsonl"
    _write_jsonl(bench_path, records)
    _write_jsonl(out_dir / "scene_layout.jsonl", [item.layout for item in items])
    train_path = None
    if train:
        train_path = out_dir / "train.jsonl"
        _write_jsonl(train_path, [item.record for item in train])
    runs = []
    for profile in PROFILES:
        path = out_dir / "preds" / profile.filename
        WRITERS[profile.format](path, records, simulate_run(records, profile, seed))
        runs.append(DemoRun(profile.name, path, profile.format, profile.model, profile.notes))
    return DemoBundle(bench_path=bench_path, images_root=out_dir, runs=tuple(runs), train_path=train_path)
