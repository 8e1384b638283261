"""What a job kind's code sees while it runs: its parameters, folders, progress and outputs.

A kind is a function ``run(ctx: JobContext) -> None`` in ``orienteer.jobs.kinds.<module>``.
``ctx.spec`` is the kind's options as its typed spec dataclass (``ctx.params``, the raw dict the
job folder records, stays for the runtime). It reads the workspace read-only
(``ctx.workspace.read()``), writes files only under ``ctx.out_dir`` (final outputs) and
``ctx.resume_dir`` (partial results and checkpoints that a re-run of the same spec picks up),
reports progress, checks ``ctx.should_stop()`` between
batches, and lists what it produced with ``ctx.add_output``. The runtime writes the manifest
when ``run`` returns and ingests it into the workspace in one transaction.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orienteer.data.job_outputs import Output
from orienteer.data.workspace import Workspace

S = TypeVar("S")


class JobCancelled(Exception):
    """Raised by kind code (or ``ctx.check_stop()``) when the job was asked to stop."""


@dataclass
class JobContext:
    job_id: str
    kind: str
    params: dict[str, Any]
    workspace: Workspace
    job_dir: Path
    out_dir: Path
    resume_dir: Path
    device: str = "cpu"
    outputs: list[Output] = field(default_factory=list)
    _stop_requested: bool = False
    _progress_path: Path | None = None
    _started: float = field(default_factory=time.time)
    _spec: Any = field(default=None, init=False, repr=False, compare=False)  # not copied by dataclasses.replace

    @property
    def spec(self) -> Any:
        """The kind's typed spec, built from ``params`` on first use (defaults filled, types checked)."""
        if self._spec is None:
            from orienteer.jobs.kinds import get_kind

            self._spec = get_kind(self.kind).make_spec(self.params)
        return self._spec

    def spec_of(self, cls: type[S]) -> S:
        """``spec``, typed as the kind's spec class ``cls`` (a kind's ``run`` knows its own)."""
        spec = self.spec
        if not isinstance(spec, cls):
            raise TypeError(f"job {self.job_id}: a {self.kind} job's spec is a {type(spec).__name__}, not {cls.__name__}")
        return spec

    def log(self, message: str) -> None:
        """One line in the job's log (stdout of the job process is the log file)."""
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {message}", flush=True)

    def progress(self, done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        """Append one progress record (JSON line) that the TUI turns into a bar with rate and ETA."""
        path = self._progress_path or (self.job_dir / "progress.jsonl")
        record = {"t": round(time.time(), 3), "done": done, "total": total, "unit": unit, "note": note}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def metric(self, **values: Any) -> None:
        """Append numbers over time (e.g. ``step=3, loss=1.2``) to ``metrics.jsonl``, drawn by the TUI."""
        record = {"t": round(time.time(), 3), **values}
        with open(self.job_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def should_stop(self) -> bool:
        return self._stop_requested

    def check_stop(self) -> None:
        if self._stop_requested:
            raise JobCancelled(f"job {self.job_id} was cancelled")

    def request_stop(self) -> None:
        self._stop_requested = True

    def add_output(self, output: Output) -> None:
        self.outputs.append(output)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)
