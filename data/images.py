"""Finding an item's image files under a benchmark's image root, and loading them.

Every part of Orienteer that reads an item's pixels (eval, saliency, flip, box-prompt, the app's
image view) loads them with ``open_rgb``, the way upstream's ``evaluate.py`` does through
qwen-vl-utils: ``PIL.Image.open``, the stored pixels as they are (no EXIF rotation), an RGBA image
composited on white (``qwen_vl_utils.to_rgb``), anything else ``convert("RGB")``. So a box drawn,
a map measured and a frame shown all sit on the pixels the model saw. Pillow only, imported lazily.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

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


def path_problem(path: Path | str) -> str | None:
    """Why ``path`` is not a readable image file, in a few words, or None when it is a regular file:
    ``not found``, ``broken symlink``, ``symlink loop`` (``Path.exists`` and ``is_file`` say False for a
    loop, which read as "not found"), ``a folder``, or the OS's reason."""
    from orienteer.data.fileio import file_kind, os_reason

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symlink" if os.path.islink(path) else "not found"
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else os_reason(exc)
    return None if stat.S_ISREG(st.st_mode) else file_kind(st.st_mode)


def count_present(root: Path, relatives: Sequence[str], sample: int = SAMPLE) -> tuple[int, int]:
    """(found, checked) over an evenly spread sample of image paths: a cheap sanity check."""
    if not relatives:
        return 0, 0
    step = max(1, len(relatives) // sample)
    picked = list(relatives[::step])[:sample]
    return sum(resolve_image(root, r).is_file() for r in picked), len(picked)


def to_rgb(image: Image.Image) -> Image.Image:
    """``qwen_vl_utils.to_rgb``: RGBA on a white background, any other mode ``convert("RGB")``
    (a palette image's transparency is dropped, as upstream drops it). Always a new image."""
    from PIL import Image

    if image.mode == "RGBA":
        out = Image.new("RGB", image.size, (255, 255, 255))
        out.paste(image, mask=image.split()[3])
        return out
    return image.convert("RGB")


def open_rgb(path: Path | str) -> Image.Image:
    """The image at ``path`` as upstream's model input starts: its raw pixels (EXIF orientation is
    *not* applied), as RGB by ``to_rgb``. Raises what ``Image.open`` raises."""
    return open_rgb_sized(path)[0]


def open_rgb_sized(path: Path | str, draft_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """``open_rgb`` and the stored (width, height). ``draft_side`` (for display only) lets a JPEG
    decode at a reduced scale that still covers that many pixels a side; the size is the full one."""
    from PIL import Image

    with Image.open(path) as image:
        size = image.size
        if draft_side and image.format == "JPEG":
            image.draft("RGB", (draft_side, draft_side))
        return to_rgb(image), size
