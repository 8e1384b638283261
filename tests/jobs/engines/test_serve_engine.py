"""``--serve vllm``: the job starts the configured engine, waits for its health check, runs, and stops it
(also when cancelled). The "engine" is a real OpenAI-compatible server: a small executable that takes
vLLM's command line and execs ``transformers serve`` with the translated arguments."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ml, pytest.mark.slow]

CLI = [sys.executable, "-m", "orienteer"]
PIXELS = str(28 * 28 * 16)

FAKE_VLLM = '''#!{python}
"""vllm serve MODEL --host H --port P --served-model-name N --tensor-parallel-size T --generation-config vllm,
run as transformers serve MODEL --host H --port P --device cpu (which serves MODEL under its path only)."""
import argparse, json, os, sys

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["serve"])
parser.add_argument("model")
for flag in ("--host", "--port", "--served-model-name", "--tensor-parallel-size", "--generation-config"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()
with open(os.environ["FAKE_ENGINE_RECORD"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "pid": os.getpid()}}) + "\\n")
if args.served_model_name != args.model:
    sys.exit(f"fake vllm: transformers serve cannot serve {{args.model}} as {{args.served_model_name}}")
transformers = os.path.join(os.path.dirname(sys.executable), "transformers")
os.execv(transformers, [transformers, "serve", args.model, "--host", args.host, "--port", args.port, "--device", "cpu"])
'''


def _cli(ws: Path, record: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200",
           "FAKE_ENGINE_RECORD": str(record)}
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.demo.build import build_demo_workspace

    folder = tmp_path_factory.mktemp("serve")
    path = folder / "ws"
    build_demo_workspace(path, n_items=8)
    script = folder / "bin" / "vllm"
    script.parent.mkdir()
    script.write_text(FAKE_VLLM.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    setting = _cli(path, folder / "unused", "config", "set", "engines.vllm", str(script))
    assert setting.returncode == 0, setting.stdout + setting.stderr
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _job_folder(ws: Path, out: str) -> Path:
    found = re.search(r"started job (\S+)", out)
    assert found, out
    return next((ws / "jobs").glob(f"{found.group(1)}*"))


def test_serve_starts_the_engine_then_stops_it(ws: Path, served_tiny: Path, tmp_path: Path) -> None:
    record = tmp_path / "engine.jsonl"
    result = _cli(ws, record, "job", "run", "eval", "--engine", "openai", "--serve", "vllm", "--model", str(served_tiny),
                  "--bench", "demo", "--run", "served", "--mode", "generate", "--max-new-tokens", "3", "--items", "limit:3",
                  "--prompt", "letter", "--max-pixels", PIXELS, "--gpu", "none", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    started = json.loads(record.read_text().splitlines()[0])
    argv = started["argv"]
    assert argv[:2] == ["serve", str(served_tiny)] and argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert not _alive(started["pid"])  # stopped when the job ended
    log = (_job_folder(ws, result.stdout) / "log.txt").read_text()
    assert re.search(r"vllm healthy after [0-9.]+ s", log) and "vllm stopped" in log
    assert "[vllm] " in log  # the engine's own output is in the job's log
    config = json.loads(_cli(ws, record, "runs", "--json").stdout)
    assert "served" in {r["run"] for r in config}
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    settings = WorkspaceService(Workspace(ws)).run_detail("served").config.settings
    assert settings["served_by"] == "vllm" and settings["server_model"] == str(served_tiny)


def test_an_engine_that_exits_while_starting_fails_the_job_in_one_line(ws: Path, served_tiny: Path, tmp_path: Path) -> None:
    record = tmp_path / "engine.jsonl"
    result = _cli(ws, record, "job", "run", "eval", "--engine", "openai", "--serve", "vllm", "--model", str(served_tiny),
                  "--api-model", "another-name", "--bench", "demo", "--run", "never", "--mode", "generate",
                  "--gpu", "none", "--wait")
    assert result.returncode != 0
    assert "--serve vllm: the engine exited with code 1 while starting" in result.stdout + result.stderr
    log = (_job_folder(ws, result.stdout) / "log.txt").read_text()
    assert "[vllm] fake vllm: transformers serve cannot serve" in log


def test_cancelling_a_served_job_stops_the_engine(ws: Path, served_tiny: Path, tmp_path: Path) -> None:
    record = tmp_path / "engine.jsonl"
    result = _cli(ws, record, "job", "run", "eval", "--engine", "openai", "--serve", "vllm", "--model", str(served_tiny),
                  "--bench", "demo", "--run", "cancelled", "--mode", "generate", "--max-new-tokens", "64",
                  "--concurrency", "1", "--prompt", "letter", "--max-pixels", PIXELS, "--gpu", "none")
    assert result.returncode == 0, result.stdout + result.stderr
    folder = _job_folder(ws, result.stdout)
    deadline = time.monotonic() + 120
    while "healthy after" not in (folder / "log.txt").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = json.loads(record.read_text().splitlines()[0])["pid"]
    assert _alive(pid)
    cancel = _cli(ws, record, "job", "cancel", folder.name)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
    exit_info = json.loads((folder / "exit.json").read_text())
    assert exit_info["cancelled"] is True
    assert "vllm stopped" in (folder / "log.txt").read_text()


def test_the_engine_dies_with_a_killed_job(ws: Path, served_tiny: Path, tmp_path: Path) -> None:
    """SIGKILL leaves the job no chance to stop the engine: PR_SET_PDEATHSIG does (SIGTERM to the engine)."""
    import signal

    record = tmp_path / "engine.jsonl"
    result = _cli(ws, record, "job", "run", "eval", "--engine", "openai", "--serve", "vllm", "--model", str(served_tiny),
                  "--bench", "demo", "--run", "killed", "--mode", "generate", "--max-new-tokens", "64",
                  "--concurrency", "1", "--prompt", "letter", "--max-pixels", PIXELS, "--gpu", "none")
    folder = _job_folder(ws, result.stdout)
    deadline = time.monotonic() + 120
    while "healthy after" not in (folder / "log.txt").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = json.loads(record.read_text().splitlines()[0])["pid"]
    os.killpg(int(json.loads((folder / "state.json").read_text())["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)


def test_serve_without_a_configured_engine_is_refused_before_a_job_exists(tmp_path: Path, served_tiny: Path) -> None:
    from orienteer.demo.build import build_demo_workspace

    build_demo_workspace(tmp_path / "ws", n_items=2)
    result = _cli(tmp_path / "ws", tmp_path / "unused", "job", "run", "cot", "--engine", "openai", "--serve", "sglang",
                  "--teacher", str(served_tiny), "--bench", "demo", "--name", "c", "--gpu", "none")
    assert result.returncode != 0
    assert "--serve sglang: no engine configured; run `orienteer config set engines.sglang" in result.stdout + result.stderr
    assert not (tmp_path / "ws" / "jobs").exists() or not any((tmp_path / "ws" / "jobs").glob("*cot*"))
