"""End to end: the real ``orienteer`` command in tmux, driven by keys, read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.tui.tmux import TmuxSession, orienteer_exe

if shutil.which("tmux") is None and not os.environ.get("CI"):
    pytest.skip("tmux is not installed here (CI installs it; apt-get install tmux)", allow_module_level=True)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "demo"
    out = subprocess.run([str(orienteer_exe()), "demo", "--path", str(path), "--items", "200", "--no-open"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return path


def test_walk_from_worst_task_to_a_case_and_back(small_demo):
    session = TmuxSession([str(orienteer_exe()), "-w", str(small_demo), "--images", "halfcell"], width=100, height=30)
    try:
        screen = session.wait_for("box-prompt")
        assert "qwen3b-base" in screen and "flip-aug" in screen and "Cam Rel.Dir" in screen
        session.send("3")
        session.wait_for("rows 1–")
        session.send("Enter")
        screen = session.wait_for("Other runs")
        assert "Reply" in screen
        session.send("Escape")
        session.wait_for("rows 1–")
        session.send("2")
        session.wait_for("Error categories")
        session.send("4")
        session.wait_for("broken")
        session.send("?")
        session.wait_for("Choose run A")
        session.send("Escape")
        session.send("q")
        deadline = time.monotonic() + 10
        while session.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session.alive(), session.capture()
    finally:
        session.close()


def test_demo_command_builds_and_opens_the_app(tmp_path):
    target = tmp_path / "fresh-demo"
    session = TmuxSession([str(orienteer_exe()), "--images", "halfcell", "demo", "--path", str(target), "--items", "150"],
                          width=100, height=30)
    try:
        session.wait_for("box-prompt", timeout=120)
        assert (target / "orienteer.duckdb").is_file()
        session.send("q")
    finally:
        session.close()


def test_a_job_launched_from_the_app_outlives_the_terminal(small_demo):
    """E on the runs screen opens the eval form (prefilled with the demo's tiny model); the job it
    starts keeps running when the whole tmux session (the "SSH connection") is killed, and its run
    lands in the workspace."""
    import json

    session = TmuxSession([str(orienteer_exe()), "-w", str(small_demo), "--images", "halfcell"], width=120, height=36)
    try:
        session.wait_for("box-prompt")
        session.send("E")
        session.wait_for("New eval job", timeout=30)
        screen = session.wait_for("--bench demo --run eval-demo-", timeout=30)
        assert "models/tiny-qwen2.5" in screen  # the registered demo model, resolved to its folder
        session.send("C-s")
        screen = session.wait_for("5 Jobs", timeout=30)
        assert "eval" in screen
    finally:
        session.close()  # kills the terminal and the app, like a dropped SSH session
    runs = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        listed = subprocess.run([str(orienteer_exe()), "-w", str(small_demo), "job", "list", "--json"],
                                capture_output=True, text=True, timeout=60)
        jobs = [j for j in json.loads(listed.stdout) if j["kind"] == "eval"]
        if jobs and jobs[0]["status"] not in ("starting", "queued", "running") and jobs[0]["ingest"]:
            break
        time.sleep(1)
    assert jobs and jobs[0]["status"] == "done", jobs
    assert jobs[0]["ingest"]["summary"][0].startswith("run eval-demo-")
    out = subprocess.run([str(orienteer_exe()), "-w", str(small_demo), "runs", "--json"], capture_output=True, text=True)
    runs = [r["run"] for r in json.loads(out.stdout)]
    assert any(r.startswith("eval-demo-") for r in runs)
