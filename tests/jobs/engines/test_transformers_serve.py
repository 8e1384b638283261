"""eval and cot through a real OpenAI-compatible server: ``transformers serve`` with the tiny random
Qwen2.5-VL on the CPU, as detached jobs through the CLI (generate mode end to end, the score-mode
refusal, resuming a killed job, a server that dies mid-job)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ml, pytest.mark.slow]

CLI = [sys.executable, "-m", "orienteer"]
PIXELS = str(28 * 28 * 16)


def _cli(ws: Path, *args: str, key: str | None = None, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("ts") / "ws"
    build_demo_workspace(path, n_items=12)
    return path


def _eval(ws: Path, endpoint: str, model: Path, run: str, *extra: str, wait: bool = True,
          key: str | None = None) -> subprocess.CompletedProcess[str]:
    return _cli(ws, "job", "run", "eval", "--engine", "openai", "--endpoint", endpoint, "--model", str(model),
                "--bench", "demo", "--run", run, "--prompt", "letter", "--max-pixels", PIXELS, "--gpu", "none",
                *extra, *(["--wait"] if wait else []), key=key)


def _job_id(result: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"started job (\S+)", result.stdout)
    assert found, result.stdout + result.stderr
    return found.group(1)


def _partial(ws: Path, job_id: str) -> Path:
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.store import find_job, resume_dir

    spec = find_job(Workspace(ws), job_id).spec()
    return resume_dir(Workspace(ws), "eval", spec["params"]) / "openai.partial.jsonl"


def _wait_for_records(path: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text(encoding="utf-8").count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} records")


def _replies(ws: Path, run: str) -> dict[str, str | None]:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    return {k: a.letter for k, a in WorkspaceService(Workspace(ws)).run_detail(run).answers.items()}


def _predictions(ws: Path, job_id: str) -> list[dict[str, Any]]:
    folder = next((ws / "jobs").glob(f"{job_id}*"))
    return [json.loads(line) for line in (folder / "outputs" / "predictions.jsonl").read_text().splitlines()]


def test_generate_eval_through_the_server_end_to_end(ws: Path, tiny_server: Any, served_tiny: Path, secret: str) -> None:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    result = _eval(ws, tiny_server.url, served_tiny, "ts-gen", "--mode", "generate", "--max-new-tokens", "4",
                   "--items", "limit:6", key=secret)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(_cli(ws, "report", "--json").stdout)
    assert {r["run"]: r["random_weights"] for r in report["runs"]}["ts-gen"] is True  # shown, labelled
    detail = WorkspaceService(Workspace(ws)).run_detail("ts-gen")
    assert len(detail.answers) == 6
    config = detail.config.settings
    assert config["engine"] == "openai" and config["endpoint_host"] == f"127.0.0.1:{tiny_server.port}"
    assert config["api_model"] == str(served_tiny) and config["server_model"] == str(served_tiny)
    assert config["max_new_tokens"] == 4 and isinstance(config["truncated"], int)
    predictions = _predictions(ws, _job_id(result))
    assert config["truncated"] == sum(1 for p in predictions if p.get("truncated"))
    assert not [p for p in ws.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    shown = _cli(ws, "job", "show", _job_id(result), key=secret)
    assert shown.returncode == 0 and secret not in shown.stdout + shown.stderr


def test_the_request_has_the_in_process_prompt_and_image_tokens(ws: Path, tiny_server: Any, served_tiny: Path) -> None:
    """The server's token count of our request equals the in-process encoder's count of the same item."""
    import httpx

    from orienteer.data.workspace import Workspace
    from orienteer.jobs.engines.request import chat_body, item_frames
    from orienteer.jobs.model.batching import encode_item
    from orienteer.jobs.model.images import PixelBudget, load_images
    from orienteer.jobs.model.loading import load_processor_offline
    from orienteer.jobs.selection import load_items

    items, root = load_items(Workspace(ws), "demo", None)
    processor = load_processor_offline(str(served_tiny))
    budget = PixelBudget(int(PIXELS))
    multi = next(it for it in items if len(it.images) > 1)
    for item in (items[0], multi):
        from orienteer.jobs.model.prompt import prompt_text

        body = chat_body(str(served_tiny), prompt_text(item, "letter"), item_frames(item, root, budget), "generate", 1)
        answer = httpx.post(f"{tiny_server.url}/chat/completions", json=body, timeout=60, trust_env=False).json()
        encoded = encode_item(processor, item, load_images(item, root), "letter", budget)
        assert answer["usage"]["prompt_tokens"] == encoded.length
    preview = json.loads(_cli(ws, "prompt", "--bench", "demo", "--item", multi.item_id, "--prompt", "letter",
                              "--max-pixels", PIXELS, "--engine", "openai", "--json").stdout)
    content = preview["request"]["messages"][0]["content"]
    assert len(content) == len(multi.images) + 1 and content[-1]["text"] == preview["text"]
    assert all("base64 characters elided" in part["image_url"]["url"] for part in content[:-1])


def test_score_mode_is_refused_when_the_server_gives_no_logprobs(ws: Path, tiny_server: Any, served_tiny: Path) -> None:
    result = _eval(ws, tiny_server.url, served_tiny, "ts-score", "--items", "limit:4")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "--mode score needs log-probabilities" in out and "returned none for item" in out
    assert "ts-score" not in _cli(ws, "runs", "--json").stdout


def test_a_killed_job_resumes_with_only_what_is_missing(ws: Path, tiny_server: Any, served_tiny: Path) -> None:
    args = ("--mode", "generate", "--max-new-tokens", "12", "--concurrency", "1")
    started = _eval(ws, tiny_server.url, served_tiny, "ts-resume", *args, wait=False)
    job_id = _job_id(started)
    partial = _partial(ws, job_id)
    _wait_for_records(partial, 3)
    state = json.loads(next((ws / "jobs").glob(f"{job_id}*")).joinpath("state.json").read_text())
    os.killpg(int(state["pid"]), signal.SIGKILL)
    time.sleep(0.5)
    kept = {json.loads(line)["item_id"] for line in partial.read_text().splitlines() if line.endswith("}")}
    assert 3 <= len(kept) < 12
    again = _cli(ws, "job", "rerun", job_id, "--wait")
    assert again.returncode == 0, again.stdout + again.stderr
    log = (next((ws / "jobs").glob(f"{_job_id(again)}*")) / "log.txt").read_text()
    assert f"resuming: {len(kept)} of 12 items already answered" in log and f"({12 - len(kept)} to send" in log
    ids = [json.loads(line)["item_id"] for line in partial.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12  # nothing asked twice
    straight = _eval(ws, tiny_server.url, served_tiny, "ts-straight", *args)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    assert _predictions(ws, _job_id(again)) == _predictions(ws, _job_id(straight))


def test_a_server_that_dies_mid_job_fails_it_clearly_and_a_rerun_completes(
        ws: Path, served_tiny: Path, transformers_serve: Any, tmp_path: Path) -> None:
    server = transformers_serve(served_tiny, log=tmp_path / "serve.log").start()
    try:
        started = _eval(ws, server.url, served_tiny, "ts-dies", "--mode", "generate", "--max-new-tokens", "12",
                        "--concurrency", "1", "--retries", "1", wait=False)
        job_id = _job_id(started)
        _wait_for_records(_partial(ws, job_id), 2)
        server.kill()
        deadline = time.monotonic() + 120
        folder = next((ws / "jobs").glob(f"{job_id}*"))
        while not (folder / "exit.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        ended = json.loads((folder / "exit.json").read_text())
        assert ended["code"] == 1
        assert re.search(rf"EndpointError: item \S+: 127\.0\.0\.1:{server.port} gave no answer after 2 tries \(", ended["error"])
        assert "ts-dies" not in _cli(ws, "runs", "--json").stdout
        server = transformers_serve(served_tiny, port=server.port, log=tmp_path / "serve.log").start()
        again = _cli(ws, "job", "rerun", job_id, "--wait")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "resuming:" in (next((ws / "jobs").glob(f"{_job_id(again)}*")) / "log.txt").read_text()
        assert len(_replies(ws, "ts-dies")) == 12
    finally:
        server.kill()


def test_cot_asks_the_server_and_resumes(ws: Path, tiny_server: Any, served_tiny: Path) -> None:
    """The tiny random teacher never reaches a gold letter, so the job ends with the cot kind's own refusal,
    after the server's replies are recorded; a rerun asks for none of them again."""
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.store import find_job, resume_dir

    args = ("job", "run", "cot", "--engine", "openai", "--endpoint", tiny_server.url, "--teacher", str(served_tiny),
            "--bench", "demo", "--items", "limit:3", "--name", "ts-cot", "--max-new-tokens", "6", "--max-pixels", PIXELS,
            "--gpu", "none", "--wait")
    first = _cli(ws, *args)
    assert first.returncode != 0 and "none of the teacher's 3 replies ended in the gold letter" in first.stdout + first.stderr
    job_id = _job_id(first)
    replies = resume_dir(Workspace(ws), "cot", find_job(Workspace(ws), job_id).spec()["params"]) / "teacher_replies.jsonl"
    records = [json.loads(line) for line in replies.read_text().splitlines()]
    assert len(records) == 3 and {r["server_model"] for r in records} == {str(served_tiny)}
    again = _cli(ws, "job", "rerun", job_id, "--wait")
    assert "resuming: 3 of 3 teacher replies already there" in (next((ws / "jobs").glob(f"{_job_id(again)}*")) / "log.txt").read_text()
    assert replies.read_text().count("\n") == 3
