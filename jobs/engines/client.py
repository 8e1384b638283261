"""The HTTP side: chat-completions requests with bounded concurrency, retries with backoff, and the key.

httpx rather than the ``openai`` package: httpx is already installed with the model stack (huggingface_hub
uses it), it returns the raw JSON (score mode reads vLLM's ``logprobs`` as the server wrote them, and any
OpenAI-compatible server's extra fields survive), and its async client cancels in-flight requests cleanly
when a job is cancelled or one item fails. The ``openai`` package would add pydantic and its own retry
policy to the job's environment for no gain here. The retry policy is small and written out below:
429, 408, 409 and 5xx answers, timeouts and lost connections are retried ``retries`` times with
exponential backoff and jitter (honouring ``Retry-After``); any other answer fails at once.

The API key is read from the environment (``--api-key-env``) when the client is made, sent only as the
``Authorization`` header, and cut out of every message this module raises.

A 200 answer is untrusted input: ``complete`` checks the shape that the callers read (``choices[0]`` and
its ``message`` objects, ``content`` a string or null, ``logprobs`` as the OpenAI schema has it) and fails
naming the item rather than letting a malformed reply surface later as an ``AttributeError``; the
server-supplied ``model`` string (it goes into log lines, errors and the run's settings) is cut to one
line of at most ``MODEL_CHARS`` characters, with the key taken out.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobCancelled
from orienteer.jobs.engines.options import Endpoint

RETRY_STATUS = frozenset({408, 409, 429})
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # a long rationale from a busy server
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 60.0
STOP_POLL_S = 0.2
MODEL_CHARS = 200  # a served model id is a name or a path; anything longer is not one

T = TypeVar("T")


class EndpointError(OrienteerError):
    """A request that failed for good (after the retries, or at once for an answer that retrying cannot fix)."""


def api_key(env_name: str) -> str | None:
    """The key from the environment variable ``env_name``; None when unset or empty."""
    value = os.environ.get(env_name, "").strip()
    return value or None


class ChatClient:
    """Posts chat-completions requests to one endpoint; ``redact`` keeps the key out of messages."""

    def __init__(self, endpoint: Endpoint, key: str | None, concurrency: int, retries: int,
                 trust_env: bool = True, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        import httpx

        self.endpoint = endpoint
        self.retries = retries
        self._key = key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.AsyncClient(
            headers=headers, trust_env=trust_env,
            timeout=httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def redact(self, text: str, limit: int = 300) -> str:
        """``text`` on one line, at most ``limit`` printable characters, with the key (if any) replaced by ``***``."""
        text = str(text)
        if self._key:
            text = text.replace(self._key, "***")
        text = " ".join(text.split())
        cut = "".join(c if c.isprintable() else "?" for c in text[:limit])  # no terminal control characters
        return cut + ("..." if len(text) > limit else "")

    async def complete(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        """The JSON answer to ``body``; ``what`` names the request (``item 12``) in the one-line error."""
        import httpx

        url = self.endpoint.url("chat/completions")
        tries = self.retries + 1
        reason = ""
        for attempt in range(tries):
            delay: float | None = None
            try:
                response = await self._http.post(url, json=body)
            except httpx.TimeoutException as exc:
                reason = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__}: {exc})" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        raise EndpointError(f"{what}: {self.endpoint.host} answered 200 with a body that is not JSON") from None
                    if not isinstance(data, dict) or not data.get("choices"):
                        raise EndpointError(f"{what}: {self.endpoint.host} answered without choices: "
                                            f"{self.redact(response.text)}")
                    problem = reply_problem(data)
                    if problem is not None:
                        raise EndpointError(f"{what}: {self.endpoint.host} answered 200 with a malformed reply: {problem}")
                    model = data.get("model")
                    data["model"] = self.redact(model, MODEL_CHARS) if isinstance(model, str) else ""
                    return data
                reason = f"HTTP {status}: {self.redact(response.text)}"
                if status not in RETRY_STATUS and status < 500:
                    raise EndpointError(f"{what}: {self.endpoint.host} refused the request ({reason})")
                delay = _retry_after(response.headers.get("retry-after"))
            if attempt + 1 < tries:
                await asyncio.sleep(delay if delay is not None else backoff(attempt))
        raise EndpointError(f"{what}: {self.endpoint.host} gave no answer after {tries} "
                            f"tr{'y' if tries == 1 else 'ies'} ({self.redact(reason)})")


def _kind(value: object) -> str:
    """A JSON value's type in JSON's words (for an error line: never the value, which may be huge)."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def reply_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a 200 answer's shape, in a few words; None when the parts the jobs read are well-formed."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return f"choices is {_kind(choices)}, not an array"
    choice = choices[0]
    if not isinstance(choice, dict):
        return f"choices[0] is {_kind(choice)}, not an object"
    message = choice.get("message")
    if not isinstance(message, dict):
        return f"choices[0].message is {_kind(message)}, not an object"
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        return f"choices[0].message.content is {_kind(content)}, not a string or null"
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        return f"choices[0].logprobs is {_kind(logprobs)}, not an object or null"
    tokens = logprobs.get("content")
    if tokens is None:
        return None
    if not isinstance(tokens, list):
        return f"choices[0].logprobs.content is {_kind(tokens)}, not an array or null"
    for i, token in enumerate(tokens):
        if not isinstance(token, dict):
            return f"choices[0].logprobs.content[{i}] is {_kind(token)}, not an object"
        top = token.get("top_logprobs")
        if top is not None and not isinstance(top, list):
            return f"choices[0].logprobs.content[{i}].top_logprobs is {_kind(top)}, not an array"
        for j, entry in enumerate(top or []):
            if not isinstance(entry, dict):
                return f"choices[0].logprobs.content[{i}].top_logprobs[{j}] is {_kind(entry)}, not an object"
    return None


def backoff(attempt: int) -> float:
    """Seconds before try ``attempt + 2``: 1, 2, 4, ... capped at 30, times a random 0.5-1 (jitter)."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt) * (0.5 + random.random() / 2)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(RETRY_AFTER_CAP_S, max(0.0, float(value))) if value else None
    except ValueError:
        return None


async def run_bounded(items: Iterable[T], work: Callable[[T], Awaitable[None]], concurrency: int,
                      should_stop: Callable[[], bool]) -> None:
    """``work(item)`` for every item, ``concurrency`` at a time. The first failure (or a stop request:
    ``JobCancelled``) cancels the rest, whose requests are dropped unrecorded, and is raised."""
    source = iter(items)

    async def worker() -> None:
        for item in source:  # one shared iterator: each item goes to exactly one worker
            await work(item)

    async def watch() -> None:
        while not should_stop():
            await asyncio.sleep(STOP_POLL_S)
        raise JobCancelled("cancelled")

    workers = {asyncio.ensure_future(worker()) for _ in range(max(1, concurrency))}
    watcher = asyncio.ensure_future(watch())
    pending: set[asyncio.Future[None]] = workers | {watcher}
    try:
        while any(not w.done() for w in workers):
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
