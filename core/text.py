"""Untrusted text on a terminal: control and invisible format characters written out as escapes.

Every string that came from a file (replies, questions, names, notes, paths, error messages that quote
them) is stored exactly, but a terminal obeys what it prints: ``ESC[2J`` clears the screen, an OSC
sequence retitles the window, a carriage return overwrites the line, a right-to-left override reverses
what follows and a zero-width space hides a difference between two names. ``visible`` writes each such
character as a Python-style escape (``\\x1b``, ``\\x07``, ``\\r``, ``\\u202e``), so what is shown is what
is stored. Pure: the CLI, the app and the job layer all use it (markup escaping lives in
``orienteer.tui.safe_text``).
"""

from __future__ import annotations

import re

# Unicode categories Cc (C0, DEL, C1), Cf (format: bidi embeddings/overrides/isolates, zero-width
# characters, BOM, soft hyphen, invisible operators, tags), Zl and Zp (line/paragraph separators) and
# Cs (lone surrogates, which a terminal cannot even encode). Written out rather than computed from
# unicodedata at import (a scan of every code point costs ~0.2 s of start-up); tests/core/test_text.py
# checks it against unicodedata.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_HIDDEN_KEEP_NEWLINE = re.compile(_HIDDEN.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: object, multiline: bool = False) -> str:
    """``text`` (``str()`` of it; ``None`` is ``""``) with every control, format, separator and
    surrogate character written as an escape. ``multiline`` keeps ``\\n`` as a line break, for text
    shown on several lines on purpose (a reply in the case view); otherwise it reads ``\\n``."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    pattern = _HIDDEN_KEEP_NEWLINE if multiline else _HIDDEN
    return pattern.sub(_escape, s) if pattern.search(s) else s


def has_hidden(text: str) -> bool:
    """Whether ``visible`` would change ``text`` (a line break counts)."""
    return _HIDDEN.search(text) is not None
