"""A job kind's options, declared once as the fields of a frozen dataclass: its spec.

``option(8, help=...)`` puts the help text and choices on a field; ``spec_params`` reads the
fields back as ``Param`` rows, and those rows drive the CLI parser (``orienteer job run KIND
--batch-size 8 --run base`` into ``{"batch_size": 8, "run": "base"}``), ``--help`` and ``job
kinds``, the app's form and the command it previews. The job's folder keeps the params dict (the
on-disk spec); the job itself gets the dataclass built from it (``spec_from_params``), typed.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError

_TYPES = ("str", "int", "float", "bool", "choice", "path")
_PY_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}


def option(default: Any = dataclasses.MISSING, *, help: str = "", choices: Sequence[str] = (),
           path: bool = False) -> Any:
    """A spec field with its help text and choices; no ``default`` makes the option required.
    ``path``: the value names a file or folder that must exist when the job is submitted."""
    metadata = {"help": help, "choices": tuple(choices), "path": path}
    return dataclasses.field(default=default, metadata=metadata)


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

    def coerce(self, value: Any) -> Any:
        """A recorded value (JSON from a job folder, or given in code) as the field's type."""
        if isinstance(value, str) and self.type in ("int", "float", "bool"):
            return self.convert(value)
        try:
            if self.type == "int":
                return int(value)
            if self.type == "float":
                return float(value)
        except (TypeError, ValueError):
            raise OrienteerError(f"{self.flag} expects a number, got {value!r}") from None
        if self.type == "bool":
            return bool(value)
        return value if isinstance(value, str) else str(value)


# Options every kind accepts, handled by the runtime rather than the kind.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("gpu", "str", None, help="GPU index to run on (queues behind other jobs on it), or 'none' for the CPU"),
    Param("note", "str", None, help="free text recorded with the job"),
    Param("runner", "choice", None, help="where the job runs: local (this machine) or slurm (sbatch); default: the "
                                         "workspace's runner setting, else local", choices=("local", "slurm")),
)
RUNTIME_KEYS = tuple(p.name for p in COMMON_PARAMS)  # not part of a job's identity (``store.spec_key``)


def _field_type(hint: Any) -> str:
    """``int | None`` -> ``int``: the option's type from the field's annotation."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    if args:
        kept = [a for a in args if a is not type(None)]
        hint = kept[0] if len(kept) == 1 else hint
    try:
        return _PY_TYPES[hint]
    except (KeyError, TypeError):
        raise TypeError(f"a spec field must be str, int, float or bool (or one of them | None), not {hint!r}") from None


@functools.cache
def spec_params(spec: type) -> tuple[Param, ...]:
    """The options of a kind's spec dataclass, in field order."""
    hints = typing.get_type_hints(spec)
    out = []
    for f in dataclasses.fields(spec):
        kind = _field_type(hints[f.name])
        choices = tuple(f.metadata.get("choices", ()))
        if f.metadata.get("path"):
            kind = "path"
        elif choices:
            kind = "choice"
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(Param(f.name, kind, None if required else f.default, required, f.metadata.get("help", ""), choices))
    return tuple(out)


def spec_from_params(spec: type, params: Mapping[str, Any], kind: str = "") -> Any:
    """The typed spec from a params dict (a job folder's, or ``complete``'s): values as the fields'
    types, a missing or ``None`` value the field's default, the runtime's own keys (gpu, note, runner) and
    keys an older version recorded left out."""
    values: dict[str, Any] = {}
    for p in spec_params(spec):
        value = params.get(p.name)
        if value is None:
            if p.required:
                raise OrienteerError(f"job {kind or spec.__name__}: {p.flag} is required ({p.help})")
            continue
        values[p.name] = p.coerce(value)
    return spec(**values)


def spec_values(spec: Any) -> dict[str, Any]:
    """A spec's options as a params dict (the inverse of ``spec_from_params``)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


_BOOL_WORDS = frozenset({"1", "true", "yes", "on", "0", "false", "no", "off"})


def parse_args(kind: str, params: Sequence[Param], args: Sequence[str]) -> dict[str, Any]:
    """Parse ``--flag value`` / ``--flag`` / ``--flag=false`` / ``--flag false`` / ``--no-flag``
    arguments into a params dict with defaults."""
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
            # --flag alone is true; --flag true|false (yes/no, on/off, 1/0) takes the word after it,
            # so scripts can pass a variable's value; anything else after it is the next option.
            follows = args[i + 1] if i + 1 < len(args) else None
            if follows is not None and follows.strip().lower() in _BOOL_WORDS:
                values[param.name] = param.convert(follows)
                i += 2
            else:
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
