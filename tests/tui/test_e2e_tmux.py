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


def test_two_apps_and_a_cli_import_while_a_job_finishes(small_demo, tmp_path):
    """Two real apps stay open on the workspace (their job timers reconcile every 2 s) while a CLI
    import writes and a job finishes: no lock error anywhere, and the job's run is ingested once."""
    import json

    from tests.conftest import write_official_csv

    with __import__("duckdb").connect(str(small_demo / "orienteer.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT item_id, question, task, answer_letter, option_letters, option_labels FROM items ORDER BY item_idx"
        ).fetchall()
    items = [{"question": q, "question_type": t, "answer": f"{a}. {labels[letters.index(a)]}",
              "choices": [f"{lt}. {lb}" for lt, lb in zip(letters, labels)], "image_path": []} for _, q, t, a, letters, labels in rows]
    csv_path = write_official_csv(tmp_path / "cli.csv", items, {i: "A" for i in range(len(items))})
    apps = [TmuxSession([str(orienteer_exe()), "-w", str(small_demo), "--images", "none"], width=100, height=30)
            for _ in range(2)]
    try:
        for app in apps:
            app.wait_for("box-prompt")
        job = subprocess.run([str(orienteer_exe()), "-w", str(small_demo), "job", "run", "sleep", "--steps", "40",
                              "--seconds", "0.1", "--emit-run", "two-apps-job", "--bench", "demo"],
                             capture_output=True, text=True, timeout=60)
        assert job.returncode == 0, job.stderr
        imported = subprocess.run([str(orienteer_exe()), "-w", str(small_demo), "import", "preds", str(csv_path),
                                   "--bench", "demo", "--run", "two-apps-cli"], capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0, imported.stderr
        for app in apps:
            app.send("5")
        for app in apps:
            screen = app.wait_for("ingested: run two-apps-job", timeout=120)
            assert "Error" not in screen and "lock" not in screen.lower()
        for app in apps:
            app.send("1")
            screen = app.wait_for("two-apps-cli", timeout=30)
            assert "two-apps-job" in screen
    finally:
        for app in apps:
            app.close()
    out = subprocess.run([str(orienteer_exe()), "-w", str(small_demo), "runs", "--json"], capture_output=True, text=True)
    names = [r["run"] for r in json.loads(out.stdout)]
    assert names.count("two-apps-job") == 1 and names.count("two-apps-cli") == 1
    with __import__("duckdb").connect(str(small_demo / "orienteer.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM job_ingests WHERE kind = 'sleep'").fetchone()[0] == 1
