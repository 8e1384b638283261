"""A cot dataset's kept / tried / agreement per task where a user meets it: `dataset list`, the train form,
the finished job's detail on the jobs screen."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from textual.widgets import Static
from typer.testing import CliRunner

from orienteer.data.workspace import Workspace
from orienteer.tui.composition import cot_lines, visible
from tests.tui.pilot import drive, until

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")


class AlwaysA:
    """A teacher that reasons the same way about everything and always ends on A (three samples alike)."""

    def __call__(self, model, batch, tokenizer, max_new_tokens, temperature=None, seed=None):
        return ["The cup looks to be on that side.\nAnswer: A"] * int(batch["input_ids"].shape[0])


@pytest.fixture(scope="module")
def cot_ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small demo workspace and a finished, ingested cot job (tiny teacher model, scripted replies)."""
    from orienteer.data.job_outputs import write_manifest
    from orienteer.demo.build import build_demo_workspace
    from orienteer.jobs.context import JobContext
    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl
    from orienteer.jobs.params import complete
    from orienteer.jobs.reconcile import ingest_finished
    from orienteer.jobs.selection import load_items
    from orienteer.jobs.store import create_job, write_json

    root = tmp_path_factory.mktemp("cot-views")
    build_demo_workspace(root / "ws", n_items=12)
    ws = Workspace(root / "ws")
    teacher = build_tiny_qwen25vl(root / "tiny")
    params = complete("cot", get_kind("cot").params, {"teacher": str(teacher), "name": "cot-demo", "bench": "demo",
                                                      "items": "limit:8", "samples": 3, "max_new_tokens": 8})
    job = create_job(ws, "cot", params, ["orienteer", "job", "run", "cot"])
    write_json(job.state_path, {"pid": 0, "ticks": None, "phase": "running", "started_at": time.time() - 5})
    ctx = JobContext(job_id=job.job_id, kind="cot", params=params, workspace=ws, job_dir=job.path,
                     out_dir=job.out_dir, resume_dir=root / "resume")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    get_kind("cot").run(ctx, generate=AlwaysA())
    write_manifest(ctx.out_dir, ctx.outputs)
    write_json(job.exit_path, {"code": 0, "cancelled": False, "ended_at": time.time()})
    assert ingest_finished(ws, job) is not None
    items, _ = load_items(ws, "demo", "limit:8")
    return {"ws": ws, "job": job.job_id, "items": items, "composition": ctx.outputs[0].composition}


def _expected(items: list[Any]) -> list[str]:
    """What the lines must say, counted from the items themselves (kept = gold A, agreement 1 or 0)."""
    from orienteer.tui.labels import short_task

    tasks: dict[str, list[int]] = {}
    for item in items:
        tasks.setdefault(item.task, []).append(item.answer_letter == "A")
    kept = sum(sum(v) for v in tasks.values())
    lines = [f"cot solve, 3 samples at temperature 0.7: kept {kept} of {len(items)} items, "
             f"agreement {kept / len(items):.2f}"]
    lines += [f"{short_task(t)}: kept {sum(v)} of {len(v)}, agreement {sum(v) / len(v):.2f}" for t, v in sorted(tasks.items())]
    return lines


def test_the_composition_lines_count_what_the_teacher_kept(cot_ws):
    expected = _expected(cot_ws["items"])
    assert 0 < int(expected[0].split("kept ")[1].split(" ")[0]) < 8  # some kept, some not: a real filter
    assert cot_lines(cot_ws["composition"]) == expected
    assert cot_lines({"imported_from": "x.jsonl", "n_examples": 3}) == []


def test_names_from_the_workspace_cannot_drive_the_terminal():
    lines = cot_lines({"teacher": "t", "samples": 1, "n_kept": 1, "agreement": 1.0,
                       "tasks": {"evil\x1b[2J[bold]task\x07": {"tried": 1, "kept": 1, "agreement": 1.0}}})
    assert lines[1] == "evil\\x1b[2J[bold]task\\x07: kept 1 of 1, agreement 1.00"
    assert visible("a\nb\x9bc\u202e") == "a\\nb\\x9bc\\u202e"  # safe_text.visible: one line expected
    broken = cot_lines({"teacher": "t", "tasks": {"T": {"tried": "many", "kept": None}}})  # not numbers: no crash
    assert broken[1] == "T: kept ? of ?"


def test_dataset_list_shows_kept_tried_and_agreement_per_task(cot_ws):
    from orienteer.tui.cli.main import app

    result = CliRunner().invoke(app, ["-w", str(cot_ws["ws"].root), "dataset", "list"])
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    expected = _expected(cot_ws["items"])
    assert lines[0].startswith("cot-demo  3 examples by job ")  # then its path (the console may wrap it)
    at = lines.index("  " + expected[0])
    assert lines[at + 1:at + len(expected)] == ["    " + line for line in expected[1:]]
    as_json = CliRunner().invoke(app, ["-w", str(cot_ws["ws"].root), "dataset", "list", "--json"])
    [info] = json.loads(as_json.output)
    assert info["composition"]["tasks"] == cot_ws["composition"]["tasks"]


def test_the_train_form_and_the_jobs_screen_show_it(cot_ws):
    from orienteer.tui.app import OrienteerApp
    from orienteer.tui.screens.launch import LaunchScreen

    expected = _expected(cot_ws["items"])
    app = OrienteerApp(cot_ws["ws"], image_mode="none")
    seen: dict[str, str] = {}

    async def scenario(pilot: Any) -> None:
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen"
                    and cot_ws["job"] in str(app.screen.query_one("#jobs-detail", Static).render()), timeout=30)
        seen["jobs"] = str(app.screen.query_one("#jobs-detail", Static).render())
        app.push_screen(LaunchScreen("train", {"dataset": "cot-demo"}))
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#launch-dataset"))
        await pilot.pause()
        seen["form"] = str(app.screen.query_one("#launch-dataset", Static).render())
        app.screen.query_one("#param-dataset").value = "no-such-dataset"
        await pilot.pause()
        seen["other"] = str(app.screen.query_one("#launch-dataset", Static).render())

    drive(app, scenario, size=(120, 40))
    assert f"dataset cot-demo: {expected[0]}" in seen["jobs"]
    assert all(f"  {line}" in seen["jobs"] for line in expected[1:])
    assert seen["form"].splitlines() == [f"cot-demo: {expected[0]}", *(f"  {line}" for line in expected[1:])]
    assert seen["other"].strip() == ""
