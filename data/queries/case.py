"""Everything the case view shows about one item of one run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError


@dataclass
class CaseDetail:
    """Everything the case view shows about one item of one run."""

    run: str
    benchmark: str
    item_id: str
    item_idx: int
    task: str
    question: str
    options: list[tuple[str, str]]
    answer_letter: str
    images: list[str]
    image_root: str | None
    source: str | None
    reference_object: str | None
    bbox: list[float] | None
    reply: str | None
    letter: str | None
    pred_label: str | None
    outcome: str | None
    category: str | None
    probs: dict[str, float] | None
    model: str | None
    other_runs: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    bbox_frame: int = 0  # which of ``images`` the box is on


def case_detail(con: duckdb.DuckDBPyConnection, run: str, item_id: str) -> CaseDetail:
    import json

    info = get_run(con, run)
    row = con.execute(
        """SELECT i.item_idx, i.task, i.question, i.option_letters, i.option_labels, i.answer_letter, i.images,
                  b.image_root, i.source, i.reference_object, i.bbox, p.reply, p.letter, p.pred_label, p.outcome,
                  p.category, p.probs, r.model || CASE WHEN r.random_weights THEN ' [RANDOM WEIGHTS: numbers mean nothing]' ELSE '' END,
                  i.bbox_frame
           FROM items i JOIN benchmarks b USING (bench_id) JOIN runs r ON r.bench_id = b.bench_id AND r.run_id = ?
           LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = i.item_idx
           WHERE i.bench_id = ? AND i.item_id = ?""",
        [info.run_id, info.bench_id, item_id],
    ).fetchone()
    if row is None:
        raise WorkspaceError(f"benchmark {info.bench_name!r} has no item {item_id!r}")
    (item_idx, task, question, letters, labels, answer, images, root, source, ref, bbox, reply, letter, pred_label,
     outcome, category, probs, model, bbox_frame) = row
    others = con.execute(
        """SELECT r.name AS run, p.letter, p.pred_label, p.outcome, p.category, p.correct
           FROM runs r LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = ?
           WHERE r.bench_id = ? AND r.run_id <> ? ORDER BY r.run_id LIMIT 200""",
        [item_idx, info.bench_id, info.run_id],
    )
    names = [d[0] for d in others.description]
    other_runs = [dict(zip(names, r)) for r in others.fetchall()]
    arts = con.execute(
        "SELECT kind, path, frame, metrics FROM artifacts WHERE run_id = ? AND item_idx = ? ORDER BY kind, frame",
        [info.run_id, item_idx],
    ).fetchall()
    artifacts = [{"kind": k, "path": p, "frame": f, "metrics": json.loads(m) if m else {}} for k, p, f, m in arts]
    return CaseDetail(
        run=run, benchmark=info.bench_name, item_id=item_id, item_idx=item_idx, task=task, question=question,
        options=list(zip(letters, labels)), answer_letter=answer, images=list(images), image_root=root, source=source,
        reference_object=ref, bbox=list(bbox) if bbox else None, reply=reply, letter=letter, pred_label=pred_label,
        outcome=outcome, category=category, probs=json.loads(probs) if probs else None, model=model,
        other_runs=other_runs, artifacts=artifacts, bbox_frame=bbox_frame,
    )
