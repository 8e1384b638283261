"""The workspace: a folder with one DuckDB file and folders for artifacts, datasets and jobs.

DuckDB allows one read-write process or many read-only ones per file. Every process
(two TUIs, a CLI import, a finishing job) therefore holds a connection only for one unit
of work, and waits briefly, with back-off, when another process holds the lock.

Every connection first checks that the file is as long as DuckDB's own block count says (a
truncated copy otherwise answers some queries and fails later), and every DuckDB I/O or corruption
error is turned into one ``WorkspaceError`` line: damaged (restore or re-import), disk full, or no
permission. Opening for writing also removes dataset files that no catalog row names (what a kill
between writing a new dataset version and deleting the old one leaves; see ``datasets.store_dataset``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from orienteer.data.errors import WorkspaceBusyError, WorkspaceDamagedError, WorkspaceError
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


# What DuckDB says when the file is not what its header promises: truncated, overwritten, bit rot.
_DAMAGE_MARKERS = (
    "not a valid duckdb database", "could not read enough bytes", "checksum", "corrupt", "failed to deserialize",
    "serializ", "invalid metadata", "invalid block", "unexpected end of file", "is damaged",
)


def classify_error(exc: BaseException, db_path: Path) -> WorkspaceError | None:
    """One ``WorkspaceError`` line for a DuckDB (or OS) error about the workspace file, or None when the
    error is something else (a bug, a constraint) that the caller should let through.

    Damage says "restore from a backup or re-import"; a full disk and missing permissions say so,
    because neither means the file is broken.
    """
    if isinstance(exc, WorkspaceError):
        return exc
    if isinstance(exc, OSError):
        from orienteer.data.fileio import os_reason

        where = exc.filename or db_path
        return WorkspaceError(f"workspace {db_path.parent}: {where}: {os_reason(exc)}")
    if not isinstance(exc, duckdb.Error):
        return None
    text = " ".join(str(exc).split())
    low = text.lower()
    if _is_lock_conflict(exc):
        return None
    if "no space left" in low or "disk full" in low or "quota" in low:
        return WorkspaceError(f"workspace {db_path}: no space left on device ({text}); free some space and run the "
                              "command again (nothing of it was committed)")
    if "file too large" in low:
        return WorkspaceError(f"workspace {db_path}: file too large ({text}): a file size limit was reached")
    if "permission denied" in low or "read-only file system" in low:
        return WorkspaceError(f"workspace {db_path}: permission denied ({text}); expected a workspace folder you "
                              "can read and, for this command, write")
    if any(marker in low for marker in _DAMAGE_MARKERS):
        return WorkspaceDamagedError(db_path, text)
    if isinstance(exc, (duckdb.IOException, duckdb.FatalException)):
        return WorkspaceError(f"workspace {db_path}: I/O error: {text}")
    return None


def check_database_size(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """Refuse a database file shorter than the blocks DuckDB has in use (a truncated copy).

    A cheap check (one pragma and one stat) run on every connection: DuckDB reads blocks lazily, so
    a file cut in half still lists its runs and fails only when a query reaches a missing block.
    The file header is left out of the bound, so a layout change can only make the check laxer;
    what it misses, a query that reaches the missing block reports as damage.
    """
    row = con.execute(
        "SELECT used_blocks, block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    if row is None:
        return
    _check_size(db_path, int(row[0] or 0), int(row[1] or 0))


def _check_size(db_path: Path, used_blocks: int, block_size: int) -> None:
    """Each block in use needs its own slot in the file, so a shorter file lost some (free blocks at the
    end may be trimmed by DuckDB, which is why the bound counts used blocks only)."""
    size = os.path.getsize(db_path)
    if size < used_blocks * block_size:
        raise WorkspaceDamagedError(
            db_path, f"the file is {size:,} bytes but {used_blocks} blocks of {block_size:,} bytes are in use "
                     "(it was truncated)")


class Workspace:
    """A handle on a workspace folder; cheap to create, opens connections on demand."""

    def __init__(self, root: str | Path | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.root = resolve_workspace_path(root).resolve()
        self.db_path = self.root / DB_FILENAME
        self.lock_timeout_s = lock_timeout_s
        self._schema_checked = False
        self._opened_for_write = False  # ensure() ran here: migrations applied, orphaned dataset files removed

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
        """Create the folder layout and the database, apply pending migrations, and remove the dataset files
        no catalog row names (once per handle, under the write lock: see ``_orphan_dataset_files``)."""
        if self._opened_for_write and self.exists():
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (self.root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            from orienteer.data.fileio import os_reason

            raise WorkspaceError(f"workspace {self.root}: cannot create {exc.filename or self.root}: "
                                 f"{os_reason(exc)}") from None
        with self._open(read_only=False) as con:
            try:
                migrate(con)
                orphans = _orphan_dataset_files(con, self.root / "datasets")
            except duckdb.Error as exc:
                raise (classify_error(exc, self.db_path) or exc) from None
            for orphan in orphans:
                orphan.unlink(missing_ok=True)
        self._schema_checked = self._opened_for_write = True

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

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": READ_MEMORY_LIMIT} if read_only else {}
        try:
            con = self._with_lock_retry(lambda: duckdb.connect(str(self.db_path), read_only=read_only, config=config))
        except duckdb.Error as exc:
            raise (classify_error(exc, self.db_path) or exc) from None
        try:
            check_database_size(con, self.db_path)
        except BaseException as exc:
            con.close()
            if isinstance(exc, duckdb.Error):
                raise (classify_error(exc, self.db_path) or exc) from None
            raise
        return con

    @contextmanager
    def _open(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connect(read_only)
        try:
            yield con
        except duckdb.Error as exc:
            mapped = classify_error(exc, self.db_path)
            if mapped is None:
                raise
            raise mapped from None
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
        self._bring_schema_up_to_date()
        with self._open(read_only=True) as con:
            yield con

    def _bring_schema_up_to_date(self) -> None:
        """Migrate once per handle when the file's schema is older than this code's (a cheap read first)."""
        if self._schema_checked:
            return
        with self._open(read_only=True) as con:
            outdated = current_version(con) != SCHEMA_VERSION
        if outdated:
            self.ensure()
        self._schema_checked = True

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: committed on success, rolled back on error."""
        self.ensure()
        with self._open(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                _rollback(con)
                raise
            con.execute("COMMIT")

    @contextmanager
    def staging(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB for parsing and validating input without holding the workspace lock.

        Call :meth:`attach_for_write` on it once the data is ready: the lock is then held only
        for the final copy.
        """
        spill = _staging_folder()
        con = duckdb.connect(":memory:", config={"memory_limit": STAGING_MEMORY_LIMIT, "temp_directory": spill})
        try:
            yield con
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def _attach(self, con: duckdb.DuckDBPyConnection, alias: str, read_only: bool) -> None:
        options = " (READ_ONLY)" if read_only else ""
        try:
            self._with_lock_retry(lambda: con.execute(f"ATTACH '{_sql_str(str(self.db_path))}' AS {alias}{options}"))
            row = con.execute("SELECT used_blocks, block_size FROM pragma_database_size() WHERE database_name = ?",
                              [alias]).fetchone()
        except duckdb.Error as exc:
            raise (classify_error(exc, self.db_path) or exc) from None
        if row is not None:
            try:
                _check_size(self.db_path, int(row[0] or 0), int(row[1] or 0))
            except WorkspaceDamagedError:
                _detach(con, alias)
                raise


    @contextmanager
    def attach_read(self, con: duckdb.DuckDBPyConnection, alias: str = "src") -> Iterator[None]:
        """Attach the workspace read-only to a staging connection, to copy what it needs."""
        if not self.exists():
            raise WorkspaceError(
                f"no workspace at {self.root}: import a benchmark (orienteer import bench ...) "
                "or build the demo (orienteer demo), or pass --workspace"
            )
        self._bring_schema_up_to_date()  # an older workspace's tables may lack columns the reader asks for
        self._attach(con, alias, read_only=True)
        try:
            yield
        except duckdb.Error as exc:
            mapped = classify_error(exc, self.db_path)
            if mapped is None:
                raise
            raise mapped from None
        finally:
            _detach(con, alias)

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
                _rollback(con)
                raise
            con.execute("COMMIT")
        except duckdb.Error as exc:
            mapped = classify_error(exc, self.db_path)
            if mapped is None:
                raise
            raise mapped from None
        finally:
            _detach(con, alias)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, keeping the error that got us here: after an I/O error DuckDB may refuse even that."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _detach(con: duckdb.DuckDBPyConnection, alias: str) -> None:
    try:
        con.execute(f"DETACH {alias}")
    except duckdb.Error:
        pass


# Files a dataset version is stored under (``datasets.dataset_version_file``) and temporary files beside them.
_DATASET_FILE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._+@=-]{0,127}(?:~[0-9a-f]{8,32})?\.jsonl|\..+\.tmp)")


def _orphan_dataset_files(con: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Dataset files in ``folder`` that no catalog row names, found while the caller holds the write lock.

    Every process writes dataset files only while it holds that lock (``datasets.store_dataset``,
    ``register_dataset``), so what is unnamed here is what a killed or failed writer left. Rows are
    matched by file name, not full path, so a moved workspace keeps its files.
    """
    if not folder.is_dir():
        return []
    named = {Path(p).name for (p,) in con.execute("SELECT path FROM datasets").fetchall() if p}
    return [f for f in folder.iterdir()
            if f.name not in named and _DATASET_FILE.fullmatch(f.name) and f.is_file() and not f.is_symlink()]


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


STAGING_PREFIX = "orienteer-staging-"
_STAGING_OWNER = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-")


def _staging_folder() -> str:
    """A new spill folder for a staging connection, named after this process (``orienteer-staging-PID-XXXX``),
    after removing the ones whose process is gone: a killed import cannot clean up after itself."""
    root = Path(tempfile.gettempdir())
    remove_stale_staging(root)
    return tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root)


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove ``root``'s staging folders whose owner pid is no longer running; returns them. Folders of
    live processes, of other users' processes and without an owner pid (older versions) stay."""
    removed = []
    try:
        candidates = list(root.glob(f"{STAGING_PREFIX}*"))
    except OSError:
        return []
    for folder in candidates:
        match = _STAGING_OWNER.match(folder.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we can judge: keep the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or not a pid at all): leave it alone
    return True
