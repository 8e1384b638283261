"""Helpers shared by the readers: text decoding, JSON with line numbers, column aliases, booleans."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orienteer.data.errors import InputError


def read_text(path: Path) -> str:
    """The file as text: UTF-8 with or without a BOM; CRLF is left to the parsers."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, expected a file") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, "not valid UTF-8 text", where=f"line {line}") from None


def require_nonempty(path: Path, text: str, expected: str) -> None:
    if not text.strip():
        raise InputError(path, f"empty file (expected {expected})")


def load_json(path: Path, text: str) -> Any:
    """Parse a whole JSON document; a syntax error names its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (is the file truncated?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise InputError(path, f"invalid JSON: {exc.msg}{hint}", where=f"line {exc.lineno} column {exc.colno}") from None


def iter_jsonl(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; each line must be a JSON object."""
    for number, line in enumerate(text.split("\n"), start=1):
        value = jsonl_object(path, number, line)
        if value is not None:
            yield number, value


def jsonl_object(path: Path, number: int, line: str) -> dict[str, Any] | None:
    """One JSONL line as its object (None for a blank line); anything else is one InputError naming the line."""
    stripped = line.strip()
    if not stripped:
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", where=f"line {number}") from None
    except RecursionError:
        raise InputError(path, "invalid JSON: nested too deeply", where=f"line {number}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InputError(path, f"invalid JSON: {str(exc)[:120]}", where=f"line {number}") from None
    if not isinstance(value, dict):
        raise InputError(path, f"expected a JSON object, got {type(value).__name__}", where=f"line {number}")
    return value


def pick_column(columns: Sequence[str], aliases: Sequence[str], override: str | None = None) -> str | None:
    """The first column whose name matches an alias (case- and separator-insensitive)."""
    if override:
        return override if override in columns else None
    normal = {_norm(c): c for c in reversed(list(columns))}
    for alias in aliases:
        hit = normal.get(_norm(alias))
        if hit is not None:
            return hit
    return None


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_TRUE = {"true", "1", "yes", "y", "t", "correct", "right"}
_FALSE = {"false", "0", "no", "n", "f", "incorrect", "wrong"}


def parse_bool(value: Any) -> bool | None:
    """A verdict cell as a bool; None when the cell is empty; ValueError when it is not a boolean."""
    if type(value) is not str:  # text, the common case, goes straight to the word lists
        if is_missing(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if not text:
        return None
    raise ValueError(f"expected true/false, got {value!r}")


def is_missing(value: Any) -> bool:
    """None, NaN, or a pandas/numpy missing marker (checked by type name: no pandas import here)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    if type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
        return bool(math.isnan(float(value)))
    return False


def as_text(value: Any) -> str | None:
    """A cell as text (None for missing); integers stay integers ("12", not "12.0")."""
    if type(value) is str:
        return value
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def key_text(value: Any) -> str | None:
    """An id cell as text, without any lenient cast: text stays as written (no trimming), an integer
    becomes its digits, and anything else (a float such as ``1.0`` or ``1.5``, a boolean) becomes its
    repr, which no id rule accepts, so it is refused by name rather than rounded onto an item."""
    if type(value) is str:
        return value
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int) or (type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None
                                  and value.dtype.kind in "iu"):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def shown(value: str, limit: int = 60) -> str:
    """A string from a file, for an error line: repr (control characters escaped), cut to ``limit``."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value)} characters)"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a probability")


def probs_json(value: Any) -> str | None:
    """Option probabilities as a compact JSON object {letter: p}, from a dict or JSON text.

    An empty cell means "no probabilities" (Orienteer's own CSV export writes one for runs without
    them). Values must be finite numbers >= 0: NaN, Infinity, negatives (log-probabilities), text
    and booleans are refused with a ValueError saying which.
    """
    if value is None or is_missing(value):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object of option probabilities, got invalid JSON ({exc.msg})") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object of option probabilities, got {type(value).__name__}")
    out: dict[str, float] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"probability of {str(k)[:20]!r} is {str(v)[:30]!r}, expected a number")
        p = float(v)
        if not math.isfinite(p):
            raise ValueError(f"probability of {str(k)[:20]!r} is {p}, expected a finite number")
        if p < 0:
            raise ValueError(f"probability of {str(k)[:20]!r} is {p}, expected a number >= 0 (not a log-probability)")
        out[str(k)] = p
    return json.dumps(out, separators=(",", ":"))
