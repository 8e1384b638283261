"""The Slurm runner's parts that need no cluster: sbatch options from the settings, GPU counts, squeue's
output, how a Slurm end settles a job folder (and its grace for a shared file system), the runner option, a refused
submission leaving nothing, and a cancel that Slurm need not be asked about leaving the folder as it was."""

from __future__ import annotations

import json
import time

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.ws_config import set_setting, settings_path
from orienteer.jobs import api
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.params import parse_args
from orienteer.jobs.runner import get_runner
from orienteer.jobs.slurm import (
    END_SEEN_FILE,
    SETTLE_GRACE_S,
    SlurmInfo,
    SlurmRunner,
    _parse_squeue,
    create_exit,
    gpu_count,
    sbatch_options,
    settle,
)
from orienteer.jobs.status import job_view
from orienteer.jobs.store import create_job, list_job_dirs, spec_key, write_json


def test_gpu_count_follows_the_job_then_the_workspace():
    assert gpu_count(False, {"gpu": "0"}, None) == 0  # a kind that needs no GPU
    assert gpu_count(True, {"gpu": None}, "4") == 0  # --gpu none
    assert gpu_count(True, {"gpu": "0"}, None) == 1
    assert gpu_count(True, {"gpu": "0", "gpus": "1"}, "2") == 2  # slurm.gpus per GPU job
    assert gpu_count(True, {"gpu": "0", "gpus": "4"}, "2") == 4  # the job asks for more
    assert gpu_count(True, {"gpu": "0", "gpus": "0,3"}, None) == 2  # a list: its length (Slurm picks which)


def test_sbatch_options_come_from_the_settings(ws):
    base = sbatch_options(ws, "sleep", False, {"gpu": None})
    assert base == ["--job-name=orienteer-sleep", "--nodes=1", "--ntasks=1", "--output=log.txt", "--open-mode=append"]
    for key, value in (("slurm.partition", "gpu"), ("slurm.account", "lab"), ("slurm.time", "2:00:00"),
                       ("slurm.cpus", "8"), ("slurm.mem", "64G"), ("slurm.gpus", "2"),
                       ("slurm.extra", "--qos=high --mail-user='a b'")):
        set_setting(ws, key, value)
    options = sbatch_options(ws, "eval", True, {"gpu": "0", "gpus": "1"})
    assert options[5:] == ["--partition=gpu", "--account=lab", "--time=2:00:00", "--cpus-per-task=8", "--mem=64G",
                           "--gres=gpu:2", "--qos=high", "--mail-user=a b"]
    assert "--gres=gpu:2" not in sbatch_options(ws, "eval", True, {"gpu": None, "gpus": "1"})
    settings = settings_path(ws)  # a value stored before --output was refused: refused at submission, in one line
    settings.write_text(json.dumps(dict(json.loads(settings.read_text()), **{"slurm.extra": "--output=x.log"})))
    with pytest.raises(OrienteerError, match=r"^slurm.extra: expected sbatch options the runner does not set itself \(--output"):
        sbatch_options(ws, "eval", True, {"gpu": "0"})


def test_squeue_lines_are_parsed_by_field():
    rows = _parse_squeue("12|PENDING|BeginTime|\n13|RUNNING|None|node7\n\n14|TIMEOUT|TimeLimit|node7\n")
    assert rows["12"] == SlurmInfo("PENDING", "BeginTime", "") and rows["12"].pending
    assert rows["13"].running and rows["13"].node == "node7"
    assert rows["14"].ended and not rows["14"].running


def _slurm_job(ws, kind="sleep"):
    return create_job(ws, kind, {"steps": 1, "runner": "slurm", "gpu": None, "note": None}, ["orienteer"])


def test_a_job_slurm_stopped_settles_as_slurms_state_and_the_workers_own_end_stands(ws):
    ws.ensure()
    job = _slurm_job(ws)
    write_json(job.exit_path, {"code": 143, "cancelled": False, "ended_at": 1.0, "error": "stopped by Slurm",
                               "slurm_signal": True})
    assert settle(job, SlurmInfo("RUNNING")) is None  # still completing: nothing decided
    record = settle(job, SlurmInfo("TIMEOUT", "TimeLimit", "n1"))
    assert record == {"code": 143, "cancelled": False, "ended_at": 1.0, "error": "Slurm: TIMEOUT", "slurm_state": "TIMEOUT"}
    assert job.exit() == record  # written down: it stays known after squeue forgets the job
    done = _slurm_job(ws)
    write_json(done.exit_path, {"code": 0, "cancelled": False, "ended_at": 2.0})
    assert settle(done, SlurmInfo("COMPLETED"))["code"] == 0 and done.exit()["code"] == 0
    oom = _slurm_job(ws)  # killed without a word: settled once the grace is over
    t0 = time.time()
    assert settle(oom, SlurmInfo("OUT_OF_MEMORY"), now=t0) is None
    assert settle(oom, SlurmInfo("OUT_OF_MEMORY"), now=t0 + SETTLE_GRACE_S + 1)["error"] == "Slurm: OUT_OF_MEMORY"
    gone = _slurm_job(ws)
    assert settle(gone, SlurmInfo("CANCELLED"), now=t0) is None
    assert settle(gone, SlurmInfo("CANCELLED"), now=t0 + SETTLE_GRACE_S + 1)["cancelled"]
    views = {j.job_id: job_view(j) for j in (job, oom, gone)}
    assert views[job.job_id].status == "failed" and views[job.job_id].slurm_state == "TIMEOUT"
    assert views[oom.job_id].status == "failed" and views[gone.job_id].status == "cancelled"


def test_runner_is_a_runtime_option_outside_the_spec_key():
    kind = get_kind("sleep")
    params = parse_args("sleep", kind.params, ["--steps", "2", "--runner", "slurm"])
    assert params["runner"] == "slurm"
    assert spec_key("sleep", params) == spec_key("sleep", dict(params, runner="local"))
    with pytest.raises(OrienteerError, match="--runner expects one of local, slurm, got 'k8s'"):
        parse_args("sleep", kind.params, ["--runner", "k8s"])
    with pytest.raises(OrienteerError, match="unknown runner 'k8s'"):
        get_runner("k8s")


def test_a_submission_sbatch_refuses_leaves_no_job_folder(ws, tmp_path, monkeypatch):
    ws.ensure()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch here: what a machine without Slurm has
    with pytest.raises(OrienteerError, match="runner slurm: sbatch not found"):
        api.submit(ws, "sleep", {"steps": 1, "runner": "slurm"})
    assert list_job_dirs(ws) == []


def test_the_workspace_default_runner_is_used_and_recorded(ws):
    ws.ensure()
    set_setting(ws, "runner", "local")
    job = api.submit(ws, "sleep", {"steps": 1, "seconds": 0.01})
    assert job.spec()["params"]["runner"] == "local" and "--runner" not in job.spec()["argv"]
    for _ in range(400):
        if not job_view(job).active:
            break
        time.sleep(0.05)
    assert job_view(job).status == "done" and job_view(job).where == "cpu"


def test_a_missing_exit_record_is_settled_only_after_the_grace_and_never_over_the_workers(ws):
    ws.ensure()
    job = _slurm_job(ws)
    t0 = 1_000_000.0
    assert settle(job, SlurmInfo("COMPLETED"), now=t0) is None  # not visible yet: maybe a shared file system's lag
    assert job.exit() is None and (job.path / END_SEEN_FILE).exists()
    assert settle(job, SlurmInfo("COMPLETED"), now=t0 + SETTLE_GRACE_S - 1) is None  # counted from the first sight
    write_json(job.exit_path, {"code": 0, "cancelled": False, "ended_at": t0})  # the worker's record shows up
    assert settle(job, SlurmInfo("COMPLETED"), now=t0 + SETTLE_GRACE_S + 1)["code"] == 0
    assert job.exit()["code"] == 0 and "slurm_state" not in job.exit()

    silent = _slurm_job(ws)
    assert settle(silent, SlurmInfo("COMPLETED"), now=t0) is None
    record = settle(silent, SlurmInfo("COMPLETED"), now=t0 + SETTLE_GRACE_S)
    assert record["error"] == "Slurm: COMPLETED, but the worker left no exit record" and silent.exit() == record
    assert job_view(silent).status == "failed"
    assert sorted(p.name for p in silent.path.iterdir() if p.name.startswith(".exit")) == []  # no temporary left


def test_an_exit_record_is_created_exclusively(ws):
    ws.ensure()
    job = _slurm_job(ws)
    assert create_exit(job, {"code": 1, "error": "first"})
    assert not create_exit(job, {"code": 0, "error": "second"})  # a record there is never replaced
    assert job.exit() == {"code": 1, "error": "first"}


def test_a_refused_cancel_leaves_no_cancel_file(ws):
    ws.ensure()
    ended = _slurm_job(ws)
    write_json(ended.slurm_path, {"job_id": "12"})
    write_json(ended.exit_path, {"code": 0, "cancelled": False, "ended_at": 1.0})
    assert not SlurmRunner().cancel(ended)  # over: Slurm is not even asked
    assert not ended.cancel_path.exists() and job_view(ended).status == "done"
    unsubmitted = _slurm_job(ws)  # no Slurm id recorded
    assert not SlurmRunner().cancel(unsubmitted) and not unsubmitted.cancel_path.exists()
