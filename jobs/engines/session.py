"""One job's conversation with an endpoint: open it (or start the engine), send what is missing, record.

``ask_all`` sends one request per ``Ask`` with bounded concurrency. Bodies are built in threads (image
decode, resize, PNG) while earlier requests are in flight. Each answer is handed to ``on_answer`` as it
arrives, in the event loop's thread, so the caller appends it to its resume file (fsynced) at once: a
killed job loses only the requests in flight. With ``probe`` the first request goes alone and its answer
is checked before anything else is sent (score mode: does the server return log-probabilities at all?).

The API key goes only where it may be needed: never to an engine the job starts itself (``--serve``, on
loopback: it asks for none, and the user's hosted-API key has no business there), and to an
``--endpoint`` as given, with one warning in the job's log when that is plain ``http://`` to another
machine (the key then crosses the network unencrypted; refusing would break private clusters).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.jobs.context import JobContext
from orienteer.jobs.engines.client import ChatClient, api_key, run_bounded
from orienteer.jobs.engines.options import Endpoint, parse_endpoint

PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class Ask:
    """One request to make: ``label`` names it in errors (``item 12``); ``build`` returns its body, or
    None when the request is not to be sent (the builder recorded why)."""

    key: Any
    label: str
    build: Callable[[], dict[str, Any] | None]


@contextlib.contextmanager
def open_endpoint(ctx: JobContext, spec: Any, model: str, served_name: str) -> Iterator[Endpoint]:
    """The spec's ``--endpoint``, or the engine ``--serve`` names, started for the block and stopped after."""
    if not spec.serve:
        yield parse_endpoint(spec.endpoint)
        return
    from orienteer.jobs.engines.serve import ServeRequest, engine_executable, served, tensor_parallel_size

    request = ServeRequest(spec.serve, engine_executable(ctx.workspace, spec.serve), model, served_name,
                           tensor_parallel_size(ctx.params.get("gpu"), getattr(spec, "gpus", None)))
    with served(request, ctx.log, ctx.should_stop) as url:
        yield parse_endpoint(url)


def served_model(ctx: JobContext, serve: str | None, model: str, adapter: str | None = None) -> tuple[str, str | None]:
    """What the engine loads, and the adapter merged into it: ``model`` as given (an ``--endpoint``
    holds its own model; ``--serve`` without an adapter), else the adapter (``adapter``, which wins over an
    adapter folder given as ``model``, as in-process) merged into its base in the job's resume folder."""
    if not serve:
        return model, None
    from orienteer.jobs.model.loading import check_adapter, resolve_model_ref

    base, implied = resolve_model_ref(model)
    adapter = check_adapter(adapter) or implied
    if adapter is None:
        return model, None
    from orienteer.jobs.model.merge import merged_for_serving

    return str(merged_for_serving(base, adapter, ctx.resume_dir, ctx.log)), adapter


def request_key(spec: Any) -> str | None:
    """The key sent with the requests: none to an engine the job starts (``--serve``), else ``--api-key-env``'s."""
    return None if getattr(spec, "serve", None) else api_key(spec.api_key_env)


def describe_key(ctx: JobContext, spec: Any, endpoint: Endpoint) -> str:
    """What the log says about the key (the variable's name only); warns once when it would travel unencrypted."""
    if getattr(spec, "serve", None):
        return "no API key (the engine this job started, on loopback)"
    if request_key(spec) is None:
        return f"no API key (${spec.api_key_env} is not set)"
    if endpoint.unencrypted_remote:
        ctx.warn(f"the API key from ${spec.api_key_env} is sent to {endpoint.host} over plain http://: it travels "
                 "unencrypted (use https://, a loopback address, or unset the variable if the server needs no key)")
    return f"API key from ${spec.api_key_env}"


class Progress:
    """``ctx.progress`` at most every half second, with the rate of this session's answers and an ETA."""

    def __init__(self, ctx: JobContext, done: int, total: int, unit: str) -> None:
        self.ctx, self.done, self.total, self.unit = ctx, done, total, unit
        self.new = 0
        self.t0 = time.time()
        self.last = 0.0
        ctx.progress(done, total, unit, "resumed" if done else "starting")

    def add(self, n: int = 1) -> None:
        self.done += n
        self.new += n
        now = time.time()
        if now - self.last < PROGRESS_EVERY_S and self.done < self.total:
            return
        self.last = now
        rate = self.new / max(1e-9, now - self.t0)
        eta = int((self.total - self.done) / rate) if rate else 0
        self.ctx.progress(self.done, self.total, self.unit, f"{rate:.1f} {self.unit}/s, ETA {eta // 60}:{eta % 60:02d}")


def ask_all(ctx: JobContext, spec: Any, endpoint: Endpoint, asks: Sequence[Ask],
            on_answer: Callable[[Ask, dict[str, Any]], None],
            probe: Callable[[Ask, dict[str, Any]], None] | None = None, trust_env: bool = True) -> None:
    """Send every ask (``probe`` checks the first answer before the rest are sent); raises the first
    failure (``client.EndpointError``: one line naming the item) or ``JobCancelled``."""
    if not asks:
        return
    asyncio.run(_ask_all(ctx, spec, endpoint, asks, on_answer, probe, trust_env))


async def _ask_all(ctx: JobContext, spec: Any, endpoint: Endpoint, asks: Sequence[Ask],
                   on_answer: Callable[[Ask, dict[str, Any]], None],
                   probe: Callable[[Ask, dict[str, Any]], None] | None, trust_env: bool) -> None:
    client = ChatClient(endpoint, request_key(spec), spec.concurrency, spec.retries, trust_env=trust_env)

    async def one(ask: Ask, check: Callable[[Ask, dict[str, Any]], None] | None = None) -> bool:
        body = await asyncio.to_thread(ask.build)
        if body is None:
            return False
        answer = await client.complete(body, ask.label)
        if check is not None:
            check(ask, answer)
        on_answer(ask, answer)
        return True

    async def each(ask: Ask) -> None:
        await one(ask)

    try:
        rest = list(asks)
        while probe is not None and rest:  # the first ask that is sent goes alone, and is checked
            ctx.check_stop()
            if await one(rest.pop(0), probe):
                break
        await run_bounded(rest, each, spec.concurrency, ctx.should_stop)
    finally:
        await client.aclose()
