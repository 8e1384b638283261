"""``--gpus``: how many processes a job spreads over, one per GPU, and which GPUs they are.

``--gpu`` (a runtime option of every kind) picks the one GPU a job runs on, or ``none`` for the CPU.
``--gpus`` (an option of the kinds that can split their work: eval, saliency, train) asks for several:

- ``N`` (a count): N processes, on GPUs ``0..N-1`` of those the job can see;
- ``I,J,...`` (a list): one process on each of these GPUs.

With ``--gpu none`` (the CPU) a count still means N processes, sharing the CPU: that is how the
multi-process paths are tested on machines without a GPU (gloo instead of NCCL). A list names GPUs
and is refused on the CPU. ``1`` (the default) is today's one process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.params import option

MAX_PROCESSES = 64
_COUNT = re.compile(r"[1-9][0-9]*")
_LIST = re.compile(r"[0-9]+(,[0-9]+)+")


def gpus_option() -> Any:
    """The ``gpus`` field of a spec that can split its work over several processes."""
    return option("1", help="processes, one per GPU: a count N (GPUs 0..N-1) or a list of GPUs (0,2); with --gpu none, "
                            "N processes share the CPU")


@dataclass(frozen=True)
class GpuPlan:
    """How a job's processes map to devices: ``devices[r]`` is rank r's GPU index, or None on the CPU."""

    processes: int
    devices: tuple[str | None, ...]

    @property
    def on_cpu(self) -> bool:
        return self.devices[0] is None

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU indices the job holds (none on the CPU)."""
        return tuple(d for d in self.devices if d is not None)

    @property
    def visible(self) -> str | None:
        """``CUDA_VISIBLE_DEVICES`` for the job (None on the CPU)."""
        return ",".join(self.gpus) or None


def parse_gpus(value: object, flag: str = "--gpus") -> tuple[int, tuple[str, ...] | None]:
    """``"4"`` -> (4, None); ``"0,2"`` -> (2, ("0", "2")). Exact: no spaces, no signs, no repeats."""
    text = str(value) if value is not None else "1"
    if _COUNT.fullmatch(text):
        n = int(text)
        if n > MAX_PROCESSES:
            raise OrienteerError(f"{flag}: at most {MAX_PROCESSES} processes, got {n}")
        return n, None
    if _LIST.fullmatch(text):
        ids = tuple(str(int(part)) for part in text.split(","))
        if len(set(ids)) != len(ids):
            raise OrienteerError(f"{flag}: GPU {text!r} names a GPU twice")
        if len(ids) > MAX_PROCESSES:
            raise OrienteerError(f"{flag}: at most {MAX_PROCESSES} GPUs, got {len(ids)}")
        return len(ids), ids
    raise OrienteerError(f"{flag} expects a count (2) or a list of GPU indices (0,1), got {text!r}")


def gpu_plan(gpu: str | None, gpus: object) -> GpuPlan:
    """The devices of a job with runtime ``gpu`` (normalised: an index or None for the CPU) and ``gpus``."""
    n, ids = parse_gpus(gpus)
    if gpu is None:
        if ids is not None:
            raise OrienteerError(f"--gpus {','.join(ids)} names GPUs but --gpu none runs on the CPU; give a count "
                                 "(--gpus 2) for several CPU processes")
        return GpuPlan(n, (None,) * n)
    if n == 1 and ids is None:
        return GpuPlan(1, (gpu,))
    if ids is None:
        ids = tuple(str(i) for i in range(n))
    return GpuPlan(n, ids)
