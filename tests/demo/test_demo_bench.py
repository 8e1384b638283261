"""The demo generator: reproducible files, true-to-picture geometry, and distinct run patterns."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from orienteer.core.directions import VIEWSPATIAL_LABELS, Category, categorize, direction_vector
from orienteer.demo.bench import (
    CAMERA_OVO,
    CAMERA_RD,
    PERSON_OVO,
    PERSON_RD,
    SCENE_SIM,
    TASK_COUNTS,
    TASKS,
    generate_demo_files,
)
from orienteer.demo.render import HEIGHT, KINDS, LABEL_ANGLES, WIDTH, wrap, yaw_of

KEYS = ["item_id", "task", "question", "options", "answer", "images", "source", "reference_object", "bbox",
        "parent_item_id"]
CSV_HEADER = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]
PERSON_TASKS = (PERSON_OVO, PERSON_RD, SCENE_SIM)


def official_letter(reply: str) -> str | None:
    """The upstream evaluate.py rule, written out again so the test does not trust the module."""
    match = re.search(r"\b([A-D])\b", reply.split("\n")[-1], re.IGNORECASE)
    return match.group(1).upper() if match else None


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Demo:
    """A generated demo folder, parsed once."""

    def __init__(self, out: Path, **kwargs) -> None:
        self.out = out
        self.bundle = generate_demo_files(out, **kwargs)
        self.items = read_jsonl(self.bundle.bench_path)
        self.layout = {rec["item_id"]: rec for rec in read_jsonl(out / "scene_layout.jsonl")}
        self.runs = {run.name: run for run in self.bundle.runs}

    def replies(self, name: str) -> dict[int, str]:
        """Item index -> raw reply, whatever the run's file format."""
        run = self.runs[name]
        if run.format == "viewspatial-csv":
            with open(run.path, newline="", encoding="utf-8") as fh:
                return {int(r["ID"]): r["Predicted Answer"] for r in csv.DictReader(fh)}
        if run.format == "results-json":
            return {int(r["id"]): r["pred"] for r in json.loads(run.path.read_text(encoding="utf-8"))["results"]}
        index = {item["item_id"]: i for i, item in enumerate(self.items)}
        return {index[r["id"]]: r["pred"] for r in read_jsonl(run.path)}

    def accuracy(self, name: str) -> dict[str, float]:
        """Per-task accuracy under the official rule (missing items count as wrong)."""
        replies = self.replies(name)
        hits, totals = Counter(), Counter()
        for i, item in enumerate(self.items):
            totals[item["task"]] += 1
            hits[item["task"]] += i in replies and official_letter(replies[i]) == item["answer"]
        return {task: hits[task] / totals[task] for task in totals}

    def categories(self, name: str) -> Counter:
        """Error categories of the run's wrong, parsed answers."""
        counts: Counter = Counter()
        for i, reply in self.replies(name).items():
            item = self.items[i]
            letter = official_letter(reply)
            if letter is None:
                counts["unparsed"] += 1
            elif letter != item["answer"]:
                counts[categorize(item["options"][item["answer"]], item["options"][letter]).value] += 1
        return counts


def gold(item: dict) -> str:
    return item["options"][item["answer"]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    return Demo(tmp_path_factory.mktemp("demo") / "out", seed=7, n_items=200)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- files


def test_same_seed_gives_byte_identical_files_whatever_the_worker_count(tmp_path, demo):
    again = generate_demo_files(tmp_path / "again", seed=7, n_items=200, workers=1)
    assert again.bench_path.name == "bench.jsonl"
    assert snapshot(tmp_path / "again") == snapshot(demo.out)


def test_a_different_seed_gives_different_files(tmp_path, demo):
    other = generate_demo_files(tmp_path / "other", seed=8, n_items=200)
    assert other.bench_path.read_bytes() != demo.bundle.bench_path.read_bytes()
    for run, mine in zip(other.runs, demo.bundle.runs):
        assert run.path.read_bytes() != mine.path.read_bytes()


def test_bundle_describes_the_written_files(demo):
    bundle = demo.bundle
    assert bundle.images_root == demo.out and bundle.bench_path == demo.out / "bench.jsonl"
    assert [(r.name, r.format) for r in bundle.runs] == [
        ("qwen3b-base", "viewspatial-csv"), ("flip-aug", "results-json"), ("box-prompt", "jsonl")]
    assert bundle.runs[0].path == demo.out / "preds" / "result_qwen3b-base.csv"
    for run in bundle.runs:
        assert run.path.is_file() and run.model and run.notes


def test_items_have_exactly_the_documented_shape(demo):
    assert len(demo.items) == 200
    ids = [item["item_id"] for item in demo.items]
    assert ids == [f"demo_{i:06d}" for i in range(200)]
    for item in demo.items:
        assert list(item) == KEYS
        assert item["source"] == "demo-render" and item["parent_item_id"] is None
        letters = list(item["options"])
        assert letters in (["A", "B", "C", "D"], ["A", "B"])
        assert len(set(item["options"].values())) == len(letters)
        assert item["answer"] in letters
        assert all(direction_vector(label) is not None for label in item["options"].values())
        if len(letters) == 2:
            assert item["task"] == PERSON_RD and item["question"].startswith("Which hand")
        assert item["reference_object"].startswith("the ")
        x0, y0, x1, y1 = item["bbox"]
        assert all(isinstance(v, int) for v in item["bbox"])
        assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT


def test_every_image_exists_and_opens(demo):
    for item in demo.items:
        for rel in item["images"]:
            assert rel.startswith("images/") and rel.endswith(".jpg")
            with Image.open(demo.bundle.images_root / rel) as img:
                assert img.format == "JPEG" and img.size == (WIDTH, HEIGHT)
                img.load()
    train = read_jsonl(demo.bundle.train_path)
    on_disk = {p.name for p in (demo.out / "images").iterdir()}
    assert on_disk == {Path(rel).name for item in [*demo.items, *train] for rel in item["images"]}


def test_the_training_split_is_apart_from_the_test_items_and_leaves_them_unchanged(tmp_path, demo):
    train = read_jsonl(demo.bundle.train_path)
    assert len(train) == 200 // 4 and all(item["item_id"].startswith("train_") for item in train)
    assert not {i["item_id"] for i in train} & {i["item_id"] for i in demo.items}
    assert not {r for i in train for r in i["images"]} & {r for i in demo.items for r in i["images"]}
    assert {item["task"] for item in train} == set(TASKS)
    alone = generate_demo_files(tmp_path / "alone", seed=7, n_items=200, n_train=0)
    assert alone.train_path is None
    assert alone.bench_path.read_bytes() == demo.bundle.bench_path.read_bytes()


def test_all_tasks_and_all_18_labels_are_gold(demo):
    assert {item["task"] for item in demo.items} == set(TASKS)
    assert {gold(item) for item in demo.items} == set(VIEWSPATIAL_LABELS)


def test_questions_follow_the_real_templates(demo):
    starts = {
        CAMERA_RD: ("How is the", "Could you tell me", "Where is the", "Can you describe", "If you're looking at"),
        CAMERA_OVO: ("Taking the camera", "With the camera's", "Considering the camera's"),
        PERSON_OVO: ("As the", "Imagine you're the", "Picture yourself as", "Suppose you are in the"),
        PERSON_RD: ("From the perspective of", "From this", "From the", "Which hand"),
        SCENE_SIM: ("If you stand at", "Imagine standing at", "When positioned at", "Standing at"),
    }
    for item in demo.items:
        assert item["question"].startswith(starts[item["task"]]), item["question"]
        assert item["question"].endswith("?")


def test_options_often_include_the_mirror_or_a_confusable_label(demo):
    confusable = (Category.HORIZONTAL, Category.VERTICAL, Category.DEPTH)
    four = [item for item in demo.items if len(item["options"]) == 4]
    share = sum(any(categorize(gold(i), lab) in confusable for lab in i["options"].values()) for i in four) / len(four)
    assert 0.5 <= share <= 0.8
    letters = Counter(item["answer"] for item in four)
    assert all(letters[letter] >= len(four) * 0.15 for letter in "ABCD")


def test_scene_simulation_items_have_several_frames(demo):
    frames = Counter(len(item["images"]) for item in demo.items if item["task"] == SCENE_SIM)
    assert set(frames) <= {2, 3, 4, 5} and len(frames) >= 3
    assert all(len(item["images"]) == 1 for item in demo.items if item["task"] != SCENE_SIM)


# --------------------------------------------------------------------------- geometry


def things(demo: Demo, item: dict, frame: int = 0) -> dict[str, dict]:
    return {t["role"]: t for t in demo.layout[item["item_id"]]["frames"][frame]["things"] if t["role"] != "other"}


def in_sector(angle: float, label: str) -> bool:
    return abs(wrap(angle - LABEL_ANGLES[label])) < 22.5


def test_bbox_is_the_reference_objects_box(demo):
    for item in demo.items:
        ref = things(demo, item)["reference"]
        assert item["bbox"] == ref["bbox"]
        assert item["reference_object"].startswith(f"the {ref['kind']}")


def test_camera_relative_direction_is_true_in_the_picture(demo):
    checked = Counter()
    for item in (i for i in demo.items if i["task"] == CAMERA_RD):
        gx, gy, gz = direction_vector(gold(item))
        roles = things(demo, item)
        ref, tgt = roles["reference"], roles["target"]
        du = (tgt["bbox"][0] + tgt["bbox"][2]) / 2 - (ref["bbox"][0] + ref["bbox"][2]) / 2
        if gx:  # left/right: the screen order of the boxes
            assert du * gx >= 20, (item["item_id"], gold(item), du)
        else:
            assert abs(du) <= 12, (item["item_id"], gold(item), du)
        dv = tgt["ground"][1] - ref["ground"][1]  # front = farther = higher on the floor
        if gy:
            assert dv * gy < 0 and tgt["depth"] * gy > ref["depth"] * gy, (item["item_id"], gold(item))
        else:
            assert abs(tgt["depth"] - ref["depth"]) <= 0.25
        ref_top = ref["world"][2] + KINDS[ref["kind"]].height
        tgt_top = tgt["world"][2] + KINDS[tgt["kind"]].height
        # above/down: the higher thing stands on a shelf over the other's top; at equal depth
        # its box is also wholly higher in the picture (with depth, the shelf and shadow tell)
        if gz > 0:
            assert tgt["world"][2] > ref_top and (gy or tgt["bbox"][3] < ref["bbox"][1]), item["item_id"]
        elif gz < 0:
            assert ref["world"][2] > tgt_top and (gy or ref["bbox"][3] < tgt["bbox"][1]), item["item_id"]
        else:
            assert tgt["world"][2] == ref["world"][2] == 0
        checked[(gx != 0, gy != 0, gz != 0)] += 1
    assert len(checked) >= 5  # the check saw lateral, depth and vertical labels


def test_person_perspective_geometry_matches_the_gold(demo):
    for item in demo.items:
        roles = things(demo, item)
        ref = roles["reference"]
        if item["task"] == CAMERA_OVO:
            assert in_sector(ref["yaw"] + ref["head_turn"], gold(item))
        elif item["task"] == PERSON_OVO:
            turn = ref["head_turn"]
            bucket = {"front": (-20, 20), "front-right": (20, 60), "right": (60, 90),
                      "front-left": (-60, -20), "left": (-90, -60)}[gold(item)]
            assert bucket[0] <= turn <= bucket[1]
        elif item["task"] == PERSON_RD and len(item["options"]) == 2:
            assert ref["held"].split(":")[0] == gold(item)
        elif item["task"] == PERSON_RD:
            tgt = roles["target"]
            bearing = yaw_of(tgt["world"][0] - ref["world"][0], tgt["world"][1] - ref["world"][1])
            assert in_sector(bearing - ref["yaw"], gold(item))
        elif item["task"] == SCENE_SIM:
            a, b, c = roles["reference"]["world"], roles["facing"]["world"], roles["target"]["world"]
            facing = yaw_of(b[0] - a[0], b[1] - a[1])
            assert in_sector(yaw_of(c[0] - a[0], c[1] - a[1]) - facing, gold(item))


def test_scene_simulation_frames_show_one_room_from_different_viewpoints(demo):
    for item in (i for i in demo.items if i["task"] == SCENE_SIM):
        frames = demo.layout[item["item_id"]]["frames"]
        cameras = [tuple(f["camera"]) for f in frames]
        assert len(set(cameras)) == len(cameras)
        worlds = [{t["name"]: tuple(t["world"]) for t in f["things"]} for f in frames]
        for w in worlds[1:]:  # the same objects at the same places, seen from elsewhere
            assert all(worlds[0].get(name, pos) == pos for name, pos in w.items())
        assert {"reference", "facing", "target"} <= set(things(demo, item))


# --------------------------------------------------------------------------- runs


def test_official_csv_matches_the_upstream_writer(demo):
    raw = demo.runs["qwen3b-base"].path.read_bytes()
    assert raw.startswith(b"ID,Question,Question_Type,Predicted Answer,Correct Answer,IsCorrect\r\n")
    with open(demo.runs["qwen3b-base"].path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == CSV_HEADER
    assert [int(r[0]) for r in rows[1:]] == list(range(len(demo.items)))
    for row in rows[1:]:
        item = demo.items[int(row[0])]
        assert row[1] == item["question"] + "\nReply only to the corresponding option.\nAnswer:"
        assert row[2] == item["task"]
        assert row[4] == f"{item['answer']}. {gold(item)}"
        assert row[5] == str(official_letter(row[3]) == item["answer"])


def test_results_json_uses_plain_index_ids(demo):
    results = json.loads(demo.runs["flip-aug"].path.read_text(encoding="utf-8"))["results"]
    assert [r["id"] for r in results] == [str(i) for i in range(len(demo.items))]
    for r in results:
        item = demo.items[int(r["id"])]
        assert set(r) == {"id", "pred", "gt", "correct"} and isinstance(r["correct"], bool)
        assert r["gt"] == f"{item['answer']}. {gold(item)}"


def test_flat_jsonl_has_probabilities_and_missing_items(demo):
    rows = read_jsonl(demo.runs["box-prompt"].path)
    by_id = {item["item_id"]: item for item in demo.items}
    assert len(rows) == len(by_id) - 2  # ~1% left out
    for r in rows:
        item = by_id[r["id"]]
        probs = r["probs"]
        assert list(probs) == list(item["options"])
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6)
        assert all(0 <= p <= 1 for p in probs.values())
        assert max(probs, key=probs.get) == official_letter(r["pred"])


def test_replies_come_in_realistic_forms(demo):
    replies = list(demo.replies("qwen3b-base").values())
    assert Counter(len(r.splitlines()) > 1 for r in replies)[True] >= 3  # reasoning, letter last
    assert any(re.fullmatch(r"[a-d](\. .+)?", r) for r in replies)  # lowercase
    assert any(r.startswith("The answer is ") for r in replies)
    unparsed = [r for r in replies if official_letter(r) is None]
    assert 1 <= len(unparsed) <= 0.03 * len(replies)
    box = demo.replies("box-prompt").values()
    assert all(official_letter(r) is not None for r in box)


def test_runs_have_distinct_error_patterns(demo):
    base, flip, box = (demo.accuracy(n) for n in ("qwen3b-base", "flip-aug", "box-prompt"))
    base_cats, flip_cats = demo.categories("qwen3b-base"), demo.categories("flip-aug")
    # base: left/right mirrors dominate its errors, then 90-degree mistakes
    assert base_cats["horizontal"] == max(base_cats.values())
    assert base_cats["horizontal"] > 4 * flip_cats["horizontal"]
    assert base_cats["orthogonal"] > base_cats["depth"]
    assert flip_cats["depth"] > 2 * base_cats["depth"]
    # flip-aug: better at relative direction, worse at scene simulation and orientation
    assert flip[CAMERA_RD] > base[CAMERA_RD] and flip[PERSON_RD] > base[PERSON_RD]
    assert flip[SCENE_SIM] < base[SCENE_SIM]
    assert flip[CAMERA_OVO] < base[CAMERA_OVO] and flip[PERSON_OVO] < base[PERSON_OVO]
    # box-prompt: better on every person-perspective task, about the same on camera tasks
    assert all(box[t] > base[t] + 0.05 for t in PERSON_TASKS)
    assert all(abs(box[t] - base[t]) < 0.08 for t in (CAMERA_RD, CAMERA_OVO))


def overall(acc: dict[str, float], items: list[dict]) -> float:
    counts = Counter(item["task"] for item in items)
    return sum(acc[t] * counts[t] for t in counts) / len(items)


def test_default_size_demo(tmp_path):
    """The demo the app builds: 1000 items in the real task proportions and the intended scores."""
    demo = Demo(tmp_path / "full")
    assert len(demo.items) == 1000
    counts = Counter(item["task"] for item in demo.items)
    total = sum(TASK_COUNTS.values())
    for task in TASKS:
        assert abs(counts[task] - 1000 * TASK_COUNTS[task] / total) <= 1
    assert {gold(item) for item in demo.items} == set(VIEWSPATIAL_LABELS)
    base = demo.accuracy("qwen3b-base")
    assert 0.35 <= overall(base, demo.items) <= 0.43
    assert min(base[CAMERA_RD], base[CAMERA_OVO]) > max(base[PERSON_RD], base[SCENE_SIM])
    cats: dict[str, Counter] = defaultdict(Counter)
    for name in demo.runs:
        cats[name] = demo.categories(name)
    assert cats["qwen3b-base"]["horizontal"] > 5 * cats["flip-aug"]["horizontal"]
    assert len(demo.replies("box-prompt")) == 990
