"""The job kinds: a static table, so listing them never imports model code.

Each kind lives in ``orienteer.jobs.kinds.<module>`` and defines ``PARAMS: tuple[Param, ...]``,
``SUMMARY: str`` and ``run(ctx: JobContext) -> None``. Kind modules import torch, transformers,
peft and ultralytics only inside functions, so loading ``PARAMS`` for a form or the CLI is cheap.
A kind whose module does not exist yet is listed as not available, never hidden or faked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from orienteer.data.errors import OrienteerError
from orienteer.jobs.params import Param


@dataclass(frozen=True)
class KindInfo:
    name: str
    module: str
    summary: str
    needs_gpu: bool

    def load(self) -> ModuleType | None:
        """The kind's module, or ``None`` when its code does not exist yet."""
        full = f"{__name__}.{self.module}"
        try:
            return importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                return None
            raise

    @property
    def available(self) -> bool:
        return self.load() is not None

    @property
    def params(self) -> tuple[Param, ...]:
        module = self.load()
        return tuple(getattr(module, "PARAMS", ())) if module else ()

    def entry(self) -> Callable[..., None]:
        module = self.load()
        if module is None:
            raise OrienteerError(f"job kind {self.name!r} is not implemented yet")
        return module.run


KINDS: dict[str, KindInfo] = {
    k.name: k
    for k in (
        KindInfo("flip", "flip", "mirror images and swap left/right in answers, options and question", False),
        KindInfo("hard-negatives", "hard_negatives", "training set that over-samples a run's commonest confusions", False),
        KindInfo("replay", "replay", "mix a share of an earlier training set into a new one", False),
        KindInfo("eval", "eval", "evaluate a model on a benchmark (score or generate mode)", True),
        KindInfo("saliency", "saliency", "input-gradient saliency maps for chosen items of a run", True),
        KindInfo("train", "train", "LoRA or full language-model fine-tuning on a dataset", True),
        KindInfo("box-prompt", "box_prompt", "draw a box on the reference object (YOLO-World) and point the question at it", True),
        KindInfo("cot", "cot", "distil chain-of-thought rationales from a teacher model", True),
        KindInfo("sleep", "sleep", "a test job: counts to N, for trying the runtime", False),
    )
}


def get_kind(name: str) -> KindInfo:
    try:
        return KINDS[name]
    except KeyError:
        raise OrienteerError(f"unknown job kind {name!r} (expected one of {', '.join(KINDS)})") from None
