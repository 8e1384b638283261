"""The saliency summary on a real workspace: benchmarks and runs imported, maps ingested as a job's artifacts.

Expected figures are computed here from the per-item values written into the artifacts, never by
the module under test.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import wilcoxon

from orienteer.core.stats import holm
from orienteer.data.errors import WorkspaceError
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.job_ingest import ingest_job
from orienteer.data.job_outputs import ArtifactsOutput, write_manifest
from orienteer.data.saliency_summary import MIN_TEST_PAIRS, saliency_summary
from orienteer.data.workspace import Workspace

TASK_A = "Task A"
TASK_B = "Task [b]B[/b]"  # markup in a name from a file: must be shown literally
RING = 3


def _items(ids: list[str], tasks: list[str], parents: list[str | None] | None = None) -> list[dict[str, Any]]:
    return [
        {"id": item_id, "task": task, "question": f"Where is the cup in {item_id}?",
         "options": {"A": "left", "B": "right", "C": "front"}, "answer": "A",
         "images": [f"img/{item_id}_0.jpg", f"img/{item_id}_1.jpg"], "bbox": [10, 10, 40, 40],
         **({"parent_item_id": parents[k]} if parents and parents[k] else {})}
        for k, (item_id, task) in enumerate(zip(ids, tasks))
    ]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _map(item_id: str, frame: int, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"item_id": item_id, "kind": "saliency", "path": f"files/{item_id}/frame{frame}.png", "frame": frame,
            "metrics": {"spread": 0.3, "entropy": 0.9, "target": "A", "target_kind": "gold", **metrics}}


def current(item_id: str, inside: float, area: float, frame: int = 1) -> list[dict[str, Any]]:
    """What today's saliency job writes: a map per frame, the box measured on its frame, ring excluded."""
    return [
        _map(item_id, 0, {}),
        _map(item_id, frame, {"mass_in_bbox": inside, "bbox_area": area, "ring_px": RING, "mass_on_ring": 0.01,
                              "bbox_frame": frame}),
    ]


def outdated(item_id: str, inside: float, area: float) -> list[dict[str, Any]]:
    """What older versions wrote: frame 0 measured, border counted inside, no ``ring_px``."""
    return [_map(item_id, 0, {"mass_in_bbox": inside, "bbox_area": area}), _map(item_id, 1, {})]


def no_box(item_id: str) -> list[dict[str, Any]]:
    return [_map(item_id, 0, {}), _map(item_id, 1, {})]


def ingest_maps(ws: Workspace, tmp: Path, job_id: str, run: str, lines: list[dict[str, Any]]) -> None:
    """Through the real path: a job's outputs folder with a manifest, ingested in one transaction."""
    out = tmp / job_id / "outputs"
    out.mkdir(parents=True)
    _write_jsonl(out / "artifacts.jsonl", lines)
    write_manifest(out, [ArtifactsOutput(run=run, file="artifacts.jsonl")])
    assert ingest_job(ws, job_id, "saliency", out).ingested


@dataclass
class Fixture:
    ws: Workspace
    base: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # item -> (task, inside, area), measured
    boxed: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # parent id -> ..., measured


def build(tmp: Path) -> Fixture:
    """Benchmark ``orig`` (20 items, two tasks), ``orig-box`` derived from it (18 items), ``other`` unrelated;
    runs ``base``, ``boxed``, ``lonely`` and ``bare`` (no maps); maps from three saliency jobs."""
    ws = Workspace(tmp / "ws")
    rng = random.Random(5)
    ids = [f"o{i}" for i in range(20)]
    tasks = [TASK_A if i < 12 else TASK_B for i in range(20)]
    import_benchmark(ws, _write_jsonl(tmp / "orig.jsonl", _items(ids, tasks)), "orig")
    box_ids = [f"o{i}#box" for i in range(18)]
    import_benchmark(ws, _write_jsonl(tmp / "box.jsonl", _items(box_ids, tasks[:18], ids[:18])), "orig-box", parent="orig")
    import_benchmark(ws, _write_jsonl(tmp / "other.jsonl", _items([f"x{i}" for i in range(5)], [TASK_A] * 5)), "other")
    for run, bench, item_ids in (("base", "orig", ids), ("bare", "orig", ids), ("boxed", "orig-box", box_ids),
                                 ("lonely", "other", [f"x{i}" for i in range(5)])):
        preds = _write_jsonl(tmp / f"{run}.jsonl", [{"id": i, "pred": rng.choice("ABC")} for i in item_ids])
        import_predictions(ws, preds, bench, run)
    fx = Fixture(ws)

    def value() -> tuple[float, float]:
        return round(rng.uniform(0.1, 0.7), 6), round(rng.uniform(0.05, 0.3), 6)

    # An older job measured o3 and o16 the old way; the newer job's maps replace them (o16's have no box).
    ingest_maps(ws, tmp, "job-old", "base", outdated("o3", 0.9, 0.01) + outdated("o16", 0.8, 0.02))
    lines: list[dict[str, Any]] = []
    for i in range(16):  # o0-o15 measured (o12-o15 in task B), on frame 1 or 2
        inside, area = value()
        fx.base[f"o{i}"] = (tasks[i], inside, area)
        lines += current(f"o{i}", inside, area, frame=1 + i % 2)
    lines += no_box("o16") + no_box("o17") + outdated("o18", 0.5, 0.1)  # o19: no maps at all
    ingest_maps(ws, tmp, "job-base", "base", lines)
    lines = []
    for i in range(14):
        inside, area = value()
        fx.boxed[f"o{i}"] = (tasks[i], inside, area)
        lines += current(f"o{i}#box", inside, area)
    lines += outdated("o14#box", 0.4, 0.1)
    ingest_maps(ws, tmp, "job-boxed", "boxed", lines)
    return fx


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return build(tmp_path)


def test_means_enrichment_and_p_equal_the_per_item_values(fx: Fixture) -> None:
    with fx.ws.read() as con:
        s = saliency_summary(con, "base")
    assert (s.run, s.benchmark, s.vs) == ("base", "orig", None)
    assert list(s.tasks) == [TASK_A, TASK_B]
    for task, stats in [(TASK_A, s.tasks[TASK_A]), (TASK_B, s.tasks[TASK_B]), (None, s.overall)]:
        rows = [(i, a) for t, i, a in fx.base.values() if task is None or t == task]
        inside, area = [r[0] for r in rows], [r[1] for r in rows]
        assert stats.n == len(rows)
        assert stats.mass_in_bbox == pytest.approx(sum(inside) / len(rows), abs=1e-12)
        assert stats.bbox_area == pytest.approx(sum(area) / len(rows), abs=1e-12)
        assert stats.enrichment == pytest.approx((sum(inside) / len(rows)) / (sum(area) / len(rows)))
        if len(rows) >= MIN_TEST_PAIRS:
            assert stats.p == pytest.approx(wilcoxon(inside, area).pvalue, rel=1e-12)
            assert stats.p_note is None
        else:  # task B: 4 items, too few for a signed-rank test to reach 0.05
            assert stats.p is None and "4 non-zero differences" in (stats.p_note or "")
    # o3 was measured the old way first, then re-run: only the newer measurement counts (12 in task A)
    assert (s.tasks[TASK_A].n, s.tasks[TASK_B].n, s.overall.n) == (12, 4, 16)
    # Holm across the rows that have a test (task B has none): task A and overall
    rows = [s.tasks[TASK_A], s.overall]
    assert [r.p_holm for r in rows] == pytest.approx(holm([r.p for r in rows]))
    assert s.tasks[TASK_B].p_holm is None


def test_counts_of_items_without_a_box_and_outdated_maps(fx: Fixture) -> None:
    with fx.ws.read() as con:
        s = saliency_summary(con, "base")
        bare = saliency_summary(con, "bare")
    a, b = s.tasks[TASK_A], s.tasks[TASK_B]
    assert (a.items_with_maps, a.no_box, a.outdated) == (12, 0, 0)
    # o12-o18; o16 (old maps replaced by a re-run without a box) and o17 no box; o18 old
    assert (b.items_with_maps, b.no_box, b.outdated) == (7, 2, 1)
    assert (s.overall.items_with_maps, s.overall.no_box, s.overall.outdated, s.overall.no_mass) == (19, 2, 1, 0)
    assert not bare.has_maps and bare.tasks == {} and bare.overall.n == 0 and bare.overall.mass_in_bbox is None


def test_all_zero_differences_give_no_p(tmp_path: Path) -> None:
    fx = build(tmp_path)
    ingest_maps(fx.ws, tmp_path, "job-flat", "bare",
                [line for i in range(8) for line in current(f"o{i}", 0.25, 0.25)])
    with fx.ws.read() as con:
        s = saliency_summary(con, "bare")
    assert s.overall.n == 8 and s.overall.enrichment == pytest.approx(1.0)
    assert s.overall.p is None and s.overall.p_note == "no test: every difference is zero"


def test_vs_pairs_items_through_parent_ids_across_benchmarks(fx: Fixture) -> None:
    with fx.ws.read() as con:
        s = saliency_summary(con, "base", vs="boxed")
    vs = s.vs
    assert vs is not None and (vs.run, vs.benchmark) == ("boxed", "orig-box")
    assert vs.shared_items == 18  # every item of orig-box has its parent in orig
    paired = sorted(set(fx.base) & set(fx.boxed), key=lambda k: int(k[1:]))
    assert len(paired) == 14 and vs.unmeasured_pairs == 18 - 14
    for task, stats in [(TASK_A, vs.tasks[TASK_A]), (TASK_B, vs.tasks[TASK_B]), (None, vs.overall)]:
        keys = [k for k in paired if task is None or fx.base[k][0] == task]
        x = [fx.base[k][1] for k in keys]
        y = [fx.boxed[k][1] for k in keys]
        assert stats.n == len(keys)
        assert stats.mass_in_bbox_run == pytest.approx(sum(x) / len(x), abs=1e-12)
        assert stats.mass_in_bbox_vs == pytest.approx(sum(y) / len(y), abs=1e-12)
        assert stats.difference == pytest.approx(sum(a - b for a, b in zip(x, y)) / len(x), abs=1e-12)
        if len(keys) >= MIN_TEST_PAIRS:
            assert stats.p == pytest.approx(wilcoxon(x, y).pvalue, rel=1e-12)
        else:
            assert stats.p is None
    assert (vs.tasks[TASK_A].n, vs.tasks[TASK_B].n) == (12, 2)
    tested = [vs.tasks[TASK_A], vs.overall]
    assert [r.p_holm for r in tested] == pytest.approx(holm([r.p for r in tested]))


def test_vs_runs_sharing_no_items_is_an_error_naming_both(fx: Fixture) -> None:
    with fx.ws.read() as con:
        with pytest.raises(WorkspaceError) as err:
            saliency_summary(con, "base", vs="lonely")
        with pytest.raises(WorkspaceError, match="no run named 'nope'"):
            saliency_summary(con, "nope")
    assert "'base'" in str(err.value) and "'lonely'" in str(err.value) and "share no items" in str(err.value)


def test_json_shape(fx: Fixture) -> None:
    with fx.ws.read() as con:
        doc = json.loads(json.dumps(saliency_summary(con, "base", vs="boxed").as_json()))
    assert doc["run"] == "base" and set(doc["tasks"]) == {TASK_A, TASK_B}
    keys = {"n", "mass_in_bbox", "bbox_area", "enrichment", "p"}
    for block in [*doc["tasks"].values(), doc["overall"]]:
        assert keys <= set(block)
        assert isinstance(block["n"], int) and all(isinstance(block[k], float) for k in keys - {"n", "p"})
    assert isinstance(doc["overall"]["p"], float) and doc["tasks"][TASK_B]["p"] is None
    assert (doc["items_with_maps"], doc["no_box"], doc["outdated"]) == (19, 2, 1)
    assert "ring" in doc["computed_on"]
    vs = doc["vs"]
    assert vs["run"] == "boxed" and vs["difference_is"] == "run - vs" and vs["overall"]["n"] == 14
    assert {"n", "mass_in_bbox_run", "mass_in_bbox_vs", "difference", "p"} <= set(vs["overall"])
    assert math.isfinite(vs["overall"]["p"])


def test_an_all_zero_map_is_counted_not_averaged(tmp_path: Path) -> None:
    """The job writes NaN shares for a map with no mass: counted as such, kept out of the means."""
    fx = build(tmp_path)
    ingest_maps(fx.ws, tmp_path, "job-zero", "bare",
                current("o0", float("nan"), 0.2) + current("o1", 0.5, 0.2))
    with fx.ws.read() as con:
        s = saliency_summary(con, "bare")
    assert (s.overall.items_with_maps, s.overall.n, s.overall.no_mass) == (2, 1, 1)
    assert s.overall.mass_in_bbox == 0.5 and s.overall.p is None
