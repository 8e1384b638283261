"""Adding a job kind is one module: a kind planted outside the project shows up in the CLI, the form and ``job kinds``.

The module below is written to a temporary package and registered by one entry in the registry
(``jobs.kinds.KINDS``); nothing else in the project learns its name.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Select, Static
from typer.testing import CliRunner

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import KINDS, get_kind
from orienteer.jobs.params import parse_args
from orienteer.tui.cli.main import app as cli_app
from orienteer.tui.screens.launch import LaunchScreen
from tests.tui.pilot import drive, until

PACKAGE = "planted_kinds_for_test"
LAMP = '''
"""lamp: a kind planted by a test; it counts lamps and writes how many it lit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds.base import Here, KindDef, NewName, new_names
from orienteer.jobs.params import option


@dataclass(frozen=True, kw_only=True)
class LampSpec:
    bench: str = option(help="benchmark whose lamps are lit")
    run: str = option(help="name of the run to make")
    lamps: int = option(3, help="how many lamps")
    colour: str = option("amber", choices=("amber", "blue"), help="the light's colour")
    dim: bool = option(False, help="light them dimly")


def outputs(spec: LampSpec) -> list[NewName]:
    return new_names(spec, run="runs")


def prefill(here: Here) -> dict[str, Any]:
    return {"bench": here.bench, "run": f"lamps-{here.bench}" if here.bench else None}


def run(ctx: JobContext) -> None:
    spec = ctx.spec_of(LampSpec)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / "lit.txt").write_text(f"{spec.lamps} {spec.colour} {spec.dim}")


KIND = KindDef(name="lamp", spec=LampSpec, summary="light some lamps (a planted test kind)", run=run,
               reads=(("bench", "benchmarks"),), outputs=outputs, prefill=prefill)
'''


@pytest.fixture
def lamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The planted kind, registered as ``lamp`` for this test only."""
    package = tmp_path / "plugins" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lamp.py").write_text(textwrap.dedent(LAMP))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setitem(KINDS, "lamp", f"{PACKAGE}.lamp")
    yield get_kind("lamp")
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _cli(*args: str):
    return CliRunner().invoke(cli_app, list(args))


def test_a_planted_kind_is_listed_and_parsed_by_the_cli(lamp, tmp_path):
    listed = json.loads(_cli("-w", str(tmp_path / "ws"), "job", "kinds", "--json").output)
    row = next(r for r in listed if r["kind"] == "lamp")
    assert row["available"] and not row["gpu"] and row["summary"] == "light some lamps (a planted test kind)"
    assert [(o["flag"], o["type"], o["default"], o["required"]) for o in row["options"]] == [
        ("--bench", "str", None, True), ("--run", "str", None, True), ("--lamps", "int", 3, False),
        ("--colour", "choice", "amber", False), ("--dim", "bool", False, False)]
    assert next(o for o in row["options"] if o["flag"] == "--colour")["choices"] == ["amber", "blue"]

    usage = _cli("-w", str(tmp_path / "ws"), "job", "run", "lamp", "--help")
    assert usage.exit_code == 0
    assert "lamp  light some lamps" in usage.output and "--lamps" in usage.output and "how many lamps" in usage.output

    refused = _cli("-w", str(tmp_path / "ws"), "job", "run", "lamp", "--bench", "demo", "--lamps", "many")
    assert refused.exit_code != 0 and "--lamps expects a whole number, got 'many'" in refused.output
    missing = _cli("-w", str(tmp_path / "ws"), "job", "run", "lamp", "--bench", "demo")
    assert missing.exit_code != 0 and "--run is required" in missing.output


def test_a_planted_kind_runs_with_its_typed_spec(lamp, tmp_path):
    params = parse_args("lamp", lamp.params, ["--bench", "demo", "--run", "r1", "--lamps", "5", "--colour", "blue",
                                                "--dim"])
    assert params == {"bench": "demo", "run": "r1", "lamps": 5, "colour": "blue", "dim": True, "gpu": None, "note": None,
                      "runner": None}
    with pytest.raises(OrienteerError, match="--colour expects one of amber, blue"):
        parse_args("lamp", lamp.params, ["--bench", "demo", "--run", "r1", "--colour", "red"])
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    ctx = JobContext(job_id="j1", kind="lamp", params=params, workspace=Workspace(tmp_path / "ws"), job_dir=job_dir,
                     out_dir=job_dir / "outputs", resume_dir=tmp_path / "resume")
    assert type(ctx.spec).__name__ == "LampSpec" and ctx.spec.lamps == 5
    lamp.run(ctx)
    assert (ctx.out_dir / "lit.txt").read_text() == "5 blue True"
    assert [tuple(n) for n in lamp.output_names(params)] == [("r1", "runs", "--run")]


def test_a_planted_kind_opens_its_form_prefilled_with_the_command(lamp, app_factory, demo_ws: Workspace):
    app = app_factory(demo_ws)

    async def scenario(pilot):
        app.launch_jobs({"bench": "demo", "run": "qwen3b-base"}, ["lamp"])
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#launch-command"),
                    timeout=30)
        await pilot.pause()
        form = app.screen
        assert form.query_one("#param-bench", Input).value == "demo"
        assert form.query_one("#param-run", Input).value == "lamps-demo"
        assert form.query_one("#param-lamps", Input).value == "3"
        assert form.query_one("#param-colour", Select).value == "amber"
        assert form.query_one("#param-dim", Checkbox).value is False
        assert "light some lamps" in str(form.query_one("#launch-title", Static).render())
        form.query_one("#param-lamps", Input).value = "7"
        await pilot.pause()
        command = str(form.query_one("#launch-command", Static).render())
        assert "job run lamp --bench demo --run lamps-demo --lamps 7" in command
        form.query_one("#param-lamps", Input).value = "seven"
        await pilot.pause()
        assert "--lamps expects a whole number" in str(form.query_one("#launch-error", Static).render())

    drive(app, scenario, size=(100, 30))
