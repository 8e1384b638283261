"""What a job kind module declares: ``KIND = KindDef(...)``, everything about the kind in one place.

A kind module defines its spec (a frozen dataclass whose fields are ``params.option``s), its
``run(ctx)`` and ``KIND``: name, summary, whether it needs a GPU, the names it reads and creates
(checked before a job exists), its optional ``check`` and ``preflight`` hooks and how its form is
prefilled from what the user was looking at. The CLI, ``job kinds``, the app's forms and the
runtime read only this, so a new kind is one new module (plus its line in the registry).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from orienteer.data.errors import OrienteerError
from orienteer.jobs.params import Param, spec_from_params, spec_params

if TYPE_CHECKING:
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.gpus import GpuPlan


class NewName(NamedTuple):
    """A catalog name a job will create: refused before the job exists when it is taken."""

    name: str
    table: str  # runs, benchmarks, datasets or models
    flag: str  # the option that names it, for the error message


def new_names(spec: Any, **tables: str) -> list[NewName]:
    """``new_names(spec, run="runs")``: one ``NewName`` per option given a value."""
    out = []
    for key, table in tables.items():
        value = getattr(spec, key)
        if value:
            out.append(NewName(str(value), table, "--" + key.replace("_", "-")))
    return out


@dataclass(frozen=True)
class Here:
    """What the user was looking at when they asked for a job form; every part may be missing."""

    run: str | None = None  # the run under the cursor
    bench: str | None = None
    model: str | None = None  # a registered model's name or a folder
    task: str | None = None  # the table cell's task
    selection: str | None = None  # ``ids-file:PATH`` of the marked rows
    pool: str | None = None  # a training split outside the run's benchmark family

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> Here:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in context.items() if k in known and v is not None})

    @property
    def task_clause(self) -> str:
        """``;task:NAME`` to append to another item filter, or nothing."""
        return f";task:{self.task}" if self.task else ""


def unique_name(base: str) -> str:
    """``base`` stamped with the time: a fresh output name for a prefilled form."""
    return f"{base}-{time.strftime('%m%d-%H%M%S')}"


def _no_names(spec: Any) -> list[NewName]:
    return []


def _no_prefill(here: Here) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class KindDef:
    """One job kind. ``spec`` is its frozen options dataclass; ``run(ctx)`` does the work with
    ``ctx.spec`` an instance of it.

    ``reads``: ``(option, table)`` for options that name something the job reads (``runs``,
    ``benchmarks``, ``datasets``, or ``pools``: a benchmark or a dataset); it must exist before the
    job is created. ``models``: options that name a model to load (a registered name becomes its
    folder). ``outputs(spec)``: the catalog names the job will create. ``check(spec)``: refuse a spec
    that cannot work, cheaply; ``preflight(ws, spec)``: the same with the workspace at hand.
    ``prefill(here)``: option values for a form opened from ``here``. ``gpu_when(params)``: for a kind
    that needs a GPU, whether these params do (default: always). ``check_devices(spec, plan)``: refuse a
    spec its processes and devices (``--gpus`` on ``--gpu``, ``jobs.gpus.gpu_plan``) cannot run.
    """

    name: str
    spec: type
    summary: str
    run: Callable[..., None]
    needs_gpu: bool = False
    reads: tuple[tuple[str, str], ...] = ()
    models: tuple[str, ...] = ()
    outputs: Callable[[Any], Sequence[NewName]] = _no_names
    check: Callable[[Any], None] | None = None
    preflight: Callable[[Workspace, Any], None] | None = None
    prefill: Callable[[Here], dict[str, Any]] = _no_prefill
    gpu_when: Callable[[Mapping[str, Any]], bool] | None = None
    check_devices: Callable[[Any, GpuPlan], None] | None = None
    available: bool = field(default=True)

    def wants_gpu(self, params: Mapping[str, Any]) -> bool:
        """Whether a job with ``params`` takes a GPU when ``--gpu`` is not given: ``needs_gpu``, unless the
        kind's ``gpu_when`` says these params need none (an eval that only sends requests to a server)."""
        return self.needs_gpu and (self.gpu_when is None or self.gpu_when(params))

    @property
    def params(self) -> tuple[Param, ...]:
        return spec_params(self.spec)

    def make_spec(self, params: Mapping[str, Any]) -> Any:
        """The typed spec of a params dict (a job folder's, or a form's once completed)."""
        return spec_from_params(self.spec, params, self.name)

    def output_names(self, params: Mapping[str, Any]) -> list[NewName]:
        return list(self.outputs(self.make_spec(params)))


@dataclass(frozen=True)
class NoOptions:
    """The spec of a kind whose module does not exist yet."""


def missing_kind(name: str) -> KindDef:
    """A registered kind whose module is not there: listed, marked, never started (its ``run`` refuses)."""
    def not_implemented(ctx: Any) -> None:
        raise OrienteerError(f"job kind {name!r} is not implemented yet")

    return KindDef(name=name, spec=NoOptions, summary="", run=not_implemented, available=False)
