"""The workspace: a folder with one DuckDB file and folders for artifacts, datasets and jobs.

DuckDB allows one read-write process or many read-only ones per file. Every process
(two TUIs, a CLI import, a finishing job) therefore holds a connection only for one unit
of work, and waits briefly, with back-off, when another process holds the lock.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from orienteer.data.errors import WorkspaceBusyError, WorkspaceError
from orienteer.data.schema import SCHEMA_VERSION, current_version, migrate

ENV_VAR = "ORIENTEER_WORKSPACE"
DEFAULT_DIRNAME = "orienteer-workspace"
DB_FILENAME = "orienteer.duckdb"
SUBDIRS = ("artifacts", "datasets", "jobs")
DEFAULT_LOCK_TIMEOUT_S = 30.0
# DuckDB's default memory limit is 80% of RAM, and it keeps what it read cached up to that.
# Readers (the TUI, reports) stay small; the staging database of a big import may spill to disk.
READ_MEMORY_LIMIT = os.environ.get("ORIENTEER_READ_MEMORY", "256MB")
STAGING_MEMORY_LIMIT = os.environ.get("ORIENTEER_STAGING_MEMORY", "3GB")
T = TypeVar("T")


def resolve_workspace_path(path: str | Path | None = None) -> Path:
    """``--workspace`` wins, then ``$ORIENTEER_WORKSPACE``, then ``./orienteer-workspace``."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.cwd() / DEFAULT_DIRNAME


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflict" in text or "could not set" in text or "held" in text)


class Workspace:
    """A handle on a workspace folder; cheap to create, opens connections on demand."""

    def __init__(self, root: str | Path | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.root = resolve_workspace_path(root).resolve()
        self.db_path = self.root / DB_FILENAME
        self.lock_timeout_s = lock_timeout_s
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def exists(self) -> bool:
        return self.db_path.is_file()

    def dir(self, name: str) -> Path:
        """One of the artifact folders (created on demand)."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure(self) -> None:
        """Create the folder layout and the database, and apply pending migrations."""
        if self._schema_checked and self.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in SUBDIRS:
            (self.root / sub).mkdir(exist_ok=True)
        with self._open(read_only=False) as con:
            migrate(con)
        self._schema_checked = True

    def _with_lock_retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying with back-off while another process holds the file lock."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                return action()
            except duckdb.IOException as exc:
                if not _is_lock_conflict(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(
                        f"workspace {self.root} stayed locked by another process for "
                        f"{self.lock_timeout_s:.0f} s; try again"
                    ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    @contextmanager
    def _open(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {"memory_limit": READ_MEMORY_LIMIT} if read_only else {}
        con = self._with_lock_retry(lambda: duckdb.connect(str(self.db_path), read_only=read_only, config=config))
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for one unit of work."""
        if not self.exists():
            raise WorkspaceError(
                f"no workspace at {self.root}: import a benchmark (orienteer import bench ...) "
                "or build the demo (orienteer demo), or pass --workspace"
            )
        if not self._schema_checked:
            with self._open(read_only=True) as con:
                outdated = current_version(con) != SCHEMA_VERSION
            if outdated:
                self.ensure()
            self._schema_checked = True
        with self._open(read_only=True) as con:
            yield con

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: committed on success, rolled back on error."""
        self.ensure()
        with self._open(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def staging(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB for parsing and validating input without holding the workspace lock.

        Call :meth:`attach_for_write` on it once the data is ready: the lock is then held only
        for the final copy.
        """
        spill = tempfile.mkdtemp(prefix="orienteer-staging-")
        con = duckdb.connect(":memory:", config={"memory_limit": STAGING_MEMORY_LIMIT, "temp_directory": spill})
        try:
            yield con
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def _attach(self, con: duckdb.DuckDBPyConnection, alias: str, read_only: bool) -> None:
        options = " (READ_ONLY)" if read_only else ""
        self._with_lock_retry(lambda: con.execute(f"ATTACH '{_sql_str(str(self.db_path))}' AS {alias}{options}"))

    @contextmanager
    def attach_read(self, con: duckdb.DuckDBPyConnection, alias: str = "src") -> Iterator[None]:
        """Attach the workspace read-only to a staging connection, to copy what it needs."""
        if not self.exists():
            raise WorkspaceError(
                f"no workspace at {self.root}: import a benchmark (orienteer import bench ...) "
                "or build the demo (orienteer demo), or pass --workspace"
            )
        self._attach(con, alias, read_only=True)
        try:
            yield
        finally:
            con.execute(f"DETACH {alias}")

    @contextmanager
    def attach_for_write(self, con: duckdb.DuckDBPyConnection, alias: str = "ws") -> Iterator[None]:
        """Attach the workspace to a staging connection and run the body as one transaction on it."""
        self.ensure()
        self._attach(con, alias, read_only=False)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.execute(f"DETACH {alias}")


def _sql_str(text: str) -> str:
    return text.replace("'", "''")
