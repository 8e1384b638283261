"""Short display names for tasks and categories, shared by the CLI tables and the app."""

from __future__ import annotations

from typing import Any

from orienteer.core.chance import DECK_DISPLAY
from orienteer.core.directions import CATEGORY_DISPLAY, Category

SHORT_TASKS = {
    "Camera perspective - Relative Direction": "Cam Rel.Dir",
    "Camera perspective - Object View Orientation": "Cam Obj.Ori",
    "Person perspective - Object View Orientation": "Per Obj.Ori",
    "Person perspective - Relative Direction": "Per Rel.Dir",
    "Person perspective - Scene Simulation Relative Direction": "Per Sce.Sim",
}


def short_task(task: str) -> str:
    return SHORT_TASKS.get(task, task)


def category_name(value: str | None) -> str:
    """Display name of a category key of either grouping (fine categories, or the deck's merged ones)."""
    if value is None:
        return ""
    if value in DECK_DISPLAY:
        return DECK_DISPLAY[value]
    try:
        return CATEGORY_DISPLAY[Category(value)]
    except ValueError:
        return value


def settings_line(config: Any) -> str:
    """A run's settings (a ``RunConfig``, or a mapping) in a few words for one line: mode, prompt and its
    template hash, frame sizing, the generate cap and "truncated: N" (replies that hit it), the training set,
    and an allowed test overlap. Plain text: the caller escapes it for markup."""
    parts: list[str] = []
    engine = config.get("engine")
    # Orienteer's own eval (transformers) is the default, and an imported run shows its file format elsewhere
    if engine and engine not in ("hf", "imported"):
        host = config.get("endpoint_host")
        parts.append(f"engine {engine}" + (f" at {host}" if host else ""))
    if config.get("mode"):
        parts.append(str(config.get("mode")))
    if config.get("prompt"):
        digest = str(config.get("prompt_hash") or "")[:8]
        parts.append(f"prompt {config.get('prompt')}" + (f" ({digest})" if digest else ""))
    if config.get("resize") == "budget":
        parts.append(f"resize budget {config.get('max_pixels')} px")
    elif config.get("resize"):
        parts.append(f"resize {config.get('resize')}")
    if config.get("max_new_tokens") is not None:
        parts.append(f"max {config.get('max_new_tokens')} new tokens")
    if config.get("truncated") is not None:
        parts.append(f"truncated: {config.get('truncated')}")
    if config.get("trained_on"):
        examples = config.get("trained_on_examples")
        parts.append(f"trained on {config.get('trained_on')}" + (f" ({examples} examples)" if examples is not None else ""))
    if config.get("allow_overlap"):
        overlap = config.get("overlap")
        items = overlap.get("items") if isinstance(overlap, dict) else None
        parts.append("TEST OVERLAP ALLOWED" + (f" ({items} items)" if items is not None else ""))
    return " · ".join(parts)
