"""Options shared by the kinds that run the model's forward pass over items (eval, saliency).

Not a kind itself: the registry (``__init__.py``) names the kind modules. Each function returns a
fresh ``option`` field, so a spec declares ``workers: int = workers_option()`` where it wants it.
"""

from __future__ import annotations

from typing import Any

from orienteer.jobs.params import option
from orienteer.jobs.settings import VISION_ATTENTION_MODES


def workers_option() -> Any:
    return option(0, help="preprocessing threads (0 = automatic)")


def vision_attention_option() -> Any:
    return option("auto", choices=VISION_ATTENTION_MODES,
                  help="auto: the fast path (windowed vision attention, GEMM patch embedding, fused norms and SwiGLU); "
                       "grouped or varlen attention; reference: transformers' code throughout")
