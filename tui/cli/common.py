"""What every ``orienteer`` command shares: the workspace option, the consoles, one-line errors, JSON output.

Kept apart from the commands so that ``orienteer.tui.cli.jobs``, ``.prompt`` and ``.workspace`` import
these without importing the main command module (which registers them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

console = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", envvar="ORIENTEER_WORKSPACE",
                 help="Workspace folder (default: ./orienteer-workspace).", show_envvar=True),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="FIELD=COLUMN: read FIELD from COLUMN (repeatable).")]

# ``--limit 0`` means every row; a page this big is never reached (and still fits DuckDB's BIGINT).
NO_LIMIT = 2**40


def no_limit(limit: int) -> int:
    """``--limit N`` as a row count: 0 (the documented "no limit") becomes ``NO_LIMIT``."""
    return limit or NO_LIMIT


class State:
    workspace: Optional[Path] = None
    images: str = "auto"
    theme: str = "dark"


ImagesOpt = Annotated[
    str,
    typer.Option("--images", envvar="ORIENTEER_IMAGES",
                 help="How the app draws images: auto (kitty/sixel when the terminal has them), halfcell "
                      "(colour blocks: tmux, plain SSH), unicode, none."),
]


ThemeOpt = Annotated[
    str,
    typer.Option("--theme", envvar="ORIENTEER_THEME",
                 help="Colours of the app: dark, light, or any Textual theme name (ctrl+p, Theme, switches live)."),
]


def current_workspace() -> Any:
    from orienteer.data.workspace import Workspace

    return Workspace(State.workspace)


DEBUG_ENV = "ORIENTEER_DEBUG"


@contextmanager
def errors(*inputs: Optional[Path]) -> Iterator[None]:
    """Turn every error into one red line and a non-zero exit: no traceback reaches a user unless
    ``ORIENTEER_DEBUG=1`` asks for it.

    ``inputs`` are the files the command reads: each is checked before anything runs (a FIFO would
    block forever, ``/dev/zero`` would fill memory, a folder fails deep in a parser), and errors that
    carry no path (too deep nesting, out of memory) name them. Errors a user can act on (bad input,
    a damaged workspace, a full disk, no permission) exit 2; a bug exits 1 with its type and message.
    """
    named = [Path(p) for p in inputs if p is not None]
    try:
        if named:
            from orienteer.data.fileio import check_input_file

            for path in named:
                check_input_file(path)
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place every error becomes a line
        import click

        if isinstance(exc, click.ClickException) or os.environ.get(DEBUG_ENV) == "1":
            raise
        code, line = error_line(exc, named)
        err.print(f"[bold red]error:[/] {one_line(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None


def error_line(exc: BaseException, inputs: list[Path]) -> tuple[int, str]:
    """(exit status, one line) for any exception; see ``_errors``."""
    from orienteer.data.errors import OrienteerError

    source = f"{inputs[0]}: " if len(inputs) == 1 else ""
    if isinstance(exc, OrienteerError):
        return 2, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(exc, RecursionError):
        return 2, f"{source}nested too deeply to read (expected at most a few hundred levels of brackets)"
    if isinstance(exc, MemoryError):
        return 2, f"{source}out of memory while reading it (the file is too big for this machine's memory)"
    from orienteer.data.workspace import classify_error

    from_duckdb = type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")
    mapped = classify_error(exc, current_workspace().db_path) if from_duckdb else None
    if mapped is not None:
        return 2, str(mapped)
    if isinstance(exc, OSError):
        from orienteer.data.fileio import os_reason

        where = exc.filename if exc.filename is not None else (inputs[0] if inputs else None)
        return 2, f"{where}: {os_reason(exc)}" if where is not None else os_reason(exc)
    if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        return 2, f"{source}{' '.join(str(exc).split())}"
    return 1, (f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:500]} "
               f"(run again with {DEBUG_ENV}=1 for the traceback, and please report it)")


def one_line(text: str) -> str:
    """A message as one line of plain text: markup escaped, control characters (from file names or
    file contents) shown as escapes instead of reaching the terminal (``tui.safe_text``, shared by every
    display)."""
    from orienteer.tui.safe_text import safe

    return safe(text)


def piped() -> bool:
    """Whether stdout is not a terminal (a pipe, a file, a script's capture): tables are then written as
    tab-separated rows, since a table fitted to a guessed width drops the columns a script needs. Rich's
    own test, so ``TTY_COMPATIBLE=1`` or ``FORCE_COLOR`` keep tables in a pipe."""
    return not console.is_terminal


def note(message: str) -> None:
    """A remark around a table (a count, a hint): on stdout in a terminal, on stderr when piped, so that
    stdout holds only the tab-separated rows."""
    (err if piped() else console).print(message, highlight=False, soft_wrap=True)


def write_tsv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Tab-separated rows under a header line: every column, nothing cut, each value made terminal-safe
    by ``core.text.visible`` (which also writes a tab, newline or carriage return inside a value as
    ``\\t``, ``\\n``, ``\\r``, so one row stays one line of exactly ``len(headers)`` fields)."""
    from orienteer.core.text import visible

    out = console.file
    out.write("\t".join(visible(h) for h in headers) + "\n")
    for row in rows:
        out.write("\t".join(visible(cell) for cell in row) + "\n")
    out.flush()


def show(*tables: "Table") -> None:
    """Print tables: as tables in a terminal; when piped, as tab-separated rows (a blank line between
    tables), their titles and captions on stderr."""
    if not piped():
        for table in tables:
            console.print(table)
        return
    from orienteer.tui.cli.render import table_rows

    for k, table in enumerate(tables):
        headers, rows, remarks = table_rows(table)
        for remark in remarks:
            err.print(remark, highlight=False, markup=False, soft_wrap=True)
        if k:
            console.file.write("\n")
        write_tsv(headers, rows)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    from orienteer.data.errors import OrienteerError

    out: dict[str, str] = {}
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise OrienteerError(f"--map {pair!r}: expected FIELD=COLUMN")
        out[field.strip()] = column.strip()
    return out

