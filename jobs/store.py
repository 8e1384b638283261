"""Job folders: each job is a folder under ``WORKSPACE/jobs/ID`` holding everything about it.

``spec.json``     kind, params, argv (written once, before the process starts)
``state.json``    pid, process start time, boot id, phase (queued/running), GPU (written by the job process)
``exit.json``     exit code, cancelled flag, error line (written by the job process when it ends)
``cancel``        present once someone asked the job to stop
``log.txt``       stdout and stderr of the job process
``progress.jsonl``, ``metrics.jsonl``  machine-readable progress and numbers over time
``outputs/``      what the job produced, with ``manifest.json`` written last
``slurm.json``    the Slurm job id and the sbatch options (a Slurm job, written by sbatch's caller at submit)
``slurm.sh``      the fixed batch script sbatch runs (a Slurm job)
``ingest.json``   the result of ingesting the outputs (a cache; the database's ``job_ingests`` is the truth)

Files are written whole and renamed into place, so a reader never sees half a JSON file.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import atomic_file
from orienteer.data.workspace import Workspace
from orienteer.jobs.params import RUNTIME_KEYS

JOBS_DIR = "jobs"
RESUME_DIR = ".resume"


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` whole (readers never see half a file; a crash leaves the old one)."""
    with atomic_file(path) as fh:
        fh.write(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class JobDir:
    """Paths of one job's folder."""

    path: Path

    @property
    def job_id(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / "spec.json"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def exit_path(self) -> Path:
        return self.path / "exit.json"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def progress_path(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def out_dir(self) -> Path:
        return self.path / "outputs"

    @property
    def slurm_path(self) -> Path:
        return self.path / "slurm.json"

    @property
    def ingest_path(self) -> Path:
        return self.path / "ingest.json"

    def spec(self) -> dict[str, Any]:
        spec = read_json(self.spec_path)
        if spec is None:
            raise OrienteerError(f"job {self.job_id}: spec.json is missing or unreadable in {self.path}")
        return spec

    def state(self) -> dict[str, Any] | None:
        return read_json(self.state_path)

    def exit(self) -> dict[str, Any] | None:
        return read_json(self.exit_path)


def jobs_root(ws: Workspace) -> Path:
    return ws.dir(JOBS_DIR)


# Options that change how a job goes about its work, never what it makes: a re-run that changes them (more
# requests in flight, more tries, another key variable, more preprocessing threads) resumes the same work
# instead of starting over (which, against a hosted API, would pay for every request again).
HOW_NOT_WHAT = ("concurrency", "eval_concurrency", "retries", "api_key_env", "workers")


def spec_key(kind: str, params: dict[str, Any]) -> str:
    """Identifies "the same spec": re-runs of it share a resume folder (partial results, checkpoints).
    The runtime's keys (gpu, note, runner) and ``HOW_NOT_WHAT`` are left out. ``gpus`` is in: train's
    checkpoints hold one process count's state (and eval's shard files would serve any count, but one
    rule for every kind keeps "the same spec" simple)."""
    relevant = {k: v for k, v in params.items() if k not in RUNTIME_KEYS and k not in HOW_NOT_WHAT}
    text = json.dumps({"kind": kind, "params": relevant}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resume_dir(ws: Workspace, kind: str, params: dict[str, Any]) -> Path:
    path = jobs_root(ws) / RESUME_DIR / spec_key(kind, params)
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_job(ws: Workspace, kind: str, params: dict[str, Any], argv: list[str]) -> JobDir:
    """A new job folder with its spec; the id sorts by creation time and never collides."""
    root = jobs_root(ws)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(20):
        job_id = f"{stamp}-{kind}-{secrets.token_hex(2)}"
        path = root / job_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        job = JobDir(path)
        write_json(job.spec_path, {
            "job_id": job_id, "kind": kind, "params": params, "argv": argv,
            "created_at": time.time(), "workspace": str(ws.root), "spec_key": spec_key(kind, params),
        })
        return job
    raise OrienteerError(f"could not create a job folder under {root}")


def list_job_dirs(ws: Workspace) -> list[JobDir]:
    """Every job folder, newest first."""
    root = ws.root / JOBS_DIR
    if not root.is_dir():
        return []
    dirs = [JobDir(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(dirs, key=_created, reverse=True)


def _created(job: JobDir) -> tuple[int, str]:
    """Creation order: ids sort by the second; the spec file's time orders jobs of the same second."""
    try:
        return job.spec_path.stat().st_mtime_ns, job.job_id
    except FileNotFoundError:
        return 0, job.job_id


def job_dir(ws: Workspace, job_id: str) -> JobDir:
    """The folder of the job with exactly this id (it may not exist)."""
    return JobDir(ws.root / JOBS_DIR / job_id)


def find_job(ws: Workspace, job_id: str) -> JobDir:
    """A job by id or by a unique prefix/suffix of its id."""
    exact = job_dir(ws, job_id)
    if exact.spec_path.is_file():
        return exact
    matches = [j for j in list_job_dirs(ws) if j.job_id.startswith(job_id) or j.job_id.endswith(job_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise OrienteerError(f"no job {job_id!r} in {ws.root / JOBS_DIR} (orienteer job list shows them)")
    raise OrienteerError(f"job id {job_id!r} is ambiguous: {', '.join(m.job_id for m in matches[:5])}")
