"""Dataset exports that fine-tuning tools load unedited: ``dataset_info.json`` entries and bundles.

LLaMA-Factory finds a dataset only through an entry in ``<dataset_dir>/dataset_info.json``, and reads
``role``/``content`` messages only when that entry's ``tags`` say so (its defaults are LLaVA's
``from``/``value``/``human``/``gpt``). Keys as ``src/llamafactory/data/parser.py`` (``get_dataset_list``)
reads them and ``data/README.md`` documents them: ``file_name``, ``formatting: "sharegpt"``,
``columns`` (``messages``, ``images``) and ``tags`` (``role_tag``, ``content_tag``, ``user_tag``,
``assistant_tag``, ``system_tag``). A ``tags`` object replaces every default tag, so all are written.

A *bundle* is one folder holding the dataset file, its images (under ``images/``, hard-linked when
the workspace is on the same file system, else copied) and the ``dataset_info.json`` entry, with
paths relative to the folder: it can be rsynced to a training cluster as it is. It is built in a
staging folder beside the target and renamed into place at the end, so a kill leaves the old folder
(or none) and a ``.NAME.HEX.partial`` staging folder, never half a bundle under the given name.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orienteer.data.errors import FileAccessError, InputError, OrienteerError
from orienteer.data.fileio import check_input_file, file_kind, fsync_dir, os_reason
from orienteer.data.formats import sharegpt
from orienteer.data.formats.common import load_json, read_text
from orienteer.data.job_outputs import atomic_file

if TYPE_CHECKING:
    from orienteer.data.datasets import ExportResult

DATASET_INFO = "dataset_info.json"
IMAGES = "images"
MARKER = ".orienteer-bundle"
"""Written into every bundle: ``--force`` replaces only a folder that holds it (never a user's folder)."""

_TAGS = {
    sharegpt.SHAREGPT: {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                        "assistant_tag": "assistant", "system_tag": "system"},
    sharegpt.LLAVA: {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                     "system_tag": "system"},
}
_COLUMNS = {
    sharegpt.SHAREGPT: {"messages": "messages", "images": "images"},
    sharegpt.LLAVA: {"messages": "conversations", "images": "image"},
}


def dataset_info_entry(fmt: str, file_name: str) -> dict[str, Any]:
    """The LLaMA-Factory ``dataset_info.json`` entry for a ``sharegpt`` or ``llava`` export ``file_name``."""
    if fmt not in _TAGS:
        raise OrienteerError(f"no dataset_info.json entry for format {fmt!r} (expected sharegpt or llava)")
    return {"file_name": file_name, "formatting": "sharegpt", "columns": dict(_COLUMNS[fmt]), "tags": dict(_TAGS[fmt])}


def merged_dataset_info(info_file: Path, name: str, entry: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """(``info_file``'s entries with ``name`` set to ``entry``, the entry ``name`` had before or None).

    The other entries are kept as they are; an entry of the same name is replaced (it is this
    dataset's, and the newest export is the one to describe: the caller says what it replaced). A
    missing file gives just the entry; a file that is not a JSON object is refused in one line.
    """
    entries: dict[str, Any] = {}
    if os.path.lexists(info_file):
        check_input_file(info_file)
        data = load_json(info_file, read_text(info_file))
        if not isinstance(data, dict):
            raise InputError(info_file, f"expected a JSON object of dataset entries (LLaMA-Factory's {DATASET_INFO}), "
                                        f"got {type(data).__name__}")
        entries = dict(data)
    old = entries.get(name)
    entries[name] = dict(entry)
    return entries, old


def write_dataset_info(info_file: Path, name: str, entry: Mapping[str, Any]) -> Any:
    """Set entry ``name`` of ``info_file`` (read again just before, merged, written whole by a rename);
    returns the entry it replaced, or None."""
    entries, old = merged_dataset_info(info_file, name, entry)
    with atomic_file(info_file) as fh:
        fh.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    return old


def bundle_file_name(name: str, fmt: str, given: Path | str | None) -> str:
    """The dataset file's name inside a bundle: ``given`` (a bare name) or ``<name>.json``
    (``<name>.jsonl`` for items: a JSON array for the conversation tools, lines for Orienteer)."""
    if given is None:
        return f"{name}.jsonl" if fmt == "items" else f"{name}.json"
    text = str(given)
    if Path(text).name != text or text in (".", "..") or text.startswith("."):
        raise OrienteerError(f"with --bundle, the file argument is the dataset file's name inside the bundle "
                             f"(e.g. {name}.json), got {text!r}")
    if text in (DATASET_INFO, IMAGES, MARKER):
        raise OrienteerError(f"with --bundle, {text!r} is taken by the bundle itself; choose another file name")
    return text


def _real(folder: Path) -> Path:
    return Path(os.path.realpath(folder)) if folder.is_symlink() else folder


def check_bundle_target(folder: Path, force: bool) -> Path:
    """Where a bundle to ``folder`` goes (a symbolic link is followed), after the checks.

    Refused: something that is not a folder; a non-empty folder without ``force``; a non-empty folder
    that no ``--bundle`` export wrote (no marker file), even with ``force``.
    """
    target = _real(Path(folder))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise FileAccessError(folder, os_reason(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise FileAccessError(folder, f"is {file_kind(st.st_mode)}; --bundle expects a folder (new or empty)")
    try:
        entries = os.listdir(target)
    except OSError as exc:
        raise FileAccessError(folder, os_reason(exc)) from None
    if entries and not force:
        raise OrienteerError(f"{folder} is not empty; pass --force to replace an earlier bundle there")
    if entries and MARKER not in entries:
        raise OrienteerError(f"{folder} is not empty and no 'dataset export --bundle' wrote it; "
                             "refusing to replace it even with --force (expected a new or empty folder)")
    return target


def _image_name(source: str, taken: set[str]) -> str:
    """A safe, unique file name under ``images/`` for ``source`` (its own name where it can)."""
    base = os.path.basename(source)
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")[:80] or "image"
    suffix = re.sub(r"[^A-Za-z0-9.]", "", suffix)[:10]
    name, k = stem + suffix, 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}{suffix}"
    taken.add(name)
    return name


def _place(source: str, dest: Path) -> bool:
    """Hard-link ``source`` to ``dest`` (True), or copy it where a link cannot be made (another file system)."""
    try:
        os.link(source, dest)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
            raise
    shutil.copyfile(source, dest)
    return False


def write_bundle(folder: Path, name: str, file_name: str, examples: Sequence[Mapping[str, Any]], fmt: str,
                 force: bool) -> ExportResult:
    """Write dataset ``name`` as a bundle in ``folder``: ``file_name``, ``images/`` and (conversation
    formats) ``dataset_info.json``, paths relative to the folder. Every image must exist: the error
    names the example (numbered from 1) and the path."""
    from orienteer.data.datasets import ExportResult, is_array_file, write_examples

    target = check_bundle_target(Path(folder), force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(target.parent, os_reason(exc)) from None
    stage = target.parent / f".{target.name[:100]}.{uuid.uuid4().hex[:12]}.partial"
    try:
        stage.mkdir()
        (stage / IMAGES).mkdir()
        placed: dict[str, str] = {}
        taken: set[str] = set()
        n_linked = 0
        bundled: list[dict[str, Any]] = []
        for number, example in enumerate(examples, start=1):
            paths = []
            for source in example.get("images") or []:
                key = os.path.realpath(source)
                if key not in placed:
                    if not os.path.isfile(key):
                        raise OrienteerError(f"dataset {name!r}: example {number}: image {source} not found "
                                             "(a bundle copies every image; expected an existing file)")
                    rel = f"{IMAGES}/{_image_name(source, taken)}"
                    n_linked += _place(key, stage / rel)
                    placed[key] = rel
                paths.append(placed[key])
            bundled.append({**example, "images": paths})
        n = write_examples(stage / file_name, bundled, fmt, array=is_array_file(Path(file_name)))
        info_file = None
        if fmt in _TAGS:
            info_file = target / DATASET_INFO
            with atomic_file(stage / DATASET_INFO) as fh:
                fh.write(json.dumps({name: dataset_info_entry(fmt, file_name)}, indent=2, ensure_ascii=False) + "\n")
        with atomic_file(stage / MARKER) as fh:
            fh.write(json.dumps({"dataset": name, "format": fmt, "file": file_name}) + "\n")
        _swap_in(stage, target, force)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise FileAccessError(folder, os_reason(exc)) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ExportResult(n, target / file_name, info_file, target, len(placed), n_linked)


def _swap_in(stage: Path, target: Path, force: bool) -> None:
    """Rename the finished ``stage`` to ``target``: over a missing or empty folder in one rename; an
    earlier bundle (``force``, checked again here) is moved aside first and removed after."""
    check_bundle_target(target, force)
    old: Path | None = None
    if target.exists() and os.listdir(target):
        old = target.parent / f".{target.name[:100]}.{uuid.uuid4().hex[:12]}.old"
        os.rename(target, old)
    os.replace(stage, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
