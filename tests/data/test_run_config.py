"""Run settings as data: older runs get theirs from their notes once (migration 9), and every reader
(report, runs --json, saliency) takes them from ``RunConfig``."""

from __future__ import annotations

import json

import duckdb

from orienteer.data.run_config import RunConfig, settings_from_notes
from orienteer.data.schema import MIGRATIONS, SCHEMA_VERSION, migrate


def test_older_eval_notes_become_settings() -> None:
    assert settings_from_notes("eval mode=generate; prompt=official; max_pixels=307200; adapter=/a/b; "
                               "max_new_tokens=16; RANDOM WEIGHTS (numbers mean nothing)") == {
        "engine": "hf", "mode": "generate", "prompt": "official-newline", "resize": "budget", "max_pixels": 307200,
        "max_new_tokens": 16, "adapter": "/a/b", "from_notes": True}  # "official" then was today's official-newline
    assert settings_from_notes("eval mode=score; prompt=letter; max_pixels=3136")["prompt"] == "letter"
    for notes in (None, "", "my best run; prompt=x", "eval mode=dance; prompt=official", "imported from lmms-eval"):
        assert settings_from_notes(notes) == {}


def test_migration_9_fills_the_settings_of_older_eval_runs_only(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '8')")
    for step in MIGRATIONS[:8]:
        step(con) if callable(step) else con.execute(step)
    con.execute("""INSERT INTO runs (run_id, name, bench_id, notes, parser, n_rows, config) VALUES
                   (1, 'old-eval', 1, 'eval mode=score; prompt=official; max_pixels=3136', 'viewspatial', 0, '{}'),
                   (2, 'imported', 1, 'from a colleague', 'viewspatial', 0, '{}'),
                   (3, 'new-eval', 1, 'eval mode=score; prompt=letter', 'viewspatial', 0,
                    '{"mode": "score", "prompt": "official"}')""")
    assert migrate(con) == SCHEMA_VERSION - 8
    rows = {name: json.loads(config) for name, config in con.execute("SELECT name, config FROM runs").fetchall()}
    assert rows["old-eval"] == {"engine": "hf", "mode": "score", "prompt": "official-newline", "resize": "budget",
                                "max_pixels": 3136, "from_notes": True}
    assert rows["imported"] == {} and rows["new-eval"] == {"mode": "score", "prompt": "official"}  # left as they were
    con.close()


def test_the_typed_view_joins_settings_and_columns() -> None:
    config = RunConfig.from_row('{"mode": "generate", "truncated": 3}', "viewspatial", "m", "jsonl", True)
    assert config.truncated == 3 and config.get("mode") == "generate" and config.get("resize") is None
    assert config.as_json() == {"mode": "generate", "truncated": 3, "parser": "viewspatial", "model": "m",
                                "source_format": "jsonl", "random_weights": True, "engine": "imported",
                                "created_by_job": None}


def test_the_engine_says_what_made_the_answers() -> None:
    """A job's run says its recorded engine; a run read from a file is ``imported``; a job's run that
    recorded none (a fixed-letter baseline) says nothing rather than guess."""
    assert RunConfig.from_row('{"engine": "hf"}', source_format="jsonl", created_by_job="j1").engine == "hf"
    assert RunConfig.from_row(None, source_format="viewspatial-csv").engine == "imported"
    assert RunConfig.from_row(None, source_format="jsonl", created_by_job="j2").engine is None
    assert RunConfig.from_row(None).engine is None
    assert RunConfig.from_row("not json").settings == {} and RunConfig.from_row("[1]").settings == {}
    assert RunConfig.from_row('{"truncated": true}').truncated is None


def test_runs_json_carries_each_runs_config(ws_with_run) -> None:
    from typer.testing import CliRunner

    from orienteer.tui.cli.main import app

    result = CliRunner().invoke(app, ["-w", str(ws_with_run.root), "runs", "--json"])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.output)
    assert run["config"] == {"parser": "viewspatial", "model": None, "source_format": "viewspatial-csv",
                             "random_weights": False, "engine": "imported", "created_by_job": None}
