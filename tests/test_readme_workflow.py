"""README's leak-free fix loop, run command by command on a (small) demo, exactly as written there.

The commands are read from README.md, so the README cannot drift from what works: each line runs as
its own process (no shell) from a folder holding ``orienteer-demo``, as a user would from the
repository root after ``make demo``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## The fix loop, without leaks"


def workflow_commands() -> list[list[str]]:
    """The argv of every command in the first ``sh`` block of README's fix-loop section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's fix-loop section has no sh block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_every_command_is_an_orienteer_command_on_the_demo() -> None:
    commands = workflow_commands()
    assert len(commands) >= 7
    assert all(argv[:3] == ["orienteer", "-w", "orienteer-demo"] for argv in commands)


def test_the_readme_loop_runs_on_the_demo(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("ORIENTEER_WORKSPACE", None)
    cli = [sys.executable, "-m", "orienteer"]

    def run(argv: list[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env)

    built = run(["demo", "--path", "orienteer-demo", "--no-open"])  # the demo as `make demo` builds it
    assert built.returncode == 0, built.stdout + built.stderr
    for argv in workflow_commands():
        done = run(argv[1:])
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout}\n{done.stderr}"

    report = json.loads(run(["-w", "orienteer-demo", "report", "--json"]).stdout)
    runs = {r["run"]: r for r in report["runs"]}
    assert runs["fix-1"]["config"]["trained_on"] == "hn-replay"
    assert runs["fix-1"]["config"]["allow_overlap"] is False
    assert runs["base"]["n"] == runs["fix-1"]["n"]
    datasets = {d["name"]: d for d in json.loads(run(["-w", "orienteer-demo", "dataset", "list", "--json"]).stdout)}
    assert datasets["hn"]["composition"]["pool"] == {"name": "demo-train", "kind": "dataset"}
    assert datasets["hn"]["composition"]["mined_from_test"] is False
    # the eval run keeps what its model was trained on, as the workspace recorded the dataset then
    assert runs["fix-1"]["config"]["trained_on_composition"] == datasets["hn-replay"]["composition"]
    assert runs["fix-1"]["config"]["trained_on_examples"] == datasets["hn-replay"]["n_examples"]
