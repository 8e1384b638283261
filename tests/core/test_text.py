"""``core.text.visible``: what a terminal would obey is written out, everything else is left alone."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from orienteer.core.text import has_hidden, visible


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2J", "\\x1b[2J"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("a\rb\tc\nd", "a\\rb\\tc\\nd"),
    ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
    ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
    ("a\u200bb\ufeff", "a\\u200bb\\ufeff"),  # zero-width space, BOM
    ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
    ("tag\U000e0041", "tag\\U000e0041"),  # invisible tag character
    ("lone \udc80", "lone \\udc80"),  # a surrogate (surrogateescape'd bytes)
    ("plain [red]x[/red] é 名前 😀", "plain [red]x[/red] é 名前 😀"),
])
def test_visible_writes_out_what_a_terminal_obeys(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert has_hidden(raw) == (raw != shown)


def test_multiline_keeps_only_the_line_break() -> None:
    assert visible("a\nb\r\nc\x1b", multiline=True) == "a\nb\\r\nc\\x1b"


def test_none_and_objects() -> None:
    assert visible(None) == ""
    assert visible(3) == "3"


def test_every_control_format_and_separator_character_is_covered() -> None:
    """The written-out class equals unicodedata's Cc, Cf, Zl, Zp and Cs (as of this Python's Unicode)."""
    missed = [hex(c) for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp", "Cs") and not has_hidden(chr(c))]
    assert missed == []
