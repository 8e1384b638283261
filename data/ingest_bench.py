"""Importing a benchmark file as a named benchmark in the workspace."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from orienteer.data.catalog import find_bench
from orienteer.data.errors import OrienteerError, WorkspaceError
from orienteer.data.formats import bench_generic, bench_viewspatial
from orienteer.data.formats.detect import BENCH_FORMATS, detect_bench_format
from orienteer.data.images import count_present
from orienteer.data.items import Item
from orienteer.data.single import single_value
from orienteer.data.staging import load_columns
from orienteer.data.workspace import Workspace

# The prefix of padded ids a benchmark's prediction files may use: "viewspatial_test_" + "000123" is
# item 123. It is data stored with the benchmark (``import bench --id-prefix``), not a table in code;
# a ViewSpatial JSON import gets the prefix its official tools write unless told otherwise.
DEFAULT_ID_PREFIX = {bench_viewspatial.FORMAT: "viewspatial_test_"}
_ID_PREFIX = re.compile(r"[A-Za-z0-9_.:/#@+=-]{0,63}[A-Za-z_.:/#@+=-]")


def check_id_prefix(prefix: str) -> str | None:
    """``prefix`` when usable (1-64 letters, digits or ``_ . : / # @ + = -``, not ending in a digit, so
    where the number starts is never in doubt); ``""`` means none. Raises OrienteerError otherwise."""
    if prefix == "":
        return None
    if not _ID_PREFIX.fullmatch(prefix):
        raise OrienteerError(
            f"id prefix {prefix[:60]!r} is not usable (expected 1-64 letters, digits or _ . : / # @ + = -, "
            "not ending in a digit, e.g. viewspatial_test_; or \"\" for none)"
        )
    return prefix


@dataclass(frozen=True)
class BenchImport:
    name: str
    bench_id: int
    n_items: int
    tasks: dict[str, int]
    format: str
    image_root: str
    images_found: int
    images_checked: int
    replaced: bool
    id_prefix: str | None = None


def read_benchmark(path: Path, fmt: str | None = None, mapping: Mapping[str, str] | None = None) -> tuple[str, list[Item]]:
    fmt = fmt or detect_bench_format(path)
    if fmt == bench_viewspatial.FORMAT:
        return fmt, bench_viewspatial.read_viewspatial_bench(path)
    if fmt == bench_generic.FORMAT:
        return fmt, bench_generic.read_generic_bench(path, mapping)
    raise OrienteerError(f"unknown benchmark format {fmt!r} (expected one of {', '.join(BENCH_FORMATS)})")


ITEM_TYPES: dict[str, str] = {
    "bench_id": "INTEGER", "item_idx": "INTEGER", "item_id": "VARCHAR", "task": "VARCHAR", "question": "VARCHAR",
    "option_letters": "VARCHAR[]", "option_labels": "VARCHAR[]", "answer_letter": "VARCHAR", "answer_label": "VARCHAR",
    "images": "VARCHAR[]", "source": "VARCHAR", "reference_object": "VARCHAR", "bbox": "DOUBLE[]",
    "parent_item_id": "VARCHAR", "bbox_frame": "INTEGER",
}


def stage_items(con: duckdb.DuckDBPyConnection, items: Sequence[Item], bench_id: int, table: str = "new_items") -> None:
    """The items as a temp table with the workspace's ``items`` columns (inserted by name, not position)."""
    columns: dict[str, list[Any]] = {
        "bench_id": [bench_id] * len(items),
        "item_idx": list(range(len(items))),
        "item_id": [i.item_id for i in items],
        "task": [i.task for i in items],
        "question": [i.question for i in items],
        "option_letters": [i.option_letters for i in items],
        "option_labels": [i.option_labels for i in items],
        "answer_letter": [i.answer_letter for i in items],
        "answer_label": [i.answer_label for i in items],
        "images": [i.images for i in items],
        "source": [i.source for i in items],
        "reference_object": [i.reference_object for i in items],
        "bbox": [i.bbox for i in items],
        "parent_item_id": [i.parent_item_id for i in items],
        "bbox_frame": [i.bbox_frame for i in items],
    }
    load_columns(con, table, columns, ITEM_TYPES)


def import_benchmark(
    ws: Workspace,
    path: Path,
    name: str,
    *,
    images: Path | None = None,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    replace: bool = False,
    notes: str | None = None,
    parent: str | None = None,
    id_prefix: str | None = None,
) -> BenchImport:
    """Read, check and write a benchmark. ``id_prefix``: the prefix of padded ids in its prediction
    files (None: the format's default, e.g. viewspatial_test_ for ViewSpatial JSON; "": none)."""
    prefix = check_id_prefix(id_prefix) if id_prefix is not None else None
    if images is not None and not images.is_dir():
        raise OrienteerError(f"images root {images} does not exist or is not a folder "
                             "(expected the folder the image paths are relative to)")
    if not name.strip():
        raise OrienteerError("benchmark name must not be empty")
    fmt, items = read_benchmark(path, fmt, mapping)
    if id_prefix is None:
        prefix = DEFAULT_ID_PREFIX.get(fmt)
    image_root = (images or path.resolve().parent).resolve()
    present = count_present(image_root, [i.images[0] for i in items])
    with ws.staging() as con:
        stage_items(con, items, bench_id=0)
        with ws.attach_for_write(con):
            return write_benchmark(
                con, items, name, source_path=path.resolve(), fmt=fmt, image_root=image_root, present=present,
                replace=replace, notes=notes, parent=parent, id_prefix=prefix,
            )


def write_benchmark(
    con: duckdb.DuckDBPyConnection,
    items: Sequence[Item],
    name: str,
    *,
    source_path: Path,
    fmt: str,
    image_root: Path,
    present: tuple[int, int],
    replace: bool = False,
    notes: str | None = None,
    parent: str | None = None,
    table: str = "new_items",
    id_prefix: str | None = None,
) -> BenchImport:
    """Write items already staged in ``table`` as benchmark ``name``, inside the caller's transaction on ``ws``.

    ``present`` is ``count_present``'s (found, checked) for the items' first images, counted by the
    caller before it took the write lock.
    """
    existing = find_bench(con, name, catalog="ws")
    parent_id = None
    if parent is not None:
        parent_info = find_bench(con, parent, catalog="ws")
        if parent_info is None:
            raise WorkspaceError(f"no parent benchmark named {parent!r}")
        parent_id = parent_info.bench_id
    if existing is not None and not replace:
        raise WorkspaceError(f"benchmark {name!r} already exists; pass --replace to replace it")
    if existing is not None:
        bench_id = existing.bench_id
        _check_replaceable(con, bench_id, name, items)
        con.execute("DELETE FROM ws.items WHERE bench_id = ?", [bench_id])
        con.execute("DELETE FROM ws.benchmarks WHERE bench_id = ?", [bench_id])
    else:
        bench_id = single_value(con, "SELECT COALESCE(max(bench_id), 0) + 1 FROM ws.benchmarks")
    con.execute(
        """INSERT INTO ws.benchmarks (bench_id, name, source_path, source_format, image_root, n_items,
                                      parent_bench_id, notes, created_at, id_prefix)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), ?)""",
        [bench_id, name, str(source_path), fmt, str(image_root), len(items), parent_id, notes, id_prefix],
    )
    con.execute(f"INSERT INTO ws.items BY NAME SELECT * REPLACE ({int(bench_id)} AS bench_id) FROM {table}")
    tasks: dict[str, int] = {}
    for item in items:
        tasks[item.task] = tasks.get(item.task, 0) + 1
    return BenchImport(name, bench_id, len(items), tasks, fmt, str(image_root), *present, existing is not None, id_prefix)


def _check_replaceable(con: duckdb.DuckDBPyConnection, bench_id: int, name: str, items: Sequence[Item]) -> None:
    """A benchmark with runs may be replaced only by the same questions (e.g. to fix image paths)."""
    n_runs = single_value(con, "SELECT count(*) FROM ws.runs WHERE bench_id = ?", [bench_id])
    if not n_runs:
        return
    old = con.execute(
        "SELECT item_id, task, answer_letter, option_labels FROM ws.items WHERE bench_id = ? ORDER BY item_idx", [bench_id]
    ).fetchall()
    new = [(i.item_id, i.task, i.answer_letter, i.option_labels) for i in items]
    if len(old) != len(new):
        raise WorkspaceError(
            f"benchmark {name!r} has {n_runs} run(s) scored against {len(old)} items; the new file has {len(new)}. "
            "Import it under a new name instead"
        )
    for index, (a, b) in enumerate(zip(old, new)):
        if tuple(a[:3]) != tuple(b[:3]) or list(a[3]) != list(b[3]):
            raise WorkspaceError(
                f"benchmark {name!r} has {n_runs} run(s); item {a[0]!r} (record {index + 1}) differs in the new file "
                f"(id/task/answer/options), which would invalidate their scores. Import it under a new name instead"
            )
