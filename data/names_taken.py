"""Is a name already in one of the workspace's catalog tables? Asked before a job is created.

A job that reads a benchmark, dataset or run must find it there; a job that makes one must not (its
ingest would fail after all the work). ``TABLES`` are the tables a name can be looked up in.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

TABLES = ("benchmarks", "datasets", "runs", "models")


def name_in(con: duckdb.DuckDBPyConnection, table: str, name: str) -> bool:
    """Whether ``table`` (one of ``TABLES``) has a row called ``name``."""
    if table not in TABLES:
        raise ValueError(f"not a catalog table: {table!r}")
    row = con.execute(f"SELECT count(*) FROM {table} WHERE name = ?", [name]).fetchone()
    return bool(row and row[0])


def first_table_with(con: duckdb.DuckDBPyConnection, tables: Iterable[str], name: str) -> str | None:
    """The first of ``tables`` that has ``name``, or None."""
    return next((table for table in tables if name_in(con, table, name)), None)
