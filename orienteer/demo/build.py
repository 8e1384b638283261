"""The demo workspace: the rendered synthetic benchmark and its three runs, imported the normal way.

Built into a temporary folder and moved into place, so an interrupted build never leaves a
half workspace; building again is a no-op unless ``rebuild`` is asked for.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace

DEFAULT_DEMO_DIR = "orienteer-demo"
DEMO_BENCH = "demo"
MARKER = ".orienteer-demo"


@dataclass(frozen=True)
class DemoSummary:
    workspace: Path
    bench: str
    items: int
    runs: tuple[str, ...]
    built: bool
    seconds: float

    def __str__(self) -> str:
        verb = f"built in {self.seconds:.1f} s" if self.built else "already built (use --rebuild to build again)"
        return (f"demo workspace {self.workspace}: benchmark {self.bench!r} with {self.items} items, "
                f"runs {', '.join(self.runs)}; {verb}")


def is_demo(path: Path) -> bool:
    return (path / MARKER).is_file()


def build_demo_workspace(target: Path, seed: int = 7, n_items: int = 1000, rebuild: bool = False) -> DemoSummary:
    from orienteer.data.ingest_bench import import_benchmark
    from orienteer.data.ingest_preds import import_predictions
    from orienteer.demo.bench import generate_demo_files

    target = target.resolve()
    if target.exists() and not is_demo(target) and any(target.iterdir()):
        raise OrienteerError(f"{target} exists and is not a demo workspace; choose another --path")
    if is_demo(target) and not rebuild:
        ws = Workspace(target)
        with ws.read() as con:
            items = con.execute("SELECT n_items FROM benchmarks WHERE name = ?", [DEMO_BENCH]).fetchone()
            runs = tuple(r[0] for r in con.execute("SELECT name FROM runs ORDER BY run_id").fetchall())
        return DemoSummary(target, DEMO_BENCH, int(items[0]) if items else 0, runs, False, 0.0)

    started = time.perf_counter()
    staging = target.with_name(f".{target.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        bundle = generate_demo_files(staging / "demo-data", seed=seed, n_items=n_items)
        ws = Workspace(staging)
        bench = import_benchmark(ws, bundle.bench_path, DEMO_BENCH, images=bundle.images_root,
                                 notes=f"synthetic rendered benchmark, seed {seed}")
        for run in bundle.runs:
            import_predictions(ws, run.path, DEMO_BENCH, run.name, fmt=run.format, model=run.model, notes=run.notes)
        (staging / MARKER).write_text(f"seed={seed}\nitems={n_items}\n", encoding="utf-8")
        # Paths inside the database point into the staging folder: rewrite them to the final place.
        with ws.write() as con:
            con.execute("UPDATE benchmarks SET image_root = replace(image_root, ?, ?), source_path = replace(source_path, ?, ?)",
                        [str(staging), str(target)] * 2)
            con.execute("UPDATE runs SET source_path = replace(source_path, ?, ?)", [str(staging), str(target)])
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DemoSummary(target, DEMO_BENCH, bench.n_items, tuple(r.name for r in bundle.runs), True,
                       time.perf_counter() - started)
