"""``orienteer config show|set|unset``: the workspace's settings (default runner, Slurm options, engines).

The keys, their checks and their help live in ``orienteer.data.ws_config``; this module only prints
and parses.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from orienteer.tui.cli.common import JsonOpt, console, current_workspace, errors, print_json
from orienteer.tui.safe_text import safe, visible

config_app = typer.Typer(help="Workspace settings: the default runner, Slurm's sbatch options, engine paths.",
                         no_args_is_help=True)


@config_app.command("show")
def show(as_json: JsonOpt = False) -> None:
    """Every setting, its value in this workspace (unset: the default) and what it is for."""
    with errors():
        from orienteer.data.ws_config import all_settings

        rows = all_settings(current_workspace())
        if as_json:
            print_json([{"key": key, "value": value, "help": help} for key, value, help in rows])
            return
        table = Table(box=None, header_style="bold", padding=(0, 2, 0, 0), pad_edge=False)
        for column in ("key", "value", "what it is"):
            table.add_column(column, overflow="fold")
        for key, value, help in rows:
            shown = Text(visible(value)) if value is not None else Text("(unset)", style="dim")
            table.add_row(Text(key, style="bold"), shown, Text(help, style="dim"))
        console.print(table)


@config_app.command("set", context_settings={"ignore_unknown_options": True})  # slurm.extra's value starts with --
def set_value(
    key: Annotated[str, typer.Argument(help="A setting (orienteer config show lists them).")],
    value: Annotated[str, typer.Argument(help="Its value (checked by the key).")],
) -> None:
    """Set one setting of this workspace."""
    with errors():
        from orienteer.data.ws_config import set_setting

        stored = set_setting(current_workspace(), key, value)
        console.print(f"{safe(key)} = {safe(stored)}", highlight=False, soft_wrap=True)


@config_app.command("unset")
def unset_value(key: Annotated[str, typer.Argument(help="A setting to return to its default.")]) -> None:
    """Forget one setting (it goes back to its default)."""
    with errors():
        from orienteer.data.ws_config import unset_setting

        was = unset_setting(current_workspace(), key)
        console.print(f"{safe(key)} unset" if was else f"{safe(key)} was not set", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
