"""What a job hands to the workspace when it ends: a manifest of outputs, each a file in its folder.

A running job never writes into the DuckDB file (ARCHITECTURE.md section 2). It writes files
under its own ``outputs/`` folder and lists them in ``manifest.json``; the manifest is written
last, atomically, so its presence means the outputs are complete. Ingest (``job_ingest.py``)
reads it and writes everything in one transaction, keyed by the job id.

Paths inside outputs are relative to the outputs folder.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from orienteer.data.errors import FileAccessError, OrienteerError
from orienteer.data.fileio import file_kind, fsync_dir

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BenchmarkOutput:
    """A derived benchmark (flipped, box-prompted): an items JSONL in the generic item format.

    Each line: item_id, task, question, options ({letter: label}), answer (letter), images
    (paths relative to ``image_root``), and optional source, reference_object, bbox, bbox_frame
    (which of the images the box is on; default 0), parent_item_id. A job may list several
    benchmarks (box-prompt ``--control``: the boxed one and its undrawn twin); they enter together.
    """

    name: str
    items_file: str
    image_root: str
    parent: str | None = None
    notes: str | None = None
    type: str = "benchmark"


@dataclass(frozen=True)
class RunOutput:
    """A run on an existing benchmark: JSONL lines ``{"item_id", "reply", "probs"?}``.

    ``probs`` is ``{letter: probability}`` for score-mode runs; ``reply`` is the text the parser reads
    (for score mode, the chosen letter).
    """

    name: str
    bench: str
    predictions_file: str
    model: str | None = None
    notes: str | None = None
    parser: str = "viewspatial"
    random_weights: bool = False  # made by a model with random weights: its numbers mean nothing
    config: dict[str, Any] = field(default_factory=dict)
    """The run's settings as data (``runs.config``): prompt, prompt_hash, resize, max_new_tokens, truncated..."""
    type: str = "run"


@dataclass(frozen=True)
class DatasetOutput:
    """A training dataset: JSONL of items in the generic item format plus ``target`` (the reply to learn)."""

    name: str
    file: str
    composition: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    type: str = "dataset"


@dataclass(frozen=True)
class ArtifactsOutput:
    """Files tied to (run, item): JSONL lines ``{"item_id", "kind", "path", "frame", "metrics"}``."""

    run: str
    file: str
    type: str = "artifacts"


@dataclass(frozen=True)
class ModelOutput:
    """A trained adapter or model folder, registered so the next eval can pick it."""

    name: str
    path: str
    base_model: str
    method: str
    notes: str | None = None
    type: str = "model"


Output = Union[BenchmarkOutput, RunOutput, DatasetOutput, ArtifactsOutput, ModelOutput]
_TYPES: dict[str, type] = {
    "benchmark": BenchmarkOutput,
    "run": RunOutput,
    "dataset": DatasetOutput,
    "artifacts": ArtifactsOutput,
    "model": ModelOutput,
}


@contextmanager
def atomic_file(path: Path, mode: str = "w", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``.NAME.XXXXXXXXXXXX.tmp``) for writing; when the block
    ends without an error it is flushed, fsynced (unless ``fsync`` is off) and renamed to ``path``,
    so readers see the whole file or none; on an error it is removed. Text modes write UTF-8.

    The temporary name is unique and created exclusively, so two writers of one path never share it.
    A symbolic link is written through (its target is replaced, the link stays); a folder, device,
    FIFO or socket at ``path`` is refused rather than renamed over. A replaced file keeps its mode.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise FileAccessError(path, f"is {file_kind(st.st_mode)}, not a regular file (expected a file name to write)")
    tmp = target.with_name(f".{target.name[:200]}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(target.parent)


def write_manifest(out_dir: Path, outputs: list[Output]) -> Path:
    """Write ``manifest.json`` atomically (temporary file, fsync, rename)."""
    path = out_dir / MANIFEST
    with atomic_file(path) as fh:
        json.dump({"outputs": [asdict(o) for o in outputs]}, fh, indent=2)
    return path


def read_manifest(out_dir: Path) -> list[Output] | None:
    """The outputs listed in a job's manifest, or ``None`` when the job wrote none (yet)."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise OrienteerError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    outputs: list[Output] = []
    for number, entry in enumerate(raw.get("outputs", []) if isinstance(raw, dict) else [], 1):
        cls = _TYPES.get(str(entry.get("type"))) if isinstance(entry, dict) else None
        if cls is None:
            raise OrienteerError(f"{path}: output {number} has no known type (expected one of {', '.join(_TYPES)})")
        try:
            outputs.append(cls(**entry))
        except TypeError as exc:
            raise OrienteerError(f"{path}: output {number} ({entry['type']}): {exc}") from None
    return outputs
