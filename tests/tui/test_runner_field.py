"""Every job form has the runner field (``--runner``): blank is the workspace's default, a choice is recorded."""

from __future__ import annotations

import shutil
import time

import pytest
from textual.widgets import Select, Static

from orienteer.data.workspace import Workspace
from orienteer.data.ws_config import set_setting
from orienteer.jobs.kinds import KINDS, get_kind
from orienteer.jobs.status import job_view
from orienteer.jobs.store import list_job_dirs
from orienteer.tui.screens.launch import LaunchScreen
from tests.tui.pilot import drive, until


@pytest.fixture
def own_ws(demo_ws: Workspace, tmp_path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_ws.root, root, ignore=shutil.ignore_patterns("jobs"))
    return Workspace(root)


def test_the_runner_field_is_in_every_form_and_its_choice_is_recorded(app_factory, own_ws):
    set_setting(own_ws, "runner", "slurm")  # the workspace's default: the field says so when left blank
    app = app_factory(own_ws)

    async def scenario(pilot):
        for name in [k for k in KINDS if get_kind(k).available]:
            app.push_screen(LaunchScreen(name, {}))
            await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#param-runner"), timeout=30)
            field = app.screen.query_one("#param-runner", Select)
            assert field.is_blank() and field.prompt == "workspace default (slurm)"
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=30)
        app.push_screen(LaunchScreen("sleep", {"steps": 1, "seconds": 0.01}))
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#param-runner"), timeout=30)
        form = app.screen
        assert form.collect()["runner"] is None
        form.query_one("#param-runner", Select).value = "local"
        await pilot.pause()
        assert form.collect()["runner"] == "local"
        assert "--runner local" in str(form.query_one("#launch-command", Static).render())  # not the default here
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=30)

    drive(app, scenario)
    (job,) = list_job_dirs(own_ws)
    assert job.spec()["params"]["runner"] == "local" and "--runner" in job.spec()["argv"]
    for _ in range(400):
        if not job_view(job).active:
            break
        time.sleep(0.05)
    assert job_view(job).status == "done"
