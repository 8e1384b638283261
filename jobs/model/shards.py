"""One job, several processes (``--gpus``): the eval's batches (or saliency's chunks) split into
shards, each scored by its own process on its own GPU, merged by the job process into one run.

Why this shape:

- The processes are started by torchrun (``python -m torch.distributed.run``), as one child of the
  job process and in its process group, so a cancel's SIGTERM to the group reaches every shard,
  and torchrun (not our code) watches them: one shard dying ends the others and torchrun exits
  non-zero. ``--standalone`` lets torchrun pick its own free rendezvous port on localhost (no
  race between choosing a port and binding it, and no collision between two jobs); shards use no
  collectives, the rendezvous only hands out RANK / WORLD_SIZE / LOCAL_RANK. ``--max-restarts 0``:
  a failed shard fails the job, and a re-run of the same spec recomputes only what is missing.
- The job process plans (the batch plan is a pure function of the items, their lengths and the
  batch size: ``batching.plan_batches``), gives each unfinished unit (an eval batch, a saliency
  chunk) to one rank (``assign``: longest first onto the least loaded rank, ties to the lower
  rank, so the split is deterministic) and writes the plan to ``shards/work.json`` in the job
  folder. Ranks read their share from there, never from the workspace (no DuckDB in N processes,
  and every rank sees exactly the plan the parent merges).
- Each rank appends its records to its own partial file in the resume folder
  (``<name>.rank<R>.jsonl`` beside the 1-process ``<name>.jsonl``), so no two processes ever
  write one file. Readers take the union of all of them (``partial_files``), keyed by batch or
  item, so a re-run skips every finished unit whichever process made it. (A re-run with another
  ``--gpus`` is another spec, with a resume folder of its own: ``store.spec_key``.)
- Progress: each rank appends its own ``shards/progress-<R>.jsonl`` (its ``JobContext.progress``
  pointed there); the job process polls them every 0.5 s and appends the sum to the job's
  ``progress.jsonl``, so the jobs screen shows one bar for the job. Each rank also records its
  pid and device in ``shards/rank-<R>.json`` (who to look at when one misbehaves).

No library fit the whole: accelerate's ``split_between_processes`` and torch's
``DistributedSampler`` split a list evenly by position, but neither keeps resume files or knows
which batches are already done; the split itself is ten lines here.
"""

from __future__ import annotations

import heapq
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from orienteer.data.items import Item
from orienteer.jobs.context import JobCancelled, JobContext
from orienteer.jobs.gpus import GpuPlan
from orienteer.jobs.store import JobDir, write_json

SHARDS = "shards"
WORK = "work.json"
POLL_S = 0.5
STOP_GRACE_S = 30.0
# What a rank runs, by task name: "module:function(ctx, spec, work)". Imported in the rank only.
TASKS = {
    "eval": "orienteer.jobs.model.eval_loop:run_eval_shard",
    "saliency": "orienteer.jobs.model.saliency_job:run_saliency_shard",
}


def partial_files(resume_dir: Path, name: str) -> list[Path]:
    """Every partial file of ``name`` (``predictions.partial.jsonl``): the 1-process one and each rank's."""
    stem = name.removesuffix(".jsonl")
    return sorted(p for p in [resume_dir / name, *resume_dir.glob(f"{stem}.rank*.jsonl")] if p.is_file())


def rank_file(resume_dir: Path, name: str, rank: int | None) -> Path:
    """Where a process appends: ``name`` itself in a 1-process job, ``<stem>.rank<R>.jsonl`` for rank R."""
    return resume_dir / name if rank is None else resume_dir / f"{name.removesuffix('.jsonl')}.rank{rank}.jsonl"


def assign(weights: Sequence[float], ranks: int) -> list[list[int]]:
    """Unit indices per rank: heaviest unit first onto the least loaded rank (ties: lower unit,
    then lower rank), so each rank gets about the same work and the split depends on nothing else."""
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    loads = [(0.0, r) for r in range(ranks)]
    shares: list[list[int]] = [[] for _ in range(ranks)]
    for i in order:
        load, r = heapq.heappop(loads)
        shares[r].append(i)
        heapq.heappush(loads, (load + weights[i], r))
    return [sorted(share) for share in shares]


def item_to_json(item: Item) -> dict[str, Any]:
    return asdict(item)


def item_of(data: dict[str, Any]) -> Item:
    return Item(**data)


@dataclass
class ShardWork:
    """Everything a rank needs (``shards/work.json``): the job's context, its device and its share."""

    task: str
    kind: str
    params: dict[str, Any]
    workspace: str
    job_id: str
    job_dir: str
    out_dir: str
    resume_dir: str
    devices: list[str]  # per rank: "cpu" or "cuda:I" (I indexes the GPUs the torchrun env makes visible)
    shares: list[list[Any]]  # per rank: the units it computes, in order
    payload: dict[str, Any] = field(default_factory=dict)  # the task's own data (items, root, ...)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ShardWork:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class ShardContext(JobContext):
    """A rank's context: the job's folders, its own progress file, log lines marked with its rank."""

    rank: int = 0

    def log(self, message: str) -> None:
        super().log(f"rank {self.rank}: {message}")

    def warn(self, message: str) -> None:
        super().warn(f"rank {self.rank}: {message}")


def rank_devices(plan: GpuPlan, on_cpu: bool, inherited: str | None) -> tuple[list[str], str | None]:
    """Per-rank device strings and the ``CUDA_VISIBLE_DEVICES`` to give the shards.

    ``inherited`` (this process's ``CUDA_VISIBLE_DEVICES``) is kept when set: the local worker set it
    to the plan's GPUs (the ones it holds the locks of), and under Slurm it is the allocation, whose
    numbering need not be the plan's. Rank r runs on the visible index of its GPU, or on index
    r (modulo what is visible) when its GPU is not named there (Slurm renumbering). Unset (the
    benchmark, tests), it becomes the plan's GPUs, each once. Two ranks may share one GPU."""
    if on_cpu or plan.on_cpu:
        return ["cpu"] * plan.processes, None
    wanted = [d for d in plan.devices if d is not None]
    given = [v.strip() for v in (inherited or "").split(",") if v.strip()]
    visible = given or list(dict.fromkeys(wanted))
    devices = [f"cuda:{visible.index(d) if d in visible else r % len(visible)}" for r, d in enumerate(wanted)]
    return devices, None if given else ",".join(visible)


def _last_record(path: Path) -> dict[str, Any] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        if line.endswith("\n"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_shards(ctx: JobContext, plan: GpuPlan, task: str, shares: list[list[Any]], payload: dict[str, Any],
               done: int, total: int, unit: str = "items") -> None:
    """Run ``task`` on ``plan.processes`` ranks under torchrun, rank r computing ``shares[r]``; returns
    when all have finished. While they run, the job's progress is ``done`` plus the ranks' own.

    A stop asked of this process (``ctx.request_stop``) is passed to torchrun as SIGTERM (it stops
    the ranks) and raises ``JobCancelled``; a failed rank raises ``RuntimeError`` naming the exit code.
    """
    ctx.check_stop()
    folder = ctx.job_dir / SHARDS
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("progress-*.jsonl"):
        old.unlink()
    devices, visible = rank_devices(plan, ctx.device == "cpu", os.environ.get("CUDA_VISIBLE_DEVICES"))
    work = ShardWork(task=task, kind=ctx.kind, params=ctx.params, workspace=str(ctx.workspace.root),
                     job_id=ctx.job_id, job_dir=str(ctx.job_dir), out_dir=str(ctx.out_dir),
                     resume_dir=str(ctx.resume_dir), devices=devices, shares=shares, payload=payload)
    work_path = folder / WORK
    work.save(work_path)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // plan.processes)))
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(plan.processes),
            "--max-restarts", "0", "-m", "orienteer.jobs.model.shards", str(work_path)]
    ctx.log(f"{plan.processes} shard processes on {', '.join(devices)} (torchrun): "
            + ", ".join(f"rank {r} {len(s)}" for r, s in enumerate(shares)) + " units")
    sys.stdout.flush()
    sys.stderr.flush()
    # stdout/stderr inherited: the shards write into the job's log; same process group: a cancel reaches them
    from orienteer.jobs.procinfo import die_with_parent

    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent())
    started, last = time.time(), None
    try:
        while True:
            code = _wait(child, POLL_S)
            new = sum(int((_last_record(folder / f"progress-{r}.jsonl") or {}).get("done") or 0)
                      for r in range(plan.processes))
            if new != last:
                ctx.progress(done + new, total, unit, _note(new, total - done - new, time.time() - started, unit,
                                                            plan.processes))
                last = new
            if code is not None:
                break
            if ctx.should_stop():
                _stop(child, JobDir(ctx.job_dir).cancel_path)
                break
    finally:
        if child.poll() is None:  # this process is leaving (an error here): leave no shard behind
            _stop(child)
    ctx.check_stop()
    if child.returncode != 0:
        raise RuntimeError(f"a shard process failed (torchrun exit {child.returncode}; see the log above); "
                           "run the job again: it resumes from what the shards finished")


def _note(new: int, left: int, elapsed: float, unit: str, processes: int) -> str:
    """The job's progress note: the shards' summed rate since launch (model loading included) and an ETA."""
    if not new:
        return f"{processes} processes starting"
    rate = new / max(1e-9, elapsed)
    eta = int(left / rate)
    return f"{rate:.1f} {unit}/s over {processes} processes, ETA {eta // 60}:{eta % 60:02d}"


def _wait(child: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return child.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def _stop(child: subprocess.Popen[bytes], cancel_file: Path | None = None) -> None:
    """SIGTERM to torchrun, which passes it to the ranks (they stop between batches); SIGKILL after a grace.

    A cancel (``cancel_file`` exists) signals the whole process group, torchrun included: it is
    already stopping, and a second SIGTERM while it shuts its workers down would cut its own clean-up
    short (and add a traceback to the log), so then this only waits."""
    if cancel_file is None or not cancel_file.exists():
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str] | None = None) -> int:
    """A rank (started by torchrun): build its context from ``work.json``, set its device, run its share."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: torchrun ... -m orienteer.jobs.model.shards WORK_JSON", file=sys.stderr)
        return 2
    work = ShardWork.load(Path(args[0]))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    world = int(os.environ["WORLD_SIZE"])
    if world != len(work.shares):
        print(f"shards: torchrun started {world} processes for {len(work.shares)} shares", file=sys.stderr)
        return 2
    from orienteer.data.workspace import Workspace

    job_dir = Path(work.job_dir)
    device = work.devices[local]
    ctx = ShardContext(job_id=work.job_id, kind=work.kind, params=work.params, workspace=Workspace(work.workspace),
                       job_dir=job_dir, out_dir=Path(work.out_dir), resume_dir=Path(work.resume_dir), device=device,
                       _progress_path=job_dir / SHARDS / f"progress-{rank}.jsonl", rank=rank)

    def on_term(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop()

    signal.signal(signal.SIGTERM, on_term)
    write_json(job_dir / SHARDS / f"rank-{rank}.json", {"pid": os.getpid(), "device": device, "units": len(work.shares[rank])})
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
    module, _, function = TASKS[work.task].partition(":")
    import importlib

    run = getattr(importlib.import_module(module), function)
    if not work.shares[rank]:  # more processes than unfinished units: nothing to load a model for
        ctx.log("nothing to do")
        return 0
    try:
        run(ctx, ctx.spec, work.shares[rank], work.payload)
    except JobCancelled:
        ctx.log("stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
