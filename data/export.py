"""Writing a filtered set of predictions to CSV, JSONL or Parquet (chosen by the extension)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter, compile_filter

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
    The file is written to a temporary name and renamed, so a failed export leaves no half file.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OrienteerError(f"{path}: unknown export type {path.suffix!r} (expected .csv, .jsonl or .parquet)")
    if path.exists() and not force:
        raise OrienteerError(f"{path} already exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise OrienteerError(f"{path.parent} does not exist (expected an existing folder for the export)")
    if fmt == "csv":
        options = "array_to_string(list_transform(list_zip(i.option_letters, i.option_labels), lambda x: x[1] || '. ' || x[2]), ' | ')"
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
        low, high = con.execute("SELECT COALESCE(min(run_id), -1), COALESCE(max(run_id), -1) FROM export_keys").fetchone()
        where += (f" AND p.run_id BETWEEN {int(low)} AND {int(high)} AND EXISTS "
                  "(SELECT 1 FROM export_keys k WHERE k.run_id = p.run_id AND k.item_idx = p.item_idx)")
    select = (
        f"SELECT {_COLUMNS.format(options=options, images=images, bbox=bbox)} {cf.from_sql(with_items=True)} "
        f"JOIN benchmarks b ON b.bench_id = r.bench_id WHERE {where} ORDER BY p.run_id, p.item_idx"
    )
    count = con.execute(f"SELECT count(*) FROM ({select})", params).fetchone()[0]
    tmp = path.with_name(f".{path.name}.partial")
    copy_opts = {"csv": "FORMAT CSV, HEADER", "jsonl": "FORMAT JSON", "parquet": "FORMAT PARQUET"}[fmt]
    try:
        con.execute(f"COPY ({select}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({copy_opts})", params)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return int(count)
