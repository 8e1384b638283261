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
from typing import Any

import duckdb

from orienteer.data.catalog import get_bench, get_run
from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
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
    with ws.read() as con:
        info = get_bench(con, bench)
        where = ["i.bench_id = ?"]
        args: list[Any] = [info.bench_id]
        if selection.tasks:
            where.append("list_contains(?, i.task)")
            args.append(list(selection.tasks))
        if selection.sources:
            where.append("list_contains(?, i.source)")
            args.append(list(selection.sources))
        if selection.ids is not None:
            where.append("list_contains(?, i.item_id)")
            args.append(list(selection.ids))
        if selection.failures_of is not None:
            run = get_run(con, selection.failures_of)
            if run.bench_id != info.bench_id:
                raise OrienteerError(
                    f"item filter failures:{run.name}: that run is on benchmark {run.bench_name!r}, not {bench!r}"
                )
            where.append(
                "NOT EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = ? AND p.item_idx = i.item_idx AND p.correct)"
            )
            args.append(run.run_id)
        sql = f"SELECT {_ITEM_COLUMNS} FROM items i WHERE {' AND '.join(where)} ORDER BY i.item_idx"
        if selection.limit is not None:
            sql += f" LIMIT {max(0, selection.limit)}"
        rows = con.execute(sql, args).fetchall()
    root = Path(info.image_root) if info.image_root else ws.root
    return [_item(row) for row in rows], root


def load_item(ws: Workspace, bench: str, item_id: str) -> tuple[Item | None, Path]:
    """The item whose id is exactly ``item_id`` (no cast, no prefix, no trimming), or None, and the
    benchmark's image root."""
    with ws.read() as con:
        info = get_bench(con, bench)
        row = con.execute(f"SELECT {_ITEM_COLUMNS} FROM items i WHERE i.bench_id = ? AND i.item_id = ?",
                          [info.bench_id, item_id]).fetchone()
    root = Path(info.image_root) if info.image_root else ws.root
    return (_item(row) if row is not None else None), root


_ITEM_COLUMNS = (
    "i.item_id, i.task, i.question, i.option_letters, i.option_labels, i.answer_letter, i.images, "
    "i.source, i.reference_object, i.bbox, i.parent_item_id, i.bbox_frame"
)


def _item(row: tuple[Any, ...]) -> Item:
    return Item(
        item_id=row[0], task=row[1], question=row[2], option_letters=list(row[3]), option_labels=list(row[4]),
        answer_letter=row[5], images=list(row[6]), source=row[7], reference_object=row[8],
        bbox=list(row[9]) if row[9] is not None else None, parent_item_id=row[10], bbox_frame=int(row[11]),
    )


def run_info(ws: Workspace, run: str) -> dict[str, Any]:
    """A run's benchmark, model, notes and settings (``config``, a ``RunConfig``), and its answers by item id
    (letter, correct, probs)."""
    from orienteer.data.run_config import RunConfig

    with ws.read() as con:
        info = get_run(con, run)
        model, notes, config, parser, fmt, random_weights = con.execute(
            "SELECT model, notes, config, parser, source_format, random_weights FROM runs WHERE run_id = ?",
            [info.run_id]).fetchone()
        answers = _answers(con, info.run_id)
    return {"run": info.name, "bench": info.bench_name, "model": model, "notes": notes,
            "config": RunConfig.from_row(config, parser, model, fmt, bool(random_weights)), "answers": answers}


def _answers(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, dict[str, Any]]:
    rows = con.execute(
        """SELECT i.item_id, p.letter, p.correct, p.probs FROM predictions p
           JOIN items i ON i.item_idx = p.item_idx AND i.bench_id = (SELECT bench_id FROM runs WHERE run_id = ?)
           WHERE p.run_id = ?""",
        [run_id, run_id],
    ).fetchall()
    return {r[0]: {"letter": r[1], "correct": bool(r[2]), "probs": r[3]} for r in rows}
