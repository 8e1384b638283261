"""``orienteer prompt``: the exact user turn of one item, and with --model its tokens and frame sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from orienteer.tui.cli.main import app
from tests.conftest import make_viewspatial_items

runner = CliRunner()
SUFFIX = "\nReply only to the corresponding option.\nAnswer:"


@pytest.fixture
def prompt_ws(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    records = make_viewspatial_items(6)
    records[4]["question"] = "Where is the [bold]lamp[/bold]\x1b[31m?\u202e"  # markup and terminal controls: untrusted
    rng = np.random.default_rng(0)
    for rec in records:
        for rel in rec["image_path"]:
            path = tmp_path / "images" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(path)
    bench = tmp_path / "ViewSpatial-Bench.json"
    bench.write_text(json.dumps(records), encoding="utf-8")
    ws = tmp_path / "ws"
    done = runner.invoke(app, ["-w", str(ws), "import", "bench", str(bench), "--name", "vs", "--images",
                               str(tmp_path / "images")])
    assert done.exit_code == 0, done.output
    return ws, records


def _run(ws: Path, *args: str) -> Any:
    return runner.invoke(app, ["-w", str(ws), "prompt", "--bench", "vs", *args])


def test_prints_the_exact_official_text(prompt_ws: tuple[Path, list[dict[str, Any]]]) -> None:
    ws, records = prompt_ws
    done = _run(ws, "--item", "1")
    assert done.exit_code == 0, done.output
    assert records[1]["question"] + records[1]["choices"] + SUFFIX in done.output
    assert "prompt official" in done.output and "resize upstream" in done.output
    data = json.loads(_run(ws, "--item", "1", "--json").output)
    assert data["text"] == records[1]["question"] + records[1]["choices"] + SUFFIX
    assert data["resize"] == "upstream" and len(data["prompt_hash"]) == 12
    newline = json.loads(_run(ws, "--item", "1", "--prompt", "official-newline", "--json").output)
    assert newline["text"] == records[1]["question"] + "\n" + records[1]["choices"] + SUFFIX
    assert newline["resize"] == "budget"


def test_ids_are_exact_and_errors_are_one_line(prompt_ws: tuple[Path, list[dict[str, Any]]]) -> None:
    ws, _ = prompt_ws
    for bad in ("01", " 1", "1.0", "vs_1"):
        done = _run(ws, "--item", bad)
        assert done.exit_code == 2 and "has no item" in done.output and "matched exactly" in done.output
        assert len(done.output.strip().splitlines()) == 1
    unknown = _run(ws, "--item", "1", "--prompt", "nope")
    assert unknown.exit_code == 2 and "unknown prompt 'nope'" in unknown.output


def test_untrusted_text_is_shown_not_obeyed(prompt_ws: tuple[Path, list[dict[str, Any]]]) -> None:
    ws, _ = prompt_ws
    done = _run(ws, "--item", "4")
    assert done.exit_code == 0, done.output
    assert "\x1b" not in done.output and "\u202e" not in done.output
    assert "\\x1b[31m?\\u202e" in done.output and "[bold]lamp[/bold]" in done.output  # markup printed, not applied


def test_with_the_model_counts_tokens_and_frame_sizes(prompt_ws: tuple[Path, list[dict[str, Any]]],
                                                      tiny_model_dir: Path, tiny: Any) -> None:
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.model.batching import encode_item
    from orienteer.jobs.model.images import UpstreamResize, load_images
    from orienteer.jobs.selection import load_item

    ws, records = prompt_ws
    multi = next(i for i, r in enumerate(records) if len(r["image_path"]) > 1)
    done = _run(ws, "--item", str(multi), "--model", str(tiny_model_dir), "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    item, root = load_item(Workspace(ws), "vs", str(multi))
    expected = encode_item(tiny.processor, item, load_images(item, root), "official", UpstreamResize())
    assert data["tokens"] == expected.length and data["image_tokens"] == 280 * len(item.images)
    assert [(f["processed_height"], f["processed_width"], f["tokens"]) for f in data["frames"]] == (
        [(392, 560, 280)] * len(item.images))
    assert all((f["width"], f["height"]) == (640, 480) for f in data["frames"])

    text = _run(ws, "--item", str(multi), "--model", str(tiny_model_dir), "--resize", "budget")
    assert text.exit_code == 0, text.output
    assert "chat input: " in text.output and "480x640 -> " in text.output and "(HxW)" in text.output
    assert "392x560" not in text.output
