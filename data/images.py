"""Finding an item's image files under a benchmark's image root."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SAMPLE = 200


def resolve_image(root: Path | str, relative: str) -> Path:
    """The file for an image path; tolerates a root that already ends in the path's first folder.

    ViewSpatial paths start with ``ViewSpatial-Bench/...``; users point ``--images`` either at
    the folder holding ``ViewSpatial-Bench`` or at ``ViewSpatial-Bench`` itself.
    """
    root = Path(root)
    rel = Path(relative)
    if rel.is_absolute():
        return rel
    direct = root / rel
    if direct.exists():
        return direct
    parts = rel.parts
    if parts and parts[0] == root.name:
        alternative = root.parent / rel
        if alternative.exists():
            return alternative
    return direct


def count_present(root: Path, relatives: Sequence[str], sample: int = SAMPLE) -> tuple[int, int]:
    """(found, checked) over an evenly spread sample of image paths: a cheap sanity check."""
    if not relatives:
        return 0, 0
    step = max(1, len(relatives) // sample)
    picked = list(relatives[::step])[:sample]
    return sum(resolve_image(root, r).is_file() for r in picked), len(picked)
