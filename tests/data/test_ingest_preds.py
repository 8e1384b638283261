"""Prediction import: every format, id forms, official scoring reproduced to the item, replace, rescore."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.formats.detect import detect_pred_format
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.queries import audit, task_report
from orienteer.data.rescore import rescore_run
from tests.conftest import official_letter, random_replies, write_official_csv


def _stats(ws, run):
    with ws.read() as con:
        return dict(con.execute(
            "SELECT i.item_id, p.correct FROM predictions p JOIN runs r USING (run_id) "
            "JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx WHERE r.name = ?", [run]).fetchall())


def test_official_csv_reproduces_evaluate_py_to_the_item(ws_with_bench, vs_items, tmp_path):
    tricky = {
        0: "A", 1: "b", 2: "The answer is C.", 3: "I think it is a left turn",  # 'a' counts as A officially
        4: "B\nD", 5: "C.\n", 6: "Answer: D\r\nB", 7: "Apple", 8: "(b) left", 9: "", 10: "A B C",
        11: "É\u00e9A", 12: "Let me think step by step.\nThe object is on the right.\nSo the answer is B.",
    }
    replies = {**random_replies(vs_items, seed=5), **tricky}
    path = write_official_csv(tmp_path / "result_model.csv", vs_items, replies)
    assert detect_pred_format(path) == "viewspatial-csv"
    [run] = import_predictions(ws_with_bench, path, "vs", "m")
    # The oracle: evaluate.py's own bookkeeping, re-done literally.
    expected_total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, item in enumerate(vs_items):
        expected_total[item["question_type"]][1] += 1
        if i in replies and official_letter(replies[i].split("\n")[-1]) == official_letter(item["answer"]):
            expected_total[item["question_type"]][0] += 1
    per_item = _stats(ws_with_bench, "m")
    for i, reply in replies.items():
        assert per_item[str(i)] == (official_letter(reply.split("\n")[-1]) == official_letter(vs_items[i]["answer"])), reply
    with ws_with_bench.read() as con:
        [report] = task_report(con)
        checked, disagreements = audit(con, "m")
    for task, (correct, total) in expected_total.items():
        assert (report.runs[0].tasks[task].correct, report.runs[0].tasks[task].n) == (correct, total)
    assert checked == len(replies) and disagreements == []
    assert run.correct == sum(c for c, _ in expected_total.values())


def test_id_forms_index_padded_and_item_id(ws_with_bench, vs_items, tmp_path):
    answers = {i: item["answer"][0] for i, item in enumerate(vs_items)}
    forms = {
        "index": [{"id": i, "pred": a} for i, a in answers.items()],
        "padded": [{"id": f"viewspatial_test_{i:06d}", "pred": a} for i, a in answers.items()],
        "item_id": [{"id": str(i), "pred": a} for i, a in answers.items()],
    }
    for name, records in forms.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"results": records}), encoding="utf-8")
        [result] = import_predictions(ws_with_bench, path, "vs", name)
        assert result.rows == len(vs_items) and result.correct == len(vs_items), name


def _formats(vs_items: list[dict], tmp_path: Path) -> dict[str, Path]:
    """The same answers in every supported format."""
    replies = {i: item["answer"][0] if i % 3 else "ABCD"[("ABCD".index(item["answer"][0]) + 1) % 4]
               for i, item in enumerate(vs_items)}
    paths: dict[str, Path] = {}
    paths["viewspatial-csv"] = write_official_csv(tmp_path / "official.csv", vs_items, replies)
    records = [{"id": f"viewspatial_test_{i:06d}", "pred": r, "gt": vs_items[i]["answer"],
                "correct": r == vs_items[i]["answer"][0]} for i, r in replies.items()]
    paths["results-json"] = tmp_path / "results.json"
    paths["results-json"].write_text(json.dumps({"results": records}), encoding="utf-8")
    paths["jsonl"] = tmp_path / "flat.jsonl"
    paths["jsonl"].write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    samples = [{"doc_id": i, "doc": {"question_type": vs_items[i]["question_type"]}, "target": vs_items[i]["answer"],
                "resps": [[r]], "filtered_resps": [r], "exact_match": float(r == vs_items[i]["answer"][0])}
               for i, r in replies.items()]
    paths["lmms-eval"] = tmp_path / "viewspatial_samples_2025.jsonl"
    paths["lmms-eval"].write_text("\n".join(json.dumps(s) for s in samples), encoding="utf-8")
    table = pd.DataFrame([{
        "index": i, "question": vs_items[i]["question"],
        **dict(line.split(". ", 1) for line in vs_items[i]["choices"].split("\n")),
        "answer": vs_items[i]["answer"][0], "category": vs_items[i]["question_type"], "prediction": r,
        "hit": int(r == vs_items[i]["answer"][0]),
    } for i, r in replies.items()])
    paths["vlmevalkit"] = tmp_path / "Qwen_ViewSpatial.xlsx"
    table.to_excel(paths["vlmevalkit"], index=False)
    paths["vlmevalkit-tsv"] = tmp_path / "Qwen_ViewSpatial.tsv"
    table.to_csv(paths["vlmevalkit-tsv"], sep="\t", index=False)
    generic = pd.DataFrame([{"question_id": i, "response": r} for i, r in replies.items()])
    paths["csv"] = tmp_path / "generic.csv"
    generic.to_csv(paths["csv"], index=False)
    paths["parquet"] = tmp_path / "generic.parquet"
    generic.to_parquet(paths["parquet"])
    return paths


def test_every_format_detected_and_scored_alike(ws_with_bench, vs_items, tmp_path):
    paths = _formats(vs_items, tmp_path)
    expected_formats = {"vlmevalkit-tsv": "vlmevalkit"}
    results = {}
    for name, path in paths.items():
        assert detect_pred_format(path) == expected_formats.get(name, name)
        [result] = import_predictions(ws_with_bench, path, "vs", f"run-{name}")
        results[name] = _stats(ws_with_bench, f"run-{name}")
        assert result.rows == len(vs_items)
    first = next(iter(results.values()))
    assert all(r == first for r in results.values())
    assert sum(first.values()) == sum(1 for i in range(len(vs_items)) if i % 3)
    with ws_with_bench.read() as con:
        for name in ("viewspatial-csv", "results-json", "lmms-eval", "vlmevalkit"):
            checked, rows = audit(con, f"run-{name}")
            assert checked == len(vs_items) and rows == [], name


def test_multi_run_file_makes_one_run_per_name(ws_with_bench, vs_items, tmp_path):
    frame = pd.DataFrame([{"run": f"r{k}", "id": i, "pred": item["answer"][0] if k else "A"}
                          for k in range(3) for i, item in enumerate(vs_items)])
    path = tmp_path / "many.parquet"
    frame.to_parquet(path)
    results = import_predictions(ws_with_bench, path, "vs")
    assert [r.name for r in results] == ["r0", "r1", "r2"]
    assert [r.correct for r in results][1:] == [len(vs_items)] * 2
    with pytest.raises(OrienteerError, match="holds 3 runs"):
        import_predictions(ws_with_bench, path, "vs", "single")


def test_probabilities_give_the_letter(ws_with_bench, vs_items, tmp_path):
    records = []
    for i, item in enumerate(vs_items):
        gold = item["answer"][0]
        probs = {letter: (0.7 if letter == gold else 0.1) for letter in "ABCD"}
        records.append({"id": i, "probs": probs})
    path = tmp_path / "scored.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    [result] = import_predictions(ws_with_bench, path, "vs", "scored")
    assert result.correct == len(vs_items)
    with ws_with_bench.read() as con:
        stored = json.loads(con.execute("SELECT probs FROM predictions LIMIT 1").fetchone()[0])
    assert sorted(stored) == list("ABCD") and max(stored.values()) == 0.7


def test_reimport_run_refuses_then_replaces_without_duplicates(ws_with_bench, vs_items, tmp_path):
    path = write_official_csv(tmp_path / "r.csv", vs_items, random_replies(vs_items))
    import_predictions(ws_with_bench, path, "vs", "r")
    with pytest.raises(OrienteerError, match="already exists"):
        import_predictions(ws_with_bench, path, "vs", "r")
    all_a = write_official_csv(tmp_path / "a.csv", vs_items, {i: "A" for i in range(len(vs_items))})
    import_predictions(ws_with_bench, all_a, "vs", "r", replace=True)
    with ws_with_bench.read() as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == len(vs_items)
        assert con.execute("SELECT count(DISTINCT letter) FROM predictions").fetchone()[0] == 1


def test_missing_items_count_against_coverage_and_accuracy(ws_with_bench, vs_items, tmp_path):
    replies = {i: item["answer"][0] for i, item in enumerate(vs_items) if i % 4}
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "p.csv", vs_items, replies), "vs", "partial")
    with ws_with_bench.read() as con:
        [report] = task_report(con)
    overall = report.runs[0].overall
    assert overall.n == len(vs_items)
    assert overall.answered == overall.correct == len(replies)
    assert overall.accuracy == pytest.approx(len(replies) / len(vs_items))


def test_rescore_with_strict_parser_in_place(ws_with_bench, vs_items, tmp_path):
    replies = {i: (f"The answer is {item['answer'][0]}" if i % 2 else item["answer"][3:]) for i, item in enumerate(vs_items)}
    import_predictions(ws_with_bench, write_official_csv(tmp_path / "p.csv", vs_items, replies), "vs", "p")
    before = _stats(ws_with_bench, "p")
    # viewspatial: "The answer is X" parses; a bare label does not (no letter in it)
    assert sum(before.values()) == len([i for i in replies if i % 2])
    old, new = rescore_run(ws_with_bench, "p", "strict")
    after = _stats(ws_with_bench, "p")
    # strict: a bare label equal to an option parses; "The answer is X" does not
    assert (old, new) == (sum(before.values()), len([i for i in replies if not i % 2]))
    assert all(after[str(i)] == (i % 2 == 0) for i in replies)
    with ws_with_bench.read() as con:
        assert con.execute("SELECT parser FROM runs WHERE name = 'p'").fetchone()[0] == "strict"
        [report] = task_report(con)
    assert report.runs[0].overall.correct == new
    # the file's verdicts (official rule) now disagree with strict scoring on every item: the audit says so
    with ws_with_bench.read() as con:
        assert len(audit(con, "p")[1]) == len(vs_items)


def test_import_parser_strict_and_invalid_options(ws_with_bench, vs_items, tmp_path):
    replies = {0: "E", 1: "(B)", 2: "I think B", 3: vs_items[3]["answer"][3:].upper()}
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "pred": r}) for i, r in replies.items()), encoding="utf-8")
    import_predictions(ws_with_bench, path, "vs", "s", parser="strict")
    with ws_with_bench.read() as con:
        rows = dict(con.execute("SELECT item_idx, outcome || ':' || coalesce(letter, '-') FROM predictions").fetchall())
    assert rows[0] == "invalid_option:E"
    assert rows[1].endswith(":B")
    assert rows[2] == "unparsed:-"
    assert rows[3] == f"correct:{vs_items[3]['answer'][0]}"


def test_bench_without_runs_named_in_error(ws_with_bench, tmp_path, vs_items):
    path = write_official_csv(tmp_path / "r.csv", vs_items, {0: "A"})
    with pytest.raises(OrienteerError, match="no benchmark named 'nope'; benchmarks are: vs"):
        import_predictions(ws_with_bench, path, "nope", "r")


def test_generic_bench_preds_by_item_id(ws, vs_items, tmp_path):
    rows = [{"item_id": f"q-{i}", "task": it["question_type"], "question": it["question"], "choices": it["choices"],
             "answer": it["answer"], "images": it["image_path"]} for i, it in enumerate(vs_items)]
    bench = tmp_path / "b.jsonl"
    bench.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    import_benchmark(ws, bench, "g")
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps({"item_id": f"q-{i}", "response": it["answer"]}) for i, it in enumerate(vs_items)))
    [result] = import_predictions(ws, preds, "g", "r")
    assert result.correct == len(vs_items)
