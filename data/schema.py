"""The workspace schema, as an ordered list of migrations.

Each migration (SQL, or a function for data back-fills) runs once, in order, inside one transaction; ``meta.schema_version``
records how many have run. Later issues append migrations; never edit a shipped one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb

from orienteer.data.single import single_value


def _add_correct_bits(con: duckdb.DuckDBPyConnection) -> None:
    from orienteer.data.store import refresh_stats

    con.execute("ALTER TABLE run_task_stats ADD COLUMN correct_bits BIT")
    for (bench_id,) in con.execute("SELECT bench_id FROM benchmarks").fetchall():
        run_ids = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE bench_id = ?", [bench_id]).fetchall()]
        refresh_stats(con, run_ids, bench_id, catalog="")

MIGRATIONS: tuple[str | Callable[[duckdb.DuckDBPyConnection], None], ...] = (
    # 1: benchmarks, items, runs, predictions and the per-(run, task) summary.
    """
    CREATE TABLE benchmarks (
        bench_id        INTEGER NOT NULL,
        name            VARCHAR NOT NULL,
        source_path     VARCHAR,
        source_format   VARCHAR,
        image_root      VARCHAR,
        n_items         INTEGER NOT NULL,
        parent_bench_id INTEGER,
        notes           VARCHAR,
        created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE items (
        bench_id         INTEGER NOT NULL,
        item_idx         INTEGER NOT NULL,
        item_id          VARCHAR NOT NULL,
        task             VARCHAR NOT NULL,
        question         VARCHAR NOT NULL,
        option_letters   VARCHAR[] NOT NULL,
        option_labels    VARCHAR[] NOT NULL,
        answer_letter    VARCHAR NOT NULL,
        answer_label     VARCHAR NOT NULL,
        images           VARCHAR[] NOT NULL,
        source           VARCHAR,
        reference_object VARCHAR,
        bbox             DOUBLE[],
        parent_item_id   VARCHAR
    );
    CREATE TABLE runs (
        run_id         INTEGER NOT NULL,
        name           VARCHAR NOT NULL,
        bench_id       INTEGER NOT NULL,
        model          VARCHAR,
        created_by_job VARCHAR,
        notes          VARCHAR,
        parser         VARCHAR NOT NULL,
        source_path    VARCHAR,
        source_format  VARCHAR,
        n_rows         INTEGER NOT NULL,
        created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE predictions (
        run_id       INTEGER NOT NULL,
        item_idx     INTEGER NOT NULL,
        task         VARCHAR NOT NULL,
        reply        VARCHAR,
        given_letter VARCHAR,
        letter       VARCHAR,
        outcome      VARCHAR NOT NULL,
        correct      BOOLEAN NOT NULL,
        gold_label   VARCHAR NOT NULL,
        pred_label   VARCHAR,
        category     VARCHAR,
        probs        VARCHAR,
        file_verdict BOOLEAN,
        source_line  INTEGER
    );
    CREATE TABLE run_task_stats (
        run_id         INTEGER NOT NULL,
        task           VARCHAR NOT NULL,
        n_items        INTEGER NOT NULL,
        answered       INTEGER NOT NULL,
        correct        INTEGER NOT NULL,
        unparsed       INTEGER NOT NULL,
        invalid_option INTEGER NOT NULL
    );
    """,
    # 2: artifacts: files derived from (run, item), e.g. saliency maps, with their numbers.
    """
    CREATE TABLE artifacts (
        artifact_id    INTEGER NOT NULL,
        run_id         INTEGER NOT NULL,
        item_idx       INTEGER NOT NULL,
        kind           VARCHAR NOT NULL,
        path           VARCHAR NOT NULL,
        frame          INTEGER NOT NULL DEFAULT 0,
        metrics        VARCHAR,
        created_by_job VARCHAR,
        created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    """,
    # 3: per-(run, task) bitstrings of correct items, for paired comparisons without a join.
    lambda con: _add_correct_bits(con),
    # 4: jobs' outputs: which jobs were ingested (exactly once), training datasets, trained models.
    """
    CREATE TABLE job_ingests (
        job_id      VARCHAR NOT NULL PRIMARY KEY,
        kind        VARCHAR NOT NULL,
        outputs     VARCHAR,
        ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE datasets (
        dataset_id     INTEGER NOT NULL,
        name           VARCHAR NOT NULL,
        path           VARCHAR NOT NULL,
        n_examples     INTEGER NOT NULL,
        composition    VARCHAR,
        source_format  VARCHAR,
        notes          VARCHAR,
        created_by_job VARCHAR,
        created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE models (
        model_id       INTEGER NOT NULL,
        name           VARCHAR NOT NULL,
        path           VARCHAR NOT NULL,
        base_model     VARCHAR,
        method         VARCHAR,
        notes          VARCHAR,
        created_by_job VARCHAR,
        created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    """,
    # 5: runs made by a model with random weights (the demo's tiny model) are labelled everywhere.
    """ALTER TABLE runs ADD COLUMN random_weights BOOLEAN NOT NULL DEFAULT FALSE;
       UPDATE runs SET random_weights = TRUE WHERE notes LIKE '%RANDOM WEIGHTS%';""",
    # 6: which frame of a multi-frame item its bbox is on; items of older workspaces had it on frame 0.
    "ALTER TABLE items ADD COLUMN bbox_frame INTEGER NOT NULL DEFAULT 0;",
    # 7: a run's settings as data (JSON: prompt and its template hash, resize, max new tokens, truncated
    # replies, overlap overrides...); imported runs and older job runs have none ('{}').
    "ALTER TABLE runs ADD COLUMN config VARCHAR NOT NULL DEFAULT '{}';",
    # 8: the prefix of a benchmark's padded ids ("viewspatial_test_" + 000123 = item 123), as data, so a
    # predictions file's ids are matched exactly; ViewSpatial JSON benchmarks of older workspaces get theirs.
    """ALTER TABLE benchmarks ADD COLUMN id_prefix VARCHAR;
       UPDATE benchmarks SET id_prefix = 'viewspatial_test_' WHERE source_format = 'viewspatial-json';""",
    # 9: eval runs made before settings were stored get them from their notes (``data.run_config``), so
    # nothing reads settings from notes any more.
    lambda con: _backfill_run_settings(con),
)

SCHEMA_VERSION = len(MIGRATIONS)


def _backfill_run_settings(con: duckdb.DuckDBPyConnection) -> None:
    from orienteer.data.run_config import backfill_from_notes

    rows = dict(con.execute("SELECT run_id, notes FROM runs WHERE config = '{}'").fetchall())
    for run_id, settings in backfill_from_notes(rows).items():
        con.execute("UPDATE runs SET config = ? WHERE run_id = ?", [json.dumps(settings, sort_keys=True), run_id])


def current_version(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> int:
    """The number of migrations already applied (0 for an empty database)."""
    prefix = f"{catalog}." if catalog else ""
    has_meta = single_value(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'"
        + (" AND database_name = ?" if catalog else ""),
        [catalog] if catalog else [],
    )
    if not has_meta:
        return 0
    row = con.execute(f"SELECT value FROM {prefix}meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the database up to ``SCHEMA_VERSION``; returns the number of migrations run."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"workspace schema version {version} is newer than this orienteer ({SCHEMA_VERSION}); upgrade orienteer"
        )
    if version == SCHEMA_VERSION:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        if version == 0:
            con.execute("CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR)")
            con.execute("INSERT INTO meta VALUES ('schema_version', '0')")
        for step in MIGRATIONS[version:]:
            if callable(step):
                step(con)
            else:
                con.execute(step)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION - version
