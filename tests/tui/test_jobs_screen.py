"""The jobs screen (key 5) and launching jobs from context: forms, the exact command, live progress."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog, Static

from orienteer.data.filters import PredictionFilter
from orienteer.data.workspace import Workspace
from orienteer.jobs import api
from orienteer.jobs.kinds import KINDS, get_kind
from orienteer.jobs.status import job_view
from orienteer.jobs.store import JobDir, create_job, write_json
from orienteer.tui.screens.launch import ConfirmScreen, LaunchScreen, LogScreen
from orienteer.tui.widgets.pickers import PickerScreen
from tests.tui.pilot import drive, until

JOB_WAIT_S = 60.0


@pytest.fixture
def private_ws(demo_ws: Workspace, tmp_path: Path) -> Workspace:
    """A writable copy of the demo workspace (jobs create folders and ingest runs)."""
    root = tmp_path / "ws"
    shutil.copytree(demo_ws.root, root, ignore=shutil.ignore_patterns("jobs"))
    ws = Workspace(root)
    with ws.write() as con:
        con.execute("UPDATE benchmarks SET image_root = replace(image_root, ?, ?)", [str(demo_ws.root), str(root)])
    return ws


def jobs_table(app) -> DataTable:
    return app.screen.query_one("#jobs-table", DataTable)


def detail(app) -> str:
    return str(app.screen.query_one("#jobs-detail", Static).render())


def test_key_5_lists_jobs_with_progress_and_status(app_factory, private_ws):
    done = api.submit(private_ws, "sleep", {"steps": 3, "seconds": 0.01})
    failed = api.submit(private_ws, "sleep", {"steps": 3, "seconds": 0.01, "fail_at": 1})
    for job in (done, failed):
        for _ in range(600):
            if not job_view(job).active:
                break
            time.sleep(0.05)
    app = app_factory(private_ws)

    async def scenario(pilot):
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen" and jobs_table(app).row_count == 2, timeout=JOB_WAIT_S)
        rows = {str(jobs_table(app).get_row_at(i)[0]): [str(c) for c in jobs_table(app).get_row_at(i)] for i in range(2)}
        assert rows[done.job_id][2] == "done" and "100%" in rows[done.job_id][3]
        assert rows[failed.job_id][2] == "failed"
        # The newest job (the failed one) is first; its detail shows the error and the exact command.
        assert failed.job_id in detail(app) and "RuntimeError: asked to fail at step 1" in detail(app)
        assert "job run sleep" in detail(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), timeout=JOB_WAIT_S)
        log = app.screen.query_one(RichLog)
        await until(pilot, lambda: any("Traceback" in str(line.text) for line in log.lines), timeout=JOB_WAIT_S)
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen", timeout=JOB_WAIT_S)

    drive(app, scenario)


def test_augment_from_failures_starts_a_flip_job_and_the_new_benchmark_arrives(app_factory, private_ws):
    app = app_factory(private_ws)
    filt = PredictionFilter(runs=("qwen3b-base",), categories=("horizontal",))

    async def scenario(pilot):
        app.open_failures(filt)
        await pilot.pause()
        await until(pilot, lambda: type(app.screen).__name__ == "FailuresScreen" and not getattr(app.screen, "counting", False)
                    and app.screen.query_one("#failures-table", DataTable).row_count > 0, timeout=JOB_WAIT_S)
        await pilot.press("space")  # mark the first row
        await until(pilot, lambda: len(app.screen.marked) == 1, timeout=JOB_WAIT_S)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        assert [o.split(":")[0] for o in app.screen.options] == ["flip", "hard-negatives"]
        await pilot.press("enter")  # flip
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen), timeout=JOB_WAIT_S)
        command = str(app.screen.query_one("#launch-command", Static).render())
        assert f"--workspace {private_ws.root}" in command and "job run flip --bench demo --name demo-flip-" in command
        assert "--items ids-file:" in command
        ids_file = Path(command.split("ids-file:")[1].split()[0])
        marked = ids_file.read_text().split()
        assert len(marked) == 1
        await pilot.press("ctrl+s")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen", timeout=JOB_WAIT_S)
        await until(pilot, lambda: "ingested: benchmark demo-flip-" in detail(app), timeout=120)
        assert "(1 items)" in detail(app)

    drive(app, scenario, size=(120, 40))
    with private_ws.read() as con:
        rows = con.execute("SELECT item_id, parent_item_id FROM items JOIN benchmarks USING (bench_id) WHERE name LIKE 'demo-flip-%'").fetchall()
    assert len(rows) == 1 and rows[0][0] == rows[0][1] + "#flip"


def test_hard_negatives_from_failures_draw_from_the_training_pool(app_factory, private_ws):
    from orienteer.data.datasets import get_dataset, import_dataset, read_examples

    import_dataset(private_ws, private_ws.root / "demo-data" / "train.jsonl", "demo-train")
    app = app_factory(private_ws)

    async def scenario(pilot):
        app.open_failures(PredictionFilter(runs=("qwen3b-base",)))
        await pilot.pause()
        await until(pilot, lambda: type(app.screen).__name__ == "FailuresScreen" and not getattr(app.screen, "counting", False)
                    and app.screen.query_one("#failures-table", DataTable).row_count > 0, timeout=JOB_WAIT_S)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        await pilot.press("down", "enter")  # hard-negatives
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen), timeout=JOB_WAIT_S)
        command = str(app.screen.query_one("#launch-command", Static).render())
        assert "job run hard-negatives --run qwen3b-base" in command and "--pool demo-train" in command
        app.screen.query_one("#param-pool").focus()
        await pilot.press("ctrl+l")  # the pools it could name: nothing of the run's benchmark family
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        assert app.screen.options == ["demo-train"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen), timeout=JOB_WAIT_S)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen", timeout=JOB_WAIT_S)
        await until(pilot, lambda: "ingested: dataset qwen3b-base-hardneg-" in detail(app), timeout=120)

    drive(app, scenario, size=(120, 40))
    with private_ws.read() as con:
        name = con.execute("SELECT name FROM datasets WHERE name LIKE 'qwen3b-base-hardneg-%'").fetchone()[0]
    info = get_dataset(private_ws, name)
    assert info.composition["pool"] == {"name": "demo-train", "kind": "dataset"}
    assert all(e["item_id"].startswith("train_") for e in read_examples(info.path))


def test_form_shows_errors_and_never_starts_an_invalid_job(app_factory, private_ws):
    app = app_factory(private_ws)

    async def scenario(pilot):
        app.launch_jobs({"bench": "demo"}, ["eval"])
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#param-model"), timeout=JOB_WAIT_S)
        screen = app.screen
        model = screen.query_one("#param-model")
        model.value = ""
        await pilot.pause()
        assert "--model is required" in str(screen.query_one("#launch-error", Static).render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, LaunchScreen)
        screen.query_one("#param-batch_size").value = "eight"
        await pilot.pause()
        assert "--batch-size expects a whole number" in str(screen.query_one("#launch-error", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=JOB_WAIT_S)

    drive(app, scenario)
    assert not list((private_ws.root / "jobs").glob("*-eval-*"))


def test_cancel_asks_first_then_stops_the_job(app_factory, private_ws):
    job = api.submit(private_ws, "sleep", {"steps": 2000, "seconds": 0.05})
    app = app_factory(private_ws)

    async def scenario(pilot):
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen" and "running" in detail(app), timeout=30)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=JOB_WAIT_S)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert job_view(job).status == "running"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=JOB_WAIT_S)
        await pilot.press("y")
        await until(pilot, lambda: job_view(job).status == "cancelled", timeout=30)
        await until(pilot, lambda: "cancelled" in detail(app), timeout=10)

    drive(app, scenario)


def test_unimplemented_kinds_are_listed_and_cannot_start(app_factory, private_ws, monkeypatch):
    monkeypatch.setitem(KINDS, "dream", "no_such_module")
    app = app_factory(private_ws)

    async def scenario(pilot):
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen", timeout=JOB_WAIT_S)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        labels = app.screen.options
        dream = next(o for o in labels if o.startswith("dream"))
        assert dream.endswith("(not implemented yet)")
        app.screen.dismiss(dream)
        await pilot.pause(0.2)
        assert not isinstance(app.screen, LaunchScreen)

    drive(app, scenario)


def test_training_loss_is_drawn_on_the_job_screen(app_factory, private_ws):
    job: JobDir = create_job(private_ws, "train", {"model": "m", "dataset": "d"}, ["orienteer", "job", "run", "train"])
    with open(job.metrics_path, "w") as fh:
        for step in range(1, 31):
            fh.write(json.dumps({"t": step, "step": step, "loss": 3.0 / step}) + "\n")
    write_json(job.state_path, {"pid": 0, "ticks": None, "phase": "running", "started_at": time.time() - 5})
    write_json(job.exit_path, {"code": 0, "cancelled": False, "ended_at": time.time()})
    write_json(job.ingest_path, {"ok": True, "summary": ["model m-lora (lora)"]})
    app = app_factory(private_ws)

    async def scenario(pilot):
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen" and jobs_table(app).row_count == 1, timeout=JOB_WAIT_S)
        text = detail(app)
        assert "loss against step; last 0.1 at step 30" in text
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in text)  # Braille dots

    drive(app, scenario, size=(120, 40))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_form_opens_empty_and_prefilled(app_factory, private_ws, kind):
    """Each kind's form builds from its declared options, empty or prefilled, and shows a command or an error."""
    from orienteer.tui.screens.launch import prefill

    app = app_factory(private_ws)
    context = {"run": "qwen3b-base", "bench": "demo", "task": "Person perspective - Relative Direction",
               "model": "/nonexistent/model"}

    async def scenario(pilot):
        for values in ({}, prefill(get_kind(kind), context)):
            app.push_screen(LaunchScreen(kind, values))
            await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#launch-command"), timeout=JOB_WAIT_S)
            await pilot.pause()
            command = str(app.screen.query_one("#launch-command", Static).render())
            error = str(app.screen.query_one("#launch-error", Static).render())
            assert f"job run {kind}" in command
            assert error or " --" in command or not any(p.required for p in get_kind(kind).params)
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=JOB_WAIT_S)

    drive(app, scenario, size=(100, 30))


def test_a_registered_model_is_picked_from_a_list_and_the_command_shows_its_folder(app_factory, private_ws, tmp_path):
    from orienteer.data.models import register_model

    folder = tmp_path / "trained-adapter"
    folder.mkdir()
    register_model(private_ws, "my-lora", folder, base_model="base", method="lora")
    app = app_factory(private_ws)

    async def scenario(pilot):
        app.launch_jobs({"bench": "demo"}, ["eval"])
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#param-model"), timeout=JOB_WAIT_S)
        form = app.screen
        assert form.query_one("#param-model").has_focus  # the first required field still empty
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        assert app.screen.options == ["my-lora"]
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is form, timeout=JOB_WAIT_S)
        await pilot.pause()
        assert form.query_one("#param-model").value == "my-lora"
        command = str(form.query_one("#launch-command", Static).render())
        assert f"--model {folder}" in command
        # the benchmark field lists the workspace's benchmarks
        form.query_one("#param-bench").focus()
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), timeout=JOB_WAIT_S)
        assert app.screen.options == ["demo"]
        await pilot.press("escape")

    drive(app, scenario)
