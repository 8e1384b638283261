"""One rule for every name a user gives a thing: runs, benchmarks, datasets and models.

Names become file names (datasets, job outputs), command-line arguments and table cells. So the
rule is the file-safe one: letters, digits and ``. _ - + @ =``, starting with a letter or digit,
at most 128 characters. No spaces, no path separators, no control characters, nothing a terminal
or a shell would read as anything but text. Names already in older workspaces are left alone; the
rule applies when a name is created (an import, a job's output, a run named by a file's column).
"""

from __future__ import annotations

import re

from orienteer.data.errors import OrienteerError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@=-]{0,127}")
RULE = "letters, digits and . _ - + @ =, starting with a letter or digit, at most 128 characters"
NOUNS = ("run", "benchmark", "dataset", "model")


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: object, noun: str = "name") -> str:
    """``name`` when it follows the rule; otherwise an ``OrienteerError`` that shows it safely (repr:
    control characters escaped) and cut to 60 characters, so a hostile name cannot flood the line."""
    if is_valid_name(name):
        return name  # type: ignore[return-value]
    shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:60]) + f"... ({len(name)} characters)"
    raise OrienteerError(f"{noun} name {shown} is not usable (expected {RULE})")
