"""A run made through ``--engine openai`` is shown in the app: its row on the runs screen, and its settings
(engine openai at the endpoint's host) on the detail line, where the app shows a run's settings. The run is
made by a real job against the stdlib server that answers in vLLM's format (tests/jobs/engines/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.jobs.engines.conftest import VllmFormatServer
from tests.tui.pilot import drive, until

pytestmark = pytest.mark.ml  # the job sizes frames with transformers' smart_resize


def test_an_openai_engine_run_has_its_row_and_settings(tmp_path: Path) -> None:
    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace
    from orienteer.tui.app import OrienteerApp

    ws = tmp_path / "ws"
    build_demo_workspace(ws, n_items=4)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    with VllmFormatServer() as server:
        made = subprocess.run([sys.executable, "-m", "orienteer", "-w", str(ws), "job", "run", "eval", "--engine", "openai",
                               "--endpoint", server.url, "--model", server.served_name, "--bench", "demo", "--run",
                               "via-endpoint", "--prompt", "letter", "--max-pixels", str(28 * 28 * 16), "--gpu", "none",
                               "--wait"], capture_output=True, text=True, timeout=180, env=env)
        assert made.returncode == 0, made.stdout + made.stderr
    host = f"127.0.0.1:{server.port}"
    app = OrienteerApp(Workspace(ws), image_mode="halfcell")

    async def scenario(pilot):
        table = app.screen.query_one("#runs-table", DataTable)
        await until(pilot, lambda: table.row_count > 0)
        row = table.get_row_index("via-endpoint")
        assert str(table.get_cell_at((row, 0))).startswith("via-endpoint")
        table.move_cursor(row=row, column=1)
        detail = app.screen.query_one("#runs-detail", Static)
        await until(pilot, lambda: "via-endpoint" in str(detail.render()))
        shown = str(detail.render())
        assert f"engine openai at {host}" in shown and "score" in shown and "prompt letter" in shown
        table.move_cursor(row=next(r for r in range(table.row_count) if r != row), column=1)
        await until(pilot, lambda: "via-endpoint" not in str(detail.render()))
        assert "engine openai" not in str(detail.render())  # the demo's own runs are the in-process engine's

    drive(app, scenario)
