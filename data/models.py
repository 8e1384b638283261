"""Registered models: adapters and model folders made by train jobs (and the demo's tiny model).

The eval form offers these by name; a name resolves to its folder, and a LoRA adapter carries
the base model it was trained on, so ``--model NAME`` is enough to evaluate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from orienteer.data.errors import OrienteerError
from orienteer.data.single import single_value
from orienteer.data.workspace import Workspace

_COLUMNS = "name, path, base_model, method, notes, created_by_job"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    base_model: str | None
    method: str | None
    notes: str | None
    created_by_job: str | None


def insert_model(con: duckdb.DuckDBPyConnection, name: str, path: str, base_model: str | None, method: str | None,
                 notes: str | None, created_by_job: str | None, catalog: str = "") -> None:
    """Register inside the caller's transaction; a name already taken, or against the name rule, is refused."""
    from orienteer.data.names import check_name

    check_name(name, "model")
    prefix = f"{catalog}." if catalog else ""
    if single_value(con, f"SELECT count(*) FROM {prefix}models WHERE name = ?", [name]):
        raise OrienteerError(f"a model named {name!r} is already registered")
    model_id = single_value(con, f"SELECT COALESCE(max(model_id), 0) + 1 FROM {prefix}models")
    con.execute(
        f"""INSERT INTO {prefix}models (model_id, name, path, base_model, method, notes, created_by_job, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, now())""",
        [model_id, name, path, base_model, method, notes, created_by_job],
    )


def register_model(ws: Workspace, name: str, path: Path, base_model: str | None = None, method: str | None = None,
                   notes: str | None = None, replace: bool = False) -> None:
    with ws.write() as con:
        if replace:
            con.execute("DELETE FROM models WHERE name = ?", [name])
        insert_model(con, name, str(path), base_model, method, notes, None)


def list_models(con: duckdb.DuckDBPyConnection) -> list[ModelInfo]:
    rows = con.execute(f"SELECT {_COLUMNS} FROM models ORDER BY model_id").fetchall()
    return [ModelInfo(*row) for row in rows]

