"""The Slurm runner against a real local Slurm (``local_cluster.sh``): jobs submitted with sbatch, watched
with squeue, cancelled with scancel, stopped by Slurm's time limit; and the jobs screen on a pending job.

The time-limit job is submitted when the module starts (Slurm's smallest limit is one minute, and it
checks limits about every 30 s) and checked by the last test, so the module takes about 90 s in all.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.datasets import get_dataset
from orienteer.data.errors import OrienteerError
from orienteer.data.service import WorkspaceService
from orienteer.data.workspace import Workspace
from orienteer.data.ws_config import set_setting
from orienteer.demo.build import DEMO_BENCH, build_demo_workspace
from orienteer.jobs import api, slurm
from orienteer.jobs.reconcile import reconcile, summary_line
from orienteer.jobs.slurm import QUEUE, SETTLE_GRACE_S, SlurmRunner, settle
from orienteer.jobs.status import JobView, job_view
from orienteer.jobs.store import JobDir, create_job, list_job_dirs, read_json, write_json

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

WAIT_S = 60.0
TIMEOUT_WAIT_S = 150.0  # a one-minute limit, checked every 30 s, plus KillWait


def wait_for(job: JobDir, ok: Callable[[JobView], bool], timeout: float = WAIT_S) -> JobView:
    deadline = time.monotonic() + timeout
    view = job_view(job)
    while time.monotonic() < deadline:
        view = job_view(job)
        if ok(view):
            return view
        time.sleep(0.2)
    log = job.log_path.read_text(errors="replace")[-2000:] if job.log_path.exists() else "(no log)"
    raise AssertionError(f"job {job.job_id} stayed {view.status} ({view.slurm_state}, {view.error}); log:\n{log}")


def scontrol(slurm_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", "--oneliner", slurm_id], capture_output=True, text=True,
                          check=False).stdout


def run_names(ws: Workspace) -> list[str]:
    with WorkspaceService(ws) as service:
        return service.run_names()


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("slurm-demo") / "ws"
    build_demo_workspace(target, n_items=24)
    return target


def private_copy(template: Path, root: Path) -> Workspace:
    """A copy of the demo workspace whose benchmark reads the copy's own images."""
    shutil.copytree(template, root)
    ws = Workspace(root)
    with ws.write() as con:
        con.execute("UPDATE benchmarks SET image_root = replace(image_root, ?, ?)", [str(template), str(root)])
    return ws


@pytest.fixture
def ws(demo_template: Path, tmp_path: Path) -> Workspace:
    return private_copy(demo_template, tmp_path / "ws")


@pytest.fixture(scope="module")
def timed_out(slurm_cluster: str, demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, JobDir]:
    """A job that would emit a run if it finished, under a one-minute limit it cannot meet (submitted first)."""
    ws = private_copy(demo_template, tmp_path_factory.mktemp("slurm-timeout") / "ws")
    set_setting(ws, "slurm.time", "1")
    job = api.submit(ws, "sleep", {"steps": 2000, "seconds": 0.1, "emit_run": "never", "bench": DEMO_BENCH,
                                   "runner": "slurm"})
    return ws, job


@pytest.fixture(scope="module", autouse=True)
def _start_the_slow_one_first(timed_out: Any) -> None:
    """Every test of the module asks for it, so the time-limit job runs while the others do."""


def test_a_sleep_job_runs_on_slurm_and_its_run_is_ingested(ws):
    set_setting(ws, "slurm.time", "5")
    set_setting(ws, "slurm.extra", "--mail-type=NONE")
    job = api.submit(ws, "sleep", {"steps": 3, "seconds": 0.2, "emit_run": "always-a", "bench": DEMO_BENCH,
                                   "runner": "slurm"})
    submitted = read_json(job.slurm_path)
    assert submitted["job_id"].isdigit()  # recorded at submit, before the worker ran
    assert {"--time=5", "--mail-type=NONE", "--output=log.txt", "--open-mode=append"} <= set(submitted["sbatch"])
    shown = scontrol(submitted["job_id"])
    assert "TimeLimit=00:05:00" in shown  # sbatch really got the workspace's options
    assert f"Comment=orienteer:{job.job_id}" in shown  # how a submission whose reply was lost finds its job

    view = wait_for(job, lambda v: v.status == "done" and v.ingest is not None)
    assert view.ingest.get("ok", True) and "always-a" in run_names(ws)
    state = job.state()
    assert state["slurm_job_id"] == submitted["job_id"] and state["node"] == socket.gethostname().split(".")[0]
    assert view.runner == "slurm" and view.slurm_job_id == submitted["job_id"] and view.where == f"slurm {state['node']}"
    log = job.log_path.read_text()
    assert "step 3/3" in log and "ingest:" in log  # the worker's own log, through sbatch --output
    row = summary_line(view)
    assert row["runner"] == "slurm" and row["slurm_job_id"] == submitted["job_id"] and row["node"] == state["node"]
    assert job.spec()["params"]["runner"] == "slurm"


def test_a_running_slurm_job_is_cancelled_with_scancel(ws):
    job = api.submit(ws, "sleep", {"steps": 600, "seconds": 0.1, "emit_run": "cancelled-run", "bench": DEMO_BENCH,
                                   "runner": "slurm"})
    wait_for(job, lambda v: v.status == "running" and v.progress.done >= 2)
    assert api.cancel(ws, job.job_id)
    view = wait_for(job, lambda v: not v.active)
    assert view.status == "cancelled" and view.ingest is None
    assert job.cancel_path.exists() and job.exit()["cancelled"]
    assert "JobState=CANCELLED" in scontrol(view.slurm_job_id)
    assert "cancelled-run" not in run_names(ws)
    assert not api.cancel(ws, job.job_id)  # over already

    again = api.rerun(ws, job.job_id)  # on the old job's runner, a new Slurm job
    assert again.spec()["params"]["runner"] == "slurm" and read_json(again.slurm_path)["job_id"] != view.slurm_job_id
    assert api.cancel(ws, again.job_id) and job_view(again).status == "cancelled"


def test_a_flip_job_on_slurm_lands_its_dataset(ws):
    job = api.submit(ws, "flip", {"bench": DEMO_BENCH, "name": "demo-flipped", "to": "dataset", "runner": "slurm"})
    view = wait_for(job, lambda v: v.status == "done" and v.ingest is not None)
    assert view.ingest.get("ok", True), view.ingest
    info = get_dataset(ws, "demo-flipped")
    assert info.n_examples > 0 and info.created_by_job == job.job_id


def test_a_pending_job_shows_slurms_reason_in_the_jobs_screen_and_squeue_is_asked_once(ws):
    from textual.widgets import DataTable, Static

    from orienteer.tui.app import OrienteerApp
    from tests.tui.pilot import drive, until

    set_setting(ws, "slurm.extra", "--begin=now+600")  # held by Slurm: reason BeginTime
    jobs = [api.submit(ws, "sleep", {"steps": n, "runner": "slurm"}) for n in (1, 2)]
    wait_for(jobs[0], lambda v: v.status == "queued" and v.reason == "BeginTime")
    before = QUEUE.calls
    views = reconcile(ws, ingest=False)
    assert QUEUE.calls == before + 1  # one squeue for both jobs, not one each
    assert [v.reason for v in views] == ["BeginTime", "BeginTime"]

    app = OrienteerApp(ws, image_mode="halfcell")
    newest = jobs[-1]

    async def scenario(pilot: Any) -> None:
        await pilot.press("5")
        table = lambda: app.screen.query_one("#jobs-table", DataTable)  # noqa: E731
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen" and table().row_count == 2, timeout=WAIT_S)
        row = [str(cell) for cell in table().get_row_at(0)]
        assert row[0] == newest.job_id and row[2] == "queued"
        assert row[7] == f"slurm #{read_json(newest.slurm_path)['job_id']}"
        detail = lambda: str(app.screen.query_one("#jobs-detail", Static).render())  # noqa: E731
        await until(pilot, lambda: "BeginTime" in detail(), timeout=WAIT_S)
        assert f"Slurm job {read_json(newest.slurm_path)['job_id']}" in detail()

    drive(app, scenario)
    for job in jobs:
        assert api.cancel(ws, job.job_id)
        assert job_view(job).status == "cancelled"
        assert job.state() is None  # it never started


def test_a_job_slurms_time_limit_killed_reads_as_timeout_and_is_not_ingested(timed_out):
    ws, job = timed_out
    view = wait_for(job, lambda v: not v.active, timeout=TIMEOUT_WAIT_S)
    assert view.status == "failed" and view.error == "Slurm: TIMEOUT" and view.slurm_state == "TIMEOUT"
    assert not job.cancel_path.exists() and not job.exit()["cancelled"]
    assert "stopped by Slurm" in job.log_path.read_text()  # the worker saw SIGTERM without a cancel request
    reconcile(ws)
    assert job_view(job).ingest is None and "never" not in run_names(ws)  # no partial run


def slurm_state(slurm_id: str, settled: bool = True) -> str:
    """Slurm's state of a job; with ``settled``, once it is past COMPLETING (scancel takes a moment)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = re.search(r"JobState=(\S+)", scontrol(slurm_id))
        state = found.group(1) if found else "(forgotten)"
        if not settled or state not in ("PENDING", "RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_a_job_whose_id_cannot_be_recorded_is_scancelled(ws):
    ws.ensure()
    job = create_job(ws, "sleep", {"steps": 600, "seconds": 0.1, "runner": "slurm", "gpu": None, "note": None}, ["orienteer"])
    job.slurm_path.mkdir()  # writing slurm.json fails after sbatch queued the job
    with pytest.raises(OrienteerError, match=r"could not record Slurm job (\d+) .*it was scancelled") as caught:
        SlurmRunner().submit(job)
    slurm_id = re.search(r"Slurm job (\d+)", str(caught.value)).group(1)
    assert slurm_state(slurm_id) == "CANCELLED"


def test_a_submission_whose_sbatch_does_not_answer_leaves_no_slurm_job(ws, tmp_path, monkeypatch):
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "sbatch").write_text(f"#!/bin/bash\n{shutil.which('sbatch')} \"$@\"\nexec sleep 60\n")  # queues, then hangs
    (slow / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    monkeypatch.setattr(slurm, "COMMAND_TIMEOUT_S", 3.0)
    with pytest.raises(OrienteerError, match=r"sbatch did not answer within 3 s; scancelled the Slurm job it may have queued \((\d+)\)") as caught:
        api.submit(ws, "sleep", {"steps": 600, "seconds": 0.1, "runner": "slurm"})
    slurm_id = re.search(r"queued \((\d+)\)", str(caught.value)).group(1)
    assert slurm_state(slurm_id) == "CANCELLED" and list_job_dirs(ws) == []


def test_a_job_slurm_forgot_is_not_cancelled(ws):
    ws.ensure()
    job = create_job(ws, "sleep", {"steps": 1, "runner": "slurm", "gpu": None, "note": None}, ["orienteer"])
    write_json(job.slurm_path, {"job_id": "987654321"})  # an id Slurm never had (or forgot long ago)
    assert not api.cancel(ws, job.job_id)
    assert not job.cancel_path.exists() and job_view(job).status == "lost"


def test_a_job_that_ended_without_a_record_reads_finishing_until_the_grace_is_over(ws, monkeypatch):
    from orienteer.jobs.kinds import KINDS

    # a kind only this process knows: the worker on the node cannot load it and dies before any exit record
    monkeypatch.setitem(KINDS, "gpu-sleep", "tests.jobs.gpu_sleep_kind")
    job = api.submit(ws, "gpu-sleep", {"steps": 1, "seconds": 0.01, "gpu": "none", "runner": "slurm"})
    view = wait_for(job, lambda v: v.slurm_state not in (None, "PENDING", "RUNNING", "COMPLETING"))
    assert view.status == "running" and view.reason.startswith(f"finishing: Slurm says {view.slurm_state}")
    assert job.exit() is None and view.active
    info = QUEUE.lookup(view.slurm_job_id)
    record = settle(job, info, now=time.time() + SETTLE_GRACE_S)
    assert record["error"] == f"Slurm: {info.state}" and job_view(job).status == "failed"


def test_a_gpu_job_asks_slurm_for_its_gpus_and_takes_no_gpu_lock(ws):
    job = api.submit(ws, "eval", {"model": "orienteer-test/no-such-model", "bench": DEMO_BENCH, "run": "gpu-run",
                                  "gpu": "0", "gpus": "2", "runner": "slurm"})
    submitted = read_json(job.slurm_path)
    assert "--gres=gpu:2" in submitted["sbatch"]
    shown = scontrol(submitted["job_id"])
    assert re.search(r"TresPerNode=gres[:/]gpu[:=]2\b", shown), shown  # Slurm is asked for two GPUs
    view = wait_for(job, lambda v: not v.active)  # no model: it fails, but only after it started on its GPUs
    state = job.state()
    assert state["slurm_job_id"] == submitted["job_id"] and view.status == "failed", (state, view.error)
    detail = subprocess.run(["scontrol", "-d", "show", "job", submitted["job_id"]], capture_output=True, text=True,
                            check=False).stdout
    assert re.search(r"GRES=gpu:2\(IDX:0-1\)", detail), detail  # Slurm gave it both GPUs of the node
    assert list(ws.dir("jobs").glob(".gpu-*.lock")) == []  # Slurm queued it: no flock of the local GPU queue
