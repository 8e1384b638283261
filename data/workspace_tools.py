"""``orienteer workspace check`` and ``backup``: find damage before it bites, and keep a copy to go back to.

The check reads every column of every table: DuckDB verifies each block's checksum as it reads
it, so a truncated, overwritten or bit-rotten file fails here, in one line, instead of in the
middle of a report. The backup is DuckDB's own ``COPY FROM DATABASE`` from a read-only attachment:
a consistent snapshot taken while the app, jobs and imports carry on (read locks are shared;
a writer waits, with back-off, at most until the copy ends), plus the dataset files the copied
catalog names. It is written under a temporary folder name and renamed when whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from orienteer.data.errors import OrienteerError, WorkspaceDamagedError, WorkspaceError
from orienteer.data.fileio import fsync_dir, os_reason
from orienteer.data.schema import SCHEMA_VERSION, current_version
from orienteer.data.single import single_row
from orienteer.data.workspace import _DATASET_FILE, DB_FILENAME, SUBDIRS, Workspace, classify_error


@dataclass
class CheckReport:
    """What ``check_workspace`` found: ``problems`` need attention, ``notes`` do not."""

    root: Path
    tables: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"workspace": str(self.root), "ok": self.ok, "tables": self.tables, "problems": self.problems,
                "notes": self.notes}


def _require(ws: Workspace) -> None:
    if not ws.db_path.exists() and not ws.db_path.is_symlink():
        raise WorkspaceError(f"no workspace at {ws.root} (expected {DB_FILENAME} in it), or pass --workspace")


def _scan_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int]:
    """Row count of every table, reading every column of every row (so every block's checksum is verified)."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name", [catalog]).fetchall()]
    counts: dict[str, int] = {}
    for table in tables:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? ORDER BY column_index",
            [catalog, table]).fetchall()]
        hashed = ", ".join(f'"{c}"' for c in columns)
        row = single_row(con, f'SELECT count(*), bit_xor(hash({hashed})) FROM {catalog}."{table}"')
        counts[table] = int(row[0])
    return counts


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                count += 1
    return count


def check_workspace(ws: Workspace) -> CheckReport:
    """Read the whole database and check the dataset files it names; raises ``WorkspaceDamagedError``
    when the database itself cannot be read whole. Safe while other processes use the workspace: it
    holds a read-only attachment (a shared lock) for the length of the scan."""
    _require(ws)
    report = CheckReport(ws.root)
    with ws.staging() as con:
        with ws.attach_read(con, "src"):
            try:
                version = current_version(con, "src")
                report.tables = _scan_tables(con, "src")
                datasets = con.execute("SELECT name, path, n_examples FROM src.datasets ORDER BY dataset_id").fetchall()
            except duckdb.Error as exc:
                raise (classify_error(exc, ws.db_path) or WorkspaceDamagedError(ws.db_path, str(exc))) from None
    if version > SCHEMA_VERSION:
        report.problems.append(f"schema version {version} is newer than this Orienteer's {SCHEMA_VERSION}: "
                               "upgrade Orienteer before writing to it")
    elif version < SCHEMA_VERSION:
        report.notes.append(f"schema version {version}: migrations up to {SCHEMA_VERSION} run at the next write")
    named = set()
    for name, path, n_examples in datasets:
        file = Path(path)
        named.add(file.name)
        try:
            lines = _count_lines(file)
        except FileNotFoundError:
            report.problems.append(f"dataset {name!r}: its file {file} is missing (restore it from a backup's "
                                   "datasets folder, or import the dataset again)")
            continue
        except OSError as exc:
            report.problems.append(f"dataset {name!r}: {file}: {os_reason(exc)}")
            continue
        if lines != n_examples:
            report.problems.append(f"dataset {name!r}: {file} has {lines} examples, the catalog says {n_examples}")
    folder = ws.root / "datasets"
    if folder.is_dir():
        orphans = sorted(f.name for f in folder.iterdir() if f.name not in named and _DATASET_FILE.fullmatch(f.name))
        if orphans:
            report.notes.append(f"{len(orphans)} dataset file(s) no catalog row names (left by an interrupted "
                                f"import; removed at the next write): {', '.join(orphans[:5])}"
                                + (" ..." if len(orphans) > 5 else ""))
    wal = ws.db_path.with_name(ws.db_path.name + ".wal")
    if wal.exists():
        report.notes.append(f"{wal.name} exists: the last writer stopped before folding its log into the file "
                            "(DuckDB replays it; the next write folds it in)")
    return report


@dataclass(frozen=True)
class BackupResult:
    path: Path
    tables: dict[str, int]
    datasets: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {"backup": str(self.path), "tables": self.tables, "datasets": self.datasets, "bytes": self.bytes}


def backup_workspace(ws: Workspace, dest: Path) -> BackupResult:
    """Copy the workspace's database (``COPY FROM DATABASE``) and the dataset files its catalog names into
    the new folder ``dest``, consistently, while other processes keep working.

    ``dest`` becomes a workspace of its own (``orienteer -w DEST runs`` reads it). Written under a
    temporary name beside ``dest`` and renamed when whole and checked, so an interrupted backup never
    looks like a finished one.
    """
    _require(ws)
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise OrienteerError(f"{dest} already exists (expected a new folder name for the backup)")
    if not dest.parent.is_dir():
        raise OrienteerError(f"{dest.parent} does not exist (expected an existing folder to put the backup in)")
    if dest.resolve().is_relative_to(ws.root):
        raise OrienteerError(f"{dest} is inside the workspace {ws.root} (expected a place outside it)")
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.mkdir()
        for sub in SUBDIRS:
            (tmp / sub).mkdir()
        copied = 0
        with ws.staging() as con:
            with ws.attach_read(con, "src"):
                target = str(tmp / DB_FILENAME).replace("'", "''")
                con.execute(f"ATTACH '{target}' AS bk")
                try:
                    con.execute("COPY FROM DATABASE src TO bk")
                    paths = [Path(p) for (p,) in con.execute("SELECT path FROM src.datasets").fetchall() if p]
                finally:
                    con.execute("DETACH bk")
                # Still under the shared lock: no writer can replace (and delete) a named file meanwhile.
                for path in paths:
                    if path.is_file():
                        with open(path, "rb") as src, open(tmp / "datasets" / path.name, "xb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                            out.flush()
                            os.fsync(out.fileno())
                        copied += 1
        check = check_workspace(Workspace(tmp))
        fsync_dir(tmp / "datasets")
        fsync_dir(tmp)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except duckdb.Error as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if str(tmp) in str(exc):
            raise OrienteerError(f"{dest}: could not write the backup: {' '.join(str(exc).split())}") from None
        raise (classify_error(exc, ws.db_path) or exc) from None
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        where = exc.filename if exc.filename is not None else dest
        raise OrienteerError(f"{dest}: could not write the backup: {where}: {os_reason(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return BackupResult(dest, check.tables, copied, size)
