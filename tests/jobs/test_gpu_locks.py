"""A multi-GPU job's locks (all of its GPUs, sorted, all or none) and how shards split their work."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.jobs.gpu_queue import GpuLock, GpuLocks, job_gpus
from orienteer.jobs.gpus import GpuPlan
from orienteer.jobs.model.shards import assign, partial_files, rank_devices, rank_file


def _holds(jobs_dir: str, gpu: str, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """In another process (flock is per open file, so it must be another process to see the lock)."""
    lock = GpuLock(Path(jobs_dir), gpu)
    free = lock.try_acquire()
    lock.release()
    answer.put(free)


def _free_elsewhere(jobs_dir: Path, gpu: str) -> bool:
    answer: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    child = multiprocessing.get_context("fork").Process(target=_holds, args=(str(jobs_dir), gpu, answer))
    child.start()
    child.join(30)
    return bool(answer.get(timeout=5))


def test_a_job_holds_every_gpu_of_its_plan_in_sorted_order(tmp_path: Path) -> None:
    locks = GpuLocks(tmp_path, ["10", "2", "2"])
    assert locks.gpus == ("2", "10")  # numeric order, each once
    assert locks.try_acquire()
    assert not _free_elsewhere(tmp_path, "2") and not _free_elsewhere(tmp_path, "10")
    locks.release()
    assert _free_elsewhere(tmp_path, "2") and _free_elsewhere(tmp_path, "10")


def test_all_or_none_when_one_gpu_is_taken(tmp_path: Path) -> None:
    other = multiprocessing.get_context("fork")
    taken, release = other.Event(), other.Event()

    def hold_gpu_1() -> None:
        lock = GpuLock(tmp_path, "1")
        lock.acquire()
        taken.set()
        release.wait(30)
        lock.release()

    child = other.Process(target=hold_gpu_1)
    child.start()
    try:
        assert taken.wait(30)
        locks = GpuLocks(tmp_path, ["0", "1"])
        assert not locks.try_acquire()
        assert _free_elsewhere(tmp_path, "0")  # GPU 0 was given back, not half-held
    finally:
        release.set()
        child.join(30)
    assert locks.try_acquire()
    locks.release()


def test_job_gpus_follow_the_gpus_plan() -> None:
    assert job_gpus(None) == () and job_gpus(None, "2") == ()  # the CPU: nothing to lock
    assert job_gpus("3") == ("3",) and job_gpus("3", "1") == ("3",)
    assert job_gpus("0", "2") == ("0", "1")
    assert job_gpus("0", "3,1") == ("1", "3")
    with pytest.raises(OrienteerError, match="--gpus 0,1 names GPUs but --gpu none"):
        job_gpus(None, "0,1")


def test_assign_balances_and_depends_on_nothing_else() -> None:
    shares = assign([5, 1, 1, 1, 1, 1, 4], 2)
    assert shares == assign([5, 1, 1, 1, 1, 1, 4], 2)
    assert sorted(i for share in shares for i in share) == list(range(7))
    loads = [sum([5, 1, 1, 1, 1, 1, 4][i] for i in share) for share in shares]
    assert abs(loads[0] - loads[1]) <= 1
    assert assign([1, 1], 3) == [[0], [1], []]  # more processes than work: some get none


def test_partial_files_are_the_one_process_file_and_each_ranks(tmp_path: Path) -> None:
    name = "predictions.partial.jsonl"
    assert rank_file(tmp_path, name, None) == tmp_path / name
    assert rank_file(tmp_path, name, 1) == tmp_path / "predictions.partial.rank1.jsonl"
    for path in (tmp_path / name, tmp_path / "predictions.partial.rank0.jsonl", tmp_path / "predictions.partial.rank1.jsonl",
                 tmp_path / "saliency.partial.rank0.jsonl"):
        path.write_text("")
    assert [p.name for p in partial_files(tmp_path, name)] == [
        name, "predictions.partial.rank0.jsonl", "predictions.partial.rank1.jsonl"]


def test_each_rank_runs_on_its_own_gpu_of_those_visible() -> None:
    two = GpuPlan(2, ("3", "1"))
    # the local worker made the plan's GPUs visible (sorted): rank 0 has GPU 3, the second visible one
    assert rank_devices(two, False, "1,3") == (["cuda:1", "cuda:0"], None)
    # Slurm's allocation, numbered its own way: the ranks take the visible GPUs in turn
    assert rank_devices(GpuPlan(2, ("0", "1")), False, "4,5") == (["cuda:0", "cuda:1"], None)
    # nothing visible set (a benchmark): the plan's GPUs, each once, two ranks on one GPU allowed
    assert rank_devices(GpuPlan(2, ("0", "0")), False, None) == (["cuda:0", "cuda:0"], "0")
    assert rank_devices(GpuPlan(2, (None, None)), True, None) == (["cpu", "cpu"], None)
    assert rank_devices(two, True, "1,3") == (["cpu", "cpu"], None)  # no CUDA after all: the CPU
