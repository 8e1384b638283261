"""Real OpenAI-compatible servers for the engine tests: ``transformers serve`` with the tiny random
Qwen2.5-VL on the CPU, and a small stdlib HTTP server that answers in vLLM's format.

``VllmFormatServer`` exists because ``transformers serve`` ignores ``logprobs``: score mode needs a server
that returns them. Its response bodies follow vLLM's OpenAI-compatible schema as written in vLLM's own
source, ``vllm/entrypoints/openai/chat_completion/protocol.py`` at vllm-project/vllm commit
002032ee2b18e1f7bd924ec47b62504ba3866063 (main after v0.11, where the OpenAI protocol moved into
per-endpoint packages): ``ChatCompletionResponse`` (id ``chatcmpl-<uuid>``, object, created, model,
choices, service_tier, system_fingerprint, usage, prompt_logprobs, prompt_token_ids, kv_transfer_params),
``ChatCompletionResponseChoice`` (index, message, logprobs, finish_reason, stop_reason, token_ids),
``ChatMessage`` (role, content, refusal, annotations, audio, function_call, reasoning; ``tool_calls``
dropped when empty), ``ChatCompletionLogProbs`` -> ``content`` of ``ChatCompletionLogProbsContent``
(token, logprob, bytes, top_logprobs of ``ChatCompletionLogProb``). The values are filled the way
``vllm/entrypoints/openai/chat_completion/serving.py`` (``_create_chat_logprobs``, ``_get_top_logprobs``)
fills them: ``token`` is the decoded token text, ``logprob`` is floored at -9999.0, ``bytes`` is
``list(token.encode("utf-8", errors="replace"))``, and the top list holds at most ``top_logprobs``
entries, most probable first. ``/health`` answers 200 with an empty body and ``/v1/models`` a
``ModelList`` as vLLM's ``models/protocol.py`` does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VENV_BIN = Path(sys.executable).parent
SECRET = "sk-test-Zq81-do-not-leak-4417"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def letter_logprobs(text: str) -> dict[str, float]:
    """The fixture's log-probabilities of A-D for a request text (deterministic, distinct per text)."""
    seed = zlib.crc32(text.encode())
    return {letter: -0.25 - ((seed >> (4 * k)) % 13) * 0.37 for k, letter in enumerate("ABCD")}


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": max(logprob, -9999.0), "bytes": list(token.encode("utf-8", errors="replace"))}


class VllmFormatServer:
    """A stdlib HTTP server answering chat completions with vLLM-shaped bodies.

    Score requests (``max_tokens`` 1 with ``logprobs``) get ``letter_logprobs(text)`` for the letters
    among a top list; a text containing ``no_letter_marker`` gets a top list without any letter.
    Generate requests get a short rationale ending in the letter that a rationalize prompt names ("The
    correct answer is X."), else "A". The first ``fail_first`` requests get 503 with ``Retry-After: 0``.
    Every request's body and Authorization header are kept in ``requests`` (and appended, as JSON lines of
    the header alone, to ``record`` when given: for a server run as another process).

    For the hardening tests (a misbehaving server): ``statuses`` are the statuses of the first answers
    (each with ``Retry-After: 0`` and the request's Authorization header echoed in an OpenAI-style error
    body, as a careless proxy might); ``reply_model`` is the ``model`` string of the answers (default: the
    served name); ``mangle`` rewrites each 200 answer before it is sent; ``logprobs=False`` leaves them
    out, as servers that ignore the request field do."""

    letter_logprobs = staticmethod(letter_logprobs)

    def __init__(self, served_name: str = "Qwen/Qwen2.5-VL-3B-Instruct", fail_first: int = 0,
                 no_letter_marker: str | None = None, port: int = 0, statuses: Sequence[int] = (),
                 reply_model: str | None = None, mangle: Callable[[dict[str, Any]], Any] | None = None,
                 logprobs: bool = True, record: Path | None = None) -> None:
        self.served_name = served_name
        self.fail_first = fail_first
        self.no_letter_marker = no_letter_marker
        self.statuses = list(statuses)
        self.reply_model = reply_model
        self.mangle = mangle
        self.logprobs = logprobs
        self.record = record
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> VllmFormatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
        prompt_tokens = len(text.encode()) + 64 * sum(p["type"] == "image_url" for p in body["messages"][0]["content"])
        logprobs = None
        if body.get("max_tokens") == 1 and body.get("logprobs") and self.logprobs:
            letters = letter_logprobs(text)
            fillers = {"The": -1.1, "I": -2.3, "\n": -4.0, "Answer": -5.2, " A": -6.0}
            if self.no_letter_marker and self.no_letter_marker in text:
                letters = {}
                fillers.update({"Looking": -0.5, "From": -0.9, "(": -3.0})
            ranked = sorted({**letters, **fillers}.items(), key=lambda kv: -kv[1])[: int(body.get("top_logprobs") or 0)]
            chosen, chosen_lp = ranked[0]
            logprobs = {"content": [{**_token_entry(chosen, chosen_lp),
                                     "top_logprobs": [_token_entry(t, lp) for t, lp in ranked]}]}
            content, finish, completion = chosen, "length", 1
        else:
            named = re.search(r"The correct answer is ([A-D])\.", text)
            letter = named.group(1) if named else "A"
            content = f"From the camera's viewpoint the object lies toward that side.\nSo the answer is {letter}."
            finish, completion = "stop", 20
        message = {"role": "assistant", "content": content, "refusal": None, "annotations": None, "audio": None,
                   "function_call": None, "reasoning": None}
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish, "stop_reason": None,
                  "token_ids": None}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.served_name if self.reply_model is None else self.reply_model, "choices": [choice], "service_tier": None, "system_fingerprint": None,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion,
                          "completion_tokens": completion, "prompt_tokens_details": None},
                "prompt_logprobs": None, "prompt_token_ids": None, "kv_transfer_params": None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._send(200, None)
                elif self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{
                        "id": server.served_name, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                        "root": server.served_name, "parent": None, "max_model_len": 32768, "permission": []}]})
                else:
                    self._send(404, {"error": {"message": "Not Found", "type": "NotFoundError", "code": 404}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                authorization = self.headers.get("Authorization")
                with server.lock:
                    server.requests.append({"body": body, "authorization": authorization})
                    if server.record is not None:
                        with open(server.record, "a", encoding="utf-8") as fh:
                            fh.write(json.dumps({"authorization": authorization}) + "\n")
                    failing = server.fail_first > 0
                    server.fail_first -= failing
                    scripted = server.statuses.pop(0) if server.statuses else None
                if scripted is not None:
                    self._send(scripted, {"error": {"message": f"invalid credentials: Authorization: {authorization}",
                                                    "type": "AuthenticationError", "code": scripted}}, {"Retry-After": "0"})
                    return
                if failing:
                    self._send(503, {"error": {"message": "busy", "type": "ServiceUnavailableError", "code": 503}},
                               {"Retry-After": "0"})
                    return
                if body.get("model") != server.served_name:
                    self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                               "type": "NotFoundError", "param": "model", "code": 404}})
                    return
                answer = server.answer(body)
                self._send(200, server.mangle(answer) if server.mangle is not None else answer)

        return Handler


@pytest.fixture
def vllm_format_server() -> Iterator[VllmFormatServer]:
    with VllmFormatServer(fail_first=2) as server:
        yield server


@pytest.fixture
def secret() -> str:
    """An API key for the tests: it must reach the server and nothing in the workspace."""
    return SECRET


@pytest.fixture(scope="session")
def served_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("served") / "tiny-qwen25vl")


class TransformersServe:
    """``transformers serve MODEL`` on a loopback port (the CPU), started and stopped by the test."""

    def __init__(self, model: Path, port: int | None = None, log: Path | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TransformersServe:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([str(VENV_BIN / "transformers"), "serve", str(self.model), "--host", "127.0.0.1",
                                      "--port", str(self.port), "--device", "cpu", "--log-level", "warning"],
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "transformers serve exited while starting"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("transformers serve did not become healthy in 120 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def tiny_server(served_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServe]:
    server = TransformersServe(served_tiny, log=tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield server
    server.kill()


@pytest.fixture
def transformers_serve() -> type[TransformersServe]:
    return TransformersServe
