"""The read side of the workspace: every table, report and page the CLI and the TUI show.

Each function takes an open connection and returns plain dataclasses or dicts, so the CLI
prints them with rich or as JSON and the TUI renders them without knowing SQL. The queries
are shaped for millions of predictions: reports read the cached per-(run, task) counts,
per-run queries filter on ``run_id`` (predictions are stored in run order, so DuckDB's zone
maps skip other runs), and pages are fetched with LIMIT from the database.

One module per view: ``report`` (runs, the per-task table), ``confusion``, ``failures`` (pages),
``compare`` (audit, paired comparison), ``case`` (one item) and ``lookups`` (picker lists).
"""
