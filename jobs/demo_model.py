"""The demo workspace's tiny random Qwen2.5-VL: real eval and saliency jobs without downloading weights.

Built from a config and saved with ``save_pretrained`` into the demo folder, then registered as a
model so the eval form offers it. Its answers are noise; runs made with it say "random weights".
"""

from __future__ import annotations

from orienteer.data.models import register_model
from orienteer.data.service import WorkspaceService
from orienteer.data.workspace import Workspace

DEMO_MODEL_NAME = "tiny-random-qwen2.5-vl"


def add_demo_model(ws: Workspace) -> str:
    """Build and register the tiny model unless it is there; returns a line saying what happened."""
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl, model_stack_installed, quiet_transformers

    if not model_stack_installed():
        return "tiny model skipped: torch and transformers are not installed (pip install -e '.[ml]')"
    quiet_transformers()

    folder = ws.root / "models" / "tiny-qwen2.5-vl-random"
    with WorkspaceService(ws) as service:
        known = {m.name: m for m in service.models()}
    if DEMO_MODEL_NAME in known and (folder / "config.json").is_file():
        return f"tiny model: {folder} (registered as {DEMO_MODEL_NAME})"
    build_tiny_qwen25vl(folder)
    register_model(ws, DEMO_MODEL_NAME, folder, base_model=None, method="random-init",
                   notes="tiny Qwen2.5-VL with random weights, for trying jobs; its answers are noise", replace=True)
    return f"tiny model built: {folder} (registered as {DEMO_MODEL_NAME}; random weights)"
