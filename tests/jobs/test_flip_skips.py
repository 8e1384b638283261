"""One bad image file never fails a flip or hard-negatives job: missing, a symlink loop and not-an-image are
each skipped, named in the log with the reason, and counted apart (issue 14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orienteer.data.images import path_problem, resolve_image
from orienteer.data.workspace import Workspace
from orienteer.demo.build import DEMO_BENCH
from orienteer.jobs.selection import load_items
from tests.jobs.test_data_kinds import RUN, demo, demo_template, hard_item_ids, make_ctx, real_confusions, run_kind

__all__ = ["demo", "demo_template"]  # fixtures, used by name


def _spoil(root: Path, items: list, gone: int, loop: int, text: int) -> dict[str, Path]:
    """Item ``gone``'s image deleted, ``loop``'s a symlink loop, ``text``'s a text file with an image name."""
    paths = {what: resolve_image(root, items[k].images[0]) for what, k in (("gone", gone), ("loop", loop), ("text", text))}
    paths["gone"].unlink()
    paths["loop"].unlink()
    partner = paths["loop"].with_name("loop-partner.jpg")
    os.symlink(partner, paths["loop"])
    os.symlink(paths["loop"], partner)
    paths["text"].write_text("this is not an image\n", encoding="utf-8")
    return paths


def test_path_problem_names_a_symlink_loop(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    (tmp_path / "ok.png").write_bytes(b"x")
    assert path_problem(tmp_path / "a") == "symlink loop"
    assert path_problem(tmp_path / "dangling") == "broken symlink"
    assert path_problem(tmp_path / "missing.png") == "not found"
    assert path_problem(tmp_path) == "a folder"
    assert path_problem(tmp_path / "ok.png") is None


def test_input_file_checks_say_symlink_loop(tmp_path: Path) -> None:
    from orienteer.data.errors import FileAccessError
    from orienteer.data.fileio import check_input_file

    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(FileAccessError, match="symlink loop"):
        check_input_file(tmp_path / "a")


def test_flip_skips_missing_looped_and_unreadable_images_and_counts_them_apart(demo: Workspace, tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    items, root = load_items(demo, DEMO_BENCH, "limit:8")
    paths = _spoil(root, items, gone=1, loop=3, text=5)
    ctx = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "flip-set", "items": "limit:8", "to": "dataset"}, tmp_path)
    run_kind(ctx, ingest=True)
    log = capsys.readouterr().out
    assert f"skip item {items[1].item_id}: image not found at {paths['gone']}" in log
    assert f"skip item {items[3].item_id}: image symlink loop at {paths['loop']}" in log
    assert f"skip item {items[5].item_id}: cannot read image {paths['text']}: not an image Pillow can read" in log
    assert "skipped 2 item(s) with missing images and 1 with unreadable ones" in log
    (output,) = ctx.outputs
    assert output.composition["skipped_missing_images"] == 2
    assert output.composition["skipped_unreadable_images"] == 1
    assert output.composition["flipped"] == 5


def test_flip_to_a_benchmark_notes_what_it_skipped(demo: Workspace, tmp_path: Path) -> None:
    items, root = load_items(demo, DEMO_BENCH, "limit:6")
    _spoil(root, items, gone=0, loop=2, text=4)
    ctx = make_ctx(demo, "flip", {"bench": DEMO_BENCH, "name": "flip-bench", "items": "limit:6"}, tmp_path)
    run_kind(ctx, ingest=True)
    (output,) = ctx.outputs
    assert "skipped 2 missing, 1 unreadable image(s)" in output.notes
    flipped, _ = load_items(demo, "flip-bench", None)
    assert len(flipped) == 3


def test_hard_negatives_skip_an_unreadable_hard_item(demo: Workspace, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    confusions = real_confusions(demo, RUN, 3)
    hard = sorted(hard_item_ids(demo, RUN, confusions))
    items, root = load_items(demo, DEMO_BENCH, None)
    by_id = {item.item_id: item for item in items}
    bad = resolve_image(root, by_id[hard[0]].images[0])
    bad.write_bytes(b"\x00not an image")
    ctx = make_ctx(demo, "hard-negatives", {"run": RUN, "name": "hard", "top": 3, "ratio": 1.0, "seed": 4}, tmp_path)
    run_kind(ctx)
    log = capsys.readouterr().out
    assert f"skip item {hard[0]}: cannot read image {bad}" in log
    composition = ctx.outputs[0].composition
    assert composition["skipped_unreadable_images"] >= 1 and composition["n_original"] == len(hard) - 1
