"""Which items a job works on: a small filter language shared by the CLI, the TUI and every kind.

``spec`` is ``None``/``"all"`` or ``;``-separated clauses: ``task:NAME``, ``ids:ID1,ID2``,
``ids-file:PATH`` (one id per line; what the TUI writes for marked rows), ``failures:RUN`` (items
RUN got wrong, missing answers included), ``source:NAME`` and ``limit:N``. Clauses narrow each
other; the result keeps benchmark order. Kept as plain text so a job's spec stays readable and
re-runnable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.data.service import WorkspaceService
from orienteer.data.workspace import Workspace

CLAUSES = ("task", "ids", "ids-file", "failures", "source", "limit")


@dataclass(frozen=True)
class Selection:
    tasks: tuple[str, ...] = ()
    ids: tuple[str, ...] | None = None
    failures_of: str | None = None
    sources: tuple[str, ...] = ()
    limit: int | None = None


def parse_spec(spec: str | None) -> Selection:
    """Parse the filter text; unknown clauses and bad numbers are one-line errors."""
    if spec is None or not spec.strip() or spec.strip() == "all":
        return Selection()
    tasks: list[str] = []
    ids: list[str] | None = None
    failures_of: str | None = None
    sources: list[str] = []
    limit: int | None = None
    for clause in (c.strip() for c in spec.split(";")):
        if not clause or clause == "all":
            continue
        key, sep, value = clause.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in CLAUSES:
            raise OrienteerError(f"item filter {clause!r}: expected one of {', '.join(c + ':...' for c in CLAUSES)}")
        if key == "task":
            tasks.append(value)
        elif key == "source":
            sources.append(value)
        elif key in ("ids", "ids-file"):
            new = _read_ids_file(value) if key == "ids-file" else [v.strip() for v in value.split(",") if v.strip()]
            if ids is None:
                ids = new
            else:
                keep = set(new)
                ids = [i for i in ids if i in keep]
        elif key == "failures":
            failures_of = value
        elif key == "limit":
            try:
                limit = int(value)
            except ValueError:
                raise OrienteerError(f"item filter {clause!r}: limit expects a whole number") from None
    return Selection(tuple(tasks), tuple(ids) if ids is not None else None, failures_of, tuple(sources), limit)


def _read_ids_file(path: str) -> list[str]:
    from orienteer.data.images import path_problem

    file = Path(path).expanduser()
    problem = path_problem(file)
    if problem is not None:
        raise OrienteerError(f"item filter: ids file {file}: {problem} (expected a file of one item id per line)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrienteerError(f"item filter: ids file {file} cannot be read ({exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_items(ws: Workspace, bench: str, spec: str | None = None) -> tuple[list[Item], Path]:
    """The benchmark's items chosen by ``spec``, in benchmark order, and its image root."""
    selection = parse_spec(spec)
    with WorkspaceService(ws) as service:
        return service.load_items(bench, tasks=selection.tasks, sources=selection.sources, ids=selection.ids,
                                  failures_of=selection.failures_of, limit=selection.limit)


def load_item(ws: Workspace, bench: str, item_id: str) -> tuple[Item | None, Path]:
    """The item whose id is exactly ``item_id`` (no cast, no prefix, no trimming), or None, and the
    benchmark's image root."""
    with WorkspaceService(ws) as service:
        return service.load_item(bench, item_id)
