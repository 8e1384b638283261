"""The engine options of the kinds that ask a model (eval, cot), and their checks. Pure Python, no I/O.

Each function returns a fresh ``option`` field, so a spec declares ``engine: str = engine_option()``.
The API key itself is never an option: ``--api-key-env`` names the environment variable that holds
it, so no spec, log, run or command preview can carry it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orienteer.data.errors import OrienteerError
from orienteer.jobs.gpus import parse_gpus
from orienteer.jobs.params import option

HF = "hf"
OPENAI = "openai"
ENGINES: tuple[str, ...] = (HF, OPENAI)
SERVE_ENGINES: tuple[str, ...] = ("vllm", "sglang")
DEFAULT_CONCURRENCY = 16
DEFAULT_RETRIES = 5
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def needs_local_gpu(params: Mapping[str, Any]) -> bool:
    """A kind's ``gpu_when``: the hf engine, or an engine the job starts itself (``--serve``), needs the
    GPU; a job that only sends requests to ``--endpoint`` does not wait in a GPU's queue."""
    return params.get("engine", HF) != OPENAI or bool(params.get("serve"))


def engine_option(openai_help: str = "ask an OpenAI-compatible server (--endpoint, or one this job starts: --serve)") -> Any:
    return option(HF, choices=ENGINES, help=f"hf: load the model in this process (transformers); openai: {openai_help}")


def endpoint_option() -> Any:
    return option(None, help="--engine openai: the server's base URL (e.g. http://gpu-box:8000/v1; no user:password@ "
                             "or ?query: the key comes from --api-key-env)")


def api_model_option(model_flag: str = "--model") -> Any:
    return option(None, help=f"--engine openai: the model name the server serves (default: the {model_flag} value)")


def concurrency_option(engine_flag: str = "--engine") -> Any:
    return option(DEFAULT_CONCURRENCY, help=f"{engine_flag} openai: requests in flight at once")


def api_key_env_option() -> Any:
    return option(DEFAULT_KEY_ENV, help="--engine openai: the environment variable holding the API key (unset: no key sent)")


def serve_option(engine_flag: str = "--engine") -> Any:
    return option(None, choices=SERVE_ENGINES,
                  help=f"{engine_flag} openai: start this engine for the job (orienteer config set engines.vllm PATH), on a "
                       "free loopback port, with --tensor-parallel-size from the job's GPUs; stopped when the job ends")


def retries_option() -> Any:
    return option(DEFAULT_RETRIES, help="--engine openai: tries after the first on 429, 5xx, timeouts and lost connections "
                                        "(with backoff); then the job fails naming the item")


@dataclass(frozen=True)
class Endpoint:
    """A server's base URL (``scheme://host:port/path``, ending in ``/v1`` by the OpenAI convention)."""

    base_url: str

    @property
    def host(self) -> str:
        """``host:port``: what a run records of the endpoint (never a path, query or credentials)."""
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine: ``localhost``, 127.0.0.0/8 or ::1 (traffic never leaves it)."""
        name = str(urlsplit(self.base_url).hostname or "").rstrip(".").lower()
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    @property
    def unencrypted_remote(self) -> bool:
        """Plain ``http://`` to another machine: whatever is sent (the API key too) crosses the network in clear."""
        return urlsplit(self.base_url).scheme == "http" and not self.loopback

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def parse_endpoint(text: str, flag: str = "--endpoint") -> Endpoint:
    """The base URL of ``--endpoint``: http(s) only, no credentials or query (they would be recorded in
    the spec); ``http://host:8000`` becomes ``http://host:8000/v1`` and a trailing ``/chat/completions``
    is dropped."""
    raw = str(text).strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise OrienteerError(f"{flag}: not a URL (expected e.g. http://localhost:8000/v1)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OrienteerError(f"{flag}: expected an http:// or https:// URL with a host (e.g. http://localhost:8000/v1)")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise OrienteerError(f"{flag}: give the base URL without user:password@, ?query or #fragment (it is recorded in "
                             "the job's spec); put the API key in the environment variable named by --api-key-env")
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if path.endswith(tail):
            path = path[: -len(tail)]
    if not path:
        path = "/v1"
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in str(parts.hostname):  # an IPv6 literal keeps its brackets
        netloc = f"[{parts.hostname}]" + (f":{port}" if port is not None else "")
    return Endpoint(urlunsplit((parts.scheme, netloc, path, "", "")))


def check_key_env(name: str) -> None:
    """``--api-key-env`` must be a variable NAME; a value that is not one is never echoed (it may be the key)."""
    if not _ENV_NAME.fullmatch(str(name or "")):
        raise OrienteerError("--api-key-env expects the NAME of an environment variable (letters, digits and _, e.g. "
                             "OPENAI_API_KEY), not the key itself; the value given is not shown")


def check_engine(spec: Any, model_flag: str = "--model") -> None:
    """Refuse engine settings that contradict each other (eval and cot specs share these fields)."""
    if spec.engine not in ENGINES:
        raise OrienteerError(f"--engine expects one of {', '.join(ENGINES)}, got {spec.engine!r}")
    openai_only = {"--endpoint": spec.endpoint, "--serve": spec.serve, "--api-model": spec.api_model}
    if spec.engine == HF:
        given = [flag for flag, value in openai_only.items() if value]
        if given:
            raise OrienteerError(f"{given[0]} is an option of --engine openai (the job runs with --engine hf)")
        return
    if bool(spec.endpoint) == bool(spec.serve):
        raise OrienteerError("--engine openai needs exactly one of --endpoint URL (a running server) or --serve vllm|sglang "
                             "(the job starts one)")
    if spec.endpoint:
        parse_endpoint(spec.endpoint)
        if parse_gpus(getattr(spec, "gpus", "1"))[0] > 1:
            raise OrienteerError("--gpus N with --endpoint: the server's GPUs are its own; --gpus sizes an engine the job "
                                 "starts (--serve), and --gpu none keeps a job that only sends requests off the GPU queue")
    if spec.serve and spec.serve not in SERVE_ENGINES:
        raise OrienteerError(f"--serve expects one of {', '.join(SERVE_ENGINES)}, got {spec.serve!r}")
    if spec.concurrency < 1:
        raise OrienteerError(f"--concurrency must be at least 1, got {spec.concurrency}")
    if spec.retries < 0:
        raise OrienteerError(f"--retries must be 0 or more, got {spec.retries}")
    check_key_env(spec.api_key_env)
    if spec.endpoint and getattr(spec, "adapter", None):  # with --serve, the job merges it into its base and serves that
        raise OrienteerError("--adapter with --endpoint: the server applies adapters itself (e.g. vllm serve ... "
                             "--enable-lora --lora-modules NAME=PATH); serve it there and pass --api-model NAME, or use "
                             "--serve vllm|sglang (the job merges the adapter into its base and serves that)")


def check_served_engine(engine: str, serve: str | None, concurrency: int, prefix: str) -> None:
    """The engine of an eval that runs on a model the job itself makes (train's closing eval, flags
    ``{prefix}engine``, ``{prefix}serve``, ``{prefix}concurrency``): hf, or openai through an engine the job
    starts. No ``--endpoint``: a server already running cannot serve a model that does not exist yet."""
    if engine not in ENGINES:
        raise OrienteerError(f"{prefix}engine expects one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == HF:
        if serve:
            raise OrienteerError(f"{prefix}serve is an option of {prefix}engine openai (the eval runs with {prefix}engine hf)")
        return
    if not serve:
        raise OrienteerError(f"{prefix}engine openai needs {prefix}serve vllm|sglang: the model is trained by this job, so "
                             "no running server (--endpoint) can already serve it; the job starts the engine on it")
    if serve not in SERVE_ENGINES:
        raise OrienteerError(f"{prefix}serve expects one of {', '.join(SERVE_ENGINES)}, got {serve!r}")
    if concurrency < 1:
        raise OrienteerError(f"{prefix}concurrency must be at least 1, got {concurrency}")


def api_model(spec: Any, model: str) -> str:
    """The name sent as the request's ``model``: ``--api-model``, else the ``--model`` value."""
    return str(spec.api_model or model)
