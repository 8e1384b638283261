"""Writing a filtered set of predictions to CSV, JSONL or Parquet (chosen by the extension)."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import duckdb

from orienteer.data.errors import FileAccessError, OrienteerError
from orienteer.data.fileio import fsync_dir, os_reason, output_target
from orienteer.data.filters import PredictionFilter, compile_filter
from orienteer.data.single import single_row, single_value

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

_COLUMNS = """r.name AS run, b.name AS benchmark, i.item_id, p.task, i.source, i.question,
              {options} AS options, i.answer_letter AS gold_letter, p.gold_label,
              p.letter AS pred_letter, p.pred_label, p.outcome, p.category, p.reply,
              {images} AS images, b.image_root, i.reference_object, {bbox} AS bbox, i.bbox_frame, p.probs"""


def export_predictions(
    con: duckdb.DuckDBPyConnection,
    filt: PredictionFilter,
    path: Path,
    *,
    force: bool = False,
    item_keys: list[tuple[str, str]] | None = None,
) -> int:
    """Write the matching rows; refuses to overwrite without ``force``. Returns the row count.

    ``item_keys`` restricts the export to (run, item_id) pairs, e.g. rows marked in the TUI.
    The file is written to a unique temporary name beside it and renamed, so a failed export leaves
    no half file and two exports to one path do not collide. A symbolic link is written through to
    its target; a folder, device or FIFO is refused even with ``force`` (see ``fileio.output_target``).
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OrienteerError(f"{path}: unknown export type {path.suffix!r} (expected .csv, .jsonl or .parquet)")
    target = output_target(path, force)
    if fmt == "csv":
        options = ("array_to_string(list_transform(list_zip(i.option_letters, i.option_labels), "
                   "lambda x: x[1] || '. ' || x[2]), ' | ')")
        images = "array_to_string(i.images, ';')"
        bbox = "array_to_string(i.bbox, ',')"  # "x1,y1,x2,y2", as the generic benchmark reader takes it
    else:
        options = "map(i.option_letters, i.option_labels)"
        images = "i.images"
        bbox = "i.bbox"
    cf = compile_filter(con, filt)
    where, params = cf.where, cf.params
    if item_keys is not None:
        # Marked rows: resolve (run, item id) to (run_id, item_idx) once; the run ids then prune the scan.
        con.execute(
            """CREATE OR REPLACE TEMP TABLE export_keys AS
               SELECT r.run_id, i.item_idx
               FROM (SELECT unnest($1::VARCHAR[]) AS run, unnest($2::VARCHAR[]) AS item_id) k
               JOIN runs r ON r.name = k.run JOIN items i ON i.bench_id = r.bench_id AND i.item_id = k.item_id""",
            [[k[0] for k in item_keys], [k[1] for k in item_keys]],
        )
        low, high = single_row(con, "SELECT COALESCE(min(run_id), -1), COALESCE(max(run_id), -1) FROM export_keys")
        where += (f" AND p.run_id BETWEEN {int(low)} AND {int(high)} AND EXISTS "
                  "(SELECT 1 FROM export_keys k WHERE k.run_id = p.run_id AND k.item_idx = p.item_idx)")
    select = (
        f"SELECT {_COLUMNS.format(options=options, images=images, bbox=bbox)} {cf.from_sql(with_items=True)} "
        f"JOIN benchmarks b ON b.bench_id = r.bench_id WHERE {where} ORDER BY p.run_id, p.item_idx"
    )
    count = single_value(con, f"SELECT count(*) FROM ({select})", params)
    tmp = target.with_name(f".{target.name[:200]}.{uuid.uuid4().hex[:12]}.partial")
    copy_opts = {"csv": "FORMAT CSV, HEADER", "jsonl": "FORMAT JSON", "parquet": "FORMAT PARQUET"}[fmt]
    try:
        try:
            con.execute(f"COPY ({select}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({copy_opts})", params)
        except duckdb.IOException as exc:
            if str(tmp) not in str(exc):
                raise  # the workspace, not the export file: the workspace's own handler names it
            raise FileAccessError(path, _copy_reason(str(exc))) from None
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = None
        if mode is not None:
            os.chmod(tmp, mode)  # a replaced file keeps its permissions
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        raise FileAccessError(path, os_reason(exc)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return int(count)


def _copy_reason(message: str) -> str:
    """The OS reason inside a DuckDB COPY error (``... : No space left on device``), in our words."""
    low = message.lower()
    for needle, reason in (("no space left", "no space left on device (the disk is full)"),
                           ("file too large", "file too large (a file size limit was reached)"),
                           ("permission denied", "permission denied"), ("read-only file system", "read-only file system"),
                           ("quota", "disk quota exceeded")):
        if needle in low:
            return reason
    return "could not write the file: " + " ".join(message.split())
