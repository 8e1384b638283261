"""Tunnel vision as a measured claim: how much of a run's saliency falls inside the reference box.

Saliency jobs store one ``saliency`` artifact per (item, frame); the map of the frame that carries
the item's box has ``mass_in_bbox`` (share of that map's mass inside the box, the drawn border's
ring of ``ring_px`` left out) and ``bbox_area`` (the same region's share of the frame: what a
uniform map would give). One item is one paired observation (inside share, area share), so the
summary tests whether maps put more mass in the box than its size alone would (Wilcoxon signed-rank,
two-sided), per task and overall. ``--vs`` pairs two runs item by item through the parent item
(boxed vs undrawn control, before vs after training) and tests the difference in inside share.

Maps made before the ring exclusion (``mass_in_bbox`` without ``ring_px``: frame 0, border counted
inside) are counted as outdated and left out of every mean. When saliency ran more than once on an
item, the maps of the newest job replace the earlier ones, so re-running fixes outdated items.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import duckdb

from orienteer.core.stats import holm
from orienteer.data.catalog import RunInfo, get_run
from orienteer.data.errors import WorkspaceError
from orienteer.data.single import single_value

OVERALL = "overall"
KIND = "saliency"
# With fewer non-zero differences no two-sided signed-rank p can fall below 0.05 (the smallest
# possible is 2 / 2**n = 0.0625 at n = 5), so a p-value would only look like evidence.
MIN_TEST_PAIRS = 6
COMPUTED_ON = ("per item, the saliency map of the frame carrying the box; the drawn border's ring "
               "(ring_px) is excluded from both the inside share and the area share")
RERUN_HINT = "measured by an older version (no ring exclusion); re-run saliency"


@dataclass(frozen=True)
class Measurement:
    """One item's box measurement from its newest saliency maps."""

    item_idx: int
    item_id: str
    key: str  # coalesce(parent_item_id, item_id): what pairs items across derived benchmarks
    task: str
    mass_in_bbox: float
    bbox_area: float
    ring_px: float
    frame: int


@dataclass
class ItemScan:
    """A run's items with saliency maps, sorted into measured, without a box, outdated, without mass."""

    measured: list[Measurement] = field(default_factory=list)
    with_maps: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    no_box: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    outdated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    no_mass: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class SignedRank:
    """A two-sided Wilcoxon signed-rank p, or why there is none."""

    p: float | None
    note: str | None


def signed_rank(x: Sequence[float], y: Sequence[float]) -> SignedRank:
    """``scipy.stats.wilcoxon(x, y)`` (two-sided, zero differences dropped) when it can say something."""
    nonzero = sum(1 for a, b in zip(x, y) if a - b != 0)
    if nonzero == 0:
        return SignedRank(None, "no test: every difference is zero" if x else "no test: no items")
    if nonzero < MIN_TEST_PAIRS:
        return SignedRank(None, f"no test: {nonzero} non-zero difference{'s' if nonzero != 1 else ''} "
                          f"(a signed-rank test needs at least {MIN_TEST_PAIRS} to reach p < 0.05)")
    from scipy.stats import wilcoxon  # lazily: start-up and --help never import scipy

    return SignedRank(float(wilcoxon(x, y).pvalue), None)


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


@dataclass(frozen=True)
class BoxStats:
    """Inside share against area share over a group of items (one task, or all)."""

    n: int
    mass_in_bbox: float | None
    bbox_area: float | None
    enrichment: float | None
    p: float | None
    p_note: str | None
    items_with_maps: int
    no_box: int
    outdated: int
    no_mass: int
    p_holm: float | None = None  # p Holm-corrected across the rows of its table (the tasks and overall)

    @classmethod
    def of(cls, group: Sequence[Measurement], with_maps: int, no_box: int, outdated: int, no_mass: int) -> "BoxStats":
        inside = [m.mass_in_bbox for m in group]
        area = [m.bbox_area for m in group]
        mean_in, mean_area = _mean(inside), _mean(area)
        enrichment = mean_in / mean_area if mean_in is not None and mean_area else None
        test = signed_rank(inside, area)
        return cls(len(group), mean_in, mean_area, enrichment, test.p, test.note, with_maps, no_box, outdated, no_mass)

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "mass_in_bbox": self.mass_in_bbox, "bbox_area": self.bbox_area,
                "enrichment": self.enrichment, "p": self.p, "p_holm": self.p_holm, "p_note": self.p_note,
                "items_with_maps": self.items_with_maps, "no_box": self.no_box, "outdated": self.outdated,
                "no_mass": self.no_mass}


@dataclass(frozen=True)
class PairStats:
    """Inside share of the same parent items in two runs: ``difference`` is run minus vs."""

    n: int
    mass_in_bbox_run: float | None
    mass_in_bbox_vs: float | None
    difference: float | None
    p: float | None
    p_note: str | None
    p_holm: float | None = None  # p Holm-corrected across the rows of its table (the tasks and overall)

    @classmethod
    def of(cls, pairs: Sequence[tuple[float, float]]) -> "PairStats":
        a = [p[0] for p in pairs]
        b = [p[1] for p in pairs]
        mean_a, mean_b = _mean(a), _mean(b)
        diff = _mean([x - y for x, y in pairs])
        test = signed_rank(a, b)
        return cls(len(pairs), mean_a, mean_b, diff, test.p, test.note)

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "mass_in_bbox_run": self.mass_in_bbox_run, "mass_in_bbox_vs": self.mass_in_bbox_vs,
                "difference": self.difference, "p": self.p, "p_holm": self.p_holm, "p_note": self.p_note}


@dataclass(frozen=True)
class VsComparison:
    run: str
    benchmark: str
    shared_items: int  # parent items both runs' benchmarks hold
    unmeasured_pairs: int  # of those, items without a current box measurement in one run or both
    tasks: dict[str, PairStats]
    overall: PairStats

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run, "benchmark": self.benchmark, "difference_is": "run - vs",
                "paired_by": "coalesce(parent_item_id, item_id)", "shared_items": self.shared_items,
                "unmeasured_pairs": self.unmeasured_pairs,
                "tasks": {t: s.as_json() for t, s in self.tasks.items()}, "overall": self.overall.as_json()}


@dataclass(frozen=True)
class SaliencySummary:
    run: str
    benchmark: str
    tasks: dict[str, BoxStats]
    overall: BoxStats
    vs: VsComparison | None = None
    computed_on: str = COMPUTED_ON
    random_weights: bool = False  # maps of a model with random weights: the numbers mean nothing

    @property
    def has_maps(self) -> bool:
        return self.overall.items_with_maps > 0

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run, "benchmark": self.benchmark, "computed_on": self.computed_on,
                "random_weights": self.random_weights,
                "items_with_maps": self.overall.items_with_maps, "no_box": self.overall.no_box,
                "outdated": self.overall.outdated, "no_mass": self.overall.no_mass,
                "tasks": {t: s.as_json() for t, s in self.tasks.items()}, "overall": self.overall.as_json(),
                "vs": self.vs.as_json() if self.vs is not None else None}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _box_frame(metrics: dict[str, Any]) -> int | None:
    """The frame a measurement says carries the box (``bbox_frame``), when it says so."""
    value = metrics.get("bbox_frame")
    return value if type(value) is int else None  # a frame index is exact: 2.0 or True is no index


def _newest_job(rows: list[tuple[int, str | None, int, dict[str, Any]]]) -> list[tuple[int, int, dict[str, Any]]]:
    """The maps of the job that wrote this item's newest map (a re-run replaces earlier maps)."""
    newest = max(rows, key=lambda r: r[0])[1]
    return [(aid, frame, m) for aid, job, frame, m in rows if job == newest]


def scan_items(con: duckdb.DuckDBPyConnection, run: RunInfo) -> ItemScan:
    """Sort the run's items that have saliency maps by what their newest maps can say about the box."""
    rows = con.execute(
        """SELECT a.item_idx, i.item_id, coalesce(i.parent_item_id, i.item_id), i.task,
                  a.artifact_id, a.created_by_job, a.frame, a.metrics
           FROM artifacts a JOIN items i ON i.bench_id = ? AND i.item_idx = a.item_idx
           WHERE a.run_id = ? AND a.kind = ?
           ORDER BY a.item_idx, a.artifact_id""",
        [run.bench_id, run.run_id, KIND],
    ).fetchall()
    per_item: dict[int, tuple[str, str, str, list[tuple[int, str | None, int, dict[str, Any]]]]] = {}
    for item_idx, item_id, key, task, aid, job, frame, metrics in rows:
        entry = per_item.setdefault(item_idx, (item_id, key, task, []))
        parsed = json.loads(metrics) if metrics else {}
        entry[3].append((aid, job, int(frame or 0), parsed if isinstance(parsed, dict) else {}))
    scan = ItemScan()
    for item_idx, (item_id, key, task, maps) in per_item.items():
        scan.with_maps[task] += 1
        boxed = [(aid, frame, m) for aid, frame, m in _newest_job(maps) if "mass_in_bbox" in m]
        if not boxed:
            scan.no_box[task] += 1
            continue
        _, frame, m = max(boxed, key=lambda b: (b[1] == _box_frame(b[2]), b[0]))
        if "ring_px" not in m:
            scan.outdated[task] += 1
            continue
        inside, area, ring = _number(m.get("mass_in_bbox")), _number(m.get("bbox_area")), _number(m.get("ring_px"))
        if inside is None or area is None or not math.isfinite(inside) or not math.isfinite(area):
            scan.no_mass[task] += 1  # an all-zero map: no share can be taken
            continue
        scan.measured.append(Measurement(item_idx, item_id, key, task, inside, area, ring or 0.0, frame))
    return scan


S = TypeVar("S", BoxStats, PairStats)


def with_holm(tasks: dict[str, S], overall: S) -> tuple[dict[str, S], S]:
    """Every row's p Holm-corrected across the rows that have one: a per-task claim must survive
    the number of tasks it was picked from."""
    rows = {**tasks, OVERALL: overall}
    tested = [key for key, stats in rows.items() if stats.p is not None]
    adjusted = dict(zip(tested, holm([rows[key].p for key in tested])))  # type: ignore[misc]
    fixed = {key: replace(stats, p_holm=adjusted.get(key)) for key, stats in rows.items()}
    overall_fixed = fixed.pop(OVERALL)
    return fixed, overall_fixed


def _by_task(measured: Iterable[Measurement]) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = defaultdict(list)
    for m in measured:
        out[m.task].append(m)
    return out


def saliency_summary(con: duckdb.DuckDBPyConnection, run: str, vs: str | None = None) -> SaliencySummary:
    """Inside share against area share per task and overall; with ``vs``, the paired comparison too."""
    info = get_run(con, run)
    scan = scan_items(con, info)
    groups = _by_task(scan.measured)
    tasks = {
        t: BoxStats.of(groups.get(t, []), scan.with_maps[t], scan.no_box[t], scan.outdated[t], scan.no_mass[t])
        for t in sorted(scan.with_maps)
    }
    overall = BoxStats.of(scan.measured, sum(scan.with_maps.values()), sum(scan.no_box.values()),
                          sum(scan.outdated.values()), sum(scan.no_mass.values()))
    tasks, overall = with_holm(tasks, overall)
    comparison = _compare(con, info, scan, get_run(con, vs)) if vs is not None else None
    random_weights = bool(single_value(con, "SELECT random_weights FROM runs WHERE run_id = ?", [info.run_id]))
    return SaliencySummary(info.name, info.bench_name, tasks, overall, comparison, random_weights=random_weights)


def _keys(con: duckdb.DuckDBPyConnection, bench_id: int) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT DISTINCT coalesce(parent_item_id, item_id) FROM items WHERE bench_id = ?", [bench_id]).fetchall()}


def _per_key(measured: Iterable[Measurement]) -> dict[str, tuple[str, float]]:
    """Inside share per parent item (the mean, should a benchmark hold an item and its copy)."""
    values: dict[str, list[float]] = defaultdict(list)
    tasks: dict[str, str] = {}
    for m in measured:
        values[m.key].append(m.mass_in_bbox)
        tasks.setdefault(m.key, m.task)
    return {k: (tasks[k], math.fsum(v) / len(v)) for k, v in values.items()}


def _compare(con: duckdb.DuckDBPyConnection, a: RunInfo, scan_a: ItemScan, b: RunInfo) -> VsComparison:
    shared = _keys(con, a.bench_id) & _keys(con, b.bench_id)
    if not shared:
        raise WorkspaceError(
            f"runs {a.name!r} ({a.bench_name}) and {b.name!r} ({b.bench_name}) share no items: nothing to pair "
            "(items pair through parent_item_id, so runs on a benchmark and on one derived from it do)"
        )
    va, vb = _per_key(scan_a.measured), _per_key(scan_items(con, b).measured)
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key in sorted(shared & va.keys() & vb.keys()):
        task, x = va[key]
        pairs[task].append((x, vb[key][1]))
    everything = [p for t in sorted(pairs) for p in pairs[t]]
    tasks, overall = with_holm({t: PairStats.of(pairs[t]) for t in sorted(pairs)}, PairStats.of(everything))
    return VsComparison(
        run=b.name, benchmark=b.bench_name, shared_items=len(shared), unmeasured_pairs=len(shared) - len(everything),
        tasks=tasks, overall=overall,
    )
