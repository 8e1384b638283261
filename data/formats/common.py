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
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg}", where=f"line {number}") from None
        if not isinstance(value, dict):
            raise InputError(path, f"expected a JSON object, got {type(value).__name__}", where=f"line {number}")
        yield number, value


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


def probs_json(value: Any) -> str | None:
    """Option probabilities as a compact JSON object {letter: p}, from a dict or JSON text."""
    if value is None:
        return None
    if is_missing(value):
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object of option probabilities, got {type(value).__name__}")
    return json.dumps({str(k): float(v) for k, v in value.items()}, separators=(",", ":"))
