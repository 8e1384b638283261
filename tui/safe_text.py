"""Untrusted text for the CLI and the app: control characters visible, markup never interpreted.

Every string that came from a file or a user (replies, questions, options, labels, run, benchmark,
dataset and model names, notes, paths, task names, error messages that quote them) goes through one
of these before it reaches a terminal:

- ``text(s)``: a ``rich.text.Text`` (no markup at all): table cells, ``Static.update``, titles.
- ``safe(s)``: a string for Rich markup (``console.print(f"... {safe(name)}")``, a DataTable's string
  cells, Rich table titles and headers).
- ``notice(s)``: a notification's text for ``notify(..., markup=False)``.

The app never puts untrusted text into *Textual* markup: Textual reads any ``[`` after a backslash as
escaped, so a value ending in ``\\`` would swallow the tag that follows it; ``Text`` objects and
``markup=False`` have no such edge.

All of them first apply ``orienteer.core.text.visible``. Files and ``--json`` keep the exact text.
"""

from __future__ import annotations

from rich.markup import escape as _rich_escape
from rich.style import Style
from rich.text import Text

from orienteer.core.text import has_hidden, visible

__all__ = ["has_hidden", "notice", "safe", "text", "visible"]


def text(value: object, style: str | Style = "", multiline: bool = False) -> Text:
    """``value`` as a Rich ``Text`` with control characters visible (markup is never parsed)."""
    return Text(visible(value, multiline), style=style)


def safe(value: object, multiline: bool = False) -> str:
    """``value`` for a Rich markup string: control characters visible, ``[`` tags escaped."""
    return _rich_escape(visible(value, multiline))


def notice(value: object) -> str:
    """A message for ``notify(..., markup=False)``: control characters visible, line breaks kept."""
    return visible(value, multiline=True)
