"""Score mode and a cot job through a real HTTP server answering in vLLM's format (conftest.VllmFormatServer),
as detached jobs through the CLI: the letters' log-probabilities become the run's probabilities, the key
is sent and never written anywhere in the workspace."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ml  # frame sizes come from transformers' smart_resize

CLI = [sys.executable, "-m", "orienteer"]


def _cli(ws: Path, *args: str, key: str | None = None, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    if key is not None:
        env["ORIENTEER_TEST_KEY"] = key
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("vf") / "ws"
    build_demo_workspace(path, n_items=8)
    return path


def _grep(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _items(ws: Path) -> tuple[list[Any], Path]:
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.selection import load_items

    return load_items(Workspace(ws), "demo", None)


def test_score_mode_takes_the_letters_logprobs(demo_ws: Path, vllm_format_server: Any, secret: str) -> None:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.model.images import PixelBudget, image_size, processed_size
    from orienteer.jobs.model.prompt import prompt_text

    items, root = _items(demo_ws)
    odd = items[2]
    vllm_format_server.no_letter_marker = odd.question
    result = _cli(demo_ws, "job", "run", "eval", "--engine", "openai", "--endpoint", vllm_format_server.url,
                  "--model", "Qwen/Qwen2.5-VL-3B-Instruct", "--bench", "demo", "--run", "vf-score", "--prompt", "letter",
                  "--max-pixels", str(28 * 28 * 30), "--concurrency", "3", "--retries", "3",
                  "--api-key-env", "ORIENTEER_TEST_KEY", "--gpu", "none", "--wait", key=secret)
    assert result.returncode == 0, result.stdout + result.stderr
    sent = vllm_format_server.requests
    assert len(sent) == len(items) + 2  # two 503 answers, retried
    assert {r["authorization"] for r in sent} == {f"Bearer {secret}"}
    assert all(r["body"]["max_tokens"] == 1 and r["body"]["top_logprobs"] == 20 for r in sent)

    detail = WorkspaceService(Workspace(demo_ws)).run_detail("vf-score")
    config = detail.config.settings
    assert config["engine"] == "openai" and config["mode"] == "score"
    assert config["endpoint_host"] == f"127.0.0.1:{vllm_format_server.port}"
    assert config["api_model"] == "Qwen/Qwen2.5-VL-3B-Instruct" and config["server_model"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert config["letters_outside_top_logprobs"] == 1
    for item in items:
        answer = detail.answers[item.item_id]
        if item is odd:
            assert answer.probs is None  # no letter among the top tokens: no probabilities, the token is the reply
            continue
        logprobs = vllm_format_server.letter_logprobs(prompt_text(item, "letter"))
        z = sum(math.exp(logprobs[x]) for x in item.option_letters)
        expected = {x: round(math.exp(logprobs[x]) / z, 6) for x in item.option_letters}
        assert json.loads(str(answer.probs)) == pytest.approx(expected, abs=2e-6)
        assert answer.letter == max(expected, key=lambda x: expected[x])
    # each frame went at the size the in-process processor gives it
    budget = PixelBudget(28 * 28 * 30)
    by_text = {prompt_text(it, "letter"): it for it in items}
    for request in sent:
        content = request["body"]["messages"][0]["content"]
        item = by_text[content[-1]["text"]]
        assert len(content) == len(item.images) + 1
        import base64
        import io

        from PIL import Image

        for part, rel in zip(content, item.images):
            width, height = image_size(root / rel)
            png = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
            assert png.size[::-1] == processed_size(height, width, budget.frame_pixels(len(item.images)), budget.min_pixels)
    assert _grep(demo_ws, secret) == []
    # `orienteer prompt --engine openai` shows the very body the job sent, images elided
    shown = _cli(demo_ws, "prompt", "--bench", "demo", "--item", items[3].item_id, "--prompt", "letter", "--max-pixels",
                 str(28 * 28 * 30), "--engine", "openai", "--api-model", "Qwen/Qwen2.5-VL-3B-Instruct", "--json")
    assert shown.returncode == 0, shown.stderr
    preview = json.loads(shown.stdout)["request"]
    body = next(r["body"] for r in sent if r["body"]["messages"][0]["content"][-1]["text"] == prompt_text(items[3], "letter"))
    for part in body["messages"][0]["content"][:-1]:
        part["image_url"]["url"] = "elided"
    for part in preview["messages"][0]["content"][:-1]:
        assert "base64 characters elided" in part["image_url"]["url"]
        part["image_url"]["url"] = "elided"
    assert preview == body


def test_a_refused_request_fails_the_job_in_one_line_naming_the_item(demo_ws: Path, vllm_format_server: Any) -> None:
    result = _cli(demo_ws, "job", "run", "eval", "--engine", "openai", "--endpoint", vllm_format_server.url,
                  "--model", "org/not-served", "--bench", "demo", "--run", "vf-wrong", "--prompt", "letter",
                  "--mode", "generate", "--max-pixels", str(28 * 28 * 16), "--gpu", "none", "--wait")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "refused the request (HTTP 404" in out and "item demo_0000" in out and "does not exist" in out
    assert "vf-wrong" not in _cli(demo_ws, "runs", "--json").stdout


def test_cot_rationalize_through_a_server_makes_the_dataset(demo_ws: Path, vllm_format_server: Any) -> None:
    from orienteer.data.datasets import get_dataset, read_examples
    from orienteer.data.workspace import Workspace

    result = _cli(demo_ws, "job", "run", "cot", "--engine", "openai", "--endpoint", vllm_format_server.url,
                  "--api-model", "Qwen/Qwen2.5-VL-3B-Instruct", "--teacher", "Qwen/Qwen2.5-VL-72B-Instruct",
                  "--bench", "demo", "--items", "limit:5", "--mode", "rationalize", "--samples", "3", "--name", "vf-cot",
                  "--max-pixels", str(28 * 28 * 16), "--gpu", "none", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    sent = [r["body"] for r in vllm_format_server.requests]
    assert len(sent) == 5 * 3 + 2
    seeds = [b.get("seed") for b in sent if "seed" in b]
    assert len(seeds) == 17 and len(set(seeds)) == 15 and all(b["temperature"] == 0.7 for b in sent)  # retries resend
    dataset = get_dataset(Workspace(demo_ws), "vf-cot")
    composition = dataset.composition if isinstance(dataset.composition, dict) else json.loads(dataset.composition)
    assert composition["teacher_engine"] == {"engine": "openai", "api_model": "Qwen/Qwen2.5-VL-3B-Instruct",
                                             "endpoint_host": f"127.0.0.1:{vllm_format_server.port}",
                                             "server_model": "Qwen/Qwen2.5-VL-3B-Instruct"}
    examples = read_examples(Path(dataset.path))
    assert len(examples) == 5 and all(e["target"].endswith(f"Answer: {e['answer']}") for e in examples)
    assert all("The correct answer" not in json.dumps(e) for e in examples)  # the student never sees the hint


def test_an_unreadable_image_skips_its_item_as_in_process(tmp_path: Path, vllm_format_server: Any) -> None:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace

    build_demo_workspace(tmp_path / "ws", n_items=4)
    items, root = _items(tmp_path / "ws")
    bad = next(it for it in items if len(it.images) == 1)
    (root / bad.images[0]).write_bytes(b"not an image")
    result = _cli(tmp_path / "ws", "job", "run", "eval", "--engine", "openai", "--endpoint", vllm_format_server.url,
                  "--model", "Qwen/Qwen2.5-VL-3B-Instruct", "--bench", "demo", "--run", "vf-skip", "--prompt", "letter",
                  "--max-pixels", str(28 * 28 * 16), "--gpu", "none", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    answers = WorkspaceService(Workspace(tmp_path / "ws")).run_detail("vf-skip").answers
    assert len(answers) == 3 and bad.item_id not in answers
    skipped = next((tmp_path / "ws" / "jobs").glob("*eval*")) / "outputs" / "skipped.jsonl"
    assert json.loads(skipped.read_text())["item_id"] == bad.item_id
