"""The engine code against what an audit asked of it: the key goes only where it is needed (never to an
engine the job starts; a warning when it would cross the network in clear), a server's ``model`` string is
capped and has the key taken out, a malformed 200 answer fails the job in one line naming the item, and a
server that echoes the key back (401, or 500 then 401) leaves no trace of it in the job folder or workspace.

The servers are real HTTP servers (``conftest.VllmFormatServer``); the jobs run detached through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.jobs.engines.client import MODEL_CHARS, ChatClient, EndpointError
from orienteer.jobs.engines.options import parse_endpoint
from orienteer.jobs.engines.session import request_key
from orienteer.jobs.kinds import get_kind
from tests.jobs.engines.conftest import SECRET, VllmFormatServer

pytestmark = pytest.mark.ml  # the jobs size frames with transformers' smart_resize

CLI = [sys.executable, "-m", "orienteer"]
ROOT = Path(__file__).resolve().parents[3]
PIXELS = str(28 * 28 * 16)
SERVED = "Qwen/Qwen2.5-VL-3B-Instruct"

# `vllm serve` as the job runs it, answered by the stdlib vLLM-format server on the port it is given
# (fast: no model), recording each request's Authorization header.
FAKE_VLLM = '''#!{python}
import argparse, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.jobs.engines.conftest import VllmFormatServer

parser = argparse.ArgumentParser()
parser.add_argument("command", choices=["serve"])
parser.add_argument("model")
for flag in ("--host", "--port", "--served-model-name", "--tensor-parallel-size", "--generation-config"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()
server = VllmFormatServer(args.served_model_name, port=int(args.port), record=Path(os.environ["FAKE_ENGINE_RECORD"]))
server.httpd.serve_forever()
'''


def _cli(ws: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    for name in ("OPENAI_API_KEY", "ORIENTEER_TEST_KEY"):
        if name not in (env or {}):
            full.pop(name, None)
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=full)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("hardening") / "ws"
    build_demo_workspace(path, n_items=4)
    return path


def _eval(ws: Path, run: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _cli(ws, "job", "run", "eval", "--engine", "openai", "--model", SERVED, "--bench", "demo", "--run", run,
                "--prompt", "letter", "--max-pixels", PIXELS, "--gpu", "none", "--items", "limit:2", *extra, "--wait",
                env=env)


def _job_folder(ws: Path, out: str) -> Path:
    found = re.search(r"started job (\S+)", out)
    assert found, out
    return next((ws / "jobs").glob(f"{found.group(1)}*"))


def _holding(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _error_line(job: Path) -> str:
    """The job's failure as it records it (exit.json), which the CLI and the app show."""
    return str(json.loads((job / "exit.json").read_text(encoding="utf-8")).get("error") or "")


# 1. The key only where it is needed


def test_the_key_is_not_sent_to_an_engine_the_job_starts(ws: Path, tmp_path: Path) -> None:
    """--serve (and train's closing eval, which runs the eval kind with --serve): no Authorization header at
    all, though OPENAI_API_KEY (the default --api-key-env) is set."""
    script = tmp_path / "bin" / "vllm"
    script.parent.mkdir()
    script.write_text(FAKE_VLLM.format(python=sys.executable, root=str(ROOT)), encoding="utf-8")
    script.chmod(0o755)
    assert _cli(ws, "config", "set", "engines.vllm", str(script)).returncode == 0
    record = tmp_path / "auth.jsonl"
    result = _eval(ws, "served-nokey", "--serve", "vllm", env={"OPENAI_API_KEY": SECRET, "FAKE_ENGINE_RECORD": str(record)})
    assert result.returncode == 0, result.stdout + result.stderr
    sent = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(sent) == 2 and all(r["authorization"] is None for r in sent)
    log = (_job_folder(ws, result.stdout) / "log.txt").read_text()
    assert "no API key (the engine this job started, on loopback)" in log and "unencrypted" not in log
    assert _holding(ws, SECRET) == []


def test_the_closing_eval_of_train_and_serve_specs_carry_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    kind = get_kind("eval")
    served = kind.make_spec({"model": SERVED, "bench": "b", "run": "r", "engine": "openai", "serve": "vllm"})
    remote = kind.make_spec({"model": SERVED, "bench": "b", "run": "r", "engine": "openai", "endpoint": "https://h/v1"})
    assert request_key(served) is None and request_key(remote) == SECRET


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8000/v1", True), ("http://127.8.9.10:8000", True), ("http://[::1]:8000", True),
    ("http://localhost:8000", True), ("http://LOCALHOST.:8000", True), ("http://gpu-box:8000", False),
    ("http://10.0.0.7:8000", False), ("http://[fe80::1]:8000", False), ("http://localhost.example.com", False),
])
def test_loopback_hosts(url: str, loopback: bool) -> None:
    endpoint = parse_endpoint(url)
    assert endpoint.loopback is loopback and endpoint.unencrypted_remote is (not loopback)
    assert not parse_endpoint(url.replace("http://", "https://")).unencrypted_remote


def test_a_key_over_plain_http_to_another_host_is_warned_about_once(ws: Path) -> None:
    """The warning is logged (the job is not refused: it fails here only because the host does not exist)."""
    env = {"ORIENTEER_TEST_KEY": SECRET}
    result = _eval(ws, "remote-plain", "--endpoint", "http://gpu-box.invalid:8000/v1", "--api-key-env", "ORIENTEER_TEST_KEY",
                   "--retries", "0", env=env)
    job = _job_folder(ws, result.stdout)
    log = (job / "log.txt").read_text()
    warnings = [line for line in log.splitlines() if "travels unencrypted" in line]
    assert len(warnings) == 1 and "$ORIENTEER_TEST_KEY" in warnings[0] and "gpu-box.invalid:8000" in warnings[0]
    assert "connection failed" in _error_line(job)
    with VllmFormatServer() as server:  # plain http on loopback: no warning
        local = _eval(ws, "local-plain", "--endpoint", server.url, "--api-key-env", "ORIENTEER_TEST_KEY", env=env)
        assert local.returncode == 0, local.stdout + local.stderr
        assert {r["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert "unencrypted" not in (_job_folder(ws, local.stdout) / "log.txt").read_text()
    assert _holding(ws, SECRET) == []


# 2. The server's model string


def test_an_absurd_model_name_is_capped_and_keyless_everywhere(ws: Path) -> None:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    absurd = "m" * 150 + f" {SECRET}\n\x1b[31m" + "x" * 100_000
    env = {"ORIENTEER_TEST_KEY": SECRET}
    with VllmFormatServer(reply_model=absurd) as server:
        result = _eval(ws, "absurd", "--endpoint", server.url, "--api-key-env", "ORIENTEER_TEST_KEY", "--mode", "generate",
                       env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    recorded = WorkspaceService(Workspace(ws)).run_detail("absurd").config.settings["server_model"]
    assert recorded == ("m" * 150 + " *** ?[31m" + "x" * 100)[:MODEL_CHARS] + "..."  # one printable line, key out
    with VllmFormatServer(reply_model=absurd, logprobs=False) as server:  # the name in score mode's refusal
        refused = _eval(ws, "absurd-score", "--endpoint", server.url, "--api-key-env", "ORIENTEER_TEST_KEY", env=env)
    assert refused.returncode != 0
    job = _job_folder(ws, refused.stdout)
    error = _error_line(job)
    assert "returned none for item" in error and "\n" not in error and "\x1b" not in error and "x" * 60 not in error
    assert "***" in error and SECRET not in refused.stdout + refused.stderr
    assert _holding(ws, SECRET) == []
    assert all(len(line) < 1000 for line in (job / "log.txt").read_text().splitlines())


# 3. Malformed 200 answers


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    """A ``mangle`` that puts ``value`` at ``path`` (dots; ``0`` indexes a list) of the answer."""
    def mangle(answer: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = answer
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
        return answer
    return mangle


MALFORMED = [
    ("choices.0", "B", "choices[0] is a string, not an object"),
    ("choices.0.message", ["B"], "choices[0].message is an array, not an object"),
    ("choices.0.message", None, "choices[0].message is null, not an object"),
    ("choices.0.message.content", {"text": "B"}, "choices[0].message.content is an object, not a string or null"),
    ("choices.0.message.content", 7, "choices[0].message.content is a number, not a string or null"),
    ("choices.0.logprobs", "B", "choices[0].logprobs is a string, not an object or null"),
    ("choices.0.logprobs.content", {"token": "B"}, "choices[0].logprobs.content is an object, not an array or null"),
    ("choices.0.logprobs.content.0", "B", "choices[0].logprobs.content[0] is a string, not an object"),
    ("choices.0.logprobs.content.0.top_logprobs", "B", "choices[0].logprobs.content[0].top_logprobs is a string"),
    ("choices.0.logprobs.content.0.top_logprobs.1", 3.5, "choices[0].logprobs.content[0].top_logprobs[1] is a number"),
]


def _body(score: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": SERVED, "messages": [{"role": "user", "content": [{"type": "text", "text": "Q?"}]}]}
    if score:
        body.update({"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20})
    return body


async def _complete(server: VllmFormatServer, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    client = ChatClient(parse_endpoint(server.url), key, concurrency=1, retries=0, trust_env=False)
    try:
        return await client.complete(body, "item 12")
    finally:
        await client.aclose()


@pytest.mark.parametrize(("path", "value", "problem"), MALFORMED)
def test_a_malformed_answer_is_one_endpoint_error_naming_the_item(path: str, value: Any, problem: str) -> None:
    with VllmFormatServer(mangle=_set(path, value)) as server:
        with pytest.raises(EndpointError) as exc:
            asyncio.run(_complete(server, _body()))
    message = str(exc.value)
    assert message.startswith(f"item 12: 127.0.0.1:{server.port} answered 200 with a malformed reply: {problem}")
    assert "\n" not in message


def test_well_formed_answers_pass_and_a_non_string_model_is_dropped() -> None:
    with VllmFormatServer() as server:
        assert asyncio.run(_complete(server, _body()))["model"] == SERVED
    with VllmFormatServer(mangle=_set("choices.0.message.content", None)) as server:  # a refusal: content null
        assert asyncio.run(_complete(server, _body(score=False)))["choices"][0]["message"]["content"] is None
    with VllmFormatServer(mangle=_set("choices.0.logprobs", None)) as server:
        asyncio.run(_complete(server, _body()))
    with VllmFormatServer(mangle=_set("model", {"id": SECRET})) as server:
        assert asyncio.run(_complete(server, _body(), key=SECRET))["model"] == ""


def test_a_malformed_answer_fails_the_job_in_one_line(ws: Path) -> None:
    with VllmFormatServer(mangle=_set("choices.0.message", "B")) as server:
        result = _eval(ws, "malformed", "--endpoint", server.url)
    assert result.returncode != 0
    error = _error_line(_job_folder(ws, result.stdout))
    assert re.fullmatch(r"[^\n]*item demo_\d+: 127\.0\.0\.1:\d+ answered 200 with a malformed reply: choices\[0\]\.message "
                        r"is a string, not an object[^\n]*", error), error
    assert "AttributeError" not in result.stdout + result.stderr + (_job_folder(ws, result.stdout) / "log.txt").read_text()
    assert "malformed" not in _cli(ws, "runs", "--json").stdout


# 4. A server that echoes the key back


@pytest.mark.parametrize("statuses", [[401], [500, 401]], ids=["401", "500-then-401"])
def test_a_server_echoing_the_key_leaves_no_trace_of_it(tmp_path: Path, statuses: list[int]) -> None:
    from orienteer.demo.build import build_demo_workspace

    ws = tmp_path / "ws"
    build_demo_workspace(ws, n_items=2)
    with VllmFormatServer(statuses=statuses) as server:
        result = _eval(ws, "echoed", "--endpoint", server.url, "--api-key-env", "ORIENTEER_TEST_KEY", "--concurrency", "1",
                       "--retries", "2", env={"ORIENTEER_TEST_KEY": SECRET})
        assert [r["authorization"] for r in server.requests][:len(statuses)] == [f"Bearer {SECRET}"] * len(statuses)
    assert result.returncode != 0
    job = _job_folder(ws, result.stdout)
    error = _error_line(job)
    assert "\n" not in error and re.search(r"item demo_\d+: 127\.0\.0\.1:\d+ refused the request \(HTTP 401: ", error), error
    assert "Authorization: Bearer ***" in error
    assert SECRET not in result.stdout + result.stderr
    assert _holding(job, SECRET) == [] and _holding(ws, SECRET) == []
    assert "echoed" not in _cli(ws, "runs", "--json").stdout


def test_an_error_carrying_the_key_is_redacted_before_it_is_cut() -> None:
    """The cut at 300 characters comes after the key is replaced: no half of the key survives it either."""
    client = ChatClient(parse_endpoint("http://127.0.0.1:9/v1"), SECRET, concurrency=1, retries=0)
    text = "x" * 290 + SECRET + "y" * 50
    assert SECRET[:8] not in client.redact(text) and client.redact(text).startswith("x" * 290 + "***")
    asyncio.run(client.aclose())
    with pytest.raises(OrienteerError):
        parse_endpoint(f"http://user:{SECRET}@h/v1")
