"""Fixtures shared by the test packages: small ViewSpatial-shaped benchmarks and workspaces."""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.workspace import Workspace

TASKS = (
    "Camera perspective - Relative Direction",
    "Camera perspective - Object View Orientation",
    "Person perspective - Object View Orientation",
    "Person perspective - Relative Direction",
    "Person perspective - Scene Simulation Relative Direction",
)
LABELS = (
    "front", "back", "left", "right", "front-left", "front-right", "back-left", "back-right", "above", "down",
    "front-up", "front-down", "back-up", "back-down", "above-left", "above-right", "down-left", "down-right",
)
REAL_BENCH = Path(__file__).resolve().parents[2] / "shared/reference/viewspatial/official_ZJU-REAL_ViewSpatial-Bench/ViewSpatial-Bench.json"
OFFICIAL_HEADER = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]


def make_viewspatial_items(n: int = 60, seed: int = 3) -> list[dict[str, Any]]:
    """A ViewSpatial-Bench-shaped list (the five keys), every task, every label, some multi-frame items."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        task = TASKS[i % len(TASKS)]
        gold = LABELS[i % len(LABELS)]
        distractors = rng.sample([label for label in LABELS if label != gold], 3)
        labels = distractors[:]
        pos = rng.randrange(4)
        labels.insert(pos, gold)
        letters = "ABCD"
        if "Scene Simulation" in task:
            images = [f"ViewSpatial-Bench/scannetv2_val/scene{i:04d}_00/original_images/{k * 20}.jpg" for k in range(2 + i % 3)]
        elif task.startswith("Camera perspective - Relative"):
            images = [f"ViewSpatial-Bench/scannetv2_val/scene{i:04d}_00/original_images/100.jpg"]
        else:
            images = [f"ViewSpatial-Bench/val2017/{i:012d}.jpg"]
        items.append({
            "question_type": task,
            "image_path": images,
            "question": f"From the perspective of the person {i}, where is object {i}?",
            "answer": f"{letters[pos]}. {gold}",
            "choices": "\n".join(f"{letters[k]}. {labels[k]}" for k in range(4)),
        })
    return items


def official_letter(text: str) -> str | None:
    """A literal copy of the official evaluate.py extraction (the test oracle)."""
    match = re.search(r"\b([A-D])\b", text, re.IGNORECASE)
    return match.group(1).upper() if match else None


def write_official_csv(path: Path, items: Sequence[dict[str, Any]], replies: dict[int, str]) -> Path:
    """The official result CSV for the given replies, written the way evaluate.py writes it."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(OFFICIAL_HEADER)
        for i, reply in replies.items():
            item = items[i]
            correct = official_letter(reply.split("\n")[-1]) == official_letter(item["answer"])
            writer.writerow([i, item["question"] + "\nReply only to the corresponding option.\nAnswer:",
                             item["question_type"], reply, item["answer"], correct])
    return path


def random_replies(items: Sequence[dict[str, Any]], seed: int = 11, skip: int = 0) -> dict[int, str]:
    """Realistic replies: letters, 'B. left', reasoning then a letter, unparsable text."""
    rng = random.Random(seed)
    out: dict[int, str] = {}
    for i, item in enumerate(items):
        if skip and i % skip == 0:
            continue
        letter = rng.choice("ABCD")
        label = item["choices"].split("\n")["ABCD".index(letter)][3:]
        out[i] = rng.choice([
            letter, f"{letter}.", f"{letter}. {label}", f"The answer is {letter}.",
            f"Looking at the image.\n{letter}", "I cannot tell.", f"a {label}", f"({letter})",
        ])
    return out


@pytest.fixture
def vs_items() -> list[dict[str, Any]]:
    return make_viewspatial_items()


@pytest.fixture
def vs_bench_file(tmp_path: Path, vs_items: list[dict[str, Any]]) -> Path:
    path = tmp_path / "ViewSpatial-Bench.json"
    path.write_text(json.dumps(vs_items, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def ws_with_bench(ws: Workspace, vs_bench_file: Path) -> Workspace:
    from orienteer.data.ingest_bench import import_benchmark

    import_benchmark(ws, vs_bench_file, "vs")
    return ws


def snapshot(ws: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to check that a failed command changed nothing."""
    if not ws.exists():
        return {}
    with ws.read() as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


@pytest.fixture
def table_snapshot() -> Callable[[Workspace], dict[str, list[tuple[Any, ...]]]]:
    return snapshot


@pytest.fixture
def ws_with_run(ws_with_bench: Workspace, vs_items, tmp_path: Path) -> Workspace:
    """The benchmark workspace plus a run ``r`` (random replies) and a three-example dataset ``d``."""
    from orienteer.data.datasets import import_dataset, write_examples
    from orienteer.data.ingest_preds import import_predictions

    import_predictions(ws_with_bench, write_official_csv(tmp_path / "r.csv", vs_items, random_replies(vs_items)), "vs", "r")
    examples = [{"item_id": f"x{k}", "question": "Where?", "options": {"A": "left", "B": "right"}, "answer": "A",
                 "images": [], "target": "A. left"} for k in range(3)]
    write_examples(tmp_path / "d.jsonl", examples)
    import_dataset(ws_with_bench, tmp_path / "d.jsonl", "d")
    return ws_with_bench
