"""The Slurm runner: a job folder's worker submitted with ``sbatch``, watched with ``squeue``, stopped with ``scancel``.

Why a small sbatch wrapper and not submitit: the job folder already is the protocol. Its entry point is
``python -m orienteer.jobs.worker JOB_DIR``, which records state, progress, log and outputs and writes
its own ``exit.json``; submitit would pickle a Python callable into a folder of its own, keep a second
set of result and state files, and read job states through ``sacct``, which needs the accounting
daemon that a minimal cluster (and our test cluster) does not run. What Slurm must do for us is three
commands, each an argument vector (never a shell string):

- ``sbatch --parsable [options] JOB_DIR/slurm.sh PYTHON JOB_DIR``: ``slurm.sh`` is a fixed script
  (``BATCH_SCRIPT``, the same for every job) that runs ``"$1" -m orienteer.jobs.worker "$2"``, so no
  path or spec value is ever seen by a shell. Its output goes to the job's ``log.txt`` (``--chdir`` the
  job folder, ``--output=log.txt --open-mode=append``: no ``%`` pattern in a workspace path can be
  expanded). The Slurm job id is written to ``slurm.json`` as soon as sbatch returns it. The job carries
  ``--comment=orienteer:JOB_ID``: when sbatch does not answer, the job it may have queued is found by
  that comment and scancelled, as is the job whose id could not be recorded, so no Slurm job outlives
  a submission that failed.
- ``squeue --states=all --jobs=ID,ID,...``: one call per refresh for every unsettled Slurm job of the
  workspace (``prefetch``), cached for ``CACHE_S`` so that the per-job reads of one refresh share it.
  A job squeue has forgotten (after ``MinJobAge``) is asked of ``scontrol show job``, then ``sacct``
  where accounting exists; a job neither knows and that left no ``exit.json`` is lost.
- ``scancel ID`` after touching the ``cancel`` file (only for a job Slurm still queues or runs): the
  worker, seeing the file when SIGTERM comes, records a cancel; a SIGTERM without it (time limit,
  preemption, an admin's scancel) is recorded as "stopped by Slurm", and the state Slurm ends the job in
  (``TIMEOUT``, ``OUT_OF_MEMORY``...) is then written to ``exit.json`` by whichever orienteer process
  sees it first (``settle``).

The job folder may sit on a shared file system (NFS) whose client cache shows the worker's
``exit.json`` late, so no orienteer process ever replaces a worker's record: a missing one is settled
with Slurm's state only ``SETTLE_GRACE_S`` after the end was first seen (``slurm_end.json``), and is
created exclusively (a hard link, which the file server refuses when the name exists).

GPU queueing is Slurm's (``--gres=gpu:N`` on one node): the worker takes no GPU lock and leaves
``CUDA_VISIBLE_DEVICES`` as Slurm set it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.store import JobDir, read_json, write_json

BATCH_SCRIPT = """#!/bin/bash
# Written by orienteer (the same for every job): run one job folder's worker on the node Slurm chose.
# $1 is the Python interpreter, $2 the job folder; both arrive as arguments, never as shell text.
exec "$1" -m orienteer.jobs.worker "$2"
"""
CACHE_S = 2.0
COMMAND_TIMEOUT_S = 30.0
CANCEL_GRACE_S = 10.0
SETTLE_GRACE_S = 60.0  # how long a job Slurm ended may show no exit.json before Slurm's state is written
END_SEEN_FILE = "slurm_end.json"  # when Slurm's end of the job was first seen (the grace counts from it)
PENDING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"})
RUNNING = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"})
# Every other state is an end: COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED,
# BOOT_FAIL, DEADLINE, REVOKED.
UNREACHABLE = "UNREACHABLE"  # squeue could not be run or failed: we know nothing new


@dataclass(frozen=True)
class SlurmInfo:
    """What Slurm says of one job: its state (``PENDING``, ``RUNNING``, ``TIMEOUT``...), the reason it waits
    (or why squeue failed), the node it runs on."""

    state: str
    reason: str = ""
    node: str = ""

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def ended(self) -> bool:
        return self.state != UNREACHABLE and not self.pending and not self.running


# --- sbatch ----------------------------------------------------------------------------------------


def _setting(ws: Any, key: str) -> str | None:
    from orienteer.data.ws_config import get_setting

    return get_setting(ws, key)


def gpu_count(needs_gpu: bool, params: dict[str, Any], default: str | None) -> int:
    """GPUs to ask Slurm for: none for a CPU job (``--gpu none``, or a kind that needs none); else the
    job's ``--gpus`` (a count, or a list's length) when it asks for more than one, else ``slurm.gpus``
    (default 1)."""
    if not needs_gpu or params.get("gpu") is None:
        return 0
    from orienteer.jobs.gpus import parse_gpus

    n, _ = parse_gpus(params.get("gpus") or "1")
    return n if n > 1 else int(default or 1)


def sbatch_options(ws: Any, kind: str, needs_gpu: bool, params: dict[str, Any]) -> list[str]:
    """The sbatch options of a job: the fixed ones, then the workspace's ``slurm.*`` settings."""
    from orienteer.data.ws_config import sbatch_extra

    options = [f"--job-name=orienteer-{kind}", "--nodes=1", "--ntasks=1", "--output=log.txt", "--open-mode=append"]
    for key, flag in (("slurm.partition", "--partition"), ("slurm.account", "--account"), ("slurm.time", "--time"),
                      ("slurm.cpus", "--cpus-per-task"), ("slurm.mem", "--mem")):
        value = _setting(ws, key)
        if value:
            options.append(f"{flag}={value}")
    gpus = gpu_count(needs_gpu, params, _setting(ws, "slurm.gpus"))
    if gpus:
        options.append(f"--gres=gpu:{gpus}")
    extra = _setting(ws, "slurm.extra")
    if extra:
        try:
            options += sbatch_extra(extra)
        except ValueError as exc:  # a value set before the rules were what they are now
            raise OrienteerError(f"slurm.extra: expected {exc}, got {extra!r} (orienteer config set slurm.extra ...)") from None
    return options


class SlurmTimeout(OrienteerError):
    """A Slurm command that did not answer in time: what it asked for may or may not have happened."""


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A Slurm command, as an argument vector; a missing command reads as ``OrienteerError``."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False, **kwargs)
    except FileNotFoundError:
        raise OrienteerError(f"runner slurm: {argv[0]} not found (is Slurm installed here, and on PATH?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmTimeout(f"runner slurm: {argv[0]} did not answer within {COMMAND_TIMEOUT_S:.0f} s") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class SlurmRunner:
    """Submits a job folder's worker with sbatch; cancels with the cancel file and scancel."""

    name = "slurm"

    def submit(self, job: JobDir) -> None:
        """sbatch the job folder's worker and record the Slurm id; a failure after Slurm may have taken the
        job (slurm.json not written, sbatch not answering) scancels it, so no orphan outlives the folder."""
        from orienteer.data.workspace import Workspace
        from orienteer.jobs.kinds import get_kind

        spec = job.spec()
        kind = get_kind(spec["kind"])
        options = sbatch_options(Workspace(spec["workspace"]), kind.name, kind.needs_gpu, dict(spec["params"]))
        options.append(f"--comment={comment_of(job)}")
        script = job.path / "slurm.sh"
        script.write_text(BATCH_SCRIPT, encoding="utf-8")
        script.chmod(0o755)
        env = dict(os.environ)
        for key, value in (("PYTHONUNBUFFERED", "1"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                           ("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "0")):
            env.setdefault(key, value)
        argv = ["sbatch", "--parsable", f"--chdir={job.path}", *options, str(script), sys.executable, str(job.path)]
        try:
            done = _run(argv, cwd=str(job.path), env=env, stdin=subprocess.DEVNULL)
        except SlurmTimeout:
            found = cancel_by_comment(kind.name, comment_of(job))
            what = f"scancelled the Slurm job it may have queued ({', '.join(found)})" if found else (
                f"no Slurm job with comment {comment_of(job)} was found to scancel")
            raise OrienteerError(f"runner slurm: sbatch did not answer within {COMMAND_TIMEOUT_S:.0f} s; {what}") from None
        slurm_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not slurm_id.isdigit():
            why = _first_line(done.stderr) or _first_line(done.stdout) or f"exit status {done.returncode}"
            raise OrienteerError(f"runner slurm: sbatch refused the job: {why}")
        try:
            write_json(job.slurm_path, {"job_id": slurm_id, "submitted_at": time.time(), "sbatch": options})
        except (OSError, OrienteerError) as exc:
            _scancel_quietly(slurm_id)
            raise OrienteerError(f"runner slurm: could not record Slurm job {slurm_id} ({exc}); it was scancelled") from None

    def cancel(self, job: JobDir, grace_s: float = CANCEL_GRACE_S) -> bool:
        """Stop a job Slurm still queues or runs: touch the cancel file (the worker records a cancel, not a
        Slurm stop), scancel, and wait a little for Slurm to end it; True when it did. A job that already
        ended, or that Slurm no longer knows, is left as it is (no cancel file: it keeps reading as it ended)."""
        exit_info = job.exit()
        if exit_info is not None and not exit_info.get("slurm_signal"):
            return False
        slurm_id = slurm_job_id(job)
        if slurm_id is None:
            return False
        info = QUEUE.lookup(slurm_id, fresh=True)
        if info is None or info.ended:
            return False
        job.cancel_path.touch()
        done = _run(["scancel", slurm_id], stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise OrienteerError(f"runner slurm: scancel {slurm_id} failed: {_first_line(done.stderr)}")
        _wait_until_ended(slurm_id, grace_s)
        # Our own request is on record, so no grace: a record the worker left stands (created exclusively),
        # and one it writes later replaces this one.
        create_exit(job, {"code": 130, "cancelled": True, "ended_at": time.time(), "error": "cancelled (scancel)",
                          "slurm_state": "CANCELLED"})
        return True


def comment_of(job: JobDir) -> str:
    """The ``--comment`` a job is submitted with: how a job whose sbatch reply was lost is found again."""
    return f"orienteer:{job.job_id}"


def _scancel_quietly(slurm_id: str, grace_s: float = CANCEL_GRACE_S) -> bool:
    """scancel a job of a failed submission and wait a little for Slurm to end it, so that nothing it
    runs writes into the job folder after the folder is removed; whether scancel took it."""
    try:
        if _run(["scancel", slurm_id], stdin=subprocess.DEVNULL).returncode != 0:
            return False
    except OrienteerError:
        return False
    _wait_until_ended(slurm_id, grace_s)
    return True


def _wait_until_ended(slurm_id: str, grace_s: float) -> None:
    """Wait up to ``grace_s`` for Slurm to report the job ended (or to forget it) after a scancel."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        now = QUEUE.lookup(slurm_id, fresh=True)
        if now is None or now.ended:
            return
        time.sleep(0.2)


def cancel_by_comment(kind: str, comment: str) -> list[str]:
    """scancel the jobs named ``orienteer-KIND`` whose comment is ``comment`` (a submission whose sbatch
    did not answer); the ids it scancelled."""
    try:
        done = _run(["squeue", "--noheader", f"--name=orienteer-{kind}", "--format=%i|%k"], stdin=subprocess.DEVNULL)
    except OrienteerError:
        return []
    ids = [line.split("|", 1)[0].strip() for line in done.stdout.splitlines() if line.split("|", 1)[-1].strip() == comment]
    return [slurm_id for slurm_id in ids if slurm_id.isdigit() and _scancel_quietly(slurm_id)]


def slurm_job_id(job: JobDir) -> str | None:
    """The Slurm job id recorded at submit (or by the worker, should ``slurm.json`` be gone)."""
    submitted, state = read_json(job.slurm_path), job.state()
    for value in ((submitted or {}).get("job_id"), (state or {}).get("slurm_job_id")):
        if value is not None and str(value).isdigit():
            return str(value)
    return None


# --- squeue ----------------------------------------------------------------------------------------

_SQUEUE_FORMAT = "%i|%T|%r|%N"


def _parse_squeue(out: str) -> dict[str, SlurmInfo]:
    rows: dict[str, SlurmInfo] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0]:
            job_id, state, reason, node = parts
            rows[job_id] = SlurmInfo(state.split()[0] if state.strip() else "UNKNOWN", reason.strip(), node.strip())
    return rows


def squeue(ids: Iterable[str]) -> dict[str, SlurmInfo] | None:
    """One ``squeue`` call for all of ``ids``; None when squeue cannot be run or failed (it fails when no
    id is known to it any more: then none is)."""
    wanted = sorted(set(ids), key=int)
    if not wanted:
        return {}
    try:
        done = _run(["squeue", "--noheader", "--states=all", f"--format={_SQUEUE_FORMAT}", f"--jobs={','.join(wanted)}"],
                    stdin=subprocess.DEVNULL)
    except OrienteerError:
        return None
    if done.returncode != 0:
        return {} if "Invalid job id" in done.stderr else None
    return _parse_squeue(done.stdout)


def _scontrol(slurm_id: str) -> SlurmInfo | None:
    """``scontrol show job``: knows what squeue knows, but stays the fallback for other setups."""
    try:
        done = _run(["scontrol", "show", "job", "--oneliner", slurm_id], stdin=subprocess.DEVNULL)
    except OrienteerError:
        return None
    if done.returncode != 0:
        return None
    fields = dict(re.findall(r"(?:^|\s)(JobState|Reason|NodeList)=(\S*)", done.stdout))
    state = fields.get("JobState")
    if not state:
        return None
    node = fields.get("NodeList", "")
    return SlurmInfo(state, fields.get("Reason", ""), "" if node == "(null)" else node)


def _sacct(slurm_id: str) -> SlurmInfo | None:
    """``sacct``, where the cluster keeps accounting (it outlives squeue's memory of a job)."""
    try:
        done = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", slurm_id, "--format=State,NodeList"],
                    stdin=subprocess.DEVNULL)
    except OrienteerError:
        return None
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    if "|" not in line:
        return None
    state, node = line.split("|", 1)
    return SlurmInfo(state.split()[0], "", node.strip()) if state.strip() else None


class SlurmQueue:
    """squeue's answers, shared by the reads of one refresh (each answer is good for ``CACHE_S``); jobs it
    forgot are asked once of scontrol and sacct, then remembered as forgotten for this process's life,
    and ended jobs as ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, SlurmInfo | None]] = {}  # id -> (when asked, answer; None: not in squeue)
        self._forgotten: set[str] = set()
        self._settled: dict[str, SlurmInfo] = {}
        self.calls = 0  # squeue calls made (the tests count them)

    def prefetch(self, ids: Iterable[str]) -> None:
        """Ask squeue once about all of ``ids`` (one refresh's unsettled Slurm jobs)."""
        wanted = {i for i in ids if i not in self._forgotten and i not in self._settled}
        if wanted:
            self._fetch(wanted)

    def _fetch(self, ids: set[str]) -> None:
        rows = squeue(ids)
        now = time.monotonic()
        with self._lock:
            self.calls += 1
            for slurm_id in ids:
                if rows is None:
                    self._seen[slurm_id] = (now, SlurmInfo(UNREACHABLE, "squeue could not be run or failed"))
                else:
                    self._seen[slurm_id] = (now, rows.get(slurm_id))

    def lookup(self, slurm_id: str, fresh: bool = False) -> SlurmInfo | None:
        """Slurm's word on one job: None when Slurm no longer knows it; state ``UNREACHABLE`` when it
        could not be asked."""
        if slurm_id in self._settled:
            return self._settled[slurm_id]
        if slurm_id in self._forgotten:
            return None
        with self._lock:
            entry = self._seen.get(slurm_id)
        if fresh or entry is None or time.monotonic() - entry[0] >= CACHE_S:
            self._fetch({slurm_id})
            with self._lock:
                entry = self._seen[slurm_id]
        info = entry[1]
        if info is None:
            info = _scontrol(slurm_id) or _sacct(slurm_id)
            if info is None:
                self._forgotten.add(slurm_id)
                return None
        if info.ended:
            self._settled[slurm_id] = info
        return info


QUEUE = SlurmQueue()


def unsettled_ids(jobs: Iterable[JobDir]) -> list[str]:
    """The Slurm ids of the Slurm jobs among ``jobs`` whose end is not yet recorded (no ``exit.json``, or
    only the worker's "stopped by Slurm" one): what one refresh asks squeue about."""
    ids = []
    for job in jobs:
        if not job.slurm_path.exists():
            continue
        exit_info = job.exit()
        if exit_info is not None and not exit_info.get("slurm_signal"):
            continue
        slurm_id = slurm_job_id(job)
        if slurm_id is not None:
            ids.append(slurm_id)
    return ids


def create_exit(job: JobDir, record: dict[str, Any]) -> bool:
    """Write ``exit.json`` only if there is none: the record goes to a temporary file that is then hard
    linked into place, which fails when the name exists, even one this machine's cache of a shared file
    system does not show yet (the link is made by the file server). False when a record was there."""
    tmp = job.path / f".exit.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        os.link(tmp, job.exit_path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def end_first_seen(job: JobDir, info: SlurmInfo, now: float | None = None) -> float:
    """When an orienteer process first saw Slurm report this job's end (kept in the job folder, first
    writer wins, so every process, on any machine, counts the grace from the same moment)."""
    now = time.time() if now is None else now
    path = job.path / END_SEEN_FILE
    seen = read_json(path)
    if isinstance(seen, dict) and isinstance(seen.get("seen_at"), int | float):
        return float(seen["seen_at"])
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(json.dumps({"seen_at": now, "slurm_state": info.state}))
    except FileExistsError:
        seen = read_json(path)  # another process's, just written (or half written: count from now)
        return float(seen["seen_at"]) if isinstance(seen, dict) and isinstance(seen.get("seen_at"), int | float) else now
    except OSError:
        return now  # a folder we cannot write to: nothing settles it from here before the grace
    return now


def settle(job: JobDir, info: SlurmInfo, now: float | None = None) -> dict[str, Any] | None:
    """A job Slurm ended: its ``exit.json`` as it should read. The worker's own record stands when it
    wrote one (done, failed, cancelled by us); the worker's "stopped by Slurm" record gets Slurm's state
    (TIMEOUT, OUT_OF_MEMORY, an outside scancel), written to its folder so that it stays known after
    squeue forgets the job. A job that left no record may only not show it yet (a shared file system
    lags): it is settled with Slurm's state only ``SETTLE_GRACE_S`` after its end was first seen, and
    never over a record that appeared meanwhile. None while Slurm has not ended it, or during the grace
    (the job then reads as still running, "finishing")."""
    if not info.ended:
        return None
    exit_info = job.exit()
    if exit_info is not None and not exit_info.get("slurm_signal"):
        return exit_info
    now = time.time() if now is None else now
    if exit_info is not None:  # the worker's last word, "stopped by Slurm": it writes nothing after it
        record = {"code": 130 if info.state == "CANCELLED" else int(exit_info.get("code") or 1),
                  "cancelled": info.state == "CANCELLED", "ended_at": exit_info.get("ended_at") or now,
                  "error": f"Slurm: {info.state}", "slurm_state": info.state}
        write_json(job.exit_path, record)
        return record
    if now - end_first_seen(job, info, now) < SETTLE_GRACE_S:
        return None
    error = "Slurm: COMPLETED, but the worker left no exit record" if info.state == "COMPLETED" else f"Slurm: {info.state}"
    record = {"code": 130 if info.state == "CANCELLED" else 1, "cancelled": info.state == "CANCELLED", "ended_at": now,
              "error": error, "slurm_state": info.state}
    if create_exit(job, record):
        return record
    return job.exit()  # the worker's own record was there after all (None while this machine cannot read it yet)
