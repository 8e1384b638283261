"""One-row queries (counts, max ids, settings): a missing row is a bug, said as one, not a TypeError on None."""

from __future__ import annotations

from typing import Any

import duckdb


def single_row(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate without GROUP BY, a setting)."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"query returned no row: {sql[:80]}")
    return row


def single_value(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first column of :func:`single_row`."""
    return single_row(con, sql, params)[0]
