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
