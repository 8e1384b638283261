"""LoRA adapters through an engine the job starts: train's closing eval with ``--eval-engine openai
--eval-serve vllm`` and ``eval --adapter A --serve vllm`` merge the adapter into its base (peft
``merge_and_unload``) into the resume folder and serve that folder. The engine is the fake ``vllm``
of ``test_serve_engine.py`` (vLLM's command line, run as ``transformers serve`` on the CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.jobs.engines.test_serve_engine import FAKE_VLLM

pytestmark = [pytest.mark.ml, pytest.mark.slow]

CLI = [sys.executable, "-m", "orienteer"]
PIXELS = str(28 * 28 * 16)
EVAL = ("--eval-bench", "demo", "--eval-items", "limit:3", "--eval-mode", "generate", "--eval-prompt", "letter",
        "--eval-max-new-tokens", "4")
LABELS = ("left", "right", "front", "back")


def _cli(ws: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200",
           "FAKE_ENGINE_RECORD": str(ws.parent / "engine.jsonl")}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([*CLI, "-w", str(ws), *args], capture_output=True, text=True, timeout=timeout, env=env)


def _job_folder(ws: Path, result: subprocess.CompletedProcess[str]) -> Path:
    found = re.search(r"started job (\S+)", result.stdout)
    assert found, result.stdout + result.stderr
    return next((ws / "jobs").glob(f"{found.group(1)}*"))


def _predictions(job: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job / "outputs" / "predictions.jsonl").read_text().splitlines()]


def _settings(ws: Path, run: str) -> dict[str, Any]:
    from orienteer.data.service import WorkspaceService
    from orienteer.data.workspace import Workspace

    return dict(WorkspaceService(Workspace(ws)).run_detail(run).config.settings)


def _write_dataset(root: Path) -> Path:
    """Six training examples on coloured frames of their own (no item or image shared with the demo bench)."""
    lines = []
    for i in range(6):
        image = root / f"train{i}.png"
        Image.new("RGB", (64, 64), (40 * i, 255 - 30 * i, 90)).save(image)
        letter = "ABCD"[i % 4]
        lines.append(json.dumps({
            "item_id": f"train-ex{i}", "task": "Person perspective - Relative Direction",
            "question": f"From the perspective of the man {i}, where is the cup?", "options": dict(zip("ABCD", LABELS)),
            "answer": letter, "images": [str(image)], "target": f"{letter}. {LABELS['ABCD'.index(letter)]}",
            "origin": "original"}))
    path = root / "mini.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orienteer.data.datasets import import_dataset
    from orienteer.data.workspace import Workspace
    from orienteer.demo.build import build_demo_workspace

    folder = tmp_path_factory.mktemp("serve-adapter")
    path = folder / "ws"
    build_demo_workspace(path, n_items=8)
    (folder / "data").mkdir()
    import_dataset(Workspace(path), _write_dataset(folder / "data"), "mini")
    script = folder / "bin" / "vllm"
    script.parent.mkdir()
    script.write_text(FAKE_VLLM.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    setting = _cli(path, "config", "set", "engines.vllm", str(script))
    assert setting.returncode == 0, setting.stdout + setting.stderr
    return path


@pytest.fixture(scope="module")
def trained(ws: Path, served_tiny: Path) -> Path:
    """A LoRA train job (two steps) whose closing eval runs through the served engine; its job folder. (At lr
    1e-3 the tiny model still writes text after training; at 1e-2 it learns to stop at once: empty replies.)"""
    result = _cli(ws, "job", "run", "train", "--model", str(served_tiny), "--dataset", "mini", "--name", "tiny-lora",
                  "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--lr", "1e-3", "--save-every", "1",
                  "--max-pixels", PIXELS, *EVAL, "--eval-run", "lora-served", "--eval-engine", "openai",
                  "--eval-serve", "vllm", "--gpu", "none", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    return _job_folder(ws, result)


def test_train_closing_eval_serves_the_merged_adapter(ws: Path, trained: Path, served_tiny: Path) -> None:
    adapter = (trained / "outputs" / "model").resolve()
    assert (adapter / "adapter_config.json").is_file()  # the job's result is the adapter itself
    settings = _settings(ws, "lora-served")
    assert settings["engine"] == "openai" and settings["served_by"] == "vllm"
    assert settings["adapter"] == str(adapter) and settings["merged_for_serving"] is True
    assert settings["trained_on"] == "mini"
    merged = Path(settings["merged_model"])
    assert merged.parent.name == "eval" and merged.name.startswith("merged-")  # in the train job's resume folder
    assert (merged / "config.json").is_file() and (merged / "orienteer-merge.json").is_file()
    assert not (merged / "adapter_config.json").exists()  # a plain model folder: what an engine loads
    assert settings["server_model"] == str(merged) == settings["api_model"]
    argv = json.loads((ws.parent / "engine.jsonl").read_text().splitlines()[0])["argv"]
    assert argv[:2] == ["serve", str(merged)]
    log = (trained / "log.txt").read_text()
    assert "merging adapter" in log and "vllm healthy after" in log and "vllm stopped" in log
    replies = _predictions(trained)
    assert [p["item_id"] for p in replies] and all(isinstance(p["reply"], str) for p in replies)


def test_the_merged_folder_holds_the_weights_the_in_process_path_merges(ws: Path, trained: Path) -> None:
    from orienteer.jobs.model.loading import load_model

    merged = load_model(_settings(ws, "lora-served")["merged_model"], device="cpu", vision_attention="reference")
    on_load = load_model(str(trained / "outputs" / "model"), device="cpu", vision_attention="reference")
    assert merged.adapter is None and on_load.adapter is not None and merged.random_weights
    mine, theirs = merged.model.state_dict(), on_load.model.state_dict()
    assert mine.keys() == theirs.keys() and all(mine[k].dtype == theirs[k].dtype for k in mine)
    assert all(bool((mine[k] == theirs[k]).all()) for k in mine)
    base = load_model(on_load.base, device="cpu", vision_attention="reference").model.state_dict()
    assert base.keys() == mine.keys() and any(not bool((mine[k] == base[k]).all()) for k in mine)  # the adapter is in


def test_the_served_merge_answers_as_the_in_process_model(ws: Path, trained: Path) -> None:
    """transformers serve decodes greedily at temperature 0 (``do_sample`` off), in the checkpoint's dtype
    (float32, as the in-process path on the CPU): the served run's replies are the in-process ones, both
    for the merged folder and for the adapter merged on load; and not the base model's (the adapter counts)."""
    settings = _settings(ws, "lora-served")
    served = {p["item_id"]: p for p in _predictions(trained)}
    assert len(served) == 3 and all(p["reply"] for p in served.values())  # text, not empty replies that match anything
    replies = {}
    for model, run in ((settings["merged_model"], "merged-hf"), (str(trained / "outputs" / "model"), "adapter-hf"),
                       (json.loads((trained / "outputs" / "model" / "adapter_config.json").read_text())
                        ["base_model_name_or_path"], "base-hf")):
        result = _cli(ws, "job", "run", "eval", "--model", model, "--bench", "demo", "--run", run, "--items", "limit:3",
                      "--mode", "generate", "--prompt", "letter", "--max-new-tokens", "4", "--max-pixels", PIXELS,
                      "--allow-overlap", "--gpu", "none", "--wait")
        assert result.returncode == 0, result.stdout + result.stderr
        replies[run] = {p["item_id"]: p for p in _predictions(_job_folder(ws, result))}
    assert replies["merged-hf"] == served and replies["adapter-hf"] == served
    assert [p["reply"] for p in replies["base-hf"].values()] != [p["reply"] for p in served.values()]


def _served_eval(ws: Path, base: Path, adapter: Path, run: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli(ws, "job", "run", "eval", "--engine", "openai", "--serve", "vllm", "--model", str(base), "--adapter",
                str(adapter), "--bench", "demo", "--run", run, "--items", "limit:2", "--mode", "generate", "--prompt",
                "letter", "--max-new-tokens", "4", "--max-pixels", PIXELS, "--allow-overlap", "--gpu", "none", *extra,
                "--wait")


def test_eval_adapter_through_serve(ws: Path, trained: Path, served_tiny: Path) -> None:
    adapter = trained / "outputs" / "model"
    result = _served_eval(ws, served_tiny, adapter, "adapter-served")
    assert result.returncode == 0, result.stdout + result.stderr
    settings = _settings(ws, "adapter-served")
    assert settings["engine"] == "openai" and settings["served_by"] == "vllm"
    assert settings["adapter"] == str(adapter.resolve()) and settings["merged_for_serving"] is True
    merged = Path(settings["merged_model"])
    assert merged.is_dir() and settings["server_model"] == str(merged)
    assert "merging adapter" in (_job_folder(ws, result) / "log.txt").read_text()
    assert [p["item_id"] for p in _predictions(_job_folder(ws, result))] == [p["item_id"] for p in _predictions(trained)][:2]


def test_a_rerun_reuses_the_merge_and_drops_a_half_saved_one(ws: Path, trained: Path, served_tiny: Path) -> None:
    """The fake engine refuses a served name other than the model's path: the job fails after merging."""
    first = _served_eval(ws, served_tiny, trained / "outputs" / "model", "never", "--api-model", "other-name")
    assert first.returncode != 0 and "the engine exited with code 1 while starting" in first.stdout + first.stderr
    log = (_job_folder(ws, first) / "log.txt").read_text()
    assert "merging adapter" in log
    [merged] = [Path(m) for m in re.findall(r"merged model saved: (\S+)", log)]
    stamp = (merged / "orienteer-merge.json").stat().st_mtime_ns
    leftover = merged.parent / ".merged-0123456789abcdef.partial"  # what a save killed half-way leaves
    leftover.mkdir()
    (leftover / "config.json").write_text("{}", encoding="utf-8")
    again = _cli(ws, "job", "rerun", _job_folder(ws, first).name, "--wait")
    assert again.returncode != 0
    log = (_job_folder(ws, again) / "log.txt").read_text()
    assert "already merged" in log and "merging adapter" not in log
    assert not leftover.exists() and (merged / "orienteer-merge.json").stat().st_mtime_ns == stamp


def test_refusals_are_one_line_and_create_no_job(ws: Path, trained: Path, served_tiny: Path) -> None:
    before = sorted(p.name for p in (ws / "jobs").iterdir())
    train = ("job", "run", "train", "--model", str(served_tiny), "--dataset", "mini", "--max-steps", "1", *EVAL,
             "--gpu", "none")
    cases = [
        ((*train, "--eval-engine", "openai"), "--eval-engine openai needs --eval-serve vllm|sglang: the model is trained "
                                              "by this job, so no running server (--endpoint) can already serve it"),
        ((*train, "--eval-serve", "vllm"), "--eval-serve is an option of --eval-engine openai"),
        ((*train, "--eval-engine", "openai", "--eval-serve", "sglang"), "--serve sglang: no engine configured"),
        (("job", "run", "eval", "--engine", "openai", "--endpoint", "http://127.0.0.1:9/v1", "--model", str(served_tiny),
          "--adapter", str(trained / "outputs" / "model"), "--bench", "demo", "--run", "x", "--gpu", "none"),
         "--adapter with --endpoint: the server applies adapters itself"),
    ]
    for args, message in cases:
        result = _cli(ws, *args)
        out = result.stdout + result.stderr
        assert result.returncode != 0 and message in out, out
        assert len([line for line in out.splitlines() if line.strip()]) == 1, out
    assert sorted(p.name for p in (ws / "jobs").iterdir()) == before


def test_cot_serves_a_lora_teacher_merged_into_its_base(ws: Path, trained: Path, served_tiny: Path) -> None:
    """``cot --serve`` with a LoRA adapter folder as ``--teacher`` asks the engine serving the merged model."""
    adapter = (trained / "outputs" / "model").resolve()
    result = _cli(ws, "job", "run", "cot", "--engine", "openai", "--serve", "vllm", "--teacher", str(adapter), "--bench",
                  "demo", "--items", "limit:2", "--name", "cot-lora", "--max-new-tokens", "4", "--max-pixels", PIXELS,
                  "--gpu", "none", "--wait")
    job = _job_folder(ws, result)
    log = (job / "log.txt").read_text()
    assert "merging adapter" in log and "vllm healthy after" in log and "vllm stopped" in log, log
    [merged] = re.findall(r"merged model saved: (\S+)", log)
    spec = json.loads((job / "spec.json").read_text())
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.store import resume_dir

    replies = [json.loads(line) for line in (resume_dir(Workspace(ws), "cot", spec["params"]) / "teacher_replies.jsonl")
               .read_text().splitlines()]
    assert len(replies) == 2 and {r["server_model"] for r in replies} == {merged}
    # the tiny random teacher never reaches the gold letter, so cot ends in its own refusal, not an engine error
    assert result.returncode != 0 and "nothing to train on" in log, result.stdout + log
