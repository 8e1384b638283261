"""Textual's internals are used in one module only, and the app works without them.

``tui/textual_compat.py`` holds every use of a private Textual name and turns them off outside the
tested Textual versions. The first tests keep it the only place (by reading the source of ``tui/``
and of the installed Textual); the others force the unsupported-version path and run the app.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import textual
from rich.text import Text

from orienteer.tui import textual_compat
from tests.tui.pilot import drive, until

TUI = Path(textual_compat.__file__).parent
COMPAT = Path(textual_compat.__file__)
TEXTUAL = Path(textual.__file__).parent
PRIVATE_MODULE = re.compile(r"^textual(\.\w+)*\._[A-Za-z]\w*")


def _private(name: str) -> bool:
    return len(name) > 1 and name.startswith("_") and not name.startswith("__")


def _tui_sources() -> list[Path]:
    return [p for p in sorted(TUI.rglob("*.py")) if p != COMPAT]


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Private attribute names a module or class defines: functions, classes, attributes (``self._x = ...``)
    and names assigned outside functions (a function's local variables are no attributes)."""
    names: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and not in_function:
            names.add(node.id)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return {name for name in names if _private(name)}


@functools.cache
def _textual_private_names() -> frozenset[str]:
    names: set[str] = set()
    for path in TEXTUAL.rglob("*.py"):
        names |= _defined_private_names(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(names)


def _module_name(path: Path) -> str:
    return "orienteer.tui." + ".".join(path.relative_to(TUI).with_suffix("").parts)


def test_no_module_but_the_compat_one_imports_a_private_textual_module() -> None:
    found = []
    for path in _tui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                modules = [node.value]  # importlib.import_module("textual.widgets._x")
            else:
                continue
            found += [f"{path.name}:{node.lineno} {m}" for m in modules if PRIVATE_MODULE.match(m)]
    assert found == [], f"private Textual modules outside textual_compat.py: {found}"


def test_no_module_but_the_compat_one_touches_a_private_textual_attribute() -> None:
    """``x._name`` where Textual defines ``_name`` and tui/ does not (``super()._render_cell``, ``app._css_update_count``)."""
    textual_names = _textual_private_names()
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in _tui_sources()}
    ours: set[str] = set().union(*(_defined_private_names(tree) for tree in trees.values()))
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in textual_names and node.attr not in ours:
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert found == [], f"private Textual attributes outside textual_compat.py: {found}"


def _textual_base_private_names(cls: type) -> set[str]:
    """The private names that the Textual classes among ``cls``'s bases define (methods and ``self._x``)."""
    names: set[str] = set()
    for base in cls.__mro__:
        if not (base.__module__ or "").startswith("textual"):
            continue
        names |= {name for name in vars(base) if _private(name)}
        try:
            source = textwrap.dedent(inspect.getsource(base))
        except (OSError, TypeError):
            continue
        names |= _defined_private_names(ast.parse(source))
    return names


def test_no_widget_outside_the_compat_module_overrides_or_reuses_a_textual_private_name() -> None:
    """Our subclasses of Textual classes define no private name their Textual bases use (an override
    like ``_render_cell``, or an attribute that would clobber Textual's own)."""
    found = []
    for path in _tui_sources():
        if "cli" in path.relative_to(TUI).parts:
            continue  # the typer CLI: no Textual classes, and importing it is slow
        module = importlib.import_module(_module_name(path))
        for value in vars(module).values():
            if not (isinstance(value, type) and value.__module__ == module.__name__):
                continue
            if not any((base.__module__ or "").startswith("textual") for base in value.__mro__):
                continue
            ours = _defined_private_names(ast.parse(textwrap.dedent(inspect.getsource(value))))
            clashes = ours & _textual_base_private_names(value)
            found += [f"{path.name} {value.__name__}.{name}" for name in sorted(clashes)]
    assert found == [], f"Textual private names defined outside textual_compat.py: {found}"


def test_the_checks_see_the_compat_module_s_own_private_uses() -> None:
    """The three checks above are not vacuous: run on the compat module, each finds something."""
    tree = ast.parse(COMPAT.read_text(encoding="utf-8"))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert any(PRIVATE_MODULE.match(s) for s in strings)
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert {"_css_update_count", "_cell_render_cache", "_get_default_css"} <= attrs & _textual_private_names()
    tuned = _defined_private_names(ast.parse(textwrap.dedent(inspect.getsource(textual_compat.TunedDataTable))))
    assert "_render_cell" in tuned & _textual_base_private_names(textual_compat.TunedDataTable)  # self._render_cell = ...


def test_version_range() -> None:
    assert textual_compat.supported(textual.__version__), (
        "Textual was upgraded: check the internals in textual_compat.py against its source (the tests of "
        "test_speed_parts.py and the stock-vs-tuned test below), then move TESTED_FROM/TESTED_BELOW")
    assert textual_compat.supported("8.2.0") and textual_compat.supported("8.2.12")
    assert not textual_compat.supported("8.3.0") and not textual_compat.supported("9.0.0")
    assert not textual_compat.supported("8.1.9") and not textual_compat.supported("nonsense")


# --- the stock path ------------------------------------------------------------------------------


@pytest.fixture
def decide_again() -> Iterator[None]:
    """``textual_compat.enabled`` decides again in this test, and once more after it."""
    textual_compat.enabled.cache_clear()
    yield
    textual_compat.enabled.cache_clear()


def _table_cells(table: Any) -> list[list[tuple[str, Any]]]:
    """What the table draws, character by character with its style."""
    return [[(ch, seg.style) for seg in table.render_line(y) for ch in seg.text] for y in range(table.size.height)]


def _run_the_runs_and_failures_views(app: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def scenario(pilot: Any) -> None:
        await until(pilot, lambda: app.screen.query("#runs-table") and app.screen.query_one("#runs-table").row_count)
        await pilot.pause()
        table = app.screen.query_one("#runs-table")
        seen["cells"] = _table_cells(table)
        seen["cached_before"] = {key: table._cell_render_cache.get(key) for key in table._cell_render_cache.keys()}
        await pilot.press("3")
        await until(pilot, lambda: app.screen.query("#failures-table")
                    and app.screen.query_one("#failures-table").row_count)
        seen["failures_rows"] = app.screen.query_one("#failures-table").row_count
        await pilot.press("1")
        await pilot.pause()
        # the very same rendered lines (a re-render makes new ones under the same keys)
        seen["kept"] = [key for key, lines in seen["cached_before"].items()
                        if table._cell_render_cache.get(key) is lines]
        await until(pilot, lambda: app.css_preloaded is not None, timeout=15)
        seen["css_preloaded"] = app.css_preloaded

    drive(app, scenario)
    return seen


def test_outside_the_tested_range_the_app_runs_on_stock_widgets_and_says_so_once(
        app_factory: Any, decide_again: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=textual_compat.__name__)
    monkeypatch.setattr(textual_compat, "textual_version", lambda: "99.0.0")
    stock = _run_the_runs_and_failures_views(app_factory(image_mode="none"))
    warnings = [r for r in caplog.records if r.name == textual_compat.__name__]
    assert len(warnings) == 1 and "Textual 99.0.0 is outside the tested range" in warnings[0].getMessage()
    assert stock["failures_rows"] > 0
    assert stock["css_preloaded"] == 0, "no CSS preload on the stock path"
    assert stock["cached_before"] and stock["kept"] == [], "a stock DataTable re-renders after a screen switch"

    monkeypatch.undo()
    textual_compat.enabled.cache_clear()
    caplog.clear()
    # the tuned table draws the very same characters and styles
    tuned = _run_the_runs_and_failures_views(app_factory(image_mode="none"))
    assert [r for r in caplog.records if r.name == textual_compat.__name__] == []
    assert tuned["kept"] and tuned["css_preloaded"] > 0
    assert tuned["cells"] == stock["cells"]


def test_the_off_switch_forces_the_stock_path(decide_again: None, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(textual_compat.SWITCH, "off")
    with caplog.at_level(logging.WARNING, logger=textual_compat.__name__):
        assert textual_compat.enabled() is False
        assert textual_compat.enabled() is False  # decided once: one line
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"{textual_compat.SWITCH} is off"]
    assert textual_compat.textual_widget_modules() == []
    monkeypatch.delenv(textual_compat.SWITCH)
    textual_compat.enabled.cache_clear()
    assert textual_compat.enabled() is True


def test_the_text_measure_shortcut_agrees_with_textual() -> None:
    from rich.console import Console

    console = Console(width=200)
    textual_compat._install_measure()
    stock = textual_compat._stock_measure
    assert stock is not None and stock is not textual_compat._measure
    for cell in (Text("abc"), Text("a\nlonger"), Text(""), Text("é漢字"), Text("x\n"), Text("tab\there")):
        assert textual_compat._measure(console, cell, 1) == stock(console, cell, 1), repr(cell.plain)


def test_the_fallback_line_never_reaches_the_terminal() -> None:
    """Without logging configured (the app's case), Python would print a warning to stderr: not this one."""
    code = "from orienteer.tui import textual_compat as c; assert c.enabled() is False"
    env = {**os.environ, textual_compat.SWITCH: "off"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
