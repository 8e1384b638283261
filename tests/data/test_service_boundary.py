"""The workspace is read through ``data/`` only: no DuckDB import and no SQL in the app, the CLI or the jobs,
and no screen opens a connection of its own (they ask ``WorkspaceService``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DUCKDB_IMPORT = re.compile(r"^\s*(import\s+duckdb\b|from\s+duckdb\b)", re.M)
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|DELETE\s+FROM|CREATE\s+(TABLE|VIEW|INDEX)|ALTER\s+TABLE|UPDATE\s+\w+\s+SET)\b"
                 r"|\.execute\(|\.sql\(")
OPENS_CONNECTION = re.compile(r"\.read\(\)\s+as\s+\w+|\.write\(\)\s+as\s+\w+|duckdb\.connect")

# Modules that show or drive data: they must go through the service, not open the database themselves.
SERVICE_USERS = ["tui/app.py", "tui/prefetch.py", "tui/cli/main.py", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "tui" / "screens").glob("*.py"))]


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["tui", "jobs"])
def test_no_duckdb_import_and_no_sql_outside_data(folder: str) -> None:
    offenders = []
    for path in _sources(folder):
        source = path.read_text(encoding="utf-8")
        for pattern, what in ((DUCKDB_IMPORT, "imports duckdb"), (SQL, "has SQL")):
            match = pattern.search(source)
            if match:
                line = source.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line} {what}: {match.group(0).strip()!r}")
    assert not offenders, "read the workspace through orienteer.data (WorkspaceService):\n" + "\n".join(offenders)


def test_screens_the_app_and_the_cli_ask_the_service() -> None:
    offenders = [name for name in SERVICE_USERS if OPENS_CONNECTION.search((ROOT / name).read_text(encoding="utf-8"))]
    assert not offenders, f"these open a workspace connection instead of asking WorkspaceService: {offenders}"


def test_the_patterns_catch_what_they_guard_against() -> None:
    """The checks above would pass vacuously on broken patterns: they must flag the forms used before."""
    assert DUCKDB_IMPORT.search("if TYPE_CHECKING:\n    import duckdb\n")
    assert DUCKDB_IMPORT.search("from duckdb import InterruptException")
    assert SQL.search('con.execute("SELECT name FROM benchmarks ORDER BY bench_id")')
    assert SQL.search('"""SELECT b.name, b.n_items\n FROM benchmarks b"""')
    assert not SQL.search("ALLOW_SELECT = False")
    assert OPENS_CONNECTION.search("with ws.read() as con:")
    assert (ROOT / "data" / "service.py").exists() and DUCKDB_IMPORT.search(
        (ROOT / "data" / "service.py").read_text(encoding="utf-8"))
