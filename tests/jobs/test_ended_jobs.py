"""A job that ended without success: its elapsed time stops, and it shows no rate or ETA (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orienteer.jobs.status import job_view
from orienteer.jobs.store import JobDir


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _job(folder: Path, t0: float, exit_info: dict | None = None, cancel: bool = False) -> JobDir:
    """A job that ran 30 s (progress 0..6 of 20 items, one record each 5 s) well in the past."""
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps({"kind": "sleep", "params": {}, "argv": [], "created_at": t0}))
    (folder / "state.json").write_text(json.dumps({"pid": _dead_pid(), "started_at": t0, "phase": "running"}))
    (folder / "progress.jsonl").write_text(
        "".join(json.dumps({"t": t0 + 5 * k, "done": k, "total": 20}) + "\n" for k in range(7)))
    for path in (folder / "state.json", folder / "progress.jsonl"):
        os.utime(path, (t0 + 1, t0 + 1))  # written long ago: the last record is the last sign of life
    if exit_info is not None:
        (folder / "exit.json").write_text(json.dumps(exit_info))
    if cancel:
        (folder / "cancel").write_text("")
    return JobDir(folder)


def test_a_lost_jobs_elapsed_time_stops_at_its_last_progress_record(tmp_path: Path) -> None:
    t0 = time.time() - 3600
    view = job_view(_job(tmp_path / "jobs" / "lost-1", t0))
    assert view.status == "lost"
    assert view.elapsed_s == pytest.approx(30.0)
    first = view.elapsed_s
    time.sleep(1.1)
    assert job_view(_job(tmp_path / "jobs2" / "lost-1", t0)).elapsed_s == pytest.approx(first)
    assert view.progress.rate is None and view.progress.eta_s is None


@pytest.mark.parametrize("status, exit_info, cancel", [
    ("failed", {"code": 1, "ended_at": None, "error": "boom"}, False),
    ("cancelled", None, True),
    ("cancelled", {"code": 130, "cancelled": True, "error": "cancelled"}, False),
])
def test_failed_and_cancelled_jobs_show_no_rate_or_eta(tmp_path: Path, status: str, exit_info: dict | None,
                                                       cancel: bool) -> None:
    view = job_view(_job(tmp_path / "jobs" / "j-1", time.time() - 3600, exit_info, cancel))
    assert view.status == status
    assert view.progress.rate is None and view.progress.eta_s is None
    assert view.elapsed_s == pytest.approx(30.0)  # no ended_at recorded: frozen at the last record


def test_job_list_and_the_jobs_screen_row_leave_rate_and_eta_empty(tmp_path: Path) -> None:
    from orienteer.tui.cli.main import app
    from orienteer.tui.screens.jobs import job_row

    ws = tmp_path / "ws"
    job = _job(ws / "jobs" / "20260101-000000-sleep-lost", time.time() - 3600)
    cells = [str(c) for c in job_row(job_view(job))]
    assert cells[2] == "lost" and cells[4] == "" and cells[5] == "" and cells[6] == "30s"
    rows = json.loads(CliRunner().invoke(app, ["-w", str(ws), "job", "list", "--json"]).output)
    assert rows[0]["status"] == "lost" and rows[0]["rate"] is None and rows[0]["eta_s"] is None
    assert rows[0]["elapsed_s"] == pytest.approx(30.0)
