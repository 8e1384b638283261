"""Bad input: one clear line naming the file and the line or item, a non-zero exit, and no change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orienteer.data.ingest_preds import import_predictions
from orienteer.tui.cli.main import app
from tests.conftest import random_replies, snapshot, write_official_csv
from tests.data.hostile.make_corpus import CASES as CORPUS
from tests.data.hostile.make_corpus import command_line

runner = CliRunner()


def _cli(ws_root: Path, *args: str):
    return runner.invoke(app, ["-w", str(ws_root), *args])


def _bench_case(name: str, build: Callable[[Path, list[dict]], Path], expect: list[str], extra: tuple[str, ...] = ()):
    return pytest.param(build, expect, extra, id=name)


def _truncated(tmp: Path, items: list[dict]) -> Path:
    text = json.dumps(items, indent=1)
    path = tmp / "truncated.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    return path


def _unknown_task(tmp: Path, items: list[dict]) -> Path:
    items = [dict(i) for i in items]
    items[7]["question_type"] = "Bird perspective - Relative Direction"
    path = tmp / "unknown_task.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _not_a_direction(tmp: Path, items: list[dict]) -> Path:
    items = [dict(i) for i in items]
    lines = items[9]["choices"].split("\n")
    wrong = next(k for k, line in enumerate(lines) if line[0] != items[9]["answer"][0])
    lines[wrong] = f"{lines[wrong][0]}. banana"
    items[9]["choices"] = "\n".join(lines)
    path = tmp / "banana.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _empty(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "empty.json"
    path.write_text("  \n", encoding="utf-8")
    return path


def _missing_key(tmp: Path, items: list[dict]) -> Path:
    items = [dict(i) for i in items]
    del items[4]["answer"]
    path = tmp / "missing_key.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _duplicate_item_ids(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "dupes.jsonl"
    rows = [{"id": f"x{min(i, 5)}", "task": it["question_type"], "question": it["question"], "choices": it["choices"],
             "answer": it["answer"], "images": it["image_path"]} for i, it in enumerate(items)]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def _wrong_bench_columns(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "cols.csv"
    path.write_text("id,prompt_text,answer\n1,hello,A\n", encoding="utf-8")
    return path


BENCH_CASES = [
    _bench_case("truncated-json", _truncated, ["truncated.json", "line", "invalid JSON", "truncated"]),
    _bench_case("unknown-task", _unknown_task, ["unknown_task.json", "item 7", "unknown task", "Bird perspective"]),
    _bench_case("not-a-direction", _not_a_direction, ["banana.json", "item 9", "'banana' is not a direction"]),
    _bench_case("empty-file", _empty, ["empty.json", "empty file"]),
    _bench_case("missing-key", _missing_key, ["missing_key.json", "item 4", "missing key 'answer'"]),
    _bench_case("duplicate-item-ids", _duplicate_item_ids, ["dupes.jsonl", "line 7", "duplicate item id 'x5'", "line 6"]),
    _bench_case("wrong-columns", _wrong_bench_columns, ["cols.csv", "no task column"]),
]


@pytest.mark.parametrize("build, expect, extra", BENCH_CASES)
def test_bad_benchmark_file(ws_with_bench, vs_items, tmp_path, build, expect, extra):
    path = build(tmp_path, vs_items)
    before = snapshot(ws_with_bench)
    result = _cli(ws_with_bench.root, "import", "bench", str(path), "--name", "new", *extra)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error:") and "\n" not in message, message
    for part in expect:
        assert part in message, (part, message)
    assert snapshot(ws_with_bench) == before


def test_missing_image_root(ws_with_bench, vs_bench_file, tmp_path):
    before = snapshot(ws_with_bench)
    result = _cli(ws_with_bench.root, "import", "bench", str(vs_bench_file), "--name", "x", "--images", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "images root" in result.output and "nowhere" in result.output and "does not exist" in result.output
    assert snapshot(ws_with_bench) == before


def test_failed_first_import_creates_no_workspace(ws, tmp_path, vs_items):
    path = _truncated(tmp_path, vs_items)
    result = _cli(ws.root, "import", "bench", str(path), "--name", "x")
    assert result.exit_code == 2
    assert not ws.exists()


# --- predictions ---------------------------------------------------------------------------------

def _preds_other_bench(tmp: Path, items: list[dict]) -> Path:
    """Gold answers that belong to another benchmark (the items shifted by one)."""
    shifted = items[1:] + items[:1]
    return write_official_csv(tmp / "other_bench.csv", shifted, {i: "A" for i in range(len(items))})


def _preds_duplicates(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "dup.jsonl"
    rows = [{"id": i, "pred": "A"} for i in range(10)] + [{"id": "viewspatial_test_000003", "pred": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def _preds_unknown_id(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "unknown.jsonl"
    rows = [{"id": i, "pred": "A"} for i in range(5)] + [{"id": "zebra", "pred": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def _preds_unknown_task(tmp: Path, items: list[dict]) -> Path:
    path = write_official_csv(tmp / "task.csv", items, random_replies(items))
    text = path.read_text(encoding="utf-8").replace(items[2]["question_type"], "Dog perspective - Smell", 1)
    path.write_text(text, encoding="utf-8")
    return path


def _preds_empty(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "empty.csv"
    path.write_text("", encoding="utf-8")
    return path


def _preds_header_only(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "header.csv"
    path.write_text("ID,Question,Question_Type,Predicted Answer,Correct Answer,IsCorrect\r\n", encoding="utf-8")
    return path


def _preds_wrong_columns(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "cols.csv"
    path.write_text("name,score\nfoo,1\n", encoding="utf-8")
    return path


def _preds_ragged(tmp: Path, items: list[dict]) -> Path:
    path = write_official_csv(tmp / "ragged.csv", items, {i: "A" for i in range(6)})
    records = path.read_bytes().decode("utf-8").split("\r\n")  # one CSV record each; questions hold "\n"
    records[4] = records[4] + ",extra"
    path.write_bytes("\r\n".join(records).encode("utf-8"))
    return path


def _preds_bad_verdict(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "verdict.jsonl"
    rows = [{"id": 0, "pred": "A", "correct": True}, {"id": 1, "pred": "B", "correct": "maybe"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def _preds_truncated_json(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "results.json"
    text = json.dumps({"results": [{"id": i, "pred": "A"} for i in range(20)]}, indent=1)
    path.write_text(text[:-40], encoding="utf-8")
    return path


def _preds_bad_jsonl_line(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "broken.jsonl"
    path.write_text('{"id": 0, "pred": "A"}\n{"id": 1, "pred": "B"\n{"id": 2, "pred": "C"}\n', encoding="utf-8")
    return path


def _preds_not_utf8(tmp: Path, items: list[dict]) -> Path:
    path = tmp / "latin1.csv"
    path.write_bytes("id,pred\n0,A\n1,caf\xe9\n".encode("latin-1"))
    return path


PRED_CASES = [
    pytest.param(_preds_other_bench, ["other_bench.csv", "line 2", "gold answer", "another benchmark"], id="other-benchmark"),
    pytest.param(_preds_duplicates, ["dup.jsonl", "line 11", "duplicate id", "lines 4 and 11", "item 3"], id="duplicate-ids"),
    pytest.param(_preds_unknown_id, ["unknown.jsonl", "line 6", "'zebra' matches no item"], id="unknown-id"),
    # each official row spans 3 lines (the question holds the prompt's two newlines): item 2 starts on line 8
    pytest.param(_preds_unknown_task, ["task.csv", "line 8", "task 'Dog perspective - Smell'"], id="unknown-task"),
    pytest.param(_preds_empty, ["empty.csv", "empty file"], id="empty-file"),
    pytest.param(_preds_header_only, ["header.csv", "no prediction records"], id="header-only"),
    pytest.param(_preds_wrong_columns, ["cols.csv", "no item id column", "columns are: name, score"], id="wrong-columns"),
    pytest.param(_preds_ragged, ["ragged.csv", "line 11", "expected 6 fields"], id="ragged-csv"),
    pytest.param(_preds_bad_verdict, ["verdict.jsonl", "line 2", "expected true/false"], id="bad-verdict"),
    pytest.param(_preds_truncated_json, ["results.json", "line", "invalid JSON"], id="truncated-json"),
    pytest.param(_preds_bad_jsonl_line, ["broken.jsonl", "line 2", "invalid JSON"], id="bad-jsonl-line"),
    pytest.param(_preds_not_utf8, ["latin1.csv", "line 3", "not valid UTF-8"], id="not-utf8"),
]


@pytest.mark.parametrize("build, expect", PRED_CASES)
def test_bad_predictions_file(ws_with_bench, vs_items, tmp_path, build, expect):
    good = write_official_csv(tmp_path / "good.csv", vs_items, random_replies(vs_items))
    import_predictions(ws_with_bench, good, "vs", "existing")
    path = build(tmp_path, vs_items)
    before = snapshot(ws_with_bench)
    # also as a replacement of an existing run: the old run must survive the failure
    for run_args in (["--run", "new"], ["--run", "existing", "--replace"]):
        result = _cli(ws_with_bench.root, "import", "preds", str(path), "--bench", "vs", *run_args)
        assert result.exit_code == 2, result.output
        message = result.output.strip()
        assert message.startswith("error:") and "\n" not in message, message
        for part in expect:
            assert part in message, (part, message)
        assert snapshot(ws_with_bench) == before


def test_bom_and_crlf_are_read_like_plain_files(ws_with_bench, vs_items, tmp_path):
    replies = random_replies(vs_items)
    plain = write_official_csv(tmp_path / "plain.csv", vs_items, replies)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert b"\r\n" in bom.read_bytes()
    import_predictions(ws_with_bench, plain, "vs", "plain")
    import_predictions(ws_with_bench, bom, "vs", "bom")
    lf = tmp_path / "lf.jsonl"
    lf.write_text("\n".join(json.dumps({"id": i, "pred": r}) for i, r in replies.items()), encoding="utf-8")
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"\xef\xbb\xbf" + lf.read_bytes().replace(b"\n", b"\r\n"))
    import_predictions(ws_with_bench, crlf, "vs", "crlf")
    with ws_with_bench.read() as con:
        results = {name: con.execute(
            "SELECT item_idx, correct FROM predictions JOIN runs USING (run_id) WHERE name = ? ORDER BY item_idx", [name]
        ).fetchall() for name in ("plain", "bom", "crlf")}
    assert results["plain"] == results["bom"] == results["crlf"]


def test_bench_json_with_bom_and_crlf(ws, vs_items, tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(vs_items, indent=1).replace("\n", "\r\n").encode())
    result = _cli(ws.root, "import", "bench", str(path), "--name", "b")
    assert result.exit_code == 0, result.output
    assert f"{len(vs_items)} items" in result.output


# --- the generated hostile corpus (tests/data/hostile/make_corpus.py) --------------------------------

def _ws_bytes(root: Path) -> dict[str, str]:
    """Every file of the workspace folder by content hash: a refused import must not change one byte."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_corpus_case_is_refused_in_one_line(ws_with_bench, tmp_path, case):
    path = case.write(tmp_path)
    before, before_bytes = snapshot(ws_with_bench), _ws_bytes(ws_with_bench.root)
    result = _cli(ws_with_bench.root, *command_line(case, path))
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error:") and "\n" not in message and "Traceback" not in message, message
    assert path.name in message
    for part in case.expect:
        assert part in message, (part, message)
    assert snapshot(ws_with_bench) == before and _ws_bytes(ws_with_bench.root) == before_bytes
