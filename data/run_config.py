"""A run's settings as data: what its numbers were made with, read from one place.

Job runs store their settings in ``runs.config`` (JSON: engine, mode, prompt and template hash,
frame sizing, max new tokens, truncated replies, adapter, training set, an allowed test overlap...).
The run's own columns add what every run has: the parser that scored it, the model, the source format
and whether the model had random weights. ``RunConfig`` joins the two, so the CLI, the app and the
jobs (saliency reproduces a run's inputs from it) never parse the free-text ``notes``: notes are for
people only.

Runs made before settings were stored have their eval settings back-filled from their notes once,
by migration 9 (``settings_from_notes``), marked ``from_notes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunConfig:
    """One run's settings (``settings``: the stored JSON object) and the columns every run has."""

    settings: dict[str, Any] = field(default_factory=dict)
    parser: str | None = None
    model: str | None = None
    source_format: str | None = None
    random_weights: bool = False
    created_by_job: str | None = None

    @classmethod
    def from_row(cls, config: str | None, parser: str | None = None, model: str | None = None,
                 source_format: str | None = None, random_weights: bool = False,
                 created_by_job: str | None = None) -> RunConfig:
        return cls(stored_settings(config), parser, model, source_format, bool(random_weights), created_by_job)

    def get(self, key: str, default: Any = None) -> Any:
        """A stored setting (``mode``, ``prompt``, ``resize``, ``truncated``...); ``engine`` as the property says."""
        if key == "engine":
            return self.engine if self.engine is not None else default
        return self.settings.get(key, default)

    @property
    def truncated(self) -> int | None:
        """Replies cut at ``max_new_tokens`` (generate-mode job runs); None when not recorded."""
        value = self.settings.get("truncated")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def engine(self) -> str | None:
        """What produced the answers: the recorded engine of a job run (``hf``: Orienteer's own eval on
        transformers), ``imported`` for a run read from a file (its ``source_format`` says which),
        ``None`` for a job's run that recorded none (a fixed-letter baseline)."""
        recorded = self.settings.get("engine")
        if isinstance(recorded, str) and recorded:
            return recorded
        return "imported" if self.created_by_job is None and self.source_format else None

    def as_json(self) -> dict[str, Any]:
        """The settings and the columns, as ``runs --json`` and ``report --json`` print them."""
        return {**self.settings, "engine": self.engine, "parser": self.parser, "model": self.model,
                "source_format": self.source_format, "random_weights": self.random_weights,
                "created_by_job": self.created_by_job}


def stored_settings(text: str | None) -> dict[str, Any]:
    """``runs.config`` as a dict: ``{}`` for none, and for a value that is not a JSON object (the column
    is only written by job ingest and migrations, so that would be a damaged workspace)."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


_NOTE_INTS = ("max_pixels", "item_pixels", "max_new_tokens")


def settings_from_notes(notes: str | None) -> dict[str, Any]:
    """The settings an older eval run wrote into its notes (``eval mode=score; prompt=official;
    max_pixels=307200; ...``), as ``runs.config`` holds them; ``{}`` for notes of any other shape.

    Those runs predate versioned prompts and upstream resizing: their ``official`` was the text now
    called ``official-newline``, sized by the pixel budget."""
    text = (notes or "").strip()
    if not text.startswith("eval "):
        return {}
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            pairs[key.split()[-1]] = value.strip()
    if pairs.get("mode") not in ("score", "generate"):
        return {}
    settings: dict[str, Any] = {"engine": "hf", "mode": pairs["mode"], "from_notes": True}
    prompt = pairs.get("prompt")
    if prompt:
        settings["prompt"] = "official-newline" if prompt == "official" and "resize" not in pairs else prompt
    settings["resize"] = pairs.get("resize") or "budget"
    for key in _NOTE_INTS:
        if pairs.get(key, "").isdigit():
            settings[key] = int(pairs[key])
    if pairs.get("adapter"):
        settings["adapter"] = pairs["adapter"]
    return settings


def backfill_from_notes(rows: Mapping[int, str | None]) -> dict[int, dict[str, Any]]:
    """run id -> settings for the runs (id -> notes) whose notes are an older eval's settings."""
    return {run_id: settings for run_id, notes in rows.items() if (settings := settings_from_notes(notes))}
