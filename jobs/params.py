"""Declared job parameters: one list per kind drives the CLI parser, the TUI form and validation.

``orienteer job run KIND --batch-size 8 --run base`` is parsed against the kind's ``Param`` list
into ``{"batch_size": 8, "run": "base"}``; the TUI form shows the same list and builds the same
argument vector, so the command it shows is exactly the one that runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError

_TYPES = ("str", "int", "float", "bool", "choice", "path")


@dataclass(frozen=True)
class Param:
    """One option of a job kind. ``name`` is the Python name; the flag is ``--name-with-dashes``."""

    name: str
    type: str = "str"
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, text: str) -> Any:
        """Turn the text given on the command line into the value the job receives."""
        if self.type == "int":
            try:
                return int(text)
            except ValueError:
                raise OrienteerError(f"{self.flag} expects a whole number, got {text!r}") from None
        if self.type == "float":
            try:
                return float(text)
            except ValueError:
                raise OrienteerError(f"{self.flag} expects a number, got {text!r}") from None
        if self.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise OrienteerError(f"{self.flag} expects true or false, got {text!r}")
        if self.type == "choice" and text not in self.choices:
            raise OrienteerError(f"{self.flag} expects one of {', '.join(self.choices)}, got {text!r}")
        return text


# Options every kind accepts, handled by the runtime rather than the kind.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("gpu", "str", None, help="GPU index to run on (queues behind other jobs on it), or 'none' for the CPU"),
    Param("note", "str", None, help="free text recorded with the job"),
)


def parse_args(kind: str, params: Sequence[Param], args: Sequence[str]) -> dict[str, Any]:
    """Parse ``--flag value`` / ``--flag`` / ``--no-flag`` arguments into a params dict with defaults."""
    by_flag = {p.flag: p for p in (*params, *COMMON_PARAMS)}
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise OrienteerError(f"job {kind}: unexpected argument {arg!r} (options look like --name value)")
        flag, eq, inline = arg.partition("=")
        param = by_flag.get(flag)
        negated = by_flag.get("--" + flag[5:]) if param is None and flag.startswith("--no-") else None
        if negated is not None and negated.type == "bool" and not eq:
            values[negated.name] = False
            i += 1
            continue
        if param is None:
            known = ", ".join(sorted(by_flag))
            raise OrienteerError(f"job {kind}: unknown option {flag} (expected one of {known})")
        if param.type == "bool" and not eq:
            values[param.name] = True
            i += 1
            continue
        if eq:
            text = inline
            i += 1
        else:
            if i + 1 >= len(args):
                raise OrienteerError(f"job {kind}: {flag} needs a value")
            text = args[i + 1]
            i += 2
        values[param.name] = param.convert(text)
    return complete(kind, params, values)


def complete(kind: str, params: Sequence[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and check required parameters; unknown names are refused."""
    known = {p.name: p for p in (*params, *COMMON_PARAMS)}
    unknown = set(values) - set(known)
    if unknown:
        raise OrienteerError(f"job {kind}: unknown parameter(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for p in (*params, *COMMON_PARAMS):
        if p.name in values and values[p.name] is not None:
            out[p.name] = values[p.name]
        elif p.required:
            raise OrienteerError(f"job {kind}: {p.flag} is required ({p.help})")
        else:
            out[p.name] = p.default
    return out


def to_args(params: Sequence[Param], values: Mapping[str, Any]) -> list[str]:
    """The argument vector that ``parse_args`` turns back into ``values`` (defaults left out)."""
    args: list[str] = []
    for p in (*params, *COMMON_PARAMS):
        if p.name not in values:
            continue
        value = values[p.name]
        if value is None or value == p.default:
            continue
        if p.type == "bool":
            args.append(p.flag if value else "--no-" + p.flag[2:])
        else:
            args.extend([p.flag, str(value)])
    return args
