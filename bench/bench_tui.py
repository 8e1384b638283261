#!/usr/bin/env python
"""App benchmark: first paint in tmux, key-press latency under the Pilot, resident memory.

Runs against the 10-million-prediction workspace that ``bench_workspace.py`` builds
(``/tmp/orienteer-bench/ws_1750``; built first, by that script, when it is missing).

    .venv/bin/python bench/bench_tui.py                       # 5 tmux starts, 3 Pilot rounds
    .venv/bin/python bench/bench_tui.py --profile             # also profile every key (cProfile)
    .venv/bin/python bench/bench_tui.py --workspace DIR --repeat 9 --size 100x30

Three measurements (see bench/README.md for the details):

1. **First paint, in tmux.** A fresh tmux server per start, of ``--size``; its pane runs
   ``read _ && exec orienteer -w WS --images halfcell``, so the clock starts when Enter is sent
   (like a person pressing Enter after typing the command) and Python's start-up is inside the
   figure. ``capture-pane`` is polled every 10 ms until the runs table shows the first run's name
   and "Overall". ``orienteer --help`` is timed the same way (until the pane's process has exited)
   as the floor of Python start-up.
2. **Keys, under the Pilot** (``App.run_test(size=...)``, in a fresh interpreter): a scripted walk
   through every view, ``--rounds`` times. A key's latency runs from just before
   ``pilot.press(key)`` to the end of the last frame the app painted before ``pilot.pause()``
   returned (the headless driver drops frames, so ``app._display`` is wrapped: it notes the time
   and encodes each update to terminal bytes, as a terminal would get them); *settled* is the
   same after ``app.workers.wait_for_complete()`` and another pause (the background count).
   The press + pause wall time is kept too but is no latency: the Pilot sleeps in 20 ms steps
   until the process is idle (an unbound key measures that floor). A key that paints no frame
   (a toast: the headless driver paints none) is not counted as view-changing. A key that lands
   on a screen instance not seen before is a *first visit* (it composed and mounted widgets;
   every case view is a new screen). Each key's CPU time and garbage-collector time are kept.
   A plain two-screen Textual app (Header, a 100 x 8 DataTable, Footer) is timed the same way
   as the framework's own floor on this machine.
3. **Memory.** ``ru_maxrss`` of the Pilot process after the walk, and ``VmRSS`` / ``VmHWM`` of the
   real app in tmux after a walk through the views (runs, failures, confusion, compare, a
   drill-down, a case), read from ``/proc/PID/status`` of the pane's process. The tmux walk also
   times each key as a user sees it (send-keys until the expected text is on screen, and until
   the app's CPU time stops growing), as a cross-check of the Pilot figures.

The parent process never imports orienteer, Textual or DuckDB (the Pilot runs in a child
interpreter: Linux carries a parent's peak RSS into its children's ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
DEFAULT_WS = Path("/tmp/orienteer-bench/ws_1750")

# Targets from the issue.
FIRST_PAINT_S = 1.5
KEY_MEDIAN_MS = 100.0
KEY_P95_MS = 250.0
RSS_MB = 500.0

POLL_S = 0.010  # capture-pane polling interval
QUIET_S = 0.20  # "settled" in tmux: the app's CPU time did not grow for this long
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# The Pilot walk: (key, what it does, the screen class it should land on). Every key changes
# what is on screen. It starts and ends on the runs screen, so rounds can repeat it.
WALK: list[tuple[str, str, str]] = [
    ("3", "go to failures (all runs)", "FailuresScreen"),
    ("j", "cursor down", "FailuresScreen"),
    ("j", "cursor down", "FailuresScreen"),
    ("j", "cursor down", "FailuresScreen"),
    ("j", "cursor down", "FailuresScreen"),
    ("j", "cursor down", "FailuresScreen"),
    ("o", "cycle the sort", "FailuresScreen"),
    ("2", "go to confusion", "ConfusionScreen"),
    ("j", "matrix cursor down", "ConfusionScreen"),
    ("l", "matrix cursor right", "ConfusionScreen"),
    ("enter", "drill: matrix cell -> failures", "FailuresScreen"),
    ("escape", "back -> confusion", "ConfusionScreen"),
    ("4", "go to compare", "CompareScreen"),
    ("j", "cursor down", "CompareScreen"),
    ("1", "go to runs (state moved: reload)", "RunsScreen"),
    ("down", "cursor down", "RunsScreen"),
    ("right", "cursor right", "RunsScreen"),
    ("enter", "drill: runs cell -> failures", "FailuresScreen"),
    ("enter", "open a case", "CaseScreen"),
    ("n", "next case", "CaseScreen"),
    ("]", "next frame (one-image items: a toast)", "CaseScreen"),
    ("p", "previous case", "CaseScreen"),
    ("escape", "back -> failures", "FailuresScreen"),
    ("1", "go to runs (state moved: reload)", "RunsScreen"),
]

RUNS_MARK = "accuracy % per task"  # the runs screen's title; no other screen shows it


# --- small helpers ------------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of a non-empty list."""
    xs = sorted(samples)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"median": None, "p95": None, "min": None, "max": None, "n": 0, "samples": []}
    return {"median": statistics.median(samples), "p95": percentile(samples, 95), "min": min(samples),
            "max": max(samples), "n": len(samples), "samples": samples}


def proc_status_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (the kernel's peak of the resident set) of a process, in MB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_revision() -> str:
    """The commit measured, with "+dirty" when the working tree differs from it."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "?"
    return rev + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def orienteer_exe() -> str:
    exe = Path(sys.executable).parent / "orienteer"
    if exe.exists():
        return str(exe)
    found = shutil.which("orienteer")
    if found is None:
        raise SystemExit(f"no orienteer command next to {sys.executable} or on PATH: pip install -e .")
    return found


def run_child(stage: str, args: argparse.Namespace, result: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """Run this script's ``--stage`` in a fresh interpreter; return the JSON it wrote."""
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE), "--stage", stage, "--workspace", str(args.workspace), "--size", args.size,
           "--rounds", str(args.rounds), "--result", str(result)] + (extra or [])
    proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"stage {stage} failed with exit status {proc.returncode}")
    return json.loads(result.read_text())


# --- stage: facts about the workspace (child process) ---------------------------------------------

def stage_info(args: argparse.Namespace) -> dict[str, Any]:
    from orienteer.data.workspace import Workspace

    with Workspace(args.workspace).read() as con:
        first_run = con.execute("SELECT name FROM runs ORDER BY run_id LIMIT 1").fetchone()
        n_runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        n_preds = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    import orienteer.tui

    return {"first_run": first_run[0] if first_run else None, "runs": n_runs, "predictions": n_preds,
            "orienteer_tui": str(Path(orienteer.tui.__file__).parent)}


# --- stage: the Pilot walk (child process) --------------------------------------------------------

def stage_pilot(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    width, height = parse_size(args.size)
    t0 = time.perf_counter()
    from orienteer.data.workspace import Workspace
    from orienteer.tui.app import OrienteerApp
    import_s = time.perf_counter() - t0

    import cProfile
    import gc

    collected: dict[str, Any] = {"ms": 0.0, "gen2": 0, "start": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected["start"] = time.perf_counter()
        else:
            collected["ms"] += 1000 * (time.perf_counter() - collected["start"])
            collected["gen2"] += info["generation"] == 2

    gc.callbacks.append(on_gc)
    app = OrienteerApp(Workspace(args.workspace), image_mode="halfcell")
    painted: dict[str, Any] = {"bytes": 0, "frames": 0, "last": None}
    display = app._display

    def encoding_display(screen: Any, renderable: Any) -> None:
        # The headless driver drops the compositor's update; encode it as a terminal would get it,
        # and note when the frame was done: the key's latency ends at its last frame.
        display(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            try:
                painted["bytes"] += len(renderable.render_segments(app.console))
            except Exception:  # pragma: no cover - a Textual internal changed: time without it
                pass
            painted["frames"] += 1
            painted["last"] = time.perf_counter()

    app._display = encoding_display  # type: ignore[method-assign]
    records: list[dict[str, Any]] = []
    startup: dict[str, Any] = {}
    floor: list[float] = []
    profiles: dict[str, str] = {}

    async def settle(pilot: Any) -> None:
        try:
            await app.workers.wait_for_complete()
        except Exception:  # a failed worker still counts as done
            pass
        await pilot.pause()

    async def main() -> None:
        seen: set[int] = set()
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        t = time.perf_counter()
        c = time.process_time()
        async with app.run_test(size=(width, height)) as pilot:
            await pilot.pause()
            startup["pilot_ms"] = 1000 * (time.perf_counter() - t)
            startup["paint_ms"] = 1000 * (painted["last"] - t)
            await settle(pilot)
            startup["settled_ms"] = 1000 * (painted["last"] - t)
            startup["cpu_ms"] = 1000 * (time.process_time() - c)
            startup["gc_ms"], startup["gc_gen2"] = collected["ms"], collected["gen2"]
            startup["screen"] = type(app.screen).__name__
            if profiler:
                profiler.disable()
                profiles["startup"] = profile_text(profiler)
            seen.add(id(app.screen))
            for _ in range(5):  # the Pilot's own floor: an unbound key, press + pause
                t = time.perf_counter()
                await pilot.press("f12")
                await pilot.pause()
                floor.append(1000 * (time.perf_counter() - t))
            for round_no in range(args.rounds):
                for step, (key, what, expect) in enumerate(WALK):
                    if args.profile:
                        profiler = cProfile.Profile()
                        profiler.enable()
                    b0, f0 = painted["bytes"], painted["frames"]
                    g0, g2 = collected["ms"], collected["gen2"]
                    painted["last"] = None
                    t = time.perf_counter()
                    c = time.process_time()
                    await pilot.press(key)
                    await pilot.pause()
                    wall = time.perf_counter() - t
                    # no frame at all: nothing on screen changed (a toast, which the headless driver does
                    # not paint, or a key with nothing to do): not a view-changing key
                    paint = painted["last"] - t if painted["last"] is not None else None
                    await settle(pilot)
                    settled = painted["last"] - t if painted["last"] is not None else None
                    cpu = time.process_time() - c
                    if profiler:
                        profiler.disable()
                        if round_no == 0 or (paint or 0.0) * 1000 > KEY_MEDIAN_MS:
                            name = f"round {round_no + 1} step {step + 1:02d} {key!r} ({what})"
                            profiles[name] = profile_text(profiler)
                    screen = app.screen
                    records.append({
                        "round": round_no + 1, "step": step + 1, "key": key, "what": what,
                        "screen": type(screen).__name__, "expected": expect,
                        "first_visit": id(screen) not in seen,
                        "repainted": paint is not None,
                        "paint_ms": None if paint is None else 1000 * paint,
                        "settled_ms": None if settled is None else 1000 * settled, "pilot_ms": 1000 * wall,
                        "cpu_ms": 1000 * cpu, "gc_ms": collected["ms"] - g0, "gc_gen2": collected["gen2"] - g2,
                        "bytes": painted["bytes"] - b0, "frames": painted["frames"] - f0,
                    })
                    seen.add(id(screen))

    asyncio.run(main())
    return {
        "import_s": import_s, "startup": startup, "keys": records, "pilot_floor_ms": floor, "size": [width, height],
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        **{k.lower() + "_mb": v for k, v in proc_status_mb().items()},
        "profiles": profiles,
    }


# --- stage: Textual's own floor on this machine (child process) -------------------------------------

def stage_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A plain two-mode Textual app (Header, a 100 x 8 DataTable, Footer with 10 keys): cost of a switch."""
    import asyncio

    from textual.app import App
    from textual.binding import Binding
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header, Static

    width, height = parse_size(args.size)

    class Plain(Screen[None]):
        BINDINGS = [Binding(k, "noop", f"Action {k}") for k in "abcdefgh"]

        def compose(self) -> Any:
            yield Header()
            yield Static("title")
            yield DataTable(zebra_stripes=True)
            yield Static("detail")
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns(*[f"column {i}" for i in range(8)])
            for r in range(100):
                table.add_row(*[f"{r}.{c} cell" for c in range(8)])

    class PlainApp(App[None]):
        BINDINGS = [Binding("1", "switch_mode('a')", "A"), Binding("2", "switch_mode('b')", "B")]
        MODES = {"a": Plain, "b": Plain}

        def on_mount(self) -> None:
            self.switch_mode("a")

    app = PlainApp()
    last: dict[str, float | None] = {"t": None}
    display = app._display

    def timed_display(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None:
            last["t"] = time.perf_counter()

    app._display = timed_display  # type: ignore[method-assign]
    first: list[float] = []
    later: list[float] = []
    moves: list[float] = []

    async def main() -> None:
        async with app.run_test(size=(width, height)) as pilot:
            await pilot.pause()
            for n, key in enumerate("21" * 6 + "jjjjjj"):
                last["t"] = None
                t = time.perf_counter()
                await pilot.press("down" if key == "j" else key)
                await pilot.pause()
                if last["t"] is not None:
                    (moves if key == "j" else first if n == 0 else later).append(1000 * (last["t"] - t))

    asyncio.run(main())
    return {"switch_first_ms": first, "switch_ms": later, "cursor_ms": moves}


def profile_text(profiler: Any, limit: int = 25) -> str:
    """The top of a cProfile by cumulative time, this project's and Textual's frames first."""
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    # cumulative: this project's frames, DuckDB calls and the Textual steps that dominate a repaint
    focus = (re.escape(str(REPO)) + r"/(tui|data|core)/|method 'execute'|method 'fetch|_data_table\.py.*"
             r"(_update_dimensions|render_lines)|_compositor\.py.*render_update|widget\.py.*recompose|"
             r"_footer\.py.*_watch_compact|stylesheet\.py.*update_nodes|screen\.py.*_refresh_layout")
    stats.sort_stats("cumulative").print_stats(focus, limit)
    stats.sort_stats("tottime").print_stats(12)
    text = out.getvalue()
    return text.replace(str(REPO) + "/", "").replace(sys.prefix + "/lib/python", "venv/python")


# --- tmux (parent process) -------------------------------------------------------------------------

class Tmux:
    """One tmux server with one detached session whose pane waits for Enter, then execs a command."""

    def __init__(self, command: list[str], width: int, height: int) -> None:
        if shutil.which("tmux") is None:
            raise SystemExit("tmux is not installed (apt-get install tmux)")
        self.socket = f"orienteer-bench-{uuid.uuid4().hex[:8]}"
        self.name = "bench"
        self.width, self.height = width, height
        # -f /dev/null: no user configuration; the pane's shell waits, then becomes the command (exec).
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                  f"read _ && exec {shlex.join(command)}")
        self.tmux("set-option", "-g", "status", "off")
        self.tmux("set-option", "-s", "escape-time", "0")
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        self.pid = int(self.tmux("display-message", "-p", "-t", self.name, "#{pane_pid}").strip())
        time.sleep(0.3)  # let the shell reach `read`, so the clock starts at Enter, not at fork

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-f", "/dev/null", "-L", self.socket, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, fmt).strip()

    def send(self, key: str) -> float:
        """Send a key; returns the clock just before it went out."""
        t = time.perf_counter()
        self.tmux("send-keys", "-t", self.name, key)
        return t

    def wait_text(self, texts: list[str], since: float, timeout: float = 30.0) -> tuple[float, str]:
        """Poll until every text is on screen; seconds since ``since`` (at the capture's end) and the screen."""
        deadline = time.perf_counter() + timeout
        screen = ""
        while time.perf_counter() < deadline:
            screen = self.capture()
            now = time.perf_counter()
            if all(t in screen for t in texts):
                return now - since, screen
            time.sleep(POLL_S)
        raise TimeoutError(f"{texts!r} not on screen within {timeout} s; screen was:\n{screen}")

    def wait_change(self, before: str, since: float, timeout: float = 15.0) -> float:
        """Poll until the screen differs from ``before``; seconds since ``since``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            screen = self.capture()
            now = time.perf_counter()
            if screen != before:
                return now - since
            time.sleep(POLL_S)
        raise TimeoutError(f"the screen did not change within {timeout} s")

    def wait_dead(self, since: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            dead = self.pane("#{pane_dead}") == "1"
            now = time.perf_counter()
            if dead:
                return now - since
            time.sleep(POLL_S)
        raise TimeoutError(f"the pane's process did not exit within {timeout} s")

    def wait_idle(self, since: float, timeout: float = 30.0) -> float:
        """Seconds from ``since`` to the last time the app's CPU time grew, once it has been flat for QUIET_S."""
        deadline = time.perf_counter() + timeout
        last = cpu_seconds(self.pid)
        changed = time.perf_counter()
        while time.perf_counter() < deadline:
            time.sleep(POLL_S)
            now = time.perf_counter()
            cpu = cpu_seconds(self.pid)
            if cpu != last:
                last, changed = cpu, now
            elif now - changed >= QUIET_S:
                return max(0.0, changed - since)
        return timeout

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        socket_dir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (socket_dir / self.socket).unlink(missing_ok=True)  # kill-server leaves the socket file behind


def tmux_help(args: argparse.Namespace) -> list[float]:
    width, height = parse_size(args.size)
    samples = []
    for _ in range(args.repeat):
        session = Tmux([orienteer_exe(), "--help"], width, height)
        try:
            t0 = session.send("Enter")
            samples.append(session.wait_dead(t0))
            if "Usage" not in session.capture():
                raise RuntimeError("orienteer --help printed no usage:\n" + session.capture())
        finally:
            session.close()
    return samples


def tmux_walk_steps(first_run: str) -> list[tuple[str, str, list[str] | None]]:
    """(key, what, texts that show the view landed; None: any change of the screen) for the real app."""
    return [
        ("3", "failures (all runs)", ["no filters", "sort:"]),
        ("2", "confusion", ["gold╲pred"]),
        ("j", "matrix cursor down", None),
        ("l", "matrix cursor right", None),
        ("Enter", "drill: matrix cell -> failures", ["gold: ", "sort:"]),
        ("4", "compare", ["brk │ fix"]),
        ("1", "runs (state moved: reload)", [RUNS_MARK]),
        ("Enter", "drill: runs cell -> failures", [f"run: {first_run}", "task: ", "sort:"]),
        ("Enter", "open a case", ["Other runs"]),
        ("Escape", "back -> failures", [f"run: {first_run}", "sort:"]),
    ]


def tmux_app(args: argparse.Namespace, first_run: str) -> list[dict[str, Any]]:
    width, height = parse_size(args.size)
    command = [orienteer_exe(), "-w", str(args.workspace), "--images", "halfcell"]
    sessions = []
    for rep in range(args.repeat):
        session = Tmux(command, width, height)
        try:
            size = session.pane("#{pane_width}x#{pane_height}")
            t0 = session.send("Enter")
            paint, _ = session.wait_text([first_run, "Overall"], t0)
            idle = session.wait_idle(t0)
            cmdline = Path(f"/proc/{session.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "orienteer" not in cmdline:
                raise RuntimeError(f"pane process {session.pid} is not the app: {cmdline}")
            record: dict[str, Any] = {"pane_size": size, "first_paint_s": paint, "first_idle_s": idle,
                                      "rss_after_paint": proc_status_mb(session.pid), "keys": []}
            for key, what, texts in tmux_walk_steps(first_run):
                before = session.capture()
                stale = texts is not None and all(t in before for t in texts)
                t = session.send(key)
                try:
                    if texts is None:
                        seen = session.wait_change(before, t)
                    else:
                        seen, _ = session.wait_text(texts, t, timeout=15.0)
                except TimeoutError as exc:
                    record["error"] = f"{key} ({what}): {exc}"
                    print(f"  warning: the tmux walk stopped at {key!r} ({what}): the expected screen did not come",
                          flush=True)
                    break
                settled = session.wait_idle(t)
                record["keys"].append({"key": key, "what": what, "visible_ms": None if stale else 1000 * seen,
                                       "settled_ms": 1000 * max(settled, seen)})
            record["rss_after_walk"] = proc_status_mb(session.pid)
            sessions.append(record)
            print(f"  tmux start {rep + 1}/{args.repeat}: first paint {paint:.2f} s, idle {idle:.2f} s, "
                  f"RSS after walk {record['rss_after_walk'].get('VmRSS', 0):.0f} MB "
                  f"(load {loadavg()[0]})", flush=True)
        finally:
            session.close()
        time.sleep(0.5)
    return sessions


# --- report -------------------------------------------------------------------------------------------

def figures_table(fig: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(metric: str, s: dict[str, Any] | float | None, unit: str, target: str = "", ok: bool | None = None,
            first: float | None = None) -> None:
        if isinstance(s, dict):
            value, p95, n = s["median"], s["p95"], s["n"]
        else:
            value, p95, n = s, None, None
        rows.append({"metric": metric, "value": value, "p95": p95, "first": first, "n": n, "unit": unit,
                     "target": target, "status": "-" if ok is None else ("PASS" if ok else "FAIL")})

    t = fig.get("tmux")
    if t:
        fp = t["first_paint_s"]
        add("tmux: command -> first painted runs table", fp, "s", f"<= {FIRST_PAINT_S}",
            fp["median"] is not None and fp["median"] <= FIRST_PAINT_S)
        add("  tmux: ... -> app idle (CPU flat 200 ms)", t["first_idle_s"], "s")
        add("  tmux: orienteer --help (start-up floor)", t["help_s"], "s")
    p = fig["pilot"]
    add("Pilot: run_test -> runs screen painted", p["startup"]["paint_ms"], "ms")
    add("  Pilot: import orienteer.tui.app", 1000 * p["import_s"], "ms")
    keys = p["summary"]
    for label, name in (("repainted", "paint"), ("settled (workers done)", "settled")):
        s = keys[f"all_{name}"]
        ok = s["median"] <= KEY_MEDIAN_MS and s["p95"] <= KEY_P95_MS
        add(f"Pilot: every key, {label}", s, "ms", f"<= {KEY_MEDIAN_MS:.0f} / {KEY_P95_MS:.0f}", ok)
        add(f"  Pilot: first visits (mount), {label}", keys[f"first_{name}"], "ms")
        add(f"  Pilot: later keys, {label}", keys[f"later_{name}"], "ms")
    add("  Pilot: press + pause, wall (not a latency: Pilot sleeps)", keys["all_pilot"], "ms")
    add("  Pilot: press + pause of an unbound key (its floor)", summary(p["pilot_floor_ms"]), "ms")
    fl = fig.get("floor")
    if fl:
        add("  Textual floor: mode switch in a plain app (see README)", summary(fl["switch_ms"]), "ms")
        add("  Textual floor: cursor move in a plain app", summary(fl["cursor_ms"]), "ms")
    add("Pilot process peak RSS (ru_maxrss)", p["ru_maxrss_mb"], "MB", f"<= {RSS_MB:.0f}", p["ru_maxrss_mb"] <= RSS_MB)
    if t:
        rss = t["rss_after_walk_mb"]
        add("app in tmux: VmRSS after the walk", rss, "MB", f"<= {RSS_MB:.0f}",
            rss["median"] is not None and rss["max"] <= RSS_MB)
        add("  app in tmux: VmHWM (peak) after the walk", t["hwm_after_walk_mb"], "MB")
        for key, s in t["keys"].items():
            add(f"  tmux key {key}: visible / settled", s["visible"], "ms", first=s["settled"]["median"])
    return rows


def print_table(rows: list[dict[str, Any]], header: str) -> None:
    def fmt(v: float | None, unit: str) -> str:
        if v is None:
            return ""
        if unit == "MB":
            return f"{v:,.0f}"
        return f"{v:,.1f}" if unit == "ms" else f"{v:,.2f}"

    width = max(len(r["metric"]) for r in rows)
    print(header)
    print(f"{'metric':<{width}}  {'median':>9}  {'p95':>9}  {'n':>4}  {'unit':<4}  {'target':<11}  status")
    print("-" * (width + 56))
    for r in rows:
        extra = f"  (settled {fmt(r['first'], r['unit'])})" if r["first"] is not None else ""
        print(f"{r['metric']:<{width}}  {fmt(r['value'], r['unit']):>9}  {fmt(r['p95'], r['unit']):>9}  "
              f"{r['n'] if r['n'] is not None else '':>4}  {r['unit']:<4}  {r['target']:<11}  {r['status']}{extra}")


def print_keys(records: list[dict[str, Any]]) -> None:
    """Per step of the walk: round 1 (first visits marked *) and the median of later rounds."""
    steps: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        steps.setdefault(r["step"], []).append(r)

    def ms(values: list[float | None]) -> str:
        xs = [v for v in values if v is not None]
        return f"{statistics.median(xs):7.1f}" if xs else "   none"

    print("\nPilot walk, ms per key: repainted / settled (round 1, then the median of later rounds); "
          "* = first visit (mounts the screen), ! = landed elsewhere than expected, none = no frame painted; "
          "cpu, gc and KB written are medians over rounds")
    print(f"{'step':>4}  {'key':<7} {'what':<38} {'screen':<16} {'round 1':>17}   {'later rounds':>17}  "
          f"{'cpu':>6}  {'gc':>5}  {'KB':>5}")
    for step, rs in sorted(steps.items()):
        first, later = rs[0], rs[1:]
        mark = ("*" if first["first_visit"] else " ") + ("!" if any(r["screen"] != r["expected"] for r in rs) else " ")
        later_s = f"{ms([r['paint_ms'] for r in later])} / {ms([r['settled_ms'] for r in later])}" if later else ""
        print(f"{step:>4}  {first['key']:<7} {first['what'][:38]:<38} {first['screen']:<16} "
              f"{ms([first['paint_ms']])} / {ms([first['settled_ms']])}{mark} {later_s:>17}  "
              f"{statistics.median(r['cpu_ms'] for r in rs):6.0f}  {statistics.median(r['gc_ms'] for r in rs):5.0f}  "
              f"{statistics.median(r['bytes'] for r in rs) / 1024:5.1f}")


def summarise_pilot(p: dict[str, Any]) -> None:
    recs = p["keys"]
    out: dict[str, Any] = {}
    changed = [r for r in recs if r["repainted"]]  # the view-changing keys
    for name in ("paint", "settled", "pilot"):
        out[f"all_{name}"] = summary([r[f"{name}_ms"] for r in changed])
        out[f"first_{name}"] = summary([r[f"{name}_ms"] for r in changed if r["first_visit"]])
        out[f"later_{name}"] = summary([r[f"{name}_ms"] for r in changed if not r["first_visit"]])
    out["no_repaint"] = [{k: r[k] for k in ("round", "step", "key", "what", "pilot_ms", "cpu_ms")}
                         for r in recs if not r["repainted"]]
    out["gc_ms"] = summary([r["gc_ms"] for r in recs])
    out["gc_gen2"] = sum(r["gc_gen2"] for r in recs)
    out["slowest"] = sorted(({k: r[k] for k in ("round", "step", "key", "what", "screen", "first_visit", "paint_ms",
                                                "settled_ms", "cpu_ms", "gc_ms")} for r in changed),
                            key=lambda r: -r["paint_ms"])[:8]
    out["off_script"] = [r for r in recs if r["screen"] != r["expected"]]
    p["summary"] = out


def summarise_tmux(sessions: list[dict[str, Any]], help_s: list[float]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for s in sessions:
        for k in s["keys"]:
            entry = keys.setdefault(f"{k['key']} ({k['what']})", {"visible": [], "settled": []})
            if k["visible_ms"] is not None:
                entry["visible"].append(k["visible_ms"])
            entry["settled"].append(k["settled_ms"])
    return {
        "first_paint_s": summary([s["first_paint_s"] for s in sessions]),
        "first_idle_s": summary([s["first_idle_s"] for s in sessions]),
        "help_s": summary(help_s),
        "rss_after_paint_mb": summary([s["rss_after_paint"].get("VmRSS", 0.0) for s in sessions]),
        "rss_after_walk_mb": summary([s["rss_after_walk"].get("VmRSS", 0.0) for s in sessions]),
        "hwm_after_walk_mb": summary([s["rss_after_walk"].get("VmHWM", 0.0) for s in sessions]),
        "keys": {k: {"visible": summary(v["visible"]), "settled": summary(v["settled"])} for k, v in keys.items()},
        "sessions": sessions,
    }


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m:
        raise SystemExit(f"--size must look like 120x40, not {text!r}")
    return int(m.group(1)), int(m.group(2))


def ensure_workspace(ws: Path) -> None:
    if (ws / "orienteer.duckdb").is_file():
        return
    m = re.fullmatch(r"ws_(\d+)", ws.name)
    if not m:
        raise SystemExit(f"no workspace at {ws}; build one with bench/bench_workspace.py --out DIR "
                         "(it makes DIR/ws_1750)")
    print(f"no workspace at {ws}: building it with bench_workspace.py --out {ws.parent} --runs {m.group(1)} "
          "(several minutes) ...", flush=True)
    subprocess.run([sys.executable, str(HERE.parent / "bench_workspace.py"), "--out", str(ws.parent), "--runs",
                    m.group(1)], cwd=REPO, check=False)
    if not (ws / "orienteer.duckdb").is_file():
        raise SystemExit(f"building {ws} failed")


STAGES = {"info": stage_info, "pilot": stage_pilot, "floor": stage_floor}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=DEFAULT_WS, help=f"workspace to open (default {DEFAULT_WS})")
    ap.add_argument("--repeat", type=int, default=5, help="tmux starts (first paint, --help, memory walk); default 5")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the Pilot walk (round 1 has the first visits)")
    ap.add_argument("--size", default="120x40", help="terminal size, COLSxROWS (default 120x40)")
    ap.add_argument("--out", type=Path, help="folder for tui_figures.json (default: the workspace's parent)")
    ap.add_argument("--profile", action="store_true", help="also run a profiled Pilot walk (cProfile per key)")
    ap.add_argument("--skip-tmux", action="store_true", help="only the Pilot measurements")
    ap.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.workspace = args.workspace.expanduser().resolve()
    parse_size(args.size)

    if args.stage:
        value = STAGES[args.stage](args)
        Path(args.result).write_text(json.dumps(value, indent=1, default=str))
        return 0

    started = time.perf_counter()
    ensure_workspace(args.workspace)
    out = (args.out or args.workspace.parent).resolve()
    out.mkdir(parents=True, exist_ok=True)
    fig: dict[str, Any] = {"meta": {"workspace": str(args.workspace), "size": args.size, "repeat": args.repeat,
                                    "rounds": args.rounds, "cpus": os.cpu_count(), "python": platform.python_version(),
                                    "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                                    "loadavg_start": loadavg(), "git": git_revision()}}
    info = run_child("info", args, out / "tui_stage_info.json")
    fig["workspace"] = info
    print(f"workspace {args.workspace}: {info['runs']:,} runs, {info['predictions']:,} predictions; "
          f"terminal {args.size}; load average {fig['meta']['loadavg_start']}", flush=True)

    if not args.skip_tmux:
        print(f"tmux: orienteer --help x{args.repeat} ...", flush=True)
        help_s = tmux_help(args)
        print(f"tmux: orienteer -w WS --images halfcell x{args.repeat} (first paint, walk, memory) ...", flush=True)
        sessions = tmux_app(args, info["first_run"])
        fig["tmux"] = summarise_tmux(sessions, help_s)
        fig["meta"]["loadavg_after_tmux"] = loadavg()

    print(f"Pilot: {args.rounds} rounds of a {len(WALK)}-key walk in a fresh interpreter ...", flush=True)
    fig["pilot"] = run_child("pilot", args, out / "tui_stage_pilot.json")
    fig["pilot"].pop("profiles", None)
    summarise_pilot(fig["pilot"])
    fig["meta"]["loadavg_after_pilot"] = loadavg()
    print("Textual's floor: a plain two-screen app, same size, same harness ...", flush=True)
    fig["floor"] = run_child("floor", args, out / "tui_stage_floor.json")

    if args.profile:
        print("Pilot: two profiled rounds (cProfile per key; timings not used) ...", flush=True)
        prof = run_child("pilot", args, out / "tui_stage_profile.json", ["--profile", "--rounds", "2"])
        path = out / "tui_profile.txt"
        path.write_text("".join(f"===== {name} =====\n{text}\n" for name, text in prof["profiles"].items()))
        fig["meta"]["profile"] = str(path)

    fig["meta"]["loadavg_end"] = loadavg()
    fig["meta"]["bench_wall_s"] = time.perf_counter() - started
    fig["table"] = figures_table(fig)
    (out / "tui_figures.json").write_text(json.dumps(fig, indent=1, default=str))

    print_keys(fig["pilot"]["keys"])
    print()
    print_table(fig["table"], f"orienteer app benchmark: {info['predictions']:,} predictions in {info['runs']:,} runs, "
                              f"terminal {args.size}, {os.cpu_count()} CPUs, tmux x{args.repeat}, "
                              f"Pilot x{args.rounds} rounds")
    off = fig["pilot"]["summary"]["off_script"]
    if off:
        print(f"\nwarning: {len(off)} keys landed on another screen than the walk expects "
              f"(e.g. step {off[0]['step']} {off[0]['key']!r}: {off[0]['screen']}, expected {off[0]['expected']})")
    loads = [fig["meta"][k][0] for k in fig["meta"] if k.startswith("loadavg")]
    print(f"\n1-minute load average during the run: {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs"
          + (" (other processes were running: timings are pessimistic, prefer medians)" if max(loads) > 0.5 else ""))
    print(f"wall time {fig['meta']['bench_wall_s']:.0f} s; figures in {out / 'tui_figures.json'}"
          + (f"; profiles in {fig['meta']['profile']}" if args.profile else ""))
    return 0 if all(r["status"] != "FAIL" for r in fig["table"]) else 1


if __name__ == "__main__":
    sys.exit(main())
