"""Fixtures shared by the test packages: small ViewSpatial-shaped benchmarks and workspaces."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import json
import random
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.workspace import Workspace

TESTS = Path(__file__).resolve().parent
MODEL_STACK = ("torch", "transformers", "peft", "ultralytics")
_ML_SKIP = r"importorskip\(\s*[\"'](?:torch|transformers|peft|ultralytics|triton|qwen_vl_utils)[\"']"
# A module that imports the model stack at its top (or skips without it there) needs the ml extra.
_ML_IMPORT = re.compile(r"^(?:import|from)\s+(?:torch|transformers|peft|ultralytics)\b|^\S.*" + _ML_SKIP, re.MULTILINE)
_ML_TOP_IMPORT = re.compile(r"^(?:import|from)\s+(?:torch|transformers|peft|ultralytics)\b", re.MULTILINE)
ML_FOLDERS = (TESTS / "jobs" / "model",)
# Fixtures that build the tiny random Qwen2.5-VL (torch + transformers), and tests that run scripts needing torch.
ML_FIXTURES = {"tiny_model", "tiny_model_dir"}
ML_TESTS = {
    "tests/test_bench_scripts.py::test_gpu_check_runs_both_scripts_on_the_cpu",
    "tests/test_bench_scripts.py::test_census_counts_what_a_score_batch_moves",
}
# A test whose own body imports the model stack (the rest of its module may not).
_ML_BODY_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?:torch|transformers|peft|ultralytics)\b|" + _ML_SKIP, re.MULTILINE)
# Tests that take more than about 20 s on a laptop (measured with --durations): left out of `make test-fast`.
SLOW_MODULES = {"test_readme_workflow.py"}  # 170 s
SLOW_TESTS = {
    "tests/jobs/model/test_cli_e2e.py::test_eval_both_modes_then_saliency_via_cli",  # 45 s
    "tests/test_bench_scripts.py::test_gpu_check_runs_both_scripts_on_the_cpu",  # 43 s
    "tests/jobs/model/test_fused_rotary.py::test_triton_kernel_matches_under_the_interpreter",  # 23 s
}


@cache
def model_stack_installed() -> bool:
    """Whether every package of the ml extra that the tests import can be found (without importing torch)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in MODEL_STACK)
    except ImportError:
        return False


@cache
def _module_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _needs_ml(item: pytest.Item, path: Path) -> bool:
    if any(path.is_relative_to(folder) for folder in ML_FOLDERS) or _ML_IMPORT.search(_module_source(path)):
        return True
    if ML_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.nodeid.split("[")[0] in ML_TESTS:
        return True
    function = getattr(item, "function", None)
    try:
        body = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        body = ""
    return bool(_ML_BODY_IMPORT.search(body))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without the ml extra, the model tests (and any module importing torch at its top) cannot even be
    collected: leave them out rather than fail collection."""
    if model_stack_installed():
        return None
    if any(collection_path.is_relative_to(folder) for folder in ML_FOLDERS):
        return True
    if collection_path.suffix == ".py" and _ML_TOP_IMPORT.search(_module_source(collection_path)):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests ml / tmux / slow by folder, module and name, so that `make test-fast` can leave them out."""
    for item in items:
        path = Path(str(item.path))
        if _needs_ml(item, path):
            item.add_marker(pytest.mark.ml)
        if "tmux" in path.stem or "tmux" in item.name:
            item.add_marker(pytest.mark.tmux)
        if path.name in SLOW_MODULES or item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


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
REAL_BENCH = (Path(__file__).resolve().parents[2]
              / "shared/reference/viewspatial/official_ZJU-REAL_ViewSpatial-Bench/ViewSpatial-Bench.json")
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


def write_official_csv(path: Path, items: Sequence[dict[str, Any]], replies: dict[int, str],
                       flip_verdict_every: int | None = None) -> Path:
    """The official result CSV for the given replies, written the way evaluate.py writes it (csv.writer,
    its header, IsCorrect from its own rule); with ``flip_verdict_every=k`` every k-th verdict is flipped,
    so ``audit`` has disagreements to list."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(OFFICIAL_HEADER)
        for i, reply in replies.items():
            item = items[i]
            correct = official_letter(reply.split("\n")[-1]) == official_letter(item["answer"])
            if flip_verdict_every is not None and i % flip_verdict_every == 0:
                correct = not correct
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
