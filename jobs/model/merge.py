"""A LoRA adapter merged into its base and saved as a plain model folder, for a serving engine to load.

vLLM and SGLang load model folders; they apply a LoRA adapter only when started with their own LoRA
options and asked for it by the adapter's name. A job that starts the engine itself (``--serve``)
merges instead: peft's ``merge_and_unload``, the same merge the in-process path does on load
(``loading.load_model``), saved with the base's processor, in the checkpoint's own dtype.

The folder is ``merged-<digest>`` in the job's resume folder, the digest taken over the base and the
adapter's files, so a re-run of the same spec reuses it and a changed adapter gets a new one (the old
one is removed). It is written to a temporary folder and renamed into place once complete, so a kill
mid-save never leaves a half folder that a re-run would take for a model. Written here because peft
merges but does not manage where the result lives.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

MERGE_INFO = "orienteer-merge.json"
PREFIX = "merged-"
_CHUNK = 1 << 20


def merge_digest(base: str, adapter: str) -> str:
    """What the merged weights depend on: the base (its reference, and its files' names, sizes and
    times when it is a folder) and the adapter's files (their contents: adapters are small)."""
    digest = hashlib.sha256(json.dumps({"base": str(base)}).encode())
    base_dir = Path(base)
    if base_dir.is_dir():
        for path in sorted(p for p in base_dir.iterdir() if p.is_file()):
            stat = path.stat()
            digest.update(f"base\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for path in sorted(p for p in Path(adapter).iterdir() if p.is_file()):
        digest.update(f"adapter\0{path.name}\n".encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _remove_others(into: Path, keep: Path) -> None:
    """Merged folders of other digests (a changed adapter) and temporary folders of killed saves."""
    for path in into.iterdir():
        if path != keep and path.is_dir() and (path.name.startswith(PREFIX) or path.name.startswith("." + PREFIX)):
            shutil.rmtree(path, ignore_errors=True)


def merged_for_serving(base: str, adapter: str, into: Path, log: Callable[[str], None]) -> Path:
    """The folder holding ``adapter`` merged into ``base`` (made now, or by an earlier attempt)."""
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.tiny import RANDOM_WEIGHTS_MARKER

    digest = merge_digest(base, adapter)
    target = into / f"{PREFIX}{digest}"
    into.mkdir(parents=True, exist_ok=True)
    _remove_others(into, target)
    if (target / MERGE_INFO).is_file():
        log(f"adapter {adapter} already merged into {base} in an earlier attempt: serving {target}")
        return target
    shutil.rmtree(target, ignore_errors=True)  # not complete (cannot happen through the rename; never served)
    log(f"merging adapter {adapter} into {base} for serving (peft merge_and_unload, on the CPU)")
    loaded = load_model(base, adapter, device="cpu", dtype="auto", vision_attention="reference", merge_adapter=True)
    partial = into / f".{PREFIX}{digest}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(partial)
    loaded.processor.save_pretrained(partial)
    if loaded.random_weights:  # the merged model is as random as its parts: say so, as the tiny model does
        (partial / RANDOM_WEIGHTS_MARKER).write_text(json.dumps({"random_weights": True, "merged_from": adapter}) + "\n",
                                                     encoding="utf-8")
    info = {"base": str(base), "adapter": str(adapter), "digest": digest, "merged_by": "peft merge_and_unload"}
    (partial / MERGE_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    del loaded
    gc.collect()
    os.replace(partial, target)
    log(f"merged model saved: {target}")
    return target
