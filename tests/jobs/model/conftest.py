"""Fixtures for the model-layer tests: one tiny random Qwen2.5-VL and one small demo workspace per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "tiny-qwen25vl")


@pytest.fixture
def fresh(tiny_model_dir: Path) -> Any:
    """The tiny model with transformers' own code throughout, loaded anew: for tests that switch its fast path."""
    from orienteer.jobs.model.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu", vision_attention="reference")


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path) -> Any:
    """The tiny model loaded in fp32 on the CPU (fast vision attention), shared read-only by tests."""
    from orienteer.jobs.model.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="session")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A 24-item demo workspace with rendered images (single- and multi-frame items, bboxes)."""
    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(path, n_items=24)
    return Workspace(path)


@pytest.fixture
def make_ctx() -> Any:
    return _make_ctx


def _make_ctx(ws: Any, kind: str, params: dict[str, Any], root: Path, resume: Path | None = None) -> Any:
    """A JobContext in ``root`` with the kind's defaults filled in, as the runner would build it."""
    from orienteer.jobs.context import JobContext
    from orienteer.jobs.kinds import get_kind
    from orienteer.jobs.params import complete

    info = get_kind(kind)
    full = complete(kind, info.params, params)
    job_dir = root / "job"
    job_dir.mkdir(parents=True, exist_ok=True)
    resume_dir = resume or root / "resume"
    resume_dir.mkdir(parents=True, exist_ok=True)
    return JobContext(job_id=root.name, kind=kind, params=full, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=resume_dir)


def _run_under_triton_interpreter(script: str) -> None:
    """Run ``script`` in a fresh interpreter with ``TRITON_INTERPRET=1`` (set before Triton is imported,
    so kernels run on the CPU); it must print ``ok``."""
    import subprocess
    import sys

    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture
def run_under_triton_interpreter() -> Any:
    return _run_under_triton_interpreter
