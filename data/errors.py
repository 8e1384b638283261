"""Errors a user can act on: one line naming the file, the line or item, and what was expected."""

from __future__ import annotations

from pathlib import Path


class OrienteerError(Exception):
    """An error caused by input or state the user controls; the CLI prints it as one line."""


class InputError(OrienteerError):
    """A problem at a known place in an input file.

    ``where`` is e.g. ``"line 14"`` or ``"item 123"``; it is left out when the problem
    concerns the whole file (an empty file, an unknown format).
    """

    def __init__(self, path: Path | str, message: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.where = where
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        place = f"{self.path}: {self.where}" if self.where else f"{self.path}"
        return f"{place}: {self.message}"


class WorkspaceError(OrienteerError):
    """The workspace is missing, locked for too long, or lacks what a command names."""


class WorkspaceBusyError(WorkspaceError):
    """Another process held the workspace for longer than we were willing to wait."""
