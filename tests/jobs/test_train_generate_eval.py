"""train --eval-mode generate --eval-prompt think: the closing eval reaches the answer line of a long reply.

The tiny random Qwen2.5-VL is taught one reply longer than the eval kind's old cap (16 tokens; its
tokenizer is byte-level, one token per character) that ends in ``Answer: B``, on the very item the
closing eval then asks about, so greedy decoding reproduces it. With the default cap for the think
prompt the run's reply ends on its answer line and parses to B; with ``--eval-max-new-tokens 16``
the same model's reply is cut before it, and the run counts it as truncated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orienteer.core.answers import viewspatial_letter
from orienteer.data.datasets import import_dataset
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.job_outputs import ModelOutput, RunOutput, write_manifest
from orienteer.data.workspace import Workspace
from orienteer.jobs.context import JobContext
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.params import complete

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")

OPTIONS = {"A": "left", "B": "right", "C": "front", "D": "back"}
TARGET = "He faces us, so his left is our right.\nAnswer: B"  # 48 characters = 48 tokens of the tiny tokenizer


def _ctx(ws: Workspace, root: Path, job: str, resume: Path, **params: Any) -> JobContext:
    values = complete("train", get_kind("train").params, params)
    job_dir = root / job
    (job_dir / "outputs").mkdir(parents=True)
    return JobContext(job_id=job, kind="train", params=values, workspace=ws, job_dir=job_dir,
                      out_dir=job_dir / "outputs", resume_dir=resume)


def _replies(ctx: JobContext, run: RunOutput) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (ctx.out_dir / run.predictions_file).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One item as both a benchmark and a one-example dataset (think prompt, long target); a train job
    that learns it and evaluates in generate mode, then the same spec with a 16-token eval cap."""
    from orienteer.jobs.model.prompt import PROMPTS
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    root = tmp_path_factory.mktemp("cot-train")
    model = build_tiny_qwen25vl(root / "tiny")
    Image.new("RGB", (56, 56), (200, 30, 30)).save(root / "img0.png")
    item = {"item_id": "it0", "task": "Person perspective - Relative Direction",
            "question": "From the man's viewpoint, where is the cup?", "options": OPTIONS, "answer": "B",
            "images": ["img0.png"]}
    (root / "bench.jsonl").write_text(json.dumps(item) + "\n", encoding="utf-8")
    example = {**item, "images": [str(root / "img0.png")], "target": TARGET, "prompt_suffix": PROMPTS["think"][0]}
    (root / "train.jsonl").write_text(json.dumps(example) + "\n", encoding="utf-8")
    ws = Workspace(root / "ws")
    import_benchmark(ws, root / "bench.jsonl", "onebench", images=root)
    import_dataset(ws, root / "train.jsonl", "long-cot")

    params = {"model": str(model), "dataset": "long-cot", "name": "learned", "method": "full-llm", "lr": 5e-3,
              "epochs": 80, "batch_size": 1, "grad_accum": 1, "save_every": 0, "eval_bench": "onebench",
              "eval_mode": "generate", "eval_prompt": "think", "allow_overlap": True}  # trains on the test item
    full = _ctx(ws, root, "job-full", root / "resume", **params)
    get_kind("train").run(full)
    # The same trained model (same resume folder: training is not repeated) evaluated with a 16-token cap.
    cut = _ctx(ws, root, "job-cut", root / "resume", **{**params, "name": "learned-again"}, eval_max_new_tokens=16,
               eval_run="learned-cut")
    get_kind("train").run(cut)
    return {"ws": ws, "full": full, "cut": cut}


def test_the_closing_generate_eval_reaches_the_answer_line_of_a_long_reply(trained):
    ctx = trained["full"]
    model_out, run = ctx.outputs
    assert isinstance(model_out, ModelOutput) and isinstance(run, RunOutput)
    assert json.loads((ctx.job_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 80
    [line] = _replies(ctx, run)
    assert line["reply"] == TARGET  # the whole rationale, then its answer line
    assert line["reply"].split("\n")[-1] == "Answer: B" and viewspatial_letter(line["reply"]) == "B"
    assert "truncated" not in line
    assert run.config["mode"] == "generate" and run.config["prompt"] == "think"
    assert run.config["max_new_tokens"] == 512 and run.config["truncated"] == 0
    assert run.config["allow_overlap"] is True


def test_a_16_token_cap_cuts_the_reply_and_the_run_counts_it(trained):
    ctx = trained["cut"]
    assert not (ctx.job_dir / "metrics.jsonl").exists()  # the trained model was reused, not trained again
    _, run = ctx.outputs
    [line] = _replies(ctx, run)
    assert line["reply"] == TARGET[:16].strip() and line["truncated"] is True
    assert viewspatial_letter(line["reply"]) is None  # the answer line never came
    assert run.config["max_new_tokens"] == 16 and run.config["truncated"] == 1


def test_report_json_and_the_runs_screen_show_the_truncated_count(trained, tmp_path):
    from orienteer.data.job_ingest import ingest_job
    from orienteer.data.queries.report import report_json, task_report

    ws = trained["ws"]
    for ctx in (trained["full"], trained["cut"]):
        write_manifest(ctx.out_dir, ctx.outputs)
        assert ingest_job(ws, ctx.job_id, "train", ctx.out_dir).ingested
    with ws.read() as con:
        doc = report_json(task_report(con, bench="onebench"))
    by_run = {r["run"]: r for r in doc["runs"]}
    assert by_run["learned-onebench"]["truncated"] == 0 and by_run["learned-onebench"]["correct"] == 1
    assert by_run["learned-cut"]["truncated"] == 1 and by_run["learned-cut"]["correct"] == 0
    assert by_run["learned-cut"]["config"]["truncated"] == 1
    from typer.testing import CliRunner

    from orienteer.tui.cli.main import app as cli

    result = CliRunner().invoke(cli, ["-w", str(ws.root), "report", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["run"]: r["truncated"] for r in json.loads(result.output)["runs"]} == {"learned-onebench": 0,
                                                                                    "learned-cut": 1}

    from textual.widgets import DataTable, Static

    from orienteer.tui.app import OrienteerApp
    from tests.tui.pilot import drive, until

    app = OrienteerApp(ws, image_mode="none")
    seen: list[str] = []

    async def scenario(pilot: Any) -> None:
        table = app.screen.query_one("#runs-table", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        for row in range(2):
            table.cursor_coordinate = (row, 1)
            await pilot.pause()
            seen.append(str(app.screen.query_one("#runs-detail", Static).render()))

    drive(app, scenario)
    assert any("learned-cut" in text and "truncated: 1" in text for text in seen), seen
    assert any("learned-onebench" in text and "truncated: 0" in text for text in seen), seen
