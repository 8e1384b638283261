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


class WorkspaceDamagedError(WorkspaceError):
    """The workspace's database file is truncated, overwritten or otherwise unreadable.

    Said in one line with the way out, because every later command would fail on it too.
    """

    def __init__(self, db_path: Path | str, detail: str) -> None:
        self.db_path = Path(db_path)
        self.detail = " ".join(str(detail).split())
        super().__init__(
            f"workspace {self.db_path} is damaged: {self.detail}; restore from a backup or re-import "
            "(README: Reliability)"
        )


class FileAccessError(OrienteerError):
    """A file the user named cannot be read or written (missing, a device, a FIFO, a folder, no permission,
    a full disk): one line naming the path and what the system said."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = " ".join(str(message).split())
        super().__init__(f"{self.path}: {self.message}")
