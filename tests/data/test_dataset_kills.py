"""A kill at any moment of a dataset import, replace or job ingest leaves the old or the new dataset whole.

Real processes (the ``orienteer`` CLI, a job ingest) are SIGKILLed at named pause points
(``ORIENTEER_TEST_PAUSE_AT``, ``data/faults.py``): after the new version's file is written, just
before the catalog commits, and after it committed but before the old file is deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.datasets import get_dataset, import_dataset, list_datasets, read_examples, write_examples
from orienteer.data.job_outputs import DatasetOutput, write_manifest
from orienteer.data.workspace import Workspace


def _examples(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"item_id": f"{tag}{k}", "question": f"Where is the cup {k}?", "options": {"A": "left", "B": "right"},
             "answer": "AB"[k % 2], "images": [], "target": f"{'AB'[k % 2]}. {('left', 'right')[k % 2]}",
             "origin": tag} for k in range(n)]


def _write(path: Path, examples: list[dict[str, Any]]) -> Path:
    write_examples(path, examples)
    return path


def _wait_for(path: Path, child: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            raise AssertionError(f"the child exited ({child.returncode}) before its pause point: "
                                 f"{child.stderr.read() if child.stderr else ''}")
        if time.monotonic() > end:
            child.kill()
            raise AssertionError(f"no pause point reached in {timeout} s")
        time.sleep(0.02)


def _kill_at(step: str, args: list[str], mark: Path, extra_env: dict[str, str] | None = None) -> None:
    env = dict(os.environ, ORIENTEER_TEST_PAUSE_AT=step, ORIENTEER_TEST_PAUSE_MARK=str(mark), **(extra_env or {}))
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(mark, child)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL


def _whole(ws: Workspace, name: str) -> tuple[int, str]:
    """(examples, origin tag) of the dataset as the catalog describes it; the file must agree with the row."""
    info = get_dataset(ws, name)
    examples = read_examples(info.path)
    assert len(examples) == info.n_examples, f"catalog says {info.n_examples}, the file holds {len(examples)}"
    assert len({e["origin"] for e in examples}) == 1
    return info.n_examples, examples[0]["origin"]


@pytest.mark.parametrize("step, survivor", [
    ("dataset-file-written", (2, "old")),
    ("dataset-before-commit", (2, "old")),
    ("dataset-committed", (5, "new")),
])
def test_replace_killed_at_each_step_leaves_one_whole_version(tmp_path: Path, ws: Workspace, step: str,
                                                               survivor: tuple[int, str]) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    write_examples(old, _examples(2, "old"))
    write_examples(new, _examples(5, "new"))
    import_dataset(ws, old, "d")
    args = [sys.executable, "-m", "orienteer", "-w", str(ws.root), "dataset", "import", str(new), "--name", "d",
            "--replace"]
    _kill_at(step, args, tmp_path / "paused")

    fresh = Workspace(ws.root)  # another process, later
    assert _whole(fresh, "d") == survivor
    files = sorted(p.name for p in (ws.root / "datasets").iterdir())
    assert len(files) == 2  # the surviving version and the orphan the kill left (or, at step 1, a temp file)
    fresh.ensure()  # the next process that opens the workspace for writing sweeps the orphan
    assert [p.name for p in (ws.root / "datasets").iterdir()] == [get_dataset(fresh, "d").path.name]
    assert _whole(fresh, "d") == survivor

    # and the workspace carries on: a later replace works and leaves one file
    import_dataset(fresh, new if survivor[1] == "old" else old, "d", replace=True)
    assert _whole(fresh, "d") == ((5, "new") if survivor[1] == "old" else (2, "old"))
    assert len(list((ws.root / "datasets").iterdir())) == 1


def test_first_import_killed_before_commit_leaves_no_dataset(tmp_path: Path, ws: Workspace) -> None:
    ws.ensure()
    src = _write(tmp_path / "a.jsonl", _examples(3, "a"))
    args = [sys.executable, "-m", "orienteer", "-w", str(ws.root), "dataset", "import", str(src), "--name", "a"]
    _kill_at("dataset-before-commit", args, tmp_path / "paused")
    fresh = Workspace(ws.root)
    assert list_datasets(fresh) == []
    fresh.ensure()
    assert list((ws.root / "datasets").iterdir()) == []
    assert import_dataset(fresh, src, "a").n_examples == 3  # the name is free again


def test_concat_killed_after_commit_keeps_the_new_dataset(tmp_path: Path, ws: Workspace) -> None:
    for tag, n in (("a", 2), ("b", 3)):
        import_dataset(ws, _write(tmp_path / f"{tag}.jsonl", _examples(n, tag)), tag)
    import_dataset(ws, tmp_path / "a.jsonl", "ab")  # the version the concat replaces
    args = [sys.executable, "-m", "orienteer", "-w", str(ws.root), "dataset", "concat", "a", "b", "--name", "ab",
            "--replace"]
    _kill_at("dataset-committed", args, tmp_path / "paused")
    info = get_dataset(Workspace(ws.root), "ab")
    assert info.n_examples == 5 and len(read_examples(info.path)) == 5


def test_job_ingest_killed_mid_transaction_leaves_no_dataset_and_ingests_later(tmp_path: Path, ws: Workspace) -> None:
    ws.ensure()
    out = tmp_path / "job-1" / "outputs"
    out.mkdir(parents=True)
    write_examples(out / "hard.jsonl", _examples(4, "job"))
    write_manifest(out, [DatasetOutput(name="hard", file="hard.jsonl", composition={"k": 1})])
    code = ("import sys; from pathlib import Path; from orienteer.data.workspace import Workspace;"
            "from orienteer.data.job_ingest import ingest_job;"
            "ingest_job(Workspace(sys.argv[1]), 'job-1', 'hard-negatives', Path(sys.argv[2]))")
    env = dict(os.environ, ORIENTEER_FAULT_INGEST_PAUSE="60")
    child = subprocess.Popen([sys.executable, "-c", code, str(ws.root), str(out)], env=env, stderr=subprocess.PIPE,
                             text=True)
    _wait_for(out.parent / "ingest-paused", child)
    assert len(list((ws.root / "datasets").iterdir())) == 1  # the dataset file is written inside the transaction
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    fresh = Workspace(ws.root)
    assert list_datasets(fresh) == []
    from orienteer.data.job_ingest import ingest_job

    result = ingest_job(fresh, "job-1", "hard-negatives", out)  # opens for writing: sweeps the orphan first
    assert result.ingested
    assert _whole(fresh, "hard") == (4, "job")
    assert [p.name for p in (ws.root / "datasets").iterdir()] == [get_dataset(fresh, "hard").path.name]


def test_the_sweep_keeps_files_the_catalog_names_and_foreign_files(tmp_path: Path, ws: Workspace) -> None:
    src = _write(tmp_path / "a.jsonl", _examples(2, "a"))
    import_dataset(ws, src, "a")
    import_dataset(ws, src, "a", replace=True)  # second version: a~HEX.jsonl
    folder = ws.root / "datasets"
    (folder / "b.jsonl").write_text("{}\n")  # an orphan version
    (folder / ".a.jsonl.0123456789ab.tmp").write_text("half")  # a killed writer's temp file
    (folder / "README.txt").write_text("mine")  # not a name Orienteer writes: left alone
    named = get_dataset(ws, "a").path.name
    assert "~" in named
    Workspace(ws.root).ensure()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["README.txt", named])
    assert [e["item_id"] for e in read_examples(get_dataset(ws, "a").path)] == ["a0", "a1"]
