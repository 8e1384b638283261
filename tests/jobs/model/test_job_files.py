"""The resume logs and output links the model job kinds share (jobs/model/job_files.py)."""

from __future__ import annotations

import os
from pathlib import Path

from orienteer.jobs.model.job_files import append_records, link_tree, read_records, safe_name


def test_a_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    assert read_records(log) == []
    append_records(log, [{"item_id": "a"}, {"item_id": "b"}])
    with open(log, "a", encoding="utf-8") as fh:  # a write torn by a kill, even one that parses
        fh.write('{"item_id": "c"}')
    assert [r["item_id"] for r in read_records(log)] == ["a", "b"]
    append_records(log, [{"item_id": "d"}])
    assert [r["item_id"] for r in read_records(log)] == ["a", "b", "d"]
    assert log.read_text(encoding="utf-8").endswith('{"item_id": "d"}\n')


def test_link_tree_replaces_the_destination_with_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.png").write_bytes(b"png")
    dst = tmp_path / "out" / "images"
    dst.mkdir(parents=True)
    (dst / "stale").write_text("old")
    link_tree(src, dst)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == ["sub", "sub/x.png"]
    assert os.path.samefile(src / "sub" / "x.png", dst / "sub" / "x.png")
    empty = link_tree(tmp_path / "absent", tmp_path / "out" / "none")
    assert empty.is_dir() and not any(empty.iterdir())


def test_safe_names_keep_apart_ids_that_differ_only_in_replaced_characters() -> None:
    assert safe_name("viewspatial_test_000123") == "viewspatial_test_000123"
    assert safe_name("12#box") != safe_name("12_box") and safe_name("12#box").startswith("12_box-")
    assert "/" not in safe_name("a/../b")
