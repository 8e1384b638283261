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
from orienteer.data.queries.compare import audit
from orienteer.data.queries.report import task_report
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


# --- ids: exact forms only, the padded prefix is the benchmark's (issue 14, item 1) ----------------

def _cli(ws, *args: str):
    from typer.testing import CliRunner

    from orienteer.tui.cli.main import app

    return CliRunner().invoke(app, ["-w", str(ws.root), *args])


def _generic_bench(tmp_path: Path, vs_items: list[dict], ids: list[str]) -> Path:
    rows = [{"item_id": ids[i], "task": it["question_type"], "question": it["question"], "choices": it["choices"],
             "answer": it["answer"], "images": it["image_path"]} for i, it in enumerate(vs_items)]
    path = tmp_path / "generic_bench.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_padded_id_prefix_is_data_stored_with_the_benchmark(ws_with_bench, vs_items, tmp_path):
    demo_ids = tmp_path / "demo_ids.jsonl"
    demo_ids.write_text("\n".join(json.dumps({"id": f"demo_{i:06d}", "pred": it["answer"][0]})
                                  for i, it in enumerate(vs_items)), encoding="utf-8")
    # a ViewSpatial JSON benchmark knows viewspatial_test_ only: another benchmark's padded ids are refused
    with pytest.raises(OrienteerError, match="'demo_000000' matches no item of benchmark 'vs'"):
        import_predictions(ws_with_bench, demo_ids, "vs", "x")
    # the same items imported with --id-prefix demo_ accept them, and only them
    bench = _generic_bench(tmp_path, vs_items, [f"q{i}" for i in range(len(vs_items))])
    result = _cli(ws_with_bench, "import", "bench", str(bench), "--name", "g", "--id-prefix", "demo_")
    assert result.exit_code == 0, result.output
    assert "padded ids: demo_000123 = item 123" in result.output
    [run] = import_predictions(ws_with_bench, demo_ids, "g", "d")
    assert run.correct == len(vs_items) and run.ids == {"padded": len(vs_items)}
    padded_vs = tmp_path / "vs_ids.jsonl"
    padded_vs.write_text(json.dumps({"id": "viewspatial_test_000001", "pred": "A"}), encoding="utf-8")
    with pytest.raises(OrienteerError, match="'viewspatial_test_000001' matches no item of benchmark 'g'"):
        import_predictions(ws_with_bench, padded_vs, "g", "v")
    # "" means no prefix; a prefix ending in a digit would make the number's start ambiguous
    result = _cli(ws_with_bench, "import", "bench", str(bench), "--name", "h", "--id-prefix", "")
    assert result.exit_code == 0 and "padded ids" not in result.output
    result = _cli(ws_with_bench, "import", "bench", str(bench), "--name", "k", "--id-prefix", "run7")
    assert result.exit_code == 2 and "id prefix 'run7' is not usable" in result.output
    with ws_with_bench.read() as con:
        prefixes = dict(con.execute("SELECT name, id_prefix FROM benchmarks").fetchall())
        assert prefixes == {"vs": "viewspatial_test_", "g": "demo_", "h": None}


def test_migration_gives_older_viewspatial_benchmarks_their_prefix(tmp_path):
    import duckdb

    from orienteer.data.schema import MIGRATIONS, SCHEMA_VERSION, migrate

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '7')")
    for step in MIGRATIONS[:7]:
        step(con) if callable(step) else con.execute(step)
    con.execute("INSERT INTO benchmarks (bench_id, name, source_format, n_items) VALUES (1, 'vs', 'viewspatial-json', 5), "
                "(2, 'g', 'items', 5)")
    assert migrate(con) == SCHEMA_VERSION - 7
    assert con.execute("SELECT name, id_prefix FROM benchmarks ORDER BY bench_id").fetchall() == [
        ("vs", "viewspatial_test_"), ("g", None)]
    con.close()


def test_numeric_item_ids_are_never_read_as_indexes(ws, vs_items, tmp_path):
    """Item ids 100..159: "5" is not an item id, and reading it as index 5 (item 105) would be a guess."""
    import_benchmark(ws, _generic_bench(tmp_path, vs_items, [str(100 + i) for i in range(len(vs_items))]), "n")
    by_id = tmp_path / "by_id.jsonl"
    by_id.write_text("\n".join(json.dumps({"id": str(100 + i), "pred": it["answer"][0]}) for i, it in enumerate(vs_items)))
    [run] = import_predictions(ws, by_id, "n", "ok")
    assert run.correct == len(vs_items) and run.ids == {"item_id": len(vs_items)}
    by_index = tmp_path / "by_index.jsonl"
    by_index.write_text(json.dumps({"id": 5, "pred": "A"}))
    refusal = r"line 1: id '5' matches no item of benchmark 'n' \(expected an item id like '100'\)"
    with pytest.raises(OrienteerError, match=refusal):
        import_predictions(ws, by_index, "n", "bad")


def test_positional_ids_without_gold_are_said_in_the_summary(ws_with_bench, vs_items, tmp_path):
    no_gold = tmp_path / "no_gold.csv"
    pd.DataFrame([{"id": i, "pred": it["answer"][0]} for i, it in enumerate(vs_items)]).to_csv(no_gold, index=False)
    result = _cli(ws_with_bench, "import", "preds", str(no_gold), "--bench", "vs", "--run", "a")
    assert result.exit_code == 0, result.output
    assert f"ids: {len(vs_items)} index; gold answers checked on 0 rows" in result.output
    assert "warning: ids are positions" in result.output and "no gold answers" in " ".join(result.output.split())
    result = _cli(ws_with_bench, "import", "preds", str(no_gold), "--bench", "vs", "--run", "b", "--json")
    [summary] = json.loads(result.output)
    assert summary["ids"] == {"index": len(vs_items)} and summary["gold_checked"] == 0
    assert summary["warning"].startswith("ids are positions")
    # with the gold answers in the file, the positions are checked and there is nothing to say
    official = write_official_csv(tmp_path / "official.csv", vs_items, random_replies(vs_items))
    result = _cli(ws_with_bench, "import", "preds", str(official), "--bench", "vs", "--run", "c", "--json")
    [summary] = json.loads(result.output)
    assert summary["gold_checked"] == len(vs_items) and summary["warning"] is None


# --- strict CSV, long replies, streamed batches (items 2 and 11) ----------------------------------

def test_csv_reply_longer_than_csv_default_field_limit(ws_with_bench, vs_items, tmp_path):
    long_reply = "Let me think. " * 20_000 + "\nB"  # 280,002 characters: csv's default limit is 131,072
    path = write_official_csv(tmp_path / "long.csv", vs_items, {0: long_reply, 1: "A"})
    [run] = import_predictions(ws_with_bench, path, "vs", "long")
    assert run.rows == 2
    with ws_with_bench.read() as con:
        assert con.execute("SELECT reply FROM predictions WHERE item_idx = 0").fetchone()[0] == long_reply


def test_stray_quote_is_an_error_not_one_long_field(ws_with_bench, vs_items, tmp_path):
    """Before: csv (non-strict) read lines 3.. as one field of the row on line 3 and imported 2 answers."""
    path = tmp_path / "stray.csv"
    path.write_text("id,pred\r\n0,A\r\n1,\"B\r\n" + "".join(f"{i},C\r\n" for i in range(2, 50)), encoding="utf-8")
    with pytest.raises(OrienteerError, match=r"stray.csv: line 3: a quoted field is still open at the end of the file"):
        import_predictions(ws_with_bench, path, "vs", "s")


def test_streamed_batches_keep_rows_and_lines(ws_with_bench, vs_items, tmp_path, monkeypatch):
    """Rows cross many batches (small ones here, both staging paths: list parameters and Arrow) and
    still arrive whole and in order, with errors naming the right line of a later batch."""
    from orienteer.data import staging
    from orienteer.data.formats import predictions

    monkeypatch.setattr(predictions, "BATCH_ROWS", 16)
    monkeypatch.setattr(staging, "_ARROW_FROM", 10)  # batches of 16 go through Arrow, the last one (< 10) not
    replies = {i: r.replace("\n", " ") for i, r in random_replies(vs_items, seed=3).items()}  # one line a row
    rows = [{"run": f"r{k}", "id": i, "pred": replies[i]} for k in range(3) for i in range(len(vs_items))]
    path = tmp_path / "many.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    results = import_predictions(ws_with_bench, path, "vs")
    assert [r.rows for r in results] == [len(vs_items)] * 3
    with ws_with_bench.read() as con:
        lines = [r[0] for r in con.execute("SELECT source_line FROM predictions ORDER BY source_line").fetchall()]
    assert lines == list(range(2, 2 + len(rows)))
    text = path.read_text().splitlines()
    text[150] = text[150].replace(",", ",x", 1)  # line 151: the 10th batch
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(OrienteerError, match=r"many.csv: line 151: id 'x\d+' matches no item"):
        import_predictions(ws_with_bench, path, "vs")


# --- probabilities: an empty cell is none; Orienteer's own export imports back (item 9) --------------

def test_export_failures_imports_back_as_the_same_run(ws_with_bench, vs_items, tmp_path):
    records = []
    for i, item in enumerate(vs_items):
        gold = item["answer"][0]
        if i % 3 == 0:  # scored options: the argmax letter, sometimes wrong
            pick = gold if i % 2 else "ABCD"[("ABCD".index(gold) + 1) % 4]
            records.append({"id": i, "probs": {letter: (0.55 if letter == pick else 0.15) for letter in "ABCD"}})
        else:  # generated replies, some wrong, some unparsed, one invalid option: no probabilities
            records.append({"id": i, "pred": ["A", "The answer is B.", "I cannot tell.", "E", "(C) left"][i % 5]})
    src = tmp_path / "src.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    import_predictions(ws_with_bench, src, "vs", "src")

    def rows(run: str) -> dict:
        with ws_with_bench.read() as con:
            return {r[0]: (r[1], r[2], r[3], json.loads(r[4]) if r[4] else None) for r in con.execute(
                """SELECT i.item_id, p.letter, p.correct, p.outcome, p.probs FROM predictions p JOIN runs r USING (run_id)
                   JOIN items i ON i.bench_id = r.bench_id AND i.item_idx = p.item_idx WHERE r.name = ?""", [run]).fetchall()}

    failures = {k: v for k, v in rows("src").items() if not v[1]}
    assert any(v[3] for v in failures.values()) and any(v[3] is None for v in failures.values())
    for ext in ("csv", "jsonl"):
        out = tmp_path / f"failures.{ext}"
        result = _cli(ws_with_bench, "export", "failures", "--run", "src", "-o", str(out))
        assert result.exit_code == 0, result.output
        result = _cli(ws_with_bench, "import", "preds", str(out), "--bench", "vs", "--run", f"back-{ext}")
        assert result.exit_code == 0, result.output
        assert rows(f"back-{ext}") == failures, ext


@pytest.mark.parametrize("cell, stored", [("", None), ("  ", None), ('{"A":0.25,"B":0.75}', {"A": 0.25, "B": 0.75})])
def test_probs_cell_empty_means_none(ws_with_bench, vs_items, tmp_path, cell, stored):
    path = tmp_path / "p.csv"
    pd.DataFrame([{"id": 0, "reply": "B", "probs": cell}]).to_csv(path, index=False)
    import_predictions(ws_with_bench, path, "vs", "p")
    with ws_with_bench.read() as con:
        value = con.execute("SELECT probs FROM predictions").fetchone()[0]
    assert (json.loads(value) if value else None) == stored


def test_parquet_probs_follow_the_same_rule(ws_with_bench, tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame([{"id": 0, "probs": '{"A":0.9,"B":0.1}'}, {"id": 1, "probs": ""},
                  {"id": 2, "probs": '{"A":-0.5,"B":0.1}'}]).to_parquet(path)
    with pytest.raises(OrienteerError, match=r"p.parquet: row 3: probs: probability of 'A' is -0.5, expected a number >= 0"):
        import_predictions(ws_with_bench, path, "vs", "p")


def test_an_import_into_an_older_workspace_migrates_it_first(ws, vs_items, tmp_path):
    """The predictions importer reads the workspace through a read-only attachment: a workspace made
    before migration 8 (no ``id_prefix`` column) must be brought up to date first, not fail to bind."""
    import_benchmark(ws, _generic_bench(tmp_path, vs_items, [f"it{i}" for i in range(len(vs_items))]), "old")
    with ws.write() as con:
        con.execute("ALTER TABLE benchmarks DROP COLUMN id_prefix")
        con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    from orienteer.data.workspace import Workspace

    fresh = Workspace(ws.root)  # a new process's handle: nothing checked yet
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "it0", "pred": "A"}) + "\n", encoding="utf-8")
    [run] = import_predictions(fresh, preds, "old", "r")
    assert run.rows == 1
    with fresh.read() as con:
        from orienteer.data.schema import SCHEMA_VERSION

        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
