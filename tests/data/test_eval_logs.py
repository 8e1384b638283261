"""Eval-tool logs scored exactly as the tool did (issue 16, "Logs"): lmms-eval samples in four vintages,
reasoning models' stripped replies, lmms-eval's metric fields as the audited verdict, ``--map`` on every
format, and the tools' summary files refused with a pointer to the per-item file.

Fixture files are written by ``tests/data/lmms_eval_samples.py`` (lmms-eval v0.3 to v0.7.2's
evaluator + evaluation_tracker) and, for VLMEvalKit, by pandas the way VLMEvalKit's ``dump`` writes
``<model>_<dataset>.xlsx`` and ``<model>_<dataset>_acc.csv`` (vlmeval/smp/file.py ``dump_csv``:
``to_csv(index=False, quoting=csv.QUOTE_ALL)``; ``score_file = eval_file.replace('.xlsx', '_acc.csv')``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from orienteer.data.errors import InputError
from orienteer.data.formats.detect import detect_pred_format
from orienteer.data.ingest_bench import import_benchmark
from orienteer.data.ingest_preds import import_predictions
from orienteer.data.queries.compare import audit
from tests.conftest import make_viewspatial_items, write_official_csv
from tests.data.lmms_eval_samples import VINTAGES, lmms_score, sample, write_samples, write_v02_json


def _per_item(ws, run: str) -> dict[int, bool]:
    with ws.read() as con:
        return {int(i): bool(c) for i, c in con.execute(
            "SELECT p.item_idx, p.correct FROM predictions p JOIN runs r USING (run_id) WHERE r.name = ?", [run]
        ).fetchall()}


@pytest.fixture
def items200() -> list[dict]:
    return make_viewspatial_items(200, seed=7)


@pytest.fixture
def ws200(ws, items200, tmp_path):
    path = tmp_path / "bench200.json"
    path.write_text(json.dumps(items200), encoding="utf-8")
    import_benchmark(ws, path, "vs")
    return ws


def _thinking_raws(items: list[dict]) -> dict[int, str]:
    """A reasoning model's raw outputs: the first 100 close their thinking and answer after it; the last
    100 never answer after </think>, but name the right letter on the thinking's last line."""
    raws = {}
    for i, item in enumerate(items):
        gold = item["answer"][0]
        thinking = f"<think>\nThe {i}th object is beside the sofa.\nSo the answer is {gold}.</think>"
        raws[i] = f"{thinking}\n\n{gold}" if i < 100 else thinking
    return raws


def test_reasoning_log_scores_the_stripped_reply_as_lmms_eval_did(ws200, items200, tmp_path):
    raws = _thinking_raws(items200)
    path = write_samples(tmp_path / "20260806_101500_samples_viewspatial.jsonl", "v0.7-reasoning", items200, raws)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[150])
    assert first["filtered_resps"] == "" and "<think>" in first["resps"]  # the shape the test is about
    assert detect_pred_format(path) == "lmms-eval"
    [run] = import_predictions(ws200, path, "vs", "think")
    oracle = lmms_score(items200, raws, "v0.7-reasoning")
    assert sum(oracle.values()) == 100
    assert run.correct == 100 and run.rows == 200
    assert _per_item(ws200, "think") == oracle
    assert run.scored_field == "filtered_resps"
    with ws200.read() as con:
        checked, disagreements = audit(con, "think")
    assert checked == 200 and disagreements == []


@pytest.mark.parametrize("vintage", VINTAGES)
def test_every_lmms_eval_vintage_scores_to_the_item(ws200, items200, tmp_path, vintage):
    raws = {}
    for i, item in enumerate(items200):
        gold = item["answer"][0]
        wrong = "ABCD"[("ABCD".index(gold) + 1) % 4]
        reply = [gold, f"{wrong}.", f"Looking at it.\n{gold}", "I cannot tell.", f"({gold}) left"][i % 5]
        raws[i] = f"<think>Maybe {wrong}.</think>\n{reply}" if vintage == "v0.7-reasoning" else reply
    path = write_samples(tmp_path / f"samples_{vintage}.jsonl", vintage, items200, raws)
    assert detect_pred_format(path) == "lmms-eval"
    [run] = import_predictions(ws200, path, "vs", f"r-{vintage}")
    oracle = lmms_score(items200, raws, vintage)
    assert _per_item(ws200, f"r-{vintage}") == oracle
    assert run.correct == sum(oracle.values())
    assert run.scored_field == "filtered_resps"
    with ws200.read() as con:
        checked, disagreements = audit(con, f"r-{vintage}")
    assert checked == 200 and disagreements == []  # the verdict comes from overall_accuracy {"score": ...}


def test_lmms_eval_v02_task_json_is_read_as_samples(ws200, items200, tmp_path):
    raws = {i: [item["answer"][0], "I cannot tell.", "B"][i % 3] for i, item in enumerate(items200)}
    path = write_v02_json(tmp_path / "viewspatial.json", items200, raws)
    assert detect_pred_format(path) == "lmms-eval"
    [run] = import_predictions(ws200, path, "vs", "v02")
    oracle = lmms_score(items200, raws, "v0.2")
    assert _per_item(ws200, "v02") == oracle and run.correct == sum(oracle.values())
    assert run.scored_field == "filtered_resps"
    with ws200.read() as con:
        assert audit(con, "v02") == (200, [])
    with ws200.read() as con:  # a record is numbered from 1, like a line
        assert con.execute("SELECT min(source_line) FROM predictions p JOIN runs r USING (run_id) "
                           "WHERE r.name = 'v02'").fetchone()[0] == 1


def test_records_without_filtered_resps_fall_back_to_resps_and_say_so(ws200, items200, tmp_path):
    """Only a record with no filtered_resps key at all is read from resps; the summary names both fields."""
    lines = []
    for i, item in enumerate(items200[:10]):
        record = sample("v0.3", i, item, item["answer"][0])
        if i % 2:
            record.pop("filtered_resps")
        lines.append(json.dumps(record))
    path = tmp_path / "old_samples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [run] = import_predictions(ws200, path, "vs", "old")
    assert run.correct == 10
    assert run.scored_field == "filtered_resps (5 rows), resps (5 rows)"


def test_map_reply_resps_scores_the_raw_output_on_purpose(ws200, items200, tmp_path):
    raws = _thinking_raws(items200)
    path = write_samples(tmp_path / "s_samples_viewspatial.jsonl", "v0.7-reasoning", items200, raws)
    [run] = import_predictions(ws200, path, "vs", "raw", mapping={"reply": "resps"})
    assert run.correct == 200 and run.scored_field == "resps"


def test_audit_reads_the_task_metric_and_lists_disagreements(ws200, items200, tmp_path):
    raws = {i: item["answer"][0] for i, item in enumerate(items200[:20])}
    lines = []
    for i, raw in raws.items():
        record = sample("v0.4", i, items200[i], raw)
        if i == 3:
            record["overall_accuracy"] = {"score": 0.0}  # the file says wrong; Orienteer scores it right
        lines.append(json.dumps(record))
    path = tmp_path / "audit_samples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_predictions(ws200, path, "vs", "a")
    with ws200.read() as con:
        checked, rows = audit(con, "a")
    assert checked == 20 and [r["source_line"] for r in rows] == [4]


@pytest.mark.parametrize("metrics, verdicts", [
    ({"exact_match": 1.0}, True),  # lm-eval style flat metric
    ({"mmbench_acc": {"score": 0}}, False),  # another task's metric name, same {"score": ...} shape
    ({"gpt_eval_score": 7}, None),  # a graded score is no verdict
    ({"a_accuracy": {"score": 1}, "b_accuracy": {"score": 0}}, None),  # disagreeing metrics: none taken
])
def test_verdict_from_other_tasks_metric_fields(metrics, verdicts):
    from orienteer.data.formats.predictions import lmms_verdict

    record = {"doc_id": 0, "target": "A", "filtered_resps": ["A"], "doc_hash": "x", **metrics}
    assert lmms_verdict(record) is verdicts


# --- --map on the fixed formats -----------------------------------------------------------------

def _vlmevalkit_table(items: list[dict], path: Path) -> Path:
    table = pd.DataFrame([{
        "index": i, "question": item["question"],
        **dict(line.split(". ", 1) for line in item["choices"].split("\n")),
        "answer": item["answer"][0], "category": item["question_type"], "prediction": f"I pick {item['answer'][0]}",
        "extracted": item["answer"][0] if i % 2 else "A",
    } for i, item in enumerate(items)])
    table.to_excel(path, index=False)
    return path


def test_map_applies_to_vlmevalkit_and_official_csv(ws200, items200, tmp_path):
    path = _vlmevalkit_table(items200[:40], tmp_path / "Qwen_ViewSpatial.xlsx")
    [plain] = import_predictions(ws200, path, "vs", "plain")
    [mapped] = import_predictions(ws200, path, "vs", "mapped", mapping={"letter": "extracted"})
    assert plain.correct == 40 and plain.scored_field == "prediction"
    expected = sum(1 for i, item in enumerate(items200[:40]) if i % 2 or item["answer"][0] == "A")
    assert mapped.correct == expected and mapped.scored_field == "extracted then prediction"
    official = write_official_csv(tmp_path / "result.csv", items200, {i: "A" for i in range(30)})
    [run] = import_predictions(ws200, official, "vs", "o", mapping={"reply": "Correct Answer"})
    assert run.correct == 30 and run.scored_field == "Correct Answer"


@pytest.mark.parametrize("kind", ["viewspatial-csv", "vlmevalkit", "lmms-eval"])
def test_map_of_an_absent_column_is_an_error_on_every_format(ws200, items200, tmp_path, kind):
    if kind == "viewspatial-csv":
        path = write_official_csv(tmp_path / "result.csv", items200, {0: "A"})
    elif kind == "vlmevalkit":
        path = _vlmevalkit_table(items200[:3], tmp_path / "M_ViewSpatial.xlsx")
    else:
        path = write_samples(tmp_path / "x_samples_viewspatial.jsonl", "v0.7", items200, {0: "A"})
    with pytest.raises(InputError) as caught:
        import_predictions(ws200, path, "vs", "m", mapping={"reply": "no_such"})
    message = str(caught.value)
    assert str(path) in message and "no_such" in message and len(message.splitlines()) == 1
    assert ("Predicted Answer" if kind == "viewspatial-csv" else "prediction" if kind == "vlmevalkit"
            else "filtered_resps") in message
    with pytest.raises(InputError, match="unknown fields"):
        import_predictions(ws200, path, "vs", "m", mapping={"answer_text": "x"})


# --- summary files ------------------------------------------------------------------------------

def _lmms_results(path: Path) -> Path:
    """An aggregate file as evaluator.py + EvaluationTracker.save_results_aggregated write it (indent=2)."""
    results = {
        "results": {"viewspatial": {"alias": "viewspatial", "overall_accuracy,none": 0.41,
                                    "overall_accuracy_stderr,none": "N/A"}},
        "group_subtasks": {"viewspatial": []},
        "configs": {"viewspatial": {"task": "viewspatial", "dataset_path": "oscarqjh/ViewSpatial_lmmseval"}},
        "versions": {"viewspatial": "Yaml"}, "n-shot": {"viewspatial": 0},
        "higher_is_better": {"viewspatial": {"overall_accuracy": True}},
        "n-samples": {"viewspatial": {"original": 5712, "effective": 5712}},
        "config": {"model": "qwen2_5_vl"}, "date": "20260806_101500",
    }
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def test_lmms_eval_results_file_points_to_its_samples_file(ws200, items200, tmp_path):
    results = _lmms_results(tmp_path / "20260806_101500_results.json")
    with pytest.raises(InputError, match="aggregate results file.*none beside it.*--log_samples"):
        import_predictions(ws200, results, "vs", "r")
    write_samples(tmp_path / "20260806_101500_samples_viewspatial.jsonl", "v0.7", items200, {0: "A"})
    with pytest.raises(InputError) as caught:
        import_predictions(ws200, results, "vs", "r")
    assert "'20260806_101500_samples_viewspatial.jsonl'" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(InputError, match="aggregate results file"):
        import_predictions(ws200, results, "vs", "r", fmt="lmms-eval")


def test_vlmevalkit_acc_csv_says_it_holds_no_items(ws200, items200, tmp_path):
    acc = tmp_path / "Qwen2.5-VL-7B_ViewSpatial_acc.csv"
    pd.DataFrame([{"split": "test", "Overall": 0.41, "Camera perspective - Relative Direction": 0.38}]).to_csv(
        acc, index=False, quoting=csv.QUOTE_ALL)
    with pytest.raises(InputError, match="accuracy summary.*no items.*'Qwen2.5-VL-7B_ViewSpatial.xlsx' or .tsv"):
        import_predictions(ws200, acc, "vs", "r")
    _vlmevalkit_table(items200[:3], tmp_path / "Qwen2.5-VL-7B_ViewSpatial.xlsx")
    with pytest.raises(InputError) as caught:
        import_predictions(ws200, acc, "vs", "r")
    assert "import the predictions file beside it: 'Qwen2.5-VL-7B_ViewSpatial.xlsx'" in str(caught.value)


def test_vlmevalkit_pred_format_json_and_acc_json(ws200, items200, tmp_path):
    """PRED_FORMAT=json: vlmeval/smp/file.py dump_json writes ``DataFrame.to_dict('records')`` with
    ``json.dump(indent=4, ensure_ascii=False)``; EVAL_FORMAT=json writes the accuracy summary the same way."""
    records = [{"index": i, "question": item["question"], "answer": item["answer"][0],
                "category": item["question_type"], "prediction": item["answer"][0] if i % 2 else "Z", "hit": i % 2}
               for i, item in enumerate(items200[:20])]
    path = tmp_path / "Qwen_ViewSpatial.json"
    path.write_text(json.dumps(records, indent=4, ensure_ascii=False), encoding="utf-8")
    [run] = import_predictions(ws200, path, "vs", "vj")
    assert run.correct == 10 and run.scored_field == "prediction"
    with ws200.read() as con:
        assert audit(con, "vj") == (20, [])
    acc = tmp_path / "Qwen_ViewSpatial_acc.json"
    acc.write_text(json.dumps([{"split": "test", "Overall": 0.5}], indent=4), encoding="utf-8")
    with pytest.raises(InputError, match=r"no items\); import the predictions file beside it: 'Qwen_ViewSpatial.json'"):
        import_predictions(ws200, acc, "vs", "r")
