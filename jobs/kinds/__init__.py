"""The job kinds: name -> the module that defines it, imported only when the kind is asked for.

Each module defines ``KIND`` (a ``base.KindDef``: its spec dataclass, summary, hooks and ``run``).
Kind modules stay torch-free at import (torch, transformers, peft and ultralytics are imported
inside ``run``), so listing kinds, the CLI and the app's forms never load the model stack. A name
whose module is relative is looked up in this package; a dotted one is imported as written, so a
kind can live anywhere on the path. A kind whose module does not exist yet is listed as not
available, never hidden or faked.
"""

from __future__ import annotations

import importlib

from orienteer.data.errors import OrienteerError
from orienteer.jobs.kinds.base import KindDef, missing_kind

# The order is the order ``job kinds`` and the app's picker list them in.
KINDS: dict[str, str] = {
    "flip": "flip",
    "hard-negatives": "hard_negatives",
    "replay": "replay",
    "eval": "eval",
    "saliency": "saliency",
    "train": "train",
    "box-prompt": "box_prompt",
    "cot": "cot",
    "sleep": "sleep",
}


def get_kind(name: str) -> KindDef:
    """The kind called ``name`` (its module imported now); a kind with no module yet comes back
    with ``available`` false."""
    try:
        module = KINDS[name]
    except KeyError:
        raise OrienteerError(f"unknown job kind {name!r} (expected one of {', '.join(KINDS)})") from None
    full = module if "." in module else f"{__name__}.{module}"
    try:
        kind = importlib.import_module(full).KIND
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return missing_kind(name)
        raise
    if kind.name != name:
        raise OrienteerError(f"job kind {name!r}: module {full} defines the kind {kind.name!r}")
    return kind


def all_kinds() -> list[KindDef]:
    """Every registered kind, in listing order."""
    return [get_kind(name) for name in KINDS]
