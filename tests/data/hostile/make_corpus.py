#!/usr/bin/env python
"""Hostile input files for the import commands, generated (no committed binaries).

Each case is one small writer function ``write_X(folder) -> Path``; :data:`CASES` lists them as
:class:`HostileCase` (name, writer, the command it targets, the options after the file, substrings
its one-line error must hold). :func:`command_line` gives a case's full argument list.
Every file must be refused: exit code 2, one line on stderr naming the file (and the line where
there is one), no traceback, the workspace byte-identical.

Targets:
- ``"preds"``: ``orienteer import preds FILE --bench B ARGS`` (ARGS ``--run new`` for most cases; none
  for the run-column cases) where B is a ViewSpatial-Bench JSON benchmark of at least 10 items (its
  padded-id prefix is ``viewspatial_test_``), such as the tests' ``ws_with_bench`` (benchmark ``vs``).
- ``"bench"``: ``orienteer import bench FILE --name new``.

CSV files are written the way Python's ``csv.writer`` (3.11) writes them, then damaged by hand
where the case is about damage; JSONL the way ``json.dumps`` writes it (``allow_nan=True``, its
default, is how ``Infinity`` and ``NaN`` get into real files).

    python tests/data/hostile/make_corpus.py OUT_DIR      # writes every case into OUT_DIR
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostileCase:
    name: str
    write: Callable[[Path], Path]
    command: str  # "preds" or "bench"
    expect: tuple[str, ...]  # substrings of the one-line error (besides "error:")
    args: tuple[str, ...] = ()  # the command's options after FILE (and --bench B for preds)


def command_line(case: HostileCase, path: Path, bench: str = "vs") -> list[str]:
    """The orienteer arguments (after ``-w WS``) that run ``case`` on its file ``path``."""
    if case.command == "bench":
        return ["import", "bench", str(path), "--name", "new", *case.args]
    return ["import", "preds", str(path), "--bench", bench, *case.args]


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def _id_csv(folder: Path, name: str, bad: str) -> Path:
    """A generic CSV of good index ids with one bad id on line 4."""
    return _write(folder, name, _csv([["id", "pred"], [0, "A"], [1, "B"], [bad, "C"], [3, "D"]]))


# --- item ids (issue 14, item 1): never a lenient cast ----------------------------------------------

def write_id_fraction(folder: Path) -> Path:
    return _id_csv(folder, "id_fraction.csv", "1.5")


def write_id_fraction_json(folder: Path) -> Path:
    rows = [{"id": 0, "pred": "A"}, {"id": 2.7, "pred": "B"}]
    return _write(folder, "id_fraction.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def write_id_float_integer_json(folder: Path) -> Path:
    rows = [{"id": 0, "pred": "A"}, {"id": 1.0, "pred": "B"}]
    return _write(folder, "id_float.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def write_id_exponent(folder: Path) -> Path:
    return _id_csv(folder, "id_exponent.csv", "1e1")


def write_id_hex(folder: Path) -> Path:
    return _id_csv(folder, "id_hex.csv", "0x10")


def write_id_underscore(folder: Path) -> Path:
    return _id_csv(folder, "id_underscore.csv", "1_0")


def write_id_sign(folder: Path) -> Path:
    return _id_csv(folder, "id_sign.csv", "+2")


def write_id_space(folder: Path) -> Path:
    return _id_csv(folder, "id_space.csv", " 2")


def write_id_unicode_digit(folder: Path) -> Path:
    return _id_csv(folder, "id_unicode_digit.csv", "\u0663")  # ARABIC-INDIC DIGIT THREE: str.isdigit() says yes


def write_id_unknown_prefix(folder: Path) -> Path:
    return _id_csv(folder, "id_unknown_prefix.csv", "foo-7")


def write_id_other_benchmark(folder: Path) -> Path:
    """Another benchmark's padded ids, and no gold column to catch it: used to import by position."""
    rows = [["id", "pred"]] + [[f"demo_{i:06d}", "A"] for i in range(5)]
    return _write(folder, "id_other_benchmark.csv", _csv(rows))


def write_id_out_of_range(folder: Path) -> Path:
    return _id_csv(folder, "id_out_of_range.csv", "999999")


def write_id_boolean_json(folder: Path) -> Path:
    rows = [{"id": 0, "pred": "A"}, {"id": True, "pred": "B"}]
    return _write(folder, "id_boolean.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def write_id_missing(folder: Path) -> Path:
    return _id_csv(folder, "id_missing.csv", "")


# --- strict CSV (item 2) ---------------------------------------------------------------------------

def write_csv_stray_quote(folder: Path) -> Path:
    """An opening quote never closed: Python's csv (non-strict) swallowed lines 3.. into one field."""
    text = _csv([["id", "pred"], [0, "A"]]) + '1,"B\r\n' + _csv([[2, "C"], [3, "D"], [4, "A"]])
    return _write(folder, "stray_quote.csv", text)


def write_csv_text_after_quote(folder: Path) -> Path:
    text = _csv([["id", "pred"], [0, "A"]]) + '1,"B"C\r\n' + _csv([[2, "C"]])
    return _write(folder, "text_after_quote.csv", text)


def write_csv_ragged_short(folder: Path) -> Path:
    text = _csv([["id", "pred", "gt"], [0, "A", "A"]]) + "1,B\r\n" + _csv([[2, "C", "C"]])
    return _write(folder, "ragged_short.csv", text)


def write_csv_ragged_long(folder: Path) -> Path:
    text = _csv([["id", "pred"], [0, "A"], [1, "B", "extra"], [2, "C"]])
    return _write(folder, "ragged_long.csv", text)


def write_tsv_stray_quote(folder: Path) -> Path:
    text = "id\tpred\r\n0\tA\r\n1\t\"B\r\n2\tC\r\n"
    return _write(folder, "stray_quote.tsv", text)


def write_official_csv_stray_quote(folder: Path) -> Path:
    header = ["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"]
    good = [0, "Where is it?\nReply only to the corresponding option.\nAnswer:", "Camera perspective - Relative Direction",
            "A", "A. left", True]
    text = _csv([header, good]) + '1,"Where is it?,Camera perspective - Relative Direction,B,B. left,True\r\n'
    return _write(folder, "official_stray_quote.csv", text)


def write_csv_nul_byte(folder: Path) -> Path:
    return _write(folder, "nul_byte.csv", b"id,pred\r\n0,A\r\n1,B\x00\r\n")


def write_csv_not_utf8(folder: Path) -> Path:
    return _write(folder, "not_utf8.csv", b"id,pred\r\n0,A\r\n1,caf\xe9\r\n")


def write_csv_duplicate_header(folder: Path) -> Path:
    return _write(folder, "duplicate_header.csv", _csv([["id", "pred", "pred"], [0, "A", "B"]]))


# --- probabilities (item 9) ------------------------------------------------------------------------

def _probs_jsonl(folder: Path, name: str, probs: object) -> Path:
    rows = [{"id": 0, "probs": {"A": 0.7, "B": 0.1, "C": 0.1, "D": 0.1}}, {"id": 1, "probs": probs}]
    return _write(folder, name, "\n".join(json.dumps(r) for r in rows) + "\n")


def write_probs_infinity(folder: Path) -> Path:
    return _probs_jsonl(folder, "probs_infinity.jsonl", {"A": float("inf"), "B": 0.0})


def write_probs_nan(folder: Path) -> Path:
    return _probs_jsonl(folder, "probs_nan.jsonl", {"A": float("nan"), "B": 0.5})


def write_probs_negative(folder: Path) -> Path:
    return _probs_jsonl(folder, "probs_negative.jsonl", {"A": -0.2, "B": -1.6})


def write_probs_text_value(folder: Path) -> Path:
    return _probs_jsonl(folder, "probs_text.jsonl", {"A": "high", "B": 0.1})


def write_probs_csv_infinity(folder: Path) -> Path:
    rows = [["item_id", "reply", "probs"], ["0", "A", '{"A":0.9,"B":0.1}'], ["1", "B", '{"A":Infinity,"B":0.1}']]
    return _write(folder, "probs_infinity.csv", _csv(rows))


def write_probs_csv_broken_json(folder: Path) -> Path:
    rows = [["item_id", "reply", "probs"], ["0", "A", '{"A":0.9,"B":0.1}'], ["1", "B", '{"A":0.9,']]
    return _write(folder, "probs_broken.csv", _csv(rows))


# --- names from a file's run column ----------------------------------------------------------------

def write_run_name_control(folder: Path) -> Path:
    rows = [["run", "id", "pred"], ["ok-run", 0, "A"], ["bad\x1b[31mrun", 1, "B"]]
    return _write(folder, "run_name_control.csv", _csv(rows))


def write_run_name_path(folder: Path) -> Path:
    rows = [{"run": "ok", "id": 0, "pred": "A"}, {"run": "../../etc/x", "id": 1, "pred": "B"}]
    return _write(folder, "run_name_path.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


# --- JSONL structure ------------------------------------------------------------------------------

def write_jsonl_deep_nesting(folder: Path) -> Path:
    return _write(folder, "deep.jsonl", '{"id": 0, "pred": "A"}\n{"id": 1, "pred": ' + "[" * 100_000 + "]" * 100_000 + "}\n")


def write_jsonl_not_object(folder: Path) -> Path:
    return _write(folder, "not_object.jsonl", '{"id": 0, "pred": "A"}\n[1, "B"]\n')


# --- benchmarks through the same strict CSV reader ---------------------------------------------------

def write_bench_csv_stray_quote(folder: Path) -> Path:
    header = ["id", "task", "question", "options", "answer", "images"]
    row = ["q0", "Camera perspective - Relative Direction", "Where?", "A. left | B. right", "A", "a.jpg"]
    text = _csv([header, row]) + 'q1,Camera perspective - Relative Direction,"Where?,A. left | B. right,A,b.jpg\r\n'
    return _write(folder, "bench_stray_quote.csv", text)


def write_bench_csv_ragged(folder: Path) -> Path:
    header = ["id", "task", "question", "options", "answer", "images"]
    row = ["q0", "Camera perspective - Relative Direction", "Where?", "A. left | B. right", "A", "a.jpg"]
    return _write(folder, "bench_ragged.csv", _csv([header, row, row[:4]]))


def _case(name: str, write: Callable[[Path], Path], command: str, *expect: str,
          args: tuple[str, ...] | None = None) -> HostileCase:
    return HostileCase(name, write, command, tuple(expect), args if args is not None else
                       (("--run", "new") if command == "preds" else ()))


CASES: list[HostileCase] = [
    _case("id-fraction", write_id_fraction, "preds", "id_fraction.csv", "line 4", "'1.5' matches no item"),
    _case("id-fraction-json", write_id_fraction_json, "preds", "id_fraction.jsonl", "line 2", "'2.7' matches no item"),
    _case("id-float-integer-json", write_id_float_integer_json, "preds", "id_float.jsonl", "line 2", "'1.0' matches no item"),
    _case("id-exponent", write_id_exponent, "preds", "id_exponent.csv", "line 4", "'1e1' matches no item"),
    _case("id-hex", write_id_hex, "preds", "id_hex.csv", "line 4", "'0x10' matches no item"),
    _case("id-underscore", write_id_underscore, "preds", "id_underscore.csv", "line 4", "'1_0' matches no item"),
    _case("id-sign", write_id_sign, "preds", "id_sign.csv", "line 4", "'+2' matches no item"),
    _case("id-space", write_id_space, "preds", "id_space.csv", "line 4", "' 2' matches no item"),
    _case("id-unicode-digit", write_id_unicode_digit, "preds", "id_unicode_digit.csv", "line 4", "matches no item"),
    _case("id-unknown-prefix", write_id_unknown_prefix, "preds", "id_unknown_prefix.csv", "line 4", "'foo-7' matches no item"),
    _case("id-other-benchmark", write_id_other_benchmark, "preds", "id_other_benchmark.csv", "line 2",
          "'demo_000000' matches no item"),
    _case("id-out-of-range", write_id_out_of_range, "preds", "id_out_of_range.csv", "line 4", "'999999' matches no item"),
    _case("id-boolean-json", write_id_boolean_json, "preds", "id_boolean.jsonl", "line 2", "'True' matches no item"),
    _case("id-missing", write_id_missing, "preds", "id_missing.csv", "line 4", "missing item id"),
    _case("csv-stray-quote", write_csv_stray_quote, "preds", "stray_quote.csv", "line 3", "quoted field is still open"),
    _case("csv-text-after-quote", write_csv_text_after_quote, "preds", "text_after_quote.csv", "line 3", "malformed CSV"),
    _case("csv-ragged-short", write_csv_ragged_short, "preds", "ragged_short.csv", "line 3", "expected 3 fields"),
    _case("csv-ragged-long", write_csv_ragged_long, "preds", "ragged_long.csv", "line 3", "expected 2 fields"),
    _case("tsv-stray-quote", write_tsv_stray_quote, "preds", "stray_quote.tsv", "line 3", "quoted field is still open"),
    _case("official-csv-stray-quote", write_official_csv_stray_quote, "preds", "official_stray_quote.csv", "line 5",
          "quoted field is still open"),
    _case("csv-nul-byte", write_csv_nul_byte, "preds", "nul_byte.csv", "line 3", "NUL byte"),
    _case("csv-not-utf8", write_csv_not_utf8, "preds", "not_utf8.csv", "line 3", "not valid UTF-8"),
    _case("csv-duplicate-header", write_csv_duplicate_header, "preds", "duplicate_header.csv", "line 1", "duplicate column"),
    _case("probs-infinity", write_probs_infinity, "preds", "probs_infinity.jsonl", "line 2", "probs:", "finite"),
    _case("probs-nan", write_probs_nan, "preds", "probs_nan.jsonl", "line 2", "probs:", "finite"),
    _case("probs-negative", write_probs_negative, "preds", "probs_negative.jsonl", "line 2", "probs:", ">= 0"),
    _case("probs-text-value", write_probs_text_value, "preds", "probs_text.jsonl", "line 2", "probs:", "expected a number"),
    _case("probs-csv-infinity", write_probs_csv_infinity, "preds", "probs_infinity.csv", "line 3", "probs:",
          "Infinity is not a probability"),
    _case("probs-csv-broken-json", write_probs_csv_broken_json, "preds", "probs_broken.csv", "line 3", "probs:", "invalid JSON"),
    _case("run-name-control", write_run_name_control, "preds", "run_name_control.csv", "line 3", "run name",
          "\\x1b", args=()),
    _case("run-name-path", write_run_name_path, "preds", "run_name_path.jsonl", "line 2", "run name", args=()),
    _case("jsonl-deep-nesting", write_jsonl_deep_nesting, "preds", "deep.jsonl", "line 2", "invalid JSON"),
    _case("jsonl-not-object", write_jsonl_not_object, "preds", "not_object.jsonl", "line 2", "expected a JSON object"),
    _case("bench-csv-stray-quote", write_bench_csv_stray_quote, "bench", "bench_stray_quote.csv", "line 3",
          "quoted field is still open"),
    _case("bench-csv-ragged", write_bench_csv_ragged, "bench", "bench_ragged.csv", "line 3", "expected 6 fields"),
]


def write_all(folder: Path) -> dict[str, Path]:
    """Write every case into ``folder`` (created if needed); returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {case.name: case.write(folder) for case in CASES}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py OUT_DIR")
    for name, path in write_all(Path(sys.argv[1])).items():
        print(f"{name}\t{path}")
