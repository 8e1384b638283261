"""``orienteer saliency summary`` and ``s`` on the runs screen, on the workspace the data tests build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from textual.geometry import Region
from typer.testing import CliRunner

from orienteer.tui.cli.main import app
from tests.data.test_saliency_summary import TASK_A, TASK_B, build
from tests.tui.pilot import drive, until

runner = CliRunner()


def cli(ws_root: Path, *args: str) -> Any:
    return runner.invoke(app, ["-w", str(ws_root), "saliency", "summary", *args])


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _means(values: list[tuple[str, float, float]]) -> tuple[float, float]:
    return sum(v[1] for v in values) / len(values), sum(v[2] for v in values) / len(values)


def test_cli_json(tmp_path: Path) -> None:
    fx = build(tmp_path)
    result = cli(fx.ws.root, "--run", "base", "--vs", "boxed", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    inside, area = _means([v for v in fx.base.values() if v[0] == TASK_A])
    assert doc["tasks"][TASK_A]["n"] == 12
    assert abs(doc["tasks"][TASK_A]["mass_in_bbox"] - inside) < 1e-12
    assert abs(doc["tasks"][TASK_A]["enrichment"] - inside / area) < 1e-9
    assert doc["overall"]["n"] == 16 and doc["vs"]["overall"]["n"] == 14
    alone = cli(fx.ws.root, "--run", "base", "--json")
    assert json.loads(alone.output)["vs"] is None


def test_cli_table_escapes_names_and_says_what_it_counts(tmp_path: Path) -> None:
    fx = build(tmp_path)
    result = cli(fx.ws.root, "--run", "base", "--vs", "boxed")
    assert result.exit_code == 0, result.output
    out = result.output
    inside, area = _means(list(fx.base.values()))
    overall = next(line for line in out.splitlines() if "Overall" in line)
    assert "16" in overall and _pct(inside) in overall and _pct(area) in overall and f"{inside / area:.2f}x" in overall
    assert TASK_B in out  # "[b]" shown as typed, not read as markup
    out = " ".join(out.split())  # the notes wrap at the terminal's width
    assert "computed on:" in out and "ring" in out
    assert "2 without a box" in out and "1 measured by an older version (no ring exclusion); re-run saliency" in out
    assert "4 non-zero differences" in out  # why task B has no p
    assert "paired by parent item" in out and "difference = the run's inside share minus the other's" in out
    assert "p Holm" in out


def test_cli_errors_and_runs_without_maps(tmp_path: Path) -> None:
    fx = build(tmp_path)
    bare = cli(fx.ws.root, "--run", "bare")
    assert bare.exit_code == 0 and "no saliency maps for run bare yet" in bare.output
    bad = cli(fx.ws.root, "--run", "base", "--vs", "lonely")
    assert bad.exit_code == 2 and "share no items" in bad.output


def test_help_does_not_import_scipy() -> None:
    code = ("import sys\nfrom orienteer.tui.cli.main import app\nfrom typer.testing import CliRunner\n"
            "r = CliRunner().invoke(app, ['saliency', 'summary', '--help'])\nassert r.exit_code == 0, r.output\n"
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def _shown(widget: Any) -> str:
    """The text the widget draws at its size on screen."""
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(strip.text for strip in strips)


def test_s_on_the_runs_screen_shows_the_summary(tmp_path: Path) -> None:
    from orienteer.tui.app import OrienteerApp
    from orienteer.tui.screens.saliency_summary import SaliencySummaryScreen

    fx = build(tmp_path)
    app_ = OrienteerApp(fx.ws, image_mode="none")
    inside, area = _means(list(fx.base.values()))

    async def scenario(pilot: Any) -> None:
        screen = app_.screen
        await until(pilot, lambda: screen.report is not None)
        assert [r.run for r in screen.report.runs] == ["base", "bare"]
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app_.screen, SaliencySummaryScreen))
        await pilot.pause()
        text = _shown(app_.screen.query_one("#saliency-summary"))
        assert "base" in text and "Task A" in text and TASK_B in text
        overall = next(line for line in text.splitlines() if "Overall" in line)
        assert _pct(inside) in overall and _pct(area) in overall and f"{inside / area:.2f}x" in overall
        assert "re-run saliency" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app_.screen is screen
        await pilot.press("down", "s")  # "bare": no maps yet
        await until(pilot, lambda: isinstance(app_.screen, SaliencySummaryScreen))
        await pilot.pause()
        assert "no saliency maps for this run yet: S starts a saliency job" in _shown(
            app_.screen.query_one("#saliency-summary"))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Saliency summary of this run" in app_.screen.plain_text()

    drive(app_, scenario, size=(120, 40))
