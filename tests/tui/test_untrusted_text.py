"""Untrusted strings from input files never reach the terminal raw (issue 14, item 3).

One workspace carries terminal escapes, an OSC title, BEL, CR, Rich markup and a right-to-left override
in its replies, questions, options, task names, image paths, run, benchmark, dataset and model names and
notes. Every CLI read command and every app screen must show them as visible escapes (``\\x1b``) with
the markup literal, and keep its own layout (the failures header); ``--json`` keeps them exact.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orienteer.data.workspace import Workspace
from tests.conftest import make_viewspatial_items

CLEAR = "\x1b[2J"
OSC = "\x1b]0;pwned\x07"
HOSTILE = f"{CLEAR}{OSC}\r[red]x[/red]\u202e[link=http://evil.example]y[/link]"
RUN_A = f"run-a{CLEAR}[red]r[/red]"
RUN_B = f"run-b{OSC}\u202e"
BENCH = f"bench{CLEAR}[bold]b[/bold]"
TASK = f"Camera perspective - Relative Direction{CLEAR}"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # anything but \n (and \t)

runner = CliRunner()


def _cli(ws: Path, *args: str) -> Any:
    from orienteer.tui.cli.main import app

    return runner.invoke(app, ["-w", str(ws), *args])


def _hostile_bench(path: Path) -> list[dict[str, Any]]:
    """Questions and image paths go through the importer; task names and labels (which it checks) are
    changed in the database afterwards."""
    items = make_viewspatial_items(n=12, seed=5)
    items[0]["question"] = f"Where is the chair?{HOSTILE}"
    items[2]["image_path"] = [f"img{CLEAR}.jpg"]
    path.write_text(json.dumps(items), encoding="utf-8")
    return items


def _make_hostile_in_db(con: Any) -> None:
    plain_task = TASK.replace(CLEAR, "")
    for table in ("items", "predictions", "run_task_stats"):
        con.execute(f"UPDATE {table} SET task = ? WHERE task = ?", [TASK, plain_task])
    labels, gold = con.execute("SELECT option_labels, answer_label FROM items WHERE item_idx = 1").fetchone()
    con.execute("UPDATE items SET option_labels = ?, answer_label = ? WHERE item_idx = 1",
                [[f"{x}{OSC}" if x == gold else x for x in labels], f"{gold}{OSC}"])
    con.execute("UPDATE predictions SET gold_label = ? WHERE item_idx = 1", [f"{gold}{OSC}"])
    con.execute("UPDATE predictions SET pred_label = ? WHERE item_idx = 1 AND pred_label = ?", [f"{gold}{OSC}", gold])


def _preds(path: Path, items: list[dict[str, Any]], wrong_every: int, verdict_flip: bool) -> None:
    """The official CSV; every ``wrong_every``-th reply picks a wrong letter and carries the hostile text."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ID", "Question", "Question_Type", "Predicted Answer", "Correct Answer", "IsCorrect"])
        for i, item in enumerate(items):
            gold = item["answer"][0]
            wrong = i % wrong_every == 0
            letter = ("ABCD".replace(gold, "") if wrong else gold)[0]
            reply = f"I think{HOSTILE}\nso {letter}" if wrong else letter
            correct = (not wrong) != (verdict_flip and i == 0)
            writer.writerow([i, item["question"], item["question_type"], reply, item["answer"], correct])


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Imported with plain names, then renamed in the database (as a workspace from before the naming rule)."""
    tmp = tmp_path_factory.mktemp("hostile")
    root = tmp / "ws"
    items = _hostile_bench(tmp / "bench.json")
    assert _cli(root, "import", "bench", str(tmp / "bench.json"), "--name", "plain").exit_code == 0
    _preds(tmp / "a.csv", items, wrong_every=2, verdict_flip=True)
    _preds(tmp / "b.csv", items, wrong_every=3, verdict_flip=False)
    for run, file in (("a", "a.csv"), ("b", "b.csv")):
        result = _cli(root, "import", "preds", str(tmp / file), "--bench", "plain", "--run", run)
        assert result.exit_code == 0, result.output
    with Workspace(root).write() as con:
        _make_hostile_in_db(con)
        con.execute("UPDATE benchmarks SET name = ?, notes = ?", [BENCH, HOSTILE])
        con.execute("UPDATE runs SET name = ?, notes = ?, model = ? WHERE name = 'a'", [RUN_A, HOSTILE, f"m{OSC}"])
        con.execute("UPDATE runs SET name = ? WHERE name = 'b'", [RUN_B])
        con.execute("INSERT INTO datasets (dataset_id, name, path, n_examples, composition, source_format, notes, "
                    "created_by_job, created_at) VALUES (1, ?, ?, 3, '{}', 'items', ?, ?, now())",
                    [f"ds{CLEAR}", f"/tmp/ds{OSC}.jsonl", HOSTILE, f"job{CLEAR}"])
        con.execute("INSERT INTO models (model_id, name, path, base_model, method, notes, created_by_job, created_at) "
                    "VALUES (1, ?, ?, ?, 'lora', ?, NULL, now())",
                    [f"model{CLEAR}[red]m[/red]", f"/ckpt/{OSC}", f"base{CLEAR}", HOSTILE])
    _hostile_job(root / "jobs" / "20260101-000000-sleep-0001")
    return root


def _hostile_job(folder: Path) -> None:
    """A failed job whose argv, progress note, error and log quote the hostile text."""
    folder.mkdir(parents=True)
    t0 = 1_767_225_600.0
    (folder / "spec.json").write_text(json.dumps({"kind": "sleep", "params": {"steps": 3},
                                                  "argv": ["orienteer", "job", "run", "sleep", "--note", HOSTILE],
                                                  "created_at": t0}), encoding="utf-8")
    (folder / "state.json").write_text(json.dumps({"pid": 1, "started_at": t0, "phase": "running"}), encoding="utf-8")
    (folder / "exit.json").write_text(json.dumps({"code": 1, "ended_at": t0 + 5, "error": f"RuntimeError: {HOSTILE}"}),
                                      encoding="utf-8")
    (folder / "progress.jsonl").write_text(json.dumps({"t": t0 + 1, "done": 1, "total": 3, "note": HOSTILE}) + "\n",
                                           encoding="utf-8")
    (folder / "log.txt").write_text(f"step 1{HOSTILE}\nTraceback: {HOSTILE}\n", encoding="utf-8")


def _assert_safe(output: str, *, must_show: tuple[str, ...] = ("\\x1b",)) -> None:
    raw = RAW.findall(output)
    assert not raw, f"raw control characters reached the terminal: {sorted(set(map(repr, raw)))}\n{output!r}"
    for shown in must_show:
        assert shown in output, f"{shown!r} not shown in:\n{output}"


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's consoles are wide, so table cells are not cut before their escapes."""
    from orienteer.tui.cli import common as cli

    for console in (cli.console, cli.err):
        monkeypatch.setattr(console, "_width", 400)


@pytest.mark.parametrize("args, must_show", [
    (("failures", "--all"), ("\\x1b[2J", "\\x1b]0;pwned\\x07", "\\r", "[red]x[/red]", "\\u202e", "[link=")),
    (("runs",), ("\\x1b[2J", "[red]r[/red]", "\\u202e")),
    (("report",), ("\\x1b[2J", "[bold]b[/bold]", "\\u202e")),
    (("confusion", "--run", RUN_A), ("\\x1b[2J", "[red]r[/red]")),
    (("compare", RUN_A, RUN_B), ("\\x1b[2J", "[red]r[/red]", "\\u202e")),
    (("audit", "--run", RUN_A), ("\\x1b[2J", "[red]r[/red]", "\\x07")),
    (("benchmarks",), ("\\x1b[2J", "[bold]b[/bold]")),
    (("dataset", "list"), ("\\x1b[2J", "\\x07")),
    (("job", "models"), ("\\x1b[2J", "[red]m[/red]", "\\x07")),
    (("job", "list"), ("\\x1b[2J",)),
    (("job", "show", "sleep-0001"), ("\\x1b[2J", "[red]x[/red]")),
    (("job", "logs", "sleep-0001"), ("\\x1b[2J", "[red]x[/red]")),
    (("saliency", "summary", "--run", RUN_A), ()),
])
def test_cli_output_shows_escapes(hostile_ws: Path, wide_console: None, args: tuple[str, ...],
                                  must_show: tuple[str, ...]) -> None:
    result = _cli(hostile_ws, *args)
    _assert_safe(result.output, must_show=must_show)


def test_cli_errors_quote_names_safely(hostile_ws: Path, wide_console: None) -> None:
    """An error that quotes a name the user typed (or a file's content) is one line with escapes visible."""
    result = _cli(hostile_ws, "confusion", "--run", f"nope{CLEAR}[red]z[/red]")
    assert result.exit_code == 2
    _assert_safe(result.output, must_show=("\\x1b[2J",))
    assert result.output.strip().count("\n") == 0


def test_json_keeps_exact_strings(hostile_ws: Path) -> None:
    runs = json.loads(_cli(hostile_ws, "runs", "--json").output)
    assert {r["run"] for r in runs} == {RUN_A, RUN_B} and {r["benchmark"] for r in runs} == {BENCH}
    rows = json.loads(_cli(hostile_ws, "failures", "--run", RUN_A, "--json").output)["rows"]
    assert any(HOSTILE in (r["reply"] or "") for r in rows)
    assert json.loads(_cli(hostile_ws, "benchmarks", "--json").output)[0]["benchmark"] == BENCH
    assert json.loads(_cli(hostile_ws, "dataset", "list", "--json").output)[0]["name"] == f"ds{CLEAR}"
    assert json.loads(_cli(hostile_ws, "job", "models", "--json").output)[0]["name"] == f"model{CLEAR}[red]m[/red]"
    report = json.loads(_cli(hostile_ws, "report", "--json").output)
    assert TASK in _strings(report) and BENCH in _strings(report)


def _strings(value: Any) -> set[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _strings(v)}
    return set()


# --- the app, under the Pilot ------------------------------------------------------------------------


def screen_lines(app: Any) -> list[str]:
    """The screen as text rows, from the SVG screenshot (what the terminal would be sent, glyph by glyph)."""
    import html

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg, re.S):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return ["".join(t for _, t in sorted(row)).replace("\xa0", " ") for _, row in sorted(rows.items())]


def _check_screen(app: Any, header: str, must_show: tuple[str, ...] = ("\\x1b",)) -> str:
    lines = screen_lines(app)
    screen = "\n".join(lines)
    _assert_safe(screen, must_show=must_show)
    assert header in lines[0], f"header {header!r} lost: {lines[0]!r}"
    return screen


def test_every_screen_shows_hostile_text_as_escapes(hostile_ws: Path) -> None:
    from textual.widgets import OptionList

    from orienteer.data.errors import OrienteerError
    from orienteer.tui.app import OrienteerApp
    from orienteer.tui.screens.launch import LaunchScreen, LogScreen
    from orienteer.tui.screens.saliency_summary import SaliencySummaryScreen
    from orienteer.tui.widgets.pickers import PickerScreen
    from tests.tui.pilot import drive, until

    app = OrienteerApp(Workspace(hostile_ws), image_mode="halfcell")
    seen: dict[str, str] = {}

    async def picker(pilot: Any, key: str, expect: str) -> None:
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))
        options = app.screen.query_one(OptionList)
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(expect in option for option in shown), shown
        assert not RAW.findall("".join(shown))
        seen[f"picker {key}"] = _check_screen(app, "Orienteer")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PickerScreen))

    async def scenario(pilot: Any) -> None:
        await until(pilot, lambda: type(app.screen).__name__ == "RunsScreen" and app.screen.report is not None)
        await pilot.pause()
        seen["runs"] = _check_screen(app, "Orienteer — 1 Runs and tasks", ("\\x1b[2J[bold]b[/bold]", "[red]r[/red]"))
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SaliencySummaryScreen))
        seen["saliency"] = _check_screen(app, "Orienteer")
        await pilot.press("escape")
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.pause()
        seen["launch"] = _check_screen(app, "Orienteer", ("not filled in", "\\x1b[2J"))
        await pilot.press("escape")
        await pilot.press("2")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfusionScreen")
        await pilot.pause()
        seen["confusion"] = _check_screen(app, "Orienteer — 2 Confusion", ("[red]r[/red]",))
        await picker(pilot, "r", "\\x1b[2J[red]r[/red]")
        await pilot.press("3")
        await until(pilot, lambda: type(app.screen).__name__ == "FailuresScreen" and app.screen.rows)
        await until(pilot, lambda: not app.screen.counting)
        await pilot.pause()
        seen["failures"] = _check_screen(app, "Orienteer — 3 Failures", ("\\x1b[2J", "[red]x[/red]"))
        await picker(pilot, "r", "\\u202e")
        await picker(pilot, "g", "\\x1b]0;pwned\\x07")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "CaseScreen" and app.screen.detail is not None)
        await pilot.pause()
        seen["case"] = _check_screen(app, "Orienteer — Case", ("\\x1b[2J", "[red]x[/red]", "\\u202e"))
        await pilot.press("4")
        await until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        await pilot.pause()
        seen["compare"] = _check_screen(app, "Orienteer — 4 Compare", ("[red]r[/red]",))
        await pilot.press("5")
        await until(pilot, lambda: type(app.screen).__name__ == "JobsScreen" and app.screen.views)
        await pilot.pause()
        seen["jobs"] = _check_screen(app, "Orienteer — 5 Jobs", ("\\x1b[2J", "[red]x[/red]"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        await pilot.pause(0.6)
        seen["log"] = _check_screen(app, "log of job", ("\\x1b[2J",))
        await pilot.press("escape")
        app.report_error(OrienteerError(f"bad {HOSTILE}"))  # errors quote file content
        await pilot.pause()
        [note] = [n for n in app._notifications if n.message.startswith("bad")]
        assert not note.markup and note.message.startswith("bad \\x1b[2J\\x1b]0;pwned\\x07\\r[red]x[/red]\\u202e")

    drive(app, scenario, size=(160, 50))
    assert len(seen) == 11


# --- a real terminal: tmux ---------------------------------------------------------------------------


def test_failures_screen_keeps_its_header_in_tmux(hostile_ws: Path) -> None:
    """In a real terminal (tmux), the failures screen shows such a reply with its header still on screen,
    and the OSC sequence never retitled the pane."""
    import shutil
    import subprocess

    from tests.tui.tmux import TmuxSession, orienteer_exe

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed here (apt-get install tmux)")
    session = TmuxSession([str(orienteer_exe()), "-w", str(hostile_ws), "--images", "halfcell"], width=120, height=32)
    try:
        session.wait_for("run-a\\x1b[2J[red]r[/red]")
        session.send("3")
        session.wait_for("rows 1–")
        screen = session.wait_for("reply: I think\\x1b[2J\\x1b]0;pwned\\x07\\r[red]x[/red]\\u202e")
        lines = screen.splitlines()
        assert "Orienteer — 3 Failures" in lines[0], screen
        assert "failures only" in screen and "reply:" in screen
        session.send("Enter")
        screen = session.wait_for("Model     m\\x1b]0;pwned\\x07")
        assert "Orienteer — Case" in screen.splitlines()[0], screen
        assert "think\\x1b[2J" in screen
        title = subprocess.run(["tmux", "-L", session.socket, "display-message", "-p", "-t", session.name,
                                "#{pane_title}"], capture_output=True, text=True).stdout
        assert "pwned" not in title
        session.send("q")
    finally:
        session.close()
