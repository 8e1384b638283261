"""The CLI in pipes, scripts and 80-column terminals (issue 16, "CLI in pipes and scripts").

Piped (CliRunner's stdout is not a terminal, nor is a subprocess' pipe): tables become tab-separated rows,
remarks go to stderr. At 80 columns in a real terminal (a pseudo-terminal the console script runs in), the
id, status and accuracy columns keep their width.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orienteer.jobs.params import Param, parse_args, to_args
from orienteer.tui.cli.main import app
from tests.conftest import random_replies, write_official_csv

runner = CliRunner()
EXE = shutil.which("orienteer", path=str(Path(sys.executable).parent))
# A reply holding a tab, a line break and an escape sequence: the last line ("B") is the answer.
NASTY = "Thinking\tabout it \x1b[2J\nB"


def cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def pipe_ws(tmp_path: Path, vs_bench_file: Path, vs_items: list[dict]) -> Path:
    root = tmp_path / "ws"
    assert cli("-w", str(root), "import", "bench", str(vs_bench_file), "--name", "viewspatial").exit_code == 0
    replies = random_replies(vs_items, seed=3)
    replies[1] = NASTY
    for name, flip in (("base", 5), ("other-run-with-a-long-name", 7)):
        path = write_official_csv(tmp_path / f"{name}.csv", vs_items, replies, flip_verdict_every=flip)
        result = cli("-w", str(root), "import", "preds", str(path), "--bench", "viewspatial", "--run", name)
        assert result.exit_code == 0, result.output
    return root


def tsv(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = stdout.rstrip("\n").split("\n")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), "every row has every column"
    return header, rows


def test_failures_piped_are_tab_separated_every_column_nothing_cut(pipe_ws: Path) -> None:
    total = json.loads(cli("-w", str(pipe_ws), "failures", "--all", "--json").stdout)["total"]
    result = cli("-w", str(pipe_ws), "failures", "--all", "--limit", "0")  # 0: no limit
    assert result.exit_code == 0, result.output
    header, rows = tsv(result.stdout)
    assert header == ["run", "item", "task", "gold", "pred", "category", "reply"]
    assert len(rows) == total  # every row, not a page of 50
    assert f"{total} matching" in result.stderr  # the title is a remark: stderr
    nasty = [r for r in rows if r[0] == "base" and r[1] == "1"]
    assert nasty[0][6] == "Thinking\\tabout it \\x1b[2J\\nB"  # escaped: one line, one field, nothing obeyed
    assert "\x1b" not in result.stdout
    long_task = [r for r in rows if r[2] == "Person perspective - Relative Direction"]
    assert long_task, "the full task name, not its short form"


def test_audit_piped_and_its_count_on_stderr(pipe_ws: Path) -> None:
    doc = json.loads(cli("-w", str(pipe_ws), "audit", "--run", "base", "--json").stdout)
    result = cli("-w", str(pipe_ws), "audit", "--run", "base", "--limit", "0")
    assert result.exit_code == 0, result.output
    header, rows = tsv(result.stdout)
    assert header[-2:] == ["file_verdict", "source_line"]
    assert len(rows) == doc["disagreements"] > 0  # --limit 0: all of them
    assert all(r[1] and r[2] for r in rows)  # item and task are there
    assert "items disagree with the file's own verdict" in result.stderr
    assert "disagree" not in result.stdout


def test_other_tables_piped(pipe_ws: Path) -> None:
    runs = cli("-w", str(pipe_ws), "runs")
    header, rows = tsv(runs.stdout)
    assert header[:5] == ["run", "benchmark", "items", "cover", "acc %"] and header[-1] == "random weights"
    assert [r[0] for r in rows] == ["base", "other-run-with-a-long-name"]
    report = cli("-w", str(pipe_ws), "report")
    header, rows = tsv(report.stdout)
    assert header[:3] == ["task", "n", "base"] and rows[-1][0] == "Overall"
    assert "McNemar" in report.stderr  # the caption explains the stars: a remark, on stderr
    confusion = cli("-w", str(pipe_ws), "confusion", "--run", "base")
    first, second = confusion.stdout.split("\n\n")  # two tables, a blank line between
    assert first.startswith("category\tcount\t") and second.startswith("gold \\ pred\t")
    benchmarks = cli("-w", str(pipe_ws), "benchmarks")
    assert benchmarks.stdout.startswith("benchmark\titems\ttasks\tformat\timage root\n")
    compare = cli("-w", str(pipe_ws), "compare", "base", "other-run-with-a-long-name")
    assert compare.stdout.split("\n")[0].split("\t")[:3] == ["task", "n", "base"]


def _fake_job(folder: Path, status_error: str | None) -> None:
    """A job folder as the runtime writes it (spec, state, progress, exit), long finished."""
    t0 = time.time() - 3600
    folder.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (folder / "spec.json").write_text(json.dumps({"kind": "sleep", "params": {}, "argv": [], "created_at": t0}))
    (folder / "state.json").write_text(json.dumps({"pid": child.pid, "started_at": t0, "phase": "running"}))
    (folder / "progress.jsonl").write_text("".join(json.dumps({"t": t0 + k, "done": k, "total": 20}) + "\n"
                                                   for k in range(3)))
    (folder / "exit.json").write_text(json.dumps({"code": 1, "ended_at": t0 + 3, "error": status_error}))


@pytest.fixture
def jobs_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    _fake_job(ws / "jobs" / "20260101-000000-sleep-a1b2", "CUDA out of memory. " * 12 + "\ttabbed")
    return ws


def test_job_list_piped_keeps_status(jobs_ws: Path) -> None:
    result = cli("-w", str(jobs_ws), "job", "list", "--limit", "0")
    assert result.exit_code == 0, result.output
    header, rows = tsv(result.stdout)
    assert header == ["job", "kind", "status", "progress", "rate", "eta", "elapsed", "on", "note"]
    assert rows[0][0] == "20260101-000000-sleep-a1b2" and rows[0][2] == "failed"
    assert rows[0][8].endswith("\\ttabbed") and rows[0][8].count("CUDA out of memory") == 12


# --- a real terminal, 80 columns ---------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(*args: str, columns: int = 80) -> tuple[int, list[str]]:
    """Run the console script on a pseudo-terminal ``columns`` wide; its screen lines, colours removed."""
    assert EXE
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.Popen([EXE, *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=120)
    os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace")).replace("\r\n", "\n")
    return code, text.split("\n")


def _cells(lines: list[str]) -> list[list[str]]:
    """The cells of a boxed table's header (┃) and body (│) lines."""
    return [[c.strip() for c in re.split("[│┃]", line.strip("│┃"))] for line in lines if line[:1] in ("│", "┃")]


def test_failures_and_audit_at_80_columns_keep_item_and_task(pipe_ws: Path) -> None:
    code, lines = in_terminal("-w", str(pipe_ws), "failures", "--limit", "8")
    assert code == 0, lines
    assert all(len(line) <= 80 for line in lines)
    rows = _cells(lines)
    at = rows[0].index("item")  # a page of one run names it in the title instead of a column
    assert rows[0][at:at + 6] == ["item", "task", "gold", "pred", "category", "reply"] and len(rows) == 9
    for row in rows[1:]:
        assert row[at].isdigit() and row[at + 1] and row[at + 2] and row[at + 4], row  # item id whole; task, gold, category
    code, lines = in_terminal("-w", str(pipe_ws), "audit", "--run", "base", "--limit", "5")
    assert code == 0
    assert all(len(line) <= 80 for line in lines)
    rows = _cells(lines)
    assert rows[0][:2] == ["item", "task"] and len(rows) == 6
    assert all(row[0].isdigit() and row[1] for row in rows[1:])


def test_job_list_at_80_columns_keeps_id_and_status(jobs_ws: Path) -> None:
    code, lines = in_terminal("-w", str(jobs_ws), "job", "list")
    assert code == 0, lines
    assert all(len(line) <= 80 for line in lines)
    row = next(line for line in lines if line.startswith("2026"))
    assert row.startswith("20260101-000000-sleep-a1b2 ") and " failed " in row


@pytest.mark.parametrize("columns", [60, 80])
def test_runs_in_a_narrow_terminal_keep_run_and_accuracy(pipe_ws: Path, columns: int) -> None:
    doc = json.loads(cli("-w", str(pipe_ws), "runs", "--json").stdout)
    code, lines = in_terminal("-w", str(pipe_ws), "runs", columns=columns)
    assert code == 0
    assert all(len(line) <= columns for line in lines)
    header, *rows = _cells(lines)
    assert header[0] == "run" and header[2:5] == ["items", "cover", "acc %"]  # benchmark may give way
    assert [r[4] for r in rows] == [f"{100 * run['accuracy']:.1f}" for run in doc]
    assert rows[0][0] == "base"


# --- scripts: version, completion, warnings, bare orienteer, flags ------------------------------------


def test_version_and_completion() -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.exit_code == 0 and result.stdout == f"orienteer {version('orienteer')}\n"
    help_text = cli("--help").output
    assert "--install-completion" in help_text and "--show-completion" in help_text
    assert EXE
    # typer detects the shell from the process tree (shellingham): run it from a bash that does not exec it
    shown = subprocess.run(["bash", "-c", '"$0" --show-completion; true', EXE], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and "_ORIENTEER_COMPLETE" in shown.stdout


def test_bare_orienteer_without_a_terminal_prints_a_hint(tmp_path: Path) -> None:
    assert EXE
    for stdin in (subprocess.DEVNULL, None):  # stdin and stdout not terminals; stdout piped alone
        out = subprocess.run([EXE, "-w", str(tmp_path)], stdin=stdin, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.count("\n") == 1 and "needs a terminal" in out.stderr


def test_warnings_go_to_stderr(tmp_path: Path, vs_bench_file: Path) -> None:
    result = cli("-w", str(tmp_path / "ws"), "import", "bench", str(vs_bench_file), "--name", "b")
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "images found" in result.stderr  # none of its images exist here
    assert "warning" not in result.stdout and "imported benchmark b" in result.stdout
    as_json = cli("-w", str(tmp_path / "ws"), "import", "bench", str(vs_bench_file), "--name", "b", "--replace", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["bench"] == "b" and doc["replaced"] is True and doc["images_found"] == 0


def test_import_preds_json(tmp_path: Path, vs_bench_file: Path, vs_items: list[dict]) -> None:
    ws = str(tmp_path / "ws")
    assert cli("-w", ws, "import", "bench", str(vs_bench_file), "--name", "b").exit_code == 0
    path = write_official_csv(tmp_path / "r.csv", vs_items, random_replies(vs_items))
    result = cli("-w", ws, "import", "preds", str(path), "--bench", "b", "--run", "r", "--json")
    [doc] = json.loads(result.stdout)
    assert doc["run"] == "r" and doc["items"] == len(vs_items) and doc["answers"] == len(vs_items)


def test_export_failures_creates_the_missing_folder(pipe_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "fails.csv"
    result = cli("-w", str(pipe_ws), "export", "failures", "--run", "base", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_negative_limit_is_refused(pipe_ws: Path) -> None:
    result = cli("-w", str(pipe_ws), "failures", "--limit", "-1")
    assert result.exit_code == 2 and "--limit" in result.output


def test_boolean_job_options_take_true_and_false() -> None:
    params = (Param("resume", "bool", False), Param("rest", "bool", True), Param("n", "int", 3))
    parse = lambda *a: parse_args("k", params, list(a))  # noqa: E731
    assert parse("--resume")["resume"] is True
    assert parse("--resume", "false")["resume"] is False
    assert parse("--resume", "TRUE", "--n", "4") == parse("--resume=true", "--n", "4")
    assert parse("--rest", "false")["rest"] is False and parse("--rest=false")["rest"] is False
    assert parse("--no-rest")["rest"] is False and parse("--rest", "no")["rest"] is False
    assert parse("--resume", "--n", "5")["resume"] is True  # the next option is not a value
    assert parse(*to_args(params, {"rest": False, "resume": True}))["rest"] is False
    with pytest.raises(Exception, match="expects true or false"):
        parse("--resume=maybe")


def test_job_option_help_is_aligned_and_has_no_default_none() -> None:
    result = cli("job", "run", "eval", "--help")
    assert result.exit_code == 0
    assert "default None" not in result.output
    lines = [line.rstrip() for line in result.output.splitlines()[2:] if line.strip()]
    # every line of an option's help sits in the help column: continuation lines are indented past the flags
    column = lines[0].index(lines[0].split()[1])
    assert all(line.startswith(" " * column) or line.lstrip().startswith("--") for line in lines)
    assert "--allow-overlap [true|false]" in result.output


def test_piped_messages_are_not_wrapped(pipe_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / ("a-long-folder-name-" * 6) / "fails.csv"
    result = cli("-w", str(pipe_ws), "export", "failures", "--run", "base", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1 and result.stdout.rstrip("\n").endswith(str(out))
