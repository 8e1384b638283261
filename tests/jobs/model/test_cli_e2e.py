"""eval and saliency end to end through the CLI (a real detached job), into runs the report shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "orienteer"]


def _cli(ws: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def cli_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("cli") / "ws"
    build_demo_workspace(path, n_items=12)
    return path


def test_eval_both_modes_then_saliency_via_cli(cli_ws: Path, tiny_model_dir: Path) -> None:
    score = _cli(cli_ws, "job", "run", "eval", "--model", str(tiny_model_dir), "--bench", "demo", "--run", "tiny-score",
                 "--max-pixels", str(28 * 28 * 16), "--batch-size", "4", "--wait")
    assert score.returncode == 0, score.stdout + score.stderr
    gen = _cli(cli_ws, "job", "run", "eval", "--model", str(tiny_model_dir), "--bench", "demo", "--run", "tiny-gen",
               "--mode", "generate", "--max-new-tokens", "3", "--items", "limit:6", "--max-pixels", str(28 * 28 * 16),
               "--wait")
    assert gen.returncode == 0, gen.stdout + gen.stderr
    report = _cli(cli_ws, "report", "--json")
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert "tiny-score" in text and "tiny-gen" in text
    import json

    flags = {r["run"]: r["random_weights"] for r in json.loads(text)["runs"]}
    assert flags["tiny-score"] is True and flags["tiny-gen"] is True  # labelled as random-weight runs
    listed = {r["run"]: r["random_weights"] for r in json.loads(_cli(cli_ws, "runs", "--json").stdout)}
    assert listed["tiny-score"] is True

    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    info = WorkspaceService(Workspace(cli_ws)).run_detail("tiny-score")
    assert info.bench == "demo" and len(info.answers) == 12
    assert "RANDOM WEIGHTS" in (info.notes or "")
    assert all(a.probs for a in info.answers.values())

    sal = _cli(cli_ws, "job", "run", "saliency", "--run", "tiny-score", "--items", "limit:2", "--wait")
    assert sal.returncode == 0, sal.stdout + sal.stderr


def test_missing_model_creates_no_run(cli_ws: Path, tmp_path: Path) -> None:
    result = _cli(cli_ws, "job", "run", "eval", "--model", str(tmp_path / "nope"), "--bench", "demo", "--run", "ghost",
                  "--wait")
    assert result.returncode != 0
    assert "nope: no such folder" in result.stdout + result.stderr
    report = _cli(cli_ws, "report", "--json")
    assert "ghost" not in report.stdout
