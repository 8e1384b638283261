"""Short display names for tasks and categories, shared by the CLI tables and the app."""

from __future__ import annotations

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


SETTING_ORDER = ("mode", "prompt", "prompt_hash", "resize", "max_pixels", "max_new_tokens", "truncated", "adapter",
                 "allow_overlap", "overlap")


def settings_line(config: dict[str, object]) -> str:
    """A run's settings (``runs.config``) as one plain ``key value · ...`` line, known keys first; the
    caller escapes it for markup. ``truncated`` reads "truncated: N" (replies that hit the token cap)."""
    keys = [k for k in SETTING_ORDER if k in config] + sorted(k for k in config if k not in SETTING_ORDER)
    parts = []
    for key in keys:
        value = config[key]
        if isinstance(value, (dict, list)):
            continue
        parts.append(f"{key}: {value}" if key == "truncated" else f"{key} {value}")
    return " · ".join(parts)
