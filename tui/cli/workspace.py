"""``orienteer workspace check`` and ``orienteer workspace backup PATH``.

Both are safe while the app, jobs and imports use the workspace: they read through a read-only
attachment (a shared lock), and writers wait for it with back-off as they wait for any reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orienteer.tui.cli.common import JsonOpt, console, current_workspace, err, errors, one_line, print_json

workspace_app = typer.Typer(help="Check the workspace for damage, or back it up (safe while the app runs).",
                            no_args_is_help=True)


@workspace_app.command("check")
def check(as_json: JsonOpt = False) -> None:
    """Read every table in full (DuckDB verifies each block's checksum) and check the dataset files.

    Exit status: 0 all well, 1 problems listed (e.g. a missing dataset file), 2 the database is damaged.
    """
    with errors():
        from orienteer.data.workspace_tools import check_workspace

        report = check_workspace(current_workspace())
        if as_json:
            print_json(report.as_json())
        else:
            rows = sum(report.tables.values())
            state = "[green]ok[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"
            console.print(f"workspace {one_line(str(report.root))}: {state}; read {len(report.tables)} tables, "
                          f"{rows:,} rows", highlight=False)
            for problem in report.problems:
                err.print(f"[red]problem:[/] {one_line(problem)}", highlight=False, soft_wrap=True)
            for note in report.notes:
                console.print(f"[dim]note:[/] {one_line(note)}", highlight=False, soft_wrap=True)
        if not report.ok:
            raise typer.Exit(1)


@workspace_app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="A new folder for the backup (a workspace of its own).")],
    as_json: JsonOpt = False,
) -> None:
    """A consistent copy of the database (DuckDB's COPY FROM DATABASE) and the dataset files it names.

    Restore: stop the app and jobs, move the damaged orienteer.duckdb aside, copy PATH/orienteer.duckdb
    into the workspace and PATH/datasets/* into its datasets folder (README: Reliability).
    """
    with errors():
        from orienteer.data.workspace_tools import backup_workspace

        result = backup_workspace(current_workspace(), path)
        if as_json:
            print_json(result.as_json())
            return
        rows = sum(result.tables.values())
        console.print(f"backed up {one_line(str(current_workspace().root))} to {one_line(str(result.path))}: "
                      f"{len(result.tables)} tables, {rows:,} rows, {result.datasets} dataset file(s), "
                      f"{result.bytes / 1e6:.1f} MB", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(workspace_app, name="workspace")
