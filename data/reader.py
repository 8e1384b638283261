"""Read access for long-lived processes (the TUI): reuse a connection for a burst of queries.

A read-only DuckDB connection blocks writers in other processes (imports, finishing jobs),
so the connection is closed once it has been idle for ``idle_s`` (2 s: reconnecting costs
40-70 ms on a 10-million-row workspace); writers, which retry for up to 30 s, then get the file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import duckdb

from orienteer.data.workspace import Workspace

T = TypeVar("T")


class WorkspaceReader:
    """One read-only connection, opened on demand and closed when idle; queries run one at a time."""

    def __init__(self, ws: Workspace, idle_s: float = 2.0) -> None:
        self.ws = ws
        self.idle_s = idle_s
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ctx: AbstractContextManager[duckdb.DuckDBPyConnection] | None = None
        self._last_used = 0.0

    def run(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``query`` on a read-only connection (opened on demand, kept for the burst)."""
        with self._lock:
            if self._con is None:
                ctx = self.ws.read()
                self._con = ctx.__enter__()
                self._ctx = ctx
            try:
                return query(self._con)
            finally:
                self._last_used = time.monotonic()

    def interrupt(self) -> None:
        """Interrupt the query in flight, from any thread (never waits for the lock)."""
        con = self._con
        if con is not None:
            try:
                con.interrupt()
            except duckdb.Error:  # closed meanwhile
                pass

    def release_if_idle(self) -> bool:
        """Close the connection when idle long enough; returns True when it closed one.

        Never waits: called from the UI's timer, it gives up when a query holds the lock.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._con is not None and time.monotonic() - self._last_used >= self.idle_s:
                self.close()
                return True
            return False
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._ctx.__exit__(None, None, None)
            self._con = None
            self._ctx = None
