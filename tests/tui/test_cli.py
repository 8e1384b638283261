"""The orienteer command end to end: import, read commands with --json, export, rescore."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orienteer.tui.cli.main import app
from tests.conftest import random_replies, write_official_csv

runner = CliRunner()


def run_cli(*args: str, env: dict[str, str] | None = None):
    result = runner.invoke(app, list(args), env=env)
    return result


@pytest.fixture
def cli_ws(tmp_path, vs_bench_file, vs_items):
    root = tmp_path / "ws"
    assert run_cli("-w", str(root), "import", "bench", str(vs_bench_file), "--name", "viewspatial").exit_code == 0
    base = write_official_csv(tmp_path / "result_qwen3b.csv", vs_items, random_replies(vs_items, seed=1))
    aug = tmp_path / "augmented.jsonl"
    aug.write_text("\n".join(json.dumps({"id": f"viewspatial_test_{i:06d}", "pred": item["answer"][0] if i % 3 else "B",
                                         "gt": item["answer"]})
                             for i, item in enumerate(vs_items)), encoding="utf-8")
    r1 = run_cli("-w", str(root), "import", "preds", str(base), "--bench", "viewspatial", "--run", "qwen3b-base")
    r2 = run_cli("-w", str(root), "import", "preds", str(aug), "--bench", "viewspatial", "--run", "flip-aug")
    assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output)
    assert "imported run qwen3b-base" in r1.output
    return root


def _json(*args: str):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_and_report_json(cli_ws, vs_items):
    runs = _json("-w", str(cli_ws), "runs")
    assert [r["run"] for r in runs] == ["qwen3b-base", "flip-aug"]
    assert runs[0]["items"] == len(vs_items) and runs[0]["coverage"] == 1.0
    doc = _json("-w", str(cli_ws), "report")
    assert [r["run"] for r in doc["runs"]] == ["qwen3b-base", "flip-aug"]
    aug = doc["runs"][1]
    assert aug["correct"] == sum(1 for i in range(len(vs_items)) if i % 3 or vs_items[i]["answer"][0] == "B")
    assert aug["accuracy"] == pytest.approx(aug["correct"] / aug["n"])
    assert set(aug["tasks"]) == {it["question_type"] for it in vs_items}
    assert "p_value" in aug["delta"]["overall"]


def test_report_table_renders(cli_ws):
    result = run_cli("-w", str(cli_ws), "report")
    assert result.exit_code == 0
    assert "Overall" in result.output and "qwen3b-base" in result.output and "McNemar" in result.output


def test_report_marks_tasks_a_run_never_saw(cli_ws, tmp_path, vs_items):
    """A run of one task: the other tasks read "not run", with no delta, not 0.0 and a significant drop."""
    task = vs_items[0]["question_type"]
    replies = {i: r for i, r in random_replies(vs_items, seed=1).items() if vs_items[i]["question_type"] == task}
    part = write_official_csv(tmp_path / "part.csv", vs_items, replies)
    assert run_cli("-w", str(cli_ws), "import", "preds", str(part), "--bench", "viewspatial", "--run", "one-task").exit_code == 0
    from rich.console import Console

    from orienteer.data.queries.report import task_report
    from orienteer.data.workspace import Workspace
    from orienteer.tui.cli.render import report_tables

    with Workspace(cli_ws).read() as con:
        [report] = task_report(con)
    console = Console(width=200, record=True)
    console.print(*report_tables([report]))
    lines = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") > 3}
    n_tasks = len(report.tasks)
    assert sum("not run" in line for line in lines.values()) == n_tasks - 1
    assert all(line.rstrip(" │").endswith("not run") for name, line in lines.items() if "not run" in line)
    assert "not run" not in lines["Overall"]


def test_a_narrow_report_splits_runs_so_every_accuracy_and_delta_shows(cli_ws):
    """A narrow terminal (60 columns here; 80 holds two runs) gets as many tables as it takes: every run's name, accuracy and Δ whole,
    no line wider than the terminal (one table crushed its Δ columns to nothing)."""
    from rich.console import Console

    from orienteer.data.queries.report import task_report
    from orienteer.data.workspace import Workspace
    from orienteer.tui.cli.render import report_tables

    with Workspace(cli_ws).read() as con:
        [report] = task_report(con)
    assert len(report.runs) == 2
    console = Console(width=60, record=True, force_terminal=True)
    tables = report_tables([report], width=60)
    console.print(*tables)
    shown = console.export_text()
    assert len(tables) == 2 and "(runs 1–1 of 2)" in shown and "(runs 2–2 of 2)" in shown
    assert max(len(line) for line in shown.splitlines()) <= 60
    for rr in report.runs:
        assert rr.run in shown
        overall = f"{100 * rr.overall.accuracy:.1f}"
        assert overall in shown
        if rr.deltas:
            assert f"{rr.deltas['overall'].delta * 100:+.1f}" in shown
    assert len(report_tables([report])) == 1  # a pipe gets every run in one table


def test_confusion_audit_failures_compare(cli_ws, vs_items):
    task = "Person perspective - Relative Direction"
    doc = _json("-w", str(cli_ws), "confusion", "--run", "flip-aug", "--task", task)
    assert doc["run"] == "flip-aug" and doc["task"] == task
    assert sum(m["n"] for m in doc["matrix"]) == sum(1 for it in vs_items if it["question_type"] == task)
    assert sum(doc["categories"].values()) == sum(m["n"] for m in doc["matrix"] if m["gold"] != m["pred"])
    audit = _json("-w", str(cli_ws), "audit", "--run", "qwen3b-base")
    assert audit["checked"] == len(random_replies(vs_items, seed=1)) and audit["disagreements"] == 0
    fails = _json("-w", str(cli_ws), "failures", "--run", "flip-aug", "--limit", "3")
    assert fails["total"] == sum(1 for i, it in enumerate(vs_items) if i % 3 == 0 and it["answer"][0] != "B")
    assert len(fails["rows"]) == min(3, fails["total"])
    cmp = _json("-w", str(cli_ws), "compare", "qwen3b-base", "flip-aug")
    assert cmp["tasks"][-1]["task"] == "overall"
    assert run_cli("-w", str(cli_ws), "confusion", "--run", "flip-aug").exit_code == 0


def test_export_failures_refuses_overwrite(cli_ws, tmp_path):
    out = tmp_path / "horizontal.csv"
    args = ["-w", str(cli_ws), "export", "failures", "--run", "qwen3b-base", "--category", "horizontal", "-o", str(out)]
    first = run_cli(*args)
    assert first.exit_code == 0, first.output
    assert out.is_file() and "wrote" in first.output
    again = run_cli(*args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert run_cli(*args, "--force").exit_code == 0
    bad = run_cli("-w", str(cli_ws), "export", "failures", "--category", "sideways", "-o", str(tmp_path / "x.csv"))
    assert bad.exit_code == 2 and "sideways" in bad.output


def test_rescore_and_delete(cli_ws):
    result = run_cli("-w", str(cli_ws), "rescore", "--run", "qwen3b-base", "--parser", "strict")
    assert result.exit_code == 0 and "re-scored qwen3b-base with strict" in result.output
    assert _json("-w", str(cli_ws), "runs")[0]["parser"] == "strict"
    assert run_cli("-w", str(cli_ws), "delete-run", "flip-aug").exit_code == 0
    assert [r["run"] for r in _json("-w", str(cli_ws), "runs")] == ["qwen3b-base"]
    missing = run_cli("-w", str(cli_ws), "report", "--run", "flip-aug")
    assert missing.exit_code == 2 and "no run named 'flip-aug'" in missing.output


def test_workspace_from_env_and_default(tmp_path, vs_bench_file):
    env_ws = tmp_path / "from-env"
    result = run_cli("import", "bench", str(vs_bench_file), "--name", "b", env={"ORIENTEER_WORKSPACE": str(env_ws)})
    assert result.exit_code == 0, result.output
    assert (env_ws / "orienteer.duckdb").is_file()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        env = {k: v for k, v in os.environ.items() if k != "ORIENTEER_WORKSPACE"}
        result = run_cli("import", "bench", str(vs_bench_file), "--name", "b", env={**env, "ORIENTEER_WORKSPACE": ""})
        assert result.exit_code == 0, result.output
        assert (tmp_path / "orienteer-workspace" / "orienteer.duckdb").is_file()
    finally:
        os.chdir(cwd)


def test_no_workspace_is_a_clear_error(tmp_path):
    result = run_cli("-w", str(tmp_path / "none"), "runs")
    assert result.exit_code == 2 and "no workspace at" in result.output


def test_unknown_theme_is_one_line_before_the_app_starts(cli_ws, monkeypatch):
    import orienteer.tui.cli.main as cli_main

    monkeypatch.setattr(cli_main, "_terminal", lambda: True)  # as in a terminal (CliRunner has none)
    for args, env in ((["--theme", "pink"], None), ([], {"ORIENTEER_THEME": "pink"})):
        result = run_cli("-w", str(cli_ws), *args, env=env)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "--theme 'pink': expected dark, light or one of" in lines[0]
        assert "textual-light" in lines[0]


def test_theme_names_resolve() -> None:
    from orienteer.tui.app import resolve_theme

    available = ["textual-dark", "textual-light", "nord"]
    assert resolve_theme("light", available) == "textual-light"
    assert resolve_theme("Dark", available) == "textual-dark"
    assert resolve_theme("nord", available) == "nord"


def test_console_script_entry_point(tmp_path, vs_bench_file):
    exe = shutil.which("orienteer", path=str(Path(sys.executable).parent))
    assert exe, "the orienteer console script is installed beside the interpreter"
    out = subprocess.run([exe, "-w", str(tmp_path / "w"), "import", "bench", str(vs_bench_file), "--name", "b"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    bad = subprocess.run([exe, "-w", str(tmp_path / "w"), "import", "preds", str(tmp_path / "missing.csv"),
                          "--bench", "b", "--run", "r"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "missing.csv: file not found" in bad.stderr


def test_confusion_reads_categories_against_chance(cli_ws):
    doc = _json("-w", str(cli_ws), "confusion", "--run", "qwen3b-base")
    assert doc["grouping"] == "fine"
    assert set(doc["categories"]) - {"unparsed", "invalid_option"} <= set(doc["chance"])
    for row in doc["chance"].values():
        assert set(row) == {"observed", "expected", "offered", "rate_when_offered", "ratio", "p", "p_holm"}
        assert 0 <= row["p"] <= row["p_holm"] <= 1
    picks = sum(r["observed"] for r in doc["chance"].values())
    assert sum(r["expected"] for r in doc["chance"].values()) == pytest.approx(picks)
    assert f"{picks} answered wrong items" in doc["chance_computed_on"]
    deck = _json("-w", str(cli_ws), "confusion", "--run", "qwen3b-base", "--grouping", "deck")
    assert deck["grouping"] == "deck" and not {"adjacent", "obtuse", "depth", "opposite"} & set(deck["chance"])
    table = run_cli("-w", str(cli_ws), "confusion", "--run", "qwen3b-base", "-g", "deck")
    assert table.exit_code == 0 and "exp." in table.output and "obs/exp" in table.output
    assert "uniform" in table.output and "Holm" in table.output
    bad = run_cli("-w", str(cli_ws), "confusion", "--run", "qwen3b-base", "--grouping", "coarse")
    assert bad.exit_code == 2 and "unknown grouping 'coarse' (expected fine or deck)" in bad.output
