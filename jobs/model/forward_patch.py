"""Swap a module instance's ``forward`` for a faster one with the same maths, and back.

The fast paths (``vision_attention.py``, ``patch_embed.py``, ``fused_norm.py``) patch the loaded
model's modules rather than copying transformers' classes: a forward bound on the instance shadows
the class's, and removing it restores transformers' own code exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MethodType
from typing import Any


def set_forward(modules: Sequence[Any], forward: Callable[..., Any] | None) -> int:
    """Bind ``forward`` on every module (``None``: back to the class's own); the number switched."""
    for module in modules:
        if forward is None:
            module.__dict__.pop("forward", None)
        else:
            module.forward = MethodType(forward, module)
    return len(modules)


def is_patched(module: Any) -> bool:
    """Whether ``module`` runs a forward bound by ``set_forward``."""
    return "forward" in module.__dict__
