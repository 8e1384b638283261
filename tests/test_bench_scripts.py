"""The GPU benchmark is run by whoever next gets a GPU, in one prepared call: keep it runnable.

``bench/gpu_check.sh`` runs here with the tiny model on the CPU (the same code paths, small
shapes), so a change that breaks a figure shows up in CI, not on the rare GPU machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("bash") is None, reason="needs bash and timeout")
def test_gpu_check_runs_both_scripts_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "DEVICE": "cpu", "TINY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    infer = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert infer["errors"] == {}
    figures = set(infer["figures"])
    for name in ("official_generate4", "vision_reference_bs", "vision_grouped_bs", "vision_grouped_plain_norm_bs", "vision_grouped_eager_swiglu_bs",
                 "vision_grouped_conv3d_bs", "patch_embed_conv3d_bs", "patch_embed_linear_bs", "score_grouped_e2e_bs",
                 "score_grouped_model_only_bs", "score_grouped_model_only_sync_bs", "score_grouped_e2e_cpu_prep_bs",
                 "score_grouped_e2e_2threads_bs", "score_grouped_e2e_upstream_bs", "saliency_grouped_bs"):
        assert any(f.startswith(name) for f in figures), f"no {name}* figure in {sorted(figures)}"
    assert infer["summary"]["score_best"]["figure"].startswith("score_grouped_e2e_bs")
    assert infer["summary"]["score_upstream"]["figure"].startswith("score_grouped_e2e_upstream_bs")
    assert infer["upstream_image_tokens_per_item"] == 280  # evaluate.py's 392x560 frame, whatever --pixels says
    train = json.loads((tmp_path / "bench_train_gpu.json").read_text())
    assert {row["method"] for row in train["rows"]} == {"lora", "full-llm"}
    assert (tmp_path / "bench_gpu.log").read_text().count("items/s") > 10


def test_census_counts_what_a_score_batch_moves(tmp_path: Path) -> None:
    """The CPU-side census runs a whole score launch on ``meta`` and sees the fused norms save traffic."""
    out = tmp_path / "census.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_census.py"), "--tiny", "--batch", "4", "--variants",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    fast, plain = figures["variants"]["fast path"], figures["variants"]["transformers' RMSNorm"]
    eager = figures["variants"]["eager SwiGLU"]
    assert fast["total"]["bytes"] < eager["total"]["bytes"] and fast["total"]["kernels"] < eager["total"]["kernels"]
    assert {"vision attention", "vision MLP", "LM attention", "LM MLP", "lm_head"} <= set(fast["parts"])
    assert fast["total"]["flops"] > 0 and fast["total"]["flops"] == plain["total"]["flops"]
    assert fast["total"]["bytes"] < plain["total"]["bytes"]
    assert fast["parts"]["vision norms"]["kernels"] < plain["parts"]["vision norms"]["kernels"]
    assert "at most" in done.stdout
