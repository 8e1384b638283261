"""``--serve vllm|sglang``: the job starts the engine, waits until it is healthy, and always stops it.

The engine is the executable the workspace names (``orienteer config set engines.vllm
/path/to/venv/bin/vllm``): vLLM and SGLang pin their own torch, so they live in their own environment
and this tool only runs them. The engine listens on a free loopback port, with
``--tensor-parallel-size`` from the job's GPUs; its output goes into the job's log line by line
(prefixed with its name). It is stopped when the job ends, fails or is cancelled (SIGTERM to its process
group, SIGKILL after a grace period), and dies with the job process if that is killed outright
(``PR_SET_PDEATHSIG`` on Linux). Written here because a subprocess with a health check is all it takes;
no launcher library knows these engines' command lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orienteer.data.errors import OrienteerError
from orienteer.jobs.context import JobCancelled
from orienteer.jobs.procinfo import die_with_parent

START_TIMEOUT_S = 1800.0  # a 72B checkpoint loading over several GPUs
HEALTH_POLL_S = 0.5
STOP_GRACE_S = 8.0  # below the runner's 10 s cancel grace, so a cancelled job stops its engine itself
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServeRequest:
    engine: str  # vllm or sglang
    executable: str
    model: str
    served_name: str
    tensor_parallel: int


def engine_executable(workspace: object, engine: str) -> str:
    """The configured executable of ``engine`` (workspace setting ``engines.<engine>``)."""
    from orienteer.data.ws_config import get_setting

    key = f"engines.{engine}"
    value = get_setting(workspace, key)
    if not value:
        raise OrienteerError(f"--serve {engine}: no engine configured; run `orienteer config set {key} "
                             f"/path/to/its/venv/bin/{engine}` (it runs from its own environment)")
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise OrienteerError(f"--serve {engine}: the configured {key} {str(path)!r} is not an executable file")
    return str(path)


def engine_argv(request: ServeRequest, port: int) -> list[str]:
    """The engine's command line (an argv list: nothing passes through a shell)."""
    if request.engine == "vllm":
        # --generation-config vllm: the request's sampling settings, not the checkpoint's generation_config
        # defaults (Qwen2.5-VL's top_k 1 would make every "sampled" reply greedy).
        return [request.executable, "serve", request.model, "--host", HOST, "--port", str(port),
                "--served-model-name", request.served_name, "--tensor-parallel-size", str(request.tensor_parallel),
                "--generation-config", "vllm"]
    if request.engine == "sglang":
        return [request.executable, "serve", "--model-path", request.model, "--host", HOST, "--port", str(port),
                "--served-model-name", request.served_name, "--tp-size", str(request.tensor_parallel)]
    raise OrienteerError(f"--serve expects vllm or sglang, got {request.engine!r}")


def free_port() -> int:
    """A loopback port nobody listens on now (the engine binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _pump(stream: object, name: str) -> None:
    """Copy the engine's output into the job's log, one prefixed line at a time."""
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        line = raw.decode("utf-8", errors="replace").rstrip()
        print(f"[{name}] {line}", flush=True)


def _healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://{HOST}:{port}/health", timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen[bytes], name: str, log: Callable[[str], None]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log(f"{name} stopped (exit code {proc.returncode})")


@contextlib.contextmanager
def served(request: ServeRequest, log: Callable[[str], None], should_stop: Callable[[], bool],
           start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Run the engine for the ``with`` block; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    port = free_port()
    argv = engine_argv(request, port)
    log(f"starting {request.engine} on {HOST}:{port} (tensor parallel {request.tensor_parallel}): {Path(argv[0]).name} "
        + " ".join(argv[1:]))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True, preexec_fn=die_with_parent())
    pump = threading.Thread(target=_pump, args=(proc.stdout, request.engine), daemon=True)
    pump.start()
    try:
        started = time.monotonic()
        while not _healthy(port):
            if proc.poll() is not None:
                raise OrienteerError(f"--serve {request.engine}: the engine exited with code {proc.returncode} while "
                                     "starting (its output is in the job's log above)")
            if should_stop():
                raise JobCancelled("cancelled while the engine was starting")
            if time.monotonic() - started > start_timeout_s:
                raise OrienteerError(f"--serve {request.engine}: not healthy after {start_timeout_s:.0f} s "
                                     f"(GET http://{HOST}:{port}/health)")
            time.sleep(HEALTH_POLL_S)
        log(f"{request.engine} healthy after {time.monotonic() - started:.1f} s")
        yield f"http://{HOST}:{port}/v1"
    finally:
        _stop(proc, request.engine, log)
        pump.join(timeout=5)


def tensor_parallel_size(gpu: object, gpus: object = None) -> int:
    """The job's GPU count: ``--gpus`` (``jobs.gpus.gpu_plan``) when the kind has it, else the one ``--gpu``;
    1 on the CPU."""
    from orienteer.jobs.gpus import gpu_plan

    plan = gpu_plan(None if gpu is None else str(gpu), gpus if gpus is not None else "1")
    return max(1, len(plan.gpus))
