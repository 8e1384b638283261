#!/usr/bin/env python
"""Hostile input files about *reading* rather than parsing: things that are not regular files, cannot be
read, never end, or nest or grow beyond reason. Every import command must refuse each in one line.

Each case is ``IOCase(name, write, expect, as_other_user)``: ``write(folder) -> Path`` makes the file,
``expect`` are substrings of the one-line error whatever the command, and ``as_other_user`` marks
the case that must run as a non-root user (root reads any file, whatever its mode).
``make_corpus.py`` beside this module holds the parsing cases (ids, strict CSV, probabilities).

    python tests/data/hostile/io_cases.py OUT_DIR      # writes every case into OUT_DIR
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IOCase:
    name: str
    write: Callable[[Path], Path]
    expect: tuple[str, ...] = ()
    as_other_user: bool = False


def write_fifo(folder: Path) -> Path:
    """A named pipe: opening it for reading blocks until a writer comes, i.e. forever."""
    path = folder / "pipe.json"
    os.mkfifo(path)
    return path


def write_dev_zero_link(folder: Path) -> Path:
    """A link to /dev/zero: reading it never ends and fills memory."""
    path = folder / "zeros.jsonl"
    path.symlink_to("/dev/zero")
    return path


def write_directory(folder: Path) -> Path:
    path = folder / "folder.csv"
    path.mkdir()
    (path / "inside.csv").write_text("id,pred\n0,A\n", encoding="utf-8")
    return path


def write_unreadable(folder: Path) -> Path:
    """A file inside a folder nobody may enter (only a non-root user sees the refusal)."""
    locked = folder / "locked"
    locked.mkdir()
    path = locked / "preds.csv"
    path.write_text("id,pred\n0,A\n", encoding="utf-8")
    os.chmod(locked, 0)
    return path


def write_missing(folder: Path) -> Path:
    return folder / "does-not-exist.json"


def write_symlink_loop(folder: Path) -> Path:
    a, b = folder / "loop-a.json", folder / "loop-b.json"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def write_empty(folder: Path) -> Path:
    path = folder / "empty.jsonl"
    path.write_bytes(b"")
    return path


def write_blank(folder: Path) -> Path:
    path = folder / "blank.json"
    path.write_bytes(b"  \n\t\n\n")
    return path


def write_binary_garbage(folder: Path) -> Path:
    path = folder / "garbage.csv"
    path.write_bytes(random.Random(14).randbytes(64 * 1024))
    return path


def write_huge_number(folder: Path) -> Path:
    """A JSON number of 65,536 digits: Python refuses to convert it with a ValueError, not a JSONDecodeError."""
    path = folder / "huge_number.jsonl"
    path.write_text('{"id": 0, "pred": "A"}\n' + "6" * 65536 + "\n", encoding="utf-8")
    return path


def write_utf16(folder: Path) -> Path:
    path = folder / "utf16.jsonl"
    path.write_bytes(json.dumps({"id": 0, "pred": "A"}).encode("utf-16"))
    return path


def write_huge_line(folder: Path) -> Path:
    """One 16 MB line with no newline: no parser may choke or hang on it."""
    path = folder / "huge_line.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"id": 0, "pred": "')
        for _ in range(16):
            fh.write(b"x" * (1 << 20))
    return path


def write_deep_json_array(folder: Path) -> Path:
    """A JSON document nested 100,000 deep: Python's json recurses once per level (RecursionError)."""
    path = folder / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    return path


def write_deep_json_object_line(folder: Path) -> Path:
    path = folder / "deep_object.jsonl"
    path.write_text('{"a": ' * 50_000 + "1" + "}" * 50_000 + "\n", encoding="utf-8")
    return path


def write_truncated_json(folder: Path) -> Path:
    path = folder / "truncated.json"
    items = [{"question_type": "Camera perspective - Relative Direction", "image_path": ["a.jpg"],
              "question": "Where?", "answer": "A. left", "choices": "A. left\nB. right"}] * 20
    text = json.dumps(items)
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    return path


def write_control_characters_in_name(folder: Path) -> Path:
    """A file name with a newline and a terminal escape: the error line must stay one line, and inert."""
    path = folder / "evil\n\x1b[31mname.json"
    path.write_text("[", encoding="utf-8")
    return path


CASES: list[IOCase] = [
    IOCase("fifo", write_fifo, ("FIFO", "not a regular file")),
    IOCase("dev-zero", write_dev_zero_link, ("character device", "not a regular file")),
    IOCase("directory", write_directory, ("is a folder",)),
    IOCase("unreadable", write_unreadable, ("permission denied",), as_other_user=True),
    IOCase("missing", write_missing, ("not found",)),
    IOCase("symlink-loop", write_symlink_loop, ("symbolic links",)),
    IOCase("empty", write_empty),
    IOCase("blank", write_blank),
    IOCase("binary-garbage", write_binary_garbage),
    IOCase("huge-number", write_huge_number),
    IOCase("utf16", write_utf16),
    IOCase("huge-line", write_huge_line),
    IOCase("deep-json-array", write_deep_json_array),
    IOCase("deep-json-object-line", write_deep_json_object_line),
    IOCase("truncated-json", write_truncated_json),
    IOCase("control-characters-in-name", write_control_characters_in_name),
]


def write_all(folder: Path) -> dict[str, Path]:
    """Write every case into its own subfolder of ``folder``; returns name -> path."""
    out = {}
    for case in CASES:
        sub = folder / case.name
        sub.mkdir(parents=True, exist_ok=True)
        out[case.name] = case.write(sub)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: io_cases.py OUT_DIR")
    for name, path in write_all(Path(sys.argv[1])).items():
        print(f"{name}\t{path!r}")
