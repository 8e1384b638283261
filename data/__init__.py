"""The workspace: DuckDB schema, ingest of every format, queries, export, demo."""
