"""Files the model job kinds keep while they work: append-only JSON-line logs that survive a kill,
per-item file names, and copies of finished files into a job's outputs made of hard links.

A job killed mid-write leaves a torn last line in its log. Readers skip lines that are not JSON, and
``append_records`` cuts a torn tail off before it writes, so the next record starts on a line of its
own (written after the torn bytes it would be unreadable, and lost, too). Pure standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines log in file order (none when the file is absent). A last line
    without its newline is torn (``append_records`` will cut it off) and skipped, like any line
    that is not JSON."""
    records: list[dict[str, Any]] = []
    if not path.is_file():
        return records
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.endswith("\n"):
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _cut_torn_tail(path: Path) -> None:
    """Drop the bytes after the last newline (a line the process was killed while writing)."""
    try:
        fh = open(path, "r+b")
    except FileNotFoundError:
        return
    with fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        fh.truncate(fh.read().rfind(b"\n") + 1)


def append_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines and fsync, so what is finished survives a kill."""
    _cut_torn_tail(path)
    with open(path, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def link_tree(src: Path, dst: Path) -> Path:
    """``dst`` as a copy of the folder ``src`` made of hard links (plain copies where links fail);
    an absent ``src`` gives an empty ``dst``. Whatever ``dst`` held before is replaced."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.rmtree(dst, ignore_errors=True)
    if not src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        return dst
    shutil.copytree(src, dst, copy_function=link)
    return dst


def safe_name(item_id: str) -> str:
    """An item id as a file or folder name; a hash keeps two ids apart that differ only in replaced characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)
    if safe != item_id:
        safe += "-" + hashlib.sha1(item_id.encode()).hexdigest()[:8]
    return safe
