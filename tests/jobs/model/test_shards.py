"""``--gpus N`` on the CPU (``--gpu none``): N shard processes under torchrun, merged into one run.

The 2-shard eval goes through the real job runtime (``api.submit``: the detached worker starts
torchrun, whose ranks score their batches); its run must equal the 1-process run item for item.
On the CPU in fp32 with the same batches the numbers come out the same (the batch plan does not
depend on the process count); probabilities are compared to 1e-6 all the same, since the shards
run with fewer threads each and a reduction order could differ in the last bit.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.jobs import api
from orienteer.jobs.status import job_view
from tests.jobs.test_runtime import wait_for, wait_status

SMALL = 28 * 28 * 16
PROB_TOLERANCE = 1e-6
JOB_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def shard_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A demo workspace of its own: these tests' jobs ingest runs into it."""
    from orienteer.demo.build import build_demo_workspace

    path = tmp_path_factory.mktemp("shards") / "ws"
    build_demo_workspace(path, n_items=24)
    return Workspace(path)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _one_process(ws: Workspace, kind: str, params: dict[str, Any], root: Path, make_ctx: Any) -> Any:
    """The same spec run in this process with ``--gpus 1`` (the reference)."""
    from orienteer.jobs.kinds import get_kind

    ctx = make_ctx(ws, kind, {**params, "gpus": "1"}, root)
    get_kind(kind).run(ctx)
    return ctx


def _assert_same_predictions(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [line["item_id"] for line in got] == [line["item_id"] for line in expected]
    for a, b in zip(got, expected):
        assert a["reply"] == b["reply"], a["item_id"]
        assert set(a.get("probs", {})) == set(b.get("probs", {}))
        for letter, p in b.get("probs", {}).items():
            assert abs(a["probs"][letter] - p) <= PROB_TOLERANCE, (a["item_id"], letter)


def _batches_in(path: Path) -> set[int]:
    return {rec["batch"] for rec in _lines(path)} if path.is_file() else set()


def _partials(resume: Path) -> dict[str, list[dict[str, Any]]]:
    return {p.name: _lines(p) for p in sorted(resume.glob("predictions.partial*.jsonl"))}


def test_two_shard_eval_job_equals_the_one_process_run(shard_ws: Workspace, tiny_model_dir: Path, tmp_path: Path,
                                                       make_ctx: Any) -> None:
    from orienteer.data.service import WorkspaceService

    params = {"model": str(tiny_model_dir), "bench": "demo", "batch_size": 2, "max_pixels": SMALL, "workers": 1,
              "items": "limit:12"}
    reference = _one_process(shard_ws, "eval", {**params, "run": "one-process"}, tmp_path / "one", make_ctx)

    job = api.submit(shard_ws, "eval", {**params, "run": "two-shards", "gpu": "none", "gpus": "2"})
    assert wait_status(job, "done", "failed", timeout=JOB_TIMEOUT_S) == "done", job.log_path.read_text()[-3000:]
    got = _lines(job.out_dir / "predictions.jsonl")
    _assert_same_predictions(got, _lines(reference.out_dir / "predictions.jsonl"))
    assert len(got) == 12

    log = job.log_path.read_text()
    assert "2 shard processes on cpu, cpu (torchrun)" in log and "rank 0: " in log and "rank 1: " in log
    work = json.loads((job.path / "shards" / "work.json").read_text())
    shares = [set(share) for share in work["shares"]]
    assert shares[0] and shares[1] and not shares[0] & shares[1] and shares[0] | shares[1] == set(range(6))
    resume = next(p for p in (shard_ws.root / "jobs" / ".resume").iterdir() if (p / "eval-plan.json").is_file()
                  and any(p.glob("predictions.partial.rank*.jsonl")))
    for rank in (0, 1):  # each rank wrote its own batches into its own file
        assert _batches_in(resume / f"predictions.partial.rank{rank}.jsonl") == shares[rank]
    progress = _lines(job.progress_path)
    assert progress[-1]["done"] == progress[-1]["total"] == 12
    assert all(a["done"] <= b["done"] for a, b in zip(progress, progress[1:]))  # one bar: the sum of the shards'
    wait_for(lambda: job_view(job).ingest, timeout=60, what="ingest")
    with WorkspaceService(shard_ws) as service:
        assert len(service.run_detail("two-shards").answers) == 12


def test_a_killed_shard_is_resumed_alone_by_a_rerun(shard_ws: Workspace, tiny_model_dir: Path, tmp_path: Path,
                                                    make_ctx: Any) -> None:
    """SIGKILL one shard process after its first batch: torchrun ends the other, the job fails, and
    a re-run of the spec computes only the batches no process finished, ending with the same run."""
    # generate mode, one item a batch: each batch takes long enough (many decode steps) to kill a shard mid-way
    params = {"model": str(tiny_model_dir), "bench": "demo", "batch_size": 1, "max_pixels": SMALL, "workers": 1,
              "items": "limit:12", "mode": "generate", "max_new_tokens": 32, "prompt": "letter", "run": "resumed"}
    reference = _one_process(shard_ws, "eval", params, tmp_path / "one", make_ctx)

    job = api.submit(shard_ws, "eval", {**params, "gpu": "none", "gpus": "2"})
    shards = job.path / "shards"
    progress = shards / "progress-1.jsonl"
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (progress.is_file() and progress.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and job.exit() is None, job.log_path.read_text()[-3000:]
        time.sleep(0.005)
    victim = json.loads((shards / "rank-1.json").read_text())
    os.kill(victim["pid"], signal.SIGKILL)
    assert wait_status(job, "failed", "done", timeout=JOB_TIMEOUT_S) == "failed"
    assert "a shard process failed" in (job.exit() or {}).get("error", "")

    resume = next(p for p in (shard_ws.root / "jobs" / ".resume").iterdir()
                  if (p / "predictions.partial.rank1.jsonl").is_file() and json.loads(
                      (p / "eval-plan.json").read_text())["batches"] == 12)
    share = set(json.loads((shards / "work.json").read_text())["shares"][1])
    killed_done = _batches_in(resume / "predictions.partial.rank1.jsonl")
    assert 1 <= len(killed_done) < len(share) == 6, "the shard was not killed mid-way"
    finished = _batches_in(resume / "predictions.partial.rank0.jsonl") | killed_done

    again = api.rerun(shard_ws, job.job_id)
    assert wait_status(again, "done", "failed", timeout=JOB_TIMEOUT_S) == "done", again.log_path.read_text()[-3000:]
    log = again.log_path.read_text()
    assert f"resuming: {len(finished)} of 12 batches ({len(finished)} items) already done" in log
    redone = [set(s) for s in json.loads((again.path / "shards" / "work.json").read_text())["shares"]]
    assert set().union(*redone) == set(range(12)) - finished  # only what no process had finished
    counts: dict[int, int] = {}
    for records in _partials(resume).values():
        for rec in records:
            counts[rec["batch"]] = counts.get(rec["batch"], 0) + 1
    assert counts == {k: 1 for k in range(12)}  # every batch scored once over both jobs
    _assert_same_predictions(_lines(again.out_dir / "predictions.jsonl"),
                             _lines(reference.out_dir / "predictions.jsonl"))


def test_two_shard_saliency_equals_one_process(shard_ws: Workspace, tiny_model_dir: Path, tmp_path: Path,
                                               make_ctx: Any) -> None:
    import numpy as np

    from orienteer.jobs.kinds import saliency as saliency_kind

    params = {"run": "qwen3b-base", "model": str(tiny_model_dir), "items": "limit:6", "target": "gold",
              "max_pixels": SMALL, "batch_size": 2, "workers": 1}
    reference = _one_process(shard_ws, "saliency", params, tmp_path / "one", make_ctx)
    ctx = make_ctx(shard_ws, "saliency", {**params, "gpus": "2"}, tmp_path / "two")
    saliency_kind.run(ctx)

    expected = _lines(reference.out_dir / "artifacts.jsonl")
    got = _lines(ctx.out_dir / "artifacts.jsonl")
    assert [(g["item_id"], g["kind"], g["path"], g["frame"]) for g in got] == \
           [(e["item_id"], e["kind"], e["path"], e["frame"]) for e in expected]
    assert len({g["item_id"] for g in got}) == 6
    for g, e in zip(got, expected):
        assert g["metrics"].keys() == e["metrics"].keys()
        for key, value in e["metrics"].items():
            assert g["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (g["item_id"], key)
        if g["kind"] == "saliency-raw":
            np.testing.assert_allclose(np.load(ctx.out_dir / g["path"]), np.load(reference.out_dir / e["path"]),
                                       rtol=1e-4, atol=1e-6)
    assert sorted(p.name for p in ctx.resume_dir.glob("saliency.partial*.jsonl")) == \
           ["saliency.partial.rank0.jsonl", "saliency.partial.rank1.jsonl"]
    assert _lines(ctx.job_dir / "progress.jsonl")[-1]["done"] == 6


@pytest.mark.parametrize(("gpu", "gpus", "message"), [
    ("none", "0,1", "--gpus 0,1 names GPUs but --gpu none runs on the CPU"),
    ("none", "0", "--gpus expects a count (2) or a list of GPU indices (0,1), got '0'"),
    ("none", "two", "--gpus expects a count (2) or a list of GPU indices (0,1), got 'two'"),
    ("0", "1,1", "names a GPU twice"),
])
def test_bad_gpus_are_refused_before_a_job_exists(shard_ws: Workspace, tiny_model_dir: Path, gpu: str, gpus: str,
                                                  message: str) -> None:
    before = set((shard_ws.root / "jobs").iterdir()) if (shard_ws.root / "jobs").is_dir() else set()
    for kind, params in (("eval", {"model": str(tiny_model_dir), "bench": "demo", "run": "refused"}),
                         ("saliency", {"run": "qwen3b-base", "model": str(tiny_model_dir)})):
        with pytest.raises(OrienteerError) as caught:
            api.submit(shard_ws, kind, {**params, "gpu": gpu, "gpus": gpus})
        assert message in str(caught.value) and "\n" not in str(caught.value)
    after = set((shard_ws.root / "jobs").iterdir()) if (shard_ws.root / "jobs").is_dir() else set()
    assert after == before


def test_a_shard_job_cancelled_while_it_runs_reads_cancelled(shard_ws: Workspace, tiny_model_dir: Path) -> None:
    """A cancel (SIGTERM to the job's group) stops torchrun and both shards; the job reads as cancelled."""
    from orienteer.jobs.procinfo import is_alive

    params = {"model": str(tiny_model_dir), "bench": "demo", "batch_size": 1, "max_pixels": SMALL, "workers": 1,
              "mode": "generate", "max_new_tokens": 48, "prompt": "letter", "run": "cancelled", "gpu": "none",
              "gpus": "2"}
    job = api.submit(shard_ws, "eval", params)
    progress = job.path / "shards" / "progress-0.jsonl"
    wait_for(lambda: progress.is_file() and progress.read_text().count("\n") >= 1, timeout=JOB_TIMEOUT_S,
             what="a first batch of rank 0")
    pids = [json.loads((job.path / "shards" / f"rank-{r}.json").read_text())["pid"] for r in (0, 1)]
    assert api.cancel(shard_ws, job.job_id)
    assert wait_status(job, "cancelled", timeout=60) == "cancelled"
    assert (job.exit() or {}).get("cancelled") is True
    wait_for(lambda: not any(is_alive(pid, None) for pid in pids), timeout=30, what="the shard processes to end")
    assert not (job.out_dir / "predictions.jsonl").exists()


def test_a_stop_asked_of_the_job_process_stops_its_shards(shard_ws: Workspace, tiny_model_dir: Path, tmp_path: Path,
                                                          make_ctx: Any) -> None:
    """The job process's own stop request (what its SIGTERM handler sets) ends torchrun and the shards
    between batches, and the kind raises JobCancelled with no run written."""
    from orienteer.jobs.context import JobCancelled
    from orienteer.jobs.kinds import eval as eval_kind
    from orienteer.jobs.procinfo import is_alive

    params = {"model": str(tiny_model_dir), "bench": "demo", "batch_size": 1, "max_pixels": SMALL, "workers": 1,
              "mode": "generate", "max_new_tokens": 64, "prompt": "letter", "run": "stopped", "gpus": "2"}
    ctx = make_ctx(shard_ws, "eval", params, tmp_path)
    original = ctx.progress

    def stop_once_a_shard_scored(done: int, total: int | None = None, unit: str = "items", note: str = "") -> None:
        original(done, total, unit, note)
        if done >= 1:
            ctx.request_stop()

    ctx.progress = stop_once_a_shard_scored  # type: ignore[method-assign]
    with pytest.raises(JobCancelled):
        eval_kind.run(ctx)
    pids = [json.loads((ctx.job_dir / "shards" / f"rank-{r}.json").read_text())["pid"] for r in (0, 1)]
    wait_for(lambda: not any(is_alive(pid, None) for pid in pids), timeout=30, what="the shard processes to end")
    assert not (ctx.out_dir / "predictions.jsonl").exists() and not ctx.outputs
    done = sum(len(_lines(p)) for p in ctx.resume_dir.glob("predictions.partial.rank*.jsonl"))
    assert 1 <= done < 24  # stopped part way; what was finished stays for a resume


def test_shards_die_with_a_killed_job_process(shard_ws: Workspace, tiny_model_dir: Path) -> None:
    """SIGKILL of the job process itself (the OOM killer, ``kill -9``): torchrun and its ranks get SIGTERM from
    the kernel (parent-death signal) and go, rather than writing on into the resume folder."""
    from orienteer.jobs.procinfo import is_alive, start_ticks

    params = {"model": str(tiny_model_dir), "bench": "demo", "batch_size": 1, "max_pixels": SMALL, "workers": 1,
              "mode": "generate", "max_new_tokens": 256, "prompt": "letter", "run": "orphans"}  # all 24 items
    job = api.submit(shard_ws, "eval", {**params, "gpu": "none", "gpus": "2"})
    shards = job.path / "shards"
    ranks = [shards / f"rank-{r}.json" for r in (0, 1)]
    wait_for(lambda: all(p.is_file() for p in ranks) and job.exit() is None, JOB_TIMEOUT_S, "both ranks to start")
    pids = [json.loads(p.read_text())["pid"] for p in ranks]
    ticks = [start_ticks(pid) for pid in pids]
    os.kill(int((job.state() or {})["pid"]), signal.SIGKILL)
    wait_for(lambda: not any(is_alive(pid, t) for pid, t in zip(pids, ticks)), 60.0, "the ranks to end")
    assert wait_status(job, "lost", timeout=30.0) == "lost"
    done = sum(_lines(p)[-1]["done"] for p in shards.glob("progress-*.jsonl") if p.read_text().strip())
    assert done < 24, "the ranks finished their work instead of being stopped"  # they went, they did not finish
