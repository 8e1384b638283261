"""Build lmms-eval per-sample logs (``<date>_samples_<task>.jsonl``) the way lmms-eval writes them.

Follows EvolvingLMMs-Lab/lmms-eval, read at v0.3.0, v0.4, v0.7 and HEAD 75571cfe (v0.7.2-41):
``lmms_eval/evaluator.py`` builds each sample's ``example`` dict (doc_id, doc, target, arguments,
resps, filtered_resps, hashes, then the task's metrics); ``loggers/evaluation_tracker.py``
``save_results_samples`` rewrites it per version before ``json.dumps(..., ensure_ascii=False)``:

- v0.1/v0.2 (``__main__.py``, no tracker): ``<task>.json`` =
  ``json.dumps({"args", "model_configs", "logs": [samples sorted by doc_id], "time"}, indent=4)``,
  samples unchanged from the evaluator (``doc`` with its images as text, resps ``[[raw]]``).
- v0.3: keeps ``doc``; ``input`` = the prompt; ``arguments`` replaced by a dict; resps ``[[raw]]``,
  filtered_resps ``[filtered]``.
- v0.4 to v0.6: pops ``doc`` and ``arguments``; pops ``resps`` when it equals ``filtered_resps``.
- v0.7: also flattens one-request samples (``"filtered_resps": "B"``, ``"resps": [...]`` -> value).
- v0.7 with ``--reasoning_tags``: ``resps`` keeps the raw output (``raw_filtered_resps``, the
  ``<think>`` block included), ``filtered_resps`` the stripped one (``api/reasoning.py``).

The ViewSpatial metrics are ``lmms_eval/tasks/viewspatial/utils.py`` ``viewspatial_process_results``
(first version 8d9f1943: ``overall_accuracy`` only; HEAD: plus one ``*_accuracy`` per question type
carrying ``question_type``). Functions below are re-statements of that code, not copies.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

VINTAGES = ("v0.3", "v0.4", "v0.7", "v0.7-reasoning")
QUESTION_TYPES = {
    "Camera perspective - Relative Direction": "camera_perspective_relative_direction",
    "Camera perspective - Object View Orientation": "camera_perspective_object_view_orientation",
    "Person perspective - Relative Direction": "person_perspective_relative_direction",
    "Person perspective - Object View Orientation": "person_perspective_object_view_orientation",
    "Person perspective - Scene Simulation Relative Direction": "person_perspective_scene_simulation_relative_direction",
}


def extract_option(text: str) -> str | None:
    """viewspatial utils.extract_option."""
    match = re.search(r"\b([A-D])\b", text, re.IGNORECASE)
    return match.group(1).upper() if match else None


def process_results(doc: dict[str, Any], results: list[str], per_type: bool) -> dict[str, Any]:
    """viewspatial_process_results: the last line of the (filtered) reply against doc["answer"]."""
    score = 1.0 if extract_option(results[0].split("\n")[-1]) == extract_option(doc["answer"]) else 0.0
    out: dict[str, Any] = {"overall_accuracy": {"score": score}}
    if per_type:
        for qt_name, key in QUESTION_TYPES.items():
            out[f"{key}_accuracy"] = {"score": score, "question_type": doc.get("question_type", "unknown"),
                                      "target_type": qt_name}
    return out


def strip_reasoning_tags(text: str, tag_pairs: list[list[str]]) -> str:
    """lmms_eval/api/reasoning.py strip_reasoning_tags (an unclosed opening tag is left as is)."""
    result = text
    for start_tag, end_tag in tag_pairs:
        while start_tag in result and end_tag in result:
            start = result.find(start_tag)
            end = result.find(end_tag, start)
            if start == -1 or end == -1:
                break
            result = result[:start] + result[end + len(end_tag):]
        if end_tag in result and start_tag not in result:
            result = result.rsplit(end_tag, 1)[-1]
    return result.strip()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample(vintage: str, doc_id: int, doc: dict[str, Any], raw: str) -> dict[str, Any]:
    """One sample as ``save_results_samples`` of ``vintage`` writes it, for the raw model output ``raw``."""
    reasoning = vintage == "v0.7-reasoning"
    filtered = strip_reasoning_tags(raw, [["<think>", "</think>"]]) if reasoning else raw  # take_first filter
    prompt = f"Question: {doc['question']}\nChoices: {doc['choices']}\nReply only to the corresponding option.\nAnswer:"
    saved_doc = {k: v for k, v in doc.items() if k != "image_path"}  # images are not serialisable
    example: dict[str, Any] = {
        "doc_id": doc_id, "doc": saved_doc, "target": doc["answer"],
        "arguments": [prompt, {"max_new_tokens": 128, "until": ["\n\n"]}],
        # evaluator: [req.resps ...] (v0.3-v0.6); [req.raw_filtered_resps.get(key, req.resps) ...] (v0.7)
        "resps": [raw] if reasoning else [[raw]],
        "filtered_resps": [filtered],
    }
    if vintage.startswith("v0.7"):
        example["token_counts"] = [None]
    example["doc_hash"] = _hash(json.dumps(saved_doc, indent=2, ensure_ascii=False))
    example["prompt_hash"] = _hash(prompt)
    example["target_hash"] = _hash(str(doc["answer"]))
    example.update(process_results(doc, [filtered], per_type=vintage.startswith("v0.7")))
    # --- save_results_samples
    example["input"] = example["arguments"][0]
    if vintage == "v0.3":
        example["arguments"] = {i: k for i, k in enumerate(example["arguments"][1])}
        example["target"] = str(example["target"])
        return example
    if vintage == "v0.4":
        if example["filtered_resps"] == example["resps"][0] or example["filtered_resps"] == example["resps"]:
            example.pop("resps")
    else:  # v0.7: flatten one-request samples, then drop resps equal to filtered_resps
        if isinstance(example["resps"], list) and len(example["resps"]) == 1:
            example["resps"] = example["resps"][0]
        if isinstance(example["filtered_resps"], list) and len(example["filtered_resps"]) == 1:
            example["filtered_resps"] = example["filtered_resps"][0]
        if example["resps"] == example["filtered_resps"]:
            example.pop("resps")
        elif (isinstance(example["resps"], list) and len(example["resps"]) == 1
              and example["resps"][0] == example["filtered_resps"]):
            example.pop("resps")
    example["target"] = str(example["target"])
    example.pop("arguments")
    example.pop("doc")
    return example


def write_samples(path: Path, vintage: str, items: list[dict[str, Any]], raws: dict[int, str]) -> Path:
    """A samples JSONL for ``raws`` (item index -> raw output), one ``json.dumps`` line per sample."""
    with open(path, "w", encoding="utf-8") as fh:
        for doc_id, raw in raws.items():
            fh.write(json.dumps(sample(vintage, doc_id, items[doc_id], raw), ensure_ascii=False) + "\n")
    return path


def lmms_score(items: list[dict[str, Any]], raws: dict[int, str], vintage: str) -> dict[int, bool]:
    """What lmms-eval itself scored per item (the test oracle)."""
    reasoning = vintage == "v0.7-reasoning"
    out = {}
    for i, raw in raws.items():
        filtered = strip_reasoning_tags(raw, [["<think>", "</think>"]]) if reasoning else raw
        out[i] = process_results(items[i], [filtered], per_type=False)["overall_accuracy"]["score"] == 1.0
    return out


def write_v02_json(path: Path, items: list[dict[str, Any]], raws: dict[int, str]) -> Path:
    """lmms-eval v0.2.0's ``<task>.json``: evaluator.py's example dicts under "logs" (doc images go
    through ``_handle_non_serializable``, i.e. ``str(obj)``)."""
    logs = []
    for doc_id, raw in raws.items():
        doc = {**items[doc_id], "images": ["<PIL.Image.Image image mode=RGB size=640x480>"]}
        doc.pop("image_path")
        prompt = f"Question: {doc['question']}\nChoices: {doc['choices']}\nReply only to the corresponding option.\nAnswer:"
        example = {"doc_id": doc_id, "target": doc["answer"], "doc": doc,
                   "arguments": [(prompt, doc_id, "viewspatial", "test")], "resps": [[raw]], "filtered_resps": [raw]}
        example.update(process_results(doc, [raw], per_type=False))
        logs.append(example)
    data = {"args": {"model": "qwen2_vl", "tasks": "viewspatial", "log_samples": True}, "model_configs": {"task": "viewspatial"},
            "logs": sorted(logs, key=lambda x: x["doc_id"]), "time": "0601_1200"}
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False), encoding="utf-8")
    return path
