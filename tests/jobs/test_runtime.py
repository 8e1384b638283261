"""The job runtime end to end: detached processes, states, cancel, loss, queueing, exactly-once ingest."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.jobs import api
from orienteer.jobs.procinfo import is_alive
from orienteer.jobs.reconcile import ingest_finished, reconcile
from orienteer.jobs.status import job_view
from orienteer.jobs.store import JobDir, find_job
from tests.conftest import snapshot

ORIENTEER = [sys.executable, "-c", "from orienteer.tui.cli.main import main; main()"]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(job: JobDir, *statuses: str, timeout: float = 30.0) -> str:
    return wait_for(lambda: job_view(job).status if job_view(job).status in statuses else None, timeout,
                    f"job {job.job_id} to reach {statuses} (now {job_view(job).status})")


def cli(ws: Workspace, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORIENTEER, "-w", str(ws.root), *args], capture_output=True, text=True, timeout=timeout)


def test_job_runs_detached_and_reports_progress(ws_with_bench: Workspace) -> None:
    job = api.submit(ws_with_bench, "sleep", {"steps": 4, "seconds": 0.05})
    assert wait_status(job, "done") == "done"
    view = job_view(job)
    assert view.progress.done == 4 and view.progress.total == 4 and view.progress.rate
    assert view.exit_code == 0
    assert "step 4/4" in job.log_path.read_text()
    spec = job.spec()
    assert spec["argv"][:3] == ["orienteer", "--workspace", str(ws_with_bench.root)]
    assert spec["argv"][3:6] == ["job", "run", "sleep"]


def test_failed_job_keeps_exit_code_and_last_error(ws_with_bench: Workspace) -> None:
    job = api.submit(ws_with_bench, "sleep", {"steps": 5, "seconds": 0.01, "fail_at": 2})
    wait_status(job, "failed")
    view = job_view(job)
    assert view.exit_code == 1
    assert view.error == "RuntimeError: asked to fail at step 2"
    assert "Traceback" in job.log_path.read_text()


def test_cancel_stops_the_process_group(ws_with_bench: Workspace) -> None:
    job = api.submit(ws_with_bench, "sleep", {"steps": 1000, "seconds": 0.05})
    wait_status(job, "running")
    assert api.cancel(ws_with_bench, job.job_id)
    assert job_view(job).status == "cancelled"
    pid = job.state()["pid"]
    assert not is_alive(pid, job.state()["ticks"])


def test_sigkilled_job_is_lost_writes_nothing_and_reruns(ws_with_bench: Workspace) -> None:
    before = snapshot(ws_with_bench)
    job = api.submit(ws_with_bench, "sleep", {"steps": 200, "seconds": 0.05, "emit_run": "always-a", "bench": "vs"})
    wait_status(job, "running")
    wait_for(lambda: job_view(job).progress.done >= 2, what="some progress")
    os.killpg(job.state()["pid"], signal.SIGKILL)
    assert wait_status(job, "lost") == "lost"
    reconcile(ws_with_bench)
    assert snapshot(ws_with_bench) == before
    again = api.rerun(ws_with_bench, job.job_id)
    # The re-run has the same spec; make it short by cancelling and running a quick one of the same kind.
    assert again.spec()["params"] == job.spec()["params"]
    api.cancel(ws_with_bench, again.job_id)
    quick = api.submit(ws_with_bench, "sleep", {"steps": 1, "seconds": 0.01, "emit_run": "always-a", "bench": "vs"})
    wait_status(quick, "done")
    wait_for(lambda: job_view(quick).ingest, what="ingest")
    with ws_with_bench.read() as con:
        assert con.execute("SELECT count(*) FROM runs WHERE name = 'always-a'").fetchone()[0] == 1


def test_spec_values_never_reach_a_shell(ws_with_bench: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    nasty = f"x'; touch {marker}; echo '$(touch {marker})`touch {marker}`"
    refused = cli(ws_with_bench, "job", "run", "sleep", "--steps", "1", "--seconds", "0", "--emit-run", nasty,
                  "--bench", "vs", "--wait")
    assert refused.returncode != 0 and "--emit-run: run name" in refused.stderr and "is not usable" in refused.stderr
    assert not (ws_with_bench.root / "jobs").exists() or not any((ws_with_bench.root / "jobs").iterdir())
    result = cli(ws_with_bench, "job", "run", "sleep", "--steps", "1", "--seconds", "0", "--note", nasty,
                 "--emit-run", "emitted", "--bench", "vs", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists()
    with ws_with_bench.read() as con:
        assert con.execute("SELECT name FROM runs").fetchall() == [("emitted",)]


def test_gpu_jobs_queue_per_gpu_and_cpu_jobs_run_at_once(ws_with_bench: Workspace) -> None:
    first = api.submit(ws_with_bench, "sleep", {"steps": 30, "seconds": 0.05, "gpu": "7"})
    wait_status(first, "running")
    second = api.submit(ws_with_bench, "sleep", {"steps": 1, "seconds": 0.01, "gpu": "7"})
    other_gpu = api.submit(ws_with_bench, "sleep", {"steps": 2, "seconds": 0.01, "gpu": "8"})
    cpu = api.submit(ws_with_bench, "sleep", {"steps": 3, "seconds": 0.01})
    assert wait_status(second, "queued") == "queued"
    wait_status(cpu, "done")
    wait_status(other_gpu, "done")
    assert job_view(first).status == "running"
    wait_status(first, "done")
    wait_status(second, "done")
    assert job_view(second).started_at is not None
    first_end = job_view(first).ended_at
    second_log = second.log_path.read_text()
    assert "queued: waiting for GPU 7" in second_log
    assert json.loads(second.progress_path.read_text().splitlines()[0])["t"] >= first_end - 0.01


def _ingest_in_child(root: str, job_path: str, queue: Any) -> None:
    ws = Workspace(root)
    queue.put(ingest_finished(ws, JobDir(Path(job_path))))


def _finished_job_with_run(ws: Workspace, run: str) -> JobDir:
    """A finished job whose outputs are not ingested yet (its own ingest is skipped)."""
    job = api.submit(ws, "sleep", {"steps": 1, "seconds": 0.0, "emit_run": run, "bench": "vs"})
    wait_status(job, "done")
    wait_for(lambda: job_view(job).ingest, what="ingest")
    # Undo the ingest so the test can race two processes over the same finished job.
    with ws.write() as con:
        con.execute("DELETE FROM job_ingests WHERE job_id = ?", [job.job_id])
        run_id = con.execute("SELECT run_id FROM runs WHERE name = ?", [run]).fetchone()[0]
        for table in ("predictions", "run_task_stats", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    job.ingest_path.unlink()
    return job


def test_two_processes_noticing_at_once_ingest_once(ws_with_bench: Workspace) -> None:
    job = _finished_job_with_run(ws_with_bench, "raced")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ingest_in_child, args=(str(ws_with_bench.root), str(job.path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(1 for r in results if r and r.startswith("run raced")) == 1, results
    with ws_with_bench.read() as con:
        assert con.execute("SELECT count(*) FROM runs WHERE name = 'raced'").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM job_ingests WHERE job_id = ?", [job.job_id]).fetchone()[0] == 1


def test_sigkill_during_ingest_leaves_workspace_unchanged(ws_with_bench: Workspace) -> None:
    job = _finished_job_with_run(ws_with_bench, "killed-mid-write")
    before = snapshot(ws_with_bench)
    code = (
        "import sys; from pathlib import Path; from orienteer.data.workspace import Workspace;"
        "from orienteer.jobs.reconcile import ingest_finished; from orienteer.jobs.store import JobDir;"
        "ingest_finished(Workspace(sys.argv[1]), JobDir(Path(sys.argv[2])))"
    )
    env = dict(os.environ, ORIENTEER_FAULT_INGEST_PAUSE="60")
    child = subprocess.Popen([sys.executable, "-c", code, str(ws_with_bench.root), str(job.path)], env=env)
    wait_for(lambda: (job.path / "ingest-paused").exists(), timeout=60, what="the ingest to pause mid-transaction")
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert snapshot(ws_with_bench) == before
    assert not job.ingest_path.exists()
    assert ingest_finished(ws_with_bench, job).startswith("run killed-mid-write")
    with ws_with_bench.read() as con:
        assert con.execute("SELECT count(*) FROM runs WHERE name = 'killed-mid-write'").fetchone()[0] == 1


def test_readers_and_a_cli_import_while_a_job_finishes(ws_with_bench: Workspace, tmp_path: Path) -> None:
    """Two app-like readers poll while a job ingests and a CLI import writes: no lock error, one run each."""
    from orienteer.data.queries.report import list_runs
    from tests.conftest import make_viewspatial_items, random_replies, write_official_csv

    csv_path = write_official_csv(tmp_path / "r.csv", make_viewspatial_items(), random_replies(make_viewspatial_items()))
    stop = time.monotonic() + 6
    readers = [
        subprocess.Popen([sys.executable, "-c", (
            "import sys, time; from orienteer.data.workspace import Workspace; from orienteer.data.queries.report import list_runs;"
            "from orienteer.jobs.reconcile import reconcile; ws = Workspace(sys.argv[1]); end = time.monotonic() + 6\n"
            "while time.monotonic() < end:\n    with ws.read() as con: list_runs(con)\n    reconcile(ws); time.sleep(0.02)\n"
        ), str(ws_with_bench.root)], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    job = api.submit(ws_with_bench, "sleep", {"steps": 3, "seconds": 0.2, "emit_run": "from-job", "bench": "vs"})
    result = cli(ws_with_bench, "import", "preds", str(csv_path), "--bench", "vs", "--run", "from-cli")
    assert result.returncode == 0, result.stderr
    wait_status(job, "done")
    wait_for(lambda: job_view(job).ingest, what="ingest")
    for r in readers:
        _, errors = r.communicate(timeout=60)
        assert r.returncode == 0, errors
    assert time.monotonic() >= stop - 6
    with ws_with_bench.read() as con:
        names = sorted(r.run for r in list_runs(con))
    assert names == ["from-cli", "from-job"]
    with ws_with_bench.read() as con:
        assert con.execute("SELECT count(*) FROM job_ingests").fetchone()[0] == 1


def test_cli_job_commands(ws_with_bench: Workspace) -> None:
    result = cli(ws_with_bench, "job", "run", "sleep", "--steps", "2", "--seconds", "0.01", "--wait")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[2]
    listed = json.loads(cli(ws_with_bench, "job", "list", "--json").stdout)
    assert listed[0]["job_id"] == job_id and listed[0]["status"] == "done" and listed[0]["total"] == 2
    logs = cli(ws_with_bench, "job", "logs", job_id[-4:])
    assert "step 2/2" in logs.stdout
    bad = cli(ws_with_bench, "job", "run", "sleep", "--stepz", "2")
    assert bad.returncode == 2 and "unknown option --stepz" in bad.stderr
    typo = cli(ws_with_bench, "job", "run", "sleep", "--steps", "two")
    assert typo.returncode == 2 and "--steps expects a whole number" in typo.stderr
    kinds = json.loads(cli(ws_with_bench, "job", "kinds", "--json").stdout)
    assert {k["kind"] for k in kinds} >= {"flip", "eval", "saliency", "train", "box-prompt", "cot", "replay"}
    usage = cli(ws_with_bench, "job", "run", "sleep", "--help")  # a kind's options; nothing starts
    assert usage.returncode == 0 and "--steps" in usage.stdout and "--seconds" in usage.stdout
    assert len(json.loads(cli(ws_with_bench, "job", "list", "--json").stdout)) == len(listed)
    unknown = cli(ws_with_bench, "job", "run", "nope", "-h")
    assert unknown.returncode == 2 and "unknown job kind 'nope'" in unknown.stderr and not unknown.stdout


def test_a_second_live_job_with_the_same_spec_is_refused(ws_with_bench: Workspace) -> None:
    """Re-runs of one spec share a resume folder, so two of them must not run at once."""
    first = api.submit(ws_with_bench, "sleep", {"steps": 500, "seconds": 0.05})
    with pytest.raises(OrienteerError, match="with the same spec is still"):
        api.submit(ws_with_bench, "sleep", {"steps": 500, "seconds": 0.05, "gpu": "3"})
    api.cancel(ws_with_bench, first.job_id)
    again = api.rerun(ws_with_bench, first.job_id)
    wait_status(again, "running")
    api.cancel(ws_with_bench, again.job_id)


def test_taken_output_names_are_refused_before_any_work(ws_with_bench: Workspace) -> None:
    job = api.submit(ws_with_bench, "sleep", {"steps": 1, "seconds": 0, "emit_run": "taken", "bench": "vs"})
    wait_status(job, "done")
    wait_for(lambda: job_view(job).ingest, what="ingest")
    with pytest.raises(OrienteerError, match="a run named 'taken' already exists; choose another --emit-run"):
        api.submit(ws_with_bench, "sleep", {"steps": 2, "emit_run": "taken", "bench": "vs"})


def test_unknown_kind_and_missing_required_are_clear(ws_with_bench: Workspace) -> None:
    with pytest.raises(OrienteerError, match="unknown job kind 'bogus'"):
        api.submit(ws_with_bench, "bogus", {})
    with pytest.raises(OrienteerError, match="ambiguous|no job"):
        find_job(ws_with_bench, "nope")


def test_outputs_inputs_and_paths_are_checked_before_a_job_exists(ws_with_bench: Workspace, tmp_path: Path) -> None:
    """Issue 14, item 7: each of these used to start a job that failed later (or at ingest)."""
    jobs = ws_with_bench.root / "jobs"

    def count() -> int:
        return len([p for p in jobs.iterdir() if not p.name.startswith(".")]) if jobs.exists() else 0

    before = count()
    live = api.submit(ws_with_bench, "sleep", {"steps": 400, "seconds": 0.05, "emit_run": "mine", "bench": "vs"})
    with pytest.raises(OrienteerError, match=rf"job {live.job_id} \(\w+\) will make the run 'mine'; choose another --emit-run"):
        api.submit(ws_with_bench, "sleep", {"steps": 1, "seconds": 0, "emit_run": "mine", "bench": "vs", "note": "x"})
    api.cancel(ws_with_bench, live.job_id)
    cases = [
        ("flip", {"bench": "vs", "name": "../../x"}, r"--name: benchmark name '\.\./\.\./x' is not usable"),
        ("hard-negatives", {"run": "nope", "name": "ok"}, r"--run: no run named 'nope' in this workspace"),
        ("hard-negatives", {"run": "nope", "name": "a\nb"}, r"--name: dataset name 'a\\nb' is not usable"),
        ("cot", {"teacher": "/nonexistent", "name": "c", "bench": "vs"},
         r"--teacher: model /nonexistent: no such folder, and not a hub id"),
        ("train", {"model": "Qwen/Qwen2.5-VL-3B-Instruct", "dataset": "none-such"}, r"--dataset: no dataset named"),
        ("box-prompt", {"bench": "vs", "name": "boxed", "weights": str(tmp_path / "missing.pt")},
         r"--weights: '.*missing\.pt': no such file or folder"),
        ("eval", {"model": "Qwen/Qwen2.5-VL-3B-Instruct", "bench": "vs", "run": "x" * 129}, r"run name 'x{60}'\.\.\. \(129 characters\)"),
    ]
    for kind, values, message in cases:
        with pytest.raises(OrienteerError, match=message):
            api.submit(ws_with_bench, kind, values)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OrienteerError, match="--weights: '.*loop': a symlink loop"):
        api.submit(ws_with_bench, "box-prompt", {"bench": "vs", "name": "boxed", "weights": str(loop)})
    assert count() == before + 1  # only the live job was ever created


def test_a_cpu_job_of_a_gpu_kind_is_rerun_on_the_cpu(ws_with_bench: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--gpu none`` is recorded as None; a rerun must not read that as "the default GPU"."""
    from orienteer.jobs.kinds import KINDS
    from orienteer.jobs.store import write_json

    monkeypatch.setitem(KINDS, "gpu-sleep", "tests.jobs.gpu_sleep_kind")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")

    def ended(job: JobDir) -> JobDir:
        # the job process knows no planted kind and dies at once; record an end so the same spec may run again
        write_json(job.exit_path, {"code": 1, "cancelled": False, "ended_at": time.time(), "error": "test"})
        return job

    first = ended(api.submit(ws_with_bench, "gpu-sleep", {"steps": 1, "seconds": 0.01, "gpu": "none"}))
    assert first.spec()["params"]["gpu"] is None
    again = ended(api.rerun(ws_with_bench, first.job_id))
    assert again.spec()["params"]["gpu"] is None
    assert again.spec()["argv"][again.spec()["argv"].index("--gpu") + 1] == "none"
    on_gpu = ended(api.submit(ws_with_bench, "gpu-sleep", {"steps": 2, "seconds": 0.01}))
    assert on_gpu.spec()["params"]["gpu"] == "3"
    assert api.rerun(ws_with_bench, on_gpu.job_id).spec()["params"]["gpu"] == "3"


def test_options_that_change_how_not_what_keep_the_resume_folder() -> None:
    """More requests in flight, more tries, another key variable or more threads resume the same work; a change
    of what is made (the mode, the process count) starts a spec of its own."""
    from orienteer.jobs.store import spec_key

    base = {"model": "m", "bench": "b", "run": "r", "mode": "score", "concurrency": 16, "retries": 5,
            "api_key_env": "OPENAI_API_KEY", "workers": 0, "gpus": "1", "gpu": "0", "runner": "local", "note": None}
    same = {**base, "concurrency": 64, "retries": 9, "api_key_env": "MY_KEY", "workers": 4, "gpu": "3",
            "runner": "slurm", "note": "again"}
    assert spec_key("eval", base) == spec_key("eval", same)
    assert spec_key("eval", base) != spec_key("eval", {**base, "mode": "generate"})
    assert spec_key("eval", base) != spec_key("eval", {**base, "gpus": "2"})
