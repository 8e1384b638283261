"""Look-ups of benchmarks and runs by name, with errors that list what does exist."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from orienteer.data.errors import WorkspaceError


@dataclass(frozen=True)
class BenchInfo:
    bench_id: int
    name: str
    n_items: int
    image_root: str | None


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    name: str
    bench_id: int
    bench_name: str
    parser: str


def bench_names(con: duckdb.DuckDBPyConnection, catalog: str = "") -> list[str]:
    prefix = f"{catalog}." if catalog else ""
    return [r[0] for r in con.execute(f"SELECT name FROM {prefix}benchmarks ORDER BY bench_id").fetchall()]


def run_names(con: duckdb.DuckDBPyConnection, catalog: str = "") -> list[str]:
    prefix = f"{catalog}." if catalog else ""
    return [r[0] for r in con.execute(f"SELECT name FROM {prefix}runs ORDER BY run_id").fetchall()]


def _listing(names: list[str], noun: str) -> str:
    if not names:
        return f"there are no {noun}s yet"
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"{noun}s are: {shown}"


def get_bench(con: duckdb.DuckDBPyConnection, name: str, catalog: str = "") -> BenchInfo:
    prefix = f"{catalog}." if catalog else ""
    row = con.execute(
        f"SELECT bench_id, name, n_items, image_root FROM {prefix}benchmarks WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        raise WorkspaceError(f"no benchmark named {name!r}; {_listing(bench_names(con, catalog), 'benchmark')}")
    bench_id, found, n_items, image_root = row
    return BenchInfo(bench_id=bench_id, name=found, n_items=n_items, image_root=image_root)


def find_bench(con: duckdb.DuckDBPyConnection, name: str, catalog: str = "") -> BenchInfo | None:
    try:
        return get_bench(con, name, catalog)
    except WorkspaceError:
        return None


def get_run(con: duckdb.DuckDBPyConnection, name: str, catalog: str = "") -> RunInfo:
    prefix = f"{catalog}." if catalog else ""
    row = con.execute(
        f"""SELECT r.run_id, r.name, r.bench_id, b.name, r.parser
            FROM {prefix}runs r JOIN {prefix}benchmarks b USING (bench_id) WHERE r.name = ?""",
        [name],
    ).fetchone()
    if row is None:
        raise WorkspaceError(f"no run named {name!r}; {_listing(run_names(con, catalog), 'run')}")
    run_id, found, bench_id, bench_name, parser = row
    return RunInfo(run_id=run_id, name=found, bench_id=bench_id, bench_name=bench_name, parser=parser)
