"""Safe file access at the edges: input files are checked before they are opened, outputs are written
whole or not at all, and every OS error becomes one line naming the path.

Why up front: reading a FIFO blocks forever, ``/dev/zero`` fills memory, a folder raises
``IsADirectoryError`` deep in a parser. ``os.stat`` answers all of that without opening anything.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from orienteer.data.errors import FileAccessError, OrienteerError

_REASONS = {
    errno.ENOSPC: "no space left on device (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file size limit was reached)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ELOOP: "symlink loop (too many levels of symbolic links)",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (the disk may be failing)",
}


def os_reason(exc: OSError) -> str:
    """What an OSError means, in a few words (no Python class names)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def file_kind(mode: int) -> str:
    """``a folder``, ``a FIFO``... for a stat mode that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input_file(path: Path | str) -> Path:
    """``path`` when it is a regular, readable file (symbolic links followed); else one ``FileAccessError``.

    Checked with ``stat`` before anything opens the file, so a FIFO cannot block and a device cannot
    feed endless bytes; the file is then opened once for reading, which is what tells a permission
    problem apart from a missing file (and works for root too, who passes every mode check).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileAccessError(p, "file not found") from None
    except OSError as exc:
        raise FileAccessError(p, os_reason(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise FileAccessError(p, f"is {file_kind(st.st_mode)}, not a regular file (expected a file to read)")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise FileAccessError(p, os_reason(exc)) from None
    return p


def output_target(path: Path | str, force: bool) -> Path:
    """Where an export to ``path`` really writes, after the checks every export makes.

    A symbolic link is written *through*: the returned path is its target, which is replaced while
    the link stays. A folder, device, FIFO or socket is refused even with ``force`` (renaming over
    ``/dev/full`` as root would turn the device into a plain file); an existing regular file needs
    ``force``; the folder must exist.
    """
    p = Path(path)
    target = Path(os.path.realpath(p)) if p.is_symlink() else p
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FileAccessError(p, os_reason(exc)) from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            shown = f" (the link points to {target})" if target != p else ""
            raise FileAccessError(p, f"is {file_kind(st.st_mode)}{shown}; an export writes only regular files "
                                     "(expected a file name)")
        if not force:
            raise OrienteerError(f"{p} already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise OrienteerError(f"{target.parent} does not exist (expected an existing folder for the export)")
    return target


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse to fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
