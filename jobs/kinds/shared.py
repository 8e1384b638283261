"""Options shared by the kinds that run the model's forward pass over items (eval, saliency).

Not a kind itself: the kinds table (``__init__.py``) names the kind modules.
"""

from __future__ import annotations

from orienteer.jobs.model.vision_attention import MODES
from orienteer.jobs.params import Param

WORKERS = Param("workers", "int", 0, help="preprocessing threads (0 = automatic)")
FAST_PATH = Param(
    "vision_attention", "choice", "auto", choices=MODES,
    help="auto: the fast path (windowed vision attention, GEMM patch embedding, fused norms and SwiGLU); grouped or varlen "
         "attention; reference: transformers' code throughout",
)
