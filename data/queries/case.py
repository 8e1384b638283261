"""Everything the case view shows about one item of one run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from orienteer.data.catalog import get_run
from orienteer.data.errors import WorkspaceError


@dataclass(frozen=True, slots=True)
class OtherRunAnswer:
    """This item's answer in another run of the benchmark (no answer: ``outcome`` is None)."""

    run: str
    letter: str | None
    pred_label: str | None
    outcome: str | None
    category: str | None
    correct: bool | None


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file derived from this run and item (a saliency map), with its numbers."""

    kind: str
    path: str
    frame: int | None
    metrics: dict[str, Any]


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
    other_runs: list[OtherRunAnswer]
    artifacts: list[Artifact]
    bbox_frame: int = 0  # which of ``images`` the box is on


def case_detail(con: duckdb.DuckDBPyConnection, run: str, item_id: str) -> CaseDetail:
    import json

    info = get_run(con, run)
    cursor = con.execute(
        """SELECT i.item_idx, i.task, i.question, i.option_letters, i.option_labels, i.answer_letter, i.images,
                  b.image_root, i.source, i.reference_object, i.bbox, p.reply, p.letter, p.pred_label, p.outcome,
                  p.category, p.probs,
                  r.model || CASE WHEN r.random_weights THEN ' [RANDOM WEIGHTS: numbers mean nothing]' ELSE '' END
                    AS model,
                  i.bbox_frame
           FROM items i JOIN benchmarks b USING (bench_id) JOIN runs r ON r.bench_id = b.bench_id AND r.run_id = ?
           LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = i.item_idx
           WHERE i.bench_id = ? AND i.item_id = ?""",
        [info.run_id, info.bench_id, item_id],
    )
    names = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    if found is None:
        raise WorkspaceError(f"benchmark {info.bench_name!r} has no item {item_id!r}")
    row = dict(zip(names, found))  # by column name: a column added above cannot shift the others
    item_idx = row["item_idx"]
    others = con.execute(
        """SELECT r.name AS run, p.letter, p.pred_label, p.outcome, p.category, p.correct
           FROM runs r LEFT JOIN predictions p ON p.run_id = r.run_id AND p.item_idx = ?
           WHERE r.bench_id = ? AND r.run_id <> ? ORDER BY r.run_id LIMIT 200""",
        [item_idx, info.bench_id, info.run_id],
    )
    other_names = [d[0] for d in others.description]
    other_runs = [OtherRunAnswer(**dict(zip(other_names, r))) for r in others.fetchall()]
    arts = con.execute(
        "SELECT kind, path, frame, metrics FROM artifacts WHERE run_id = ? AND item_idx = ? ORDER BY kind, frame",
        [info.run_id, item_idx],
    ).fetchall()
    artifacts = [Artifact(kind=k, path=p, frame=f, metrics=json.loads(m) if m else {}) for k, p, f, m in arts]
    bbox, probs = row["bbox"], row["probs"]
    return CaseDetail(
        run=run, benchmark=info.bench_name, item_id=item_id, item_idx=item_idx, task=row["task"],
        question=row["question"], options=list(zip(row["option_letters"], row["option_labels"])),
        answer_letter=row["answer_letter"], images=list(row["images"]), image_root=row["image_root"],
        source=row["source"], reference_object=row["reference_object"], bbox=list(bbox) if bbox else None,
        reply=row["reply"], letter=row["letter"], pred_label=row["pred_label"], outcome=row["outcome"],
        category=row["category"], probs=json.loads(probs) if probs else None, model=row["model"],
        other_runs=other_runs, artifacts=artifacts, bbox_frame=row["bbox_frame"],
    )
