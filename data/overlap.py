"""Does a training dataset share items with a benchmark someone will report on?

A model trained on a test item (or its flipped copy, or its image) and then evaluated on that test
set reports a number no reviewer accepts. Three independent signals find such examples:

- ``item_id``: the example is the benchmark's item (same id);
- ``parent_item_id``: the example is derived from one of the benchmark's items (a flipped or
  box-prompted copy), or the benchmark's item is derived from the example's item;
- ``image``: an image file of the example has the same bytes as an image of a benchmark item
  (sha256 of the content; only files whose size matches a file on the other side are read, so a
  check of thousands of images reads few of them).

Ids are compared within a *family* of benchmarks: the benchmark, its ancestors and everything derived
from them (``parent_bench_id``). An example that records the benchmark it came from (``bench``, set by
the jobs that build datasets from a benchmark) is compared by id only when that benchmark is in the
family: its ids live in another benchmark's namespace otherwise, and only its images can still
collide. An example with no recorded source (an imported file) is compared by id too, so an import
whose ids happen to look like the test set's is reported rather than trusted; ``--allow-overlap``
is the way past a coincidence, and the run records what was allowed.

A dataset's composition ``benches`` (the benchmarks its examples came from) is the fourth signal:
a set built from the family is reported even before any example is looked at.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orienteer.data.catalog import get_bench
from orienteer.data.errors import OrienteerError
from orienteer.data.images import resolve_image
from orienteer.data.workspace import Workspace

SHOWN = 5
KINDS = ("item_id", "parent_item_id", "image")


@dataclass(frozen=True)
class Match:
    """One training example that shares something with one benchmark item."""

    kind: str
    example_id: str
    bench_item_id: str
    path: str | None = None  # the example's image, for an image match


@dataclass
class Overlap:
    """What a dataset shares with a benchmark family; empty when nothing."""

    dataset: str
    bench: str
    family: list[str]
    n_examples: int
    matches: list[Match] = field(default_factory=list)
    built_from: list[str] = field(default_factory=list)
    """Benchmarks of the family named in the dataset's composition ``benches``."""
    images_unread: int = 0
    """Example images that were not on this machine (not compared by content)."""

    def by_kind(self, kind: str) -> list[Match]:
        return [m for m in self.matches if m.kind == kind]

    @property
    def example_ids(self) -> list[str]:
        """Distinct example item ids that overlap in any way, in first-found order."""
        return list(dict.fromkeys(m.example_id for m in self.matches))

    def __bool__(self) -> bool:
        return bool(self.matches or self.built_from)

    def counts(self) -> dict[str, int]:
        """Distinct overlapping example ids per signal."""
        return {kind: len({m.example_id for m in self.by_kind(kind)}) for kind in KINDS}

    def message(self) -> str:
        """One line: how many, by which signal, the first few ids."""
        parts = [f"{n} by {kind.replace('_', ' ')}" for kind, n in self.counts().items() if n]
        ids = self.example_ids
        shown = ", ".join(repr(i) for i in ids[:SHOWN]) + (f", ... ({len(ids)} in all)" if len(ids) > SHOWN else "")
        text = f"dataset {self.dataset!r} overlaps benchmark {self.bench!r}"
        if ids:
            text += f" in {len(ids)} example item(s) ({'; '.join(parts)}: {shown})"
        if self.built_from:
            text += ("; it" if ids else ": it") + f" was built from {', '.join(repr(b) for b in self.built_from)}"
        return text

    def as_json(self) -> dict[str, Any]:
        """What a run records when the overlap was allowed."""
        return {"dataset": self.dataset, "bench": self.bench, "items": len(self.example_ids), **self.counts(),
                "built_from": self.built_from, "first": self.example_ids[:SHOWN]}


def bench_family(ws: Workspace, bench: str) -> list[str]:
    """The benchmark, its ancestors and every benchmark derived from any of them (names, oldest first)."""
    with ws.read() as con:
        info = get_bench(con, bench)
        rows = con.execute("SELECT bench_id, name, parent_bench_id FROM benchmarks ORDER BY bench_id").fetchall()
    parent = {bid: pid for bid, _, pid in rows}
    root = info.bench_id
    seen = {root}
    while parent.get(root) is not None and parent[root] not in seen:
        root = parent[root]
        seen.add(root)
    family = {root}
    grew = True
    while grew:
        grew = False
        for bid, _, pid in rows:
            if pid in family and bid not in family:
                family.add(bid)
                grew = True
    return [name for bid, name, _ in rows if bid in family]


@dataclass(frozen=True)
class _BenchSide:
    ids: dict[str, str]  # item id -> itself
    parents: dict[str, str]  # parent item id -> a bench item id that has it
    images: dict[str, str]  # absolute image path -> bench item id


def _bench_side(ws: Workspace, bench: str) -> _BenchSide:
    with ws.read() as con:
        info = get_bench(con, bench)
        rows = con.execute("SELECT item_id, parent_item_id, images FROM items WHERE bench_id = ? ORDER BY item_idx",
                           [info.bench_id]).fetchall()
    root = Path(info.image_root) if info.image_root else ws.root
    ids: dict[str, str] = {}
    parents: dict[str, str] = {}
    images: dict[str, str] = {}
    for item_id, parent_id, paths in rows:
        ids[item_id] = item_id
        if parent_id is not None:
            parents.setdefault(parent_id, item_id)
        for rel in paths or []:
            images.setdefault(str(resolve_image(root, rel)), item_id)
    return _BenchSide(ids, parents, images)


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sizes(paths: Iterable[str]) -> dict[str, int]:
    """Path -> size in bytes for the paths that are files here."""
    out: dict[str, int] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if os.path.isfile(path):
            out[path] = st.st_size
    return out


def image_matches(example_images: Mapping[str, str], bench_images: Mapping[str, str]) -> tuple[list[Match], int]:
    """(matches, example images not readable here): example image path -> example id against bench
    image path -> item id, by content. The same path is a match without reading it."""
    ex_sizes = _sizes(example_images)
    unread = len(example_images) - len(ex_sizes)
    bench_sizes = _sizes(bench_images)
    by_size: dict[int, list[str]] = defaultdict(list)
    for path, size in bench_sizes.items():
        by_size[size].append(path)
    digests: dict[str, str] = {}

    def digest(path: str) -> str | None:
        if path not in digests:
            try:
                digests[path] = _digest(path)
            except OSError:
                return None
        return digests[path]

    bench_by_digest: dict[str, str] = {}
    matches: list[Match] = []
    for path, size in ex_sizes.items():
        candidates = by_size.get(size)
        if not candidates:
            continue
        if path in bench_images:
            matches.append(Match("image", example_images[path], bench_images[path], path))
            continue
        mine = digest(path)
        if mine is None:
            continue
        for other in candidates:
            d = digest(other)
            if d is not None:
                bench_by_digest.setdefault(d, bench_images[other])
        if mine in bench_by_digest:
            matches.append(Match("image", example_images[path], bench_by_digest[mine], path))
    return matches, unread


def find_overlap(
    ws: Workspace, dataset: str, examples: Sequence[Mapping[str, Any]], composition: Mapping[str, Any], bench: str,
) -> Overlap:
    """Every way ``examples`` (of dataset ``dataset``) share items with ``bench``'s family."""
    family = bench_family(ws, bench)
    sides = [_bench_side(ws, name) for name in family]
    ids: dict[str, str] = {}
    parents: dict[str, str] = {}
    images: dict[str, str] = {}
    for side in sides:
        for k, v in side.ids.items():
            ids.setdefault(k, v)
        for k, v in side.parents.items():
            parents.setdefault(k, v)
        for k, v in side.images.items():
            images.setdefault(k, v)
    in_family = set(family)
    matches: list[Match] = []
    example_images: dict[str, str] = {}
    for example in examples:
        item_id = str(example["item_id"])
        source = example.get("bench")
        for path in example.get("images") or []:
            example_images.setdefault(str(path), item_id)
        if source is not None and source not in in_family:
            continue  # ids of another benchmark's namespace: only images can collide
        parent = example.get("parent_item_id")
        if item_id in ids:
            matches.append(Match("item_id", item_id, ids[item_id]))
        elif parent is not None and parent in ids:
            matches.append(Match("parent_item_id", item_id, ids[parent]))
        elif item_id in parents:
            matches.append(Match("parent_item_id", item_id, parents[item_id]))
        elif parent is not None and parent in parents:
            matches.append(Match("parent_item_id", item_id, parents[parent]))
    found, unread = image_matches(example_images, images)
    matches.extend(found)
    built_from = [b for b in composition_benches(composition) if b in in_family]
    return Overlap(dataset, bench, family, len(examples), matches, built_from, unread)


def composition_benches(composition: Mapping[str, Any]) -> list[str]:
    """The benchmarks a dataset's composition says its examples came from (``benches``)."""
    value = composition.get("benches")
    if not isinstance(value, list):
        return []
    return [b for b in value if isinstance(b, str)]


def check_dataset_against(ws: Workspace, dataset: str, bench: str, allow: bool = False) -> Overlap:
    """The overlap of workspace dataset ``dataset`` with ``bench``; refused (``OrienteerError``) unless ``allow``."""
    from orienteer.data.datasets import get_dataset, read_examples

    info = get_dataset(ws, dataset)
    if not Path(info.path).is_file():
        raise OrienteerError(f"dataset {dataset!r}: its file {info.path} is missing")
    overlap = find_overlap(ws, dataset, read_examples(Path(info.path)), info.composition, bench)
    if overlap and not allow:
        raise OrienteerError(f"{overlap.message()}: training on test items inflates the score on {bench!r}; "
                             "train on a pool without them, or pass --allow-overlap to train anyway "
                             "(the run records it)")
    return overlap


def training_pools(ws: Workspace, bench: str) -> list[str]:
    """Datasets and benchmarks a fix for ``bench`` may draw training items from: nothing of ``bench``'s
    family, by name or by recorded source. Imported datasets (training splits) first, then benchmarks
    outside the family, then other datasets; newest first within each."""
    from orienteer.data.datasets import list_datasets

    family = set(bench_family(ws, bench))
    clean = [d for d in reversed(list_datasets(ws)) if not family & set(composition_benches(d.composition))]
    imported = [d.name for d in clean if "imported_from" in d.composition]
    made = [d.name for d in clean if "imported_from" not in d.composition]
    with ws.read() as con:
        names = [r[0] for r in con.execute("SELECT name FROM benchmarks ORDER BY bench_id DESC").fetchall()]
    return imported + [b for b in names if b not in family] + made
