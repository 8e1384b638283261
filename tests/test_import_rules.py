"""The import direction of ARCHITECTURE.md section 1, checked in fresh interpreters.

core imports nothing of the project; data imports core; jobs imports core and data; tui
imports all three. textual only under tui; torch, transformers, peft and ultralytics never
at start-up (the CLI and the data layer must not pull them in).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ML = ("torch", "transformers", "peft", "ultralytics")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _project(mods: set[str]) -> set[str]:
    return {m.split(".")[1] for m in mods if m.startswith("orienteer.") and m.count(".") >= 1}


@pytest.mark.parametrize(
    "package, allowed",
    [
        ("orienteer.core", {"core"}),
        ("orienteer.data", {"core", "data"}),
        ("orienteer.jobs", {"core", "data", "jobs"}),
    ],
)
def test_package_imports_only_what_it_may(package, allowed):
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    mods = _modules_after("\n".join(f"import {n}" for n in names))
    assert _project(mods) <= allowed, (package, _project(mods) - allowed)
    assert "textual" not in mods
    assert not {m for m in mods if m.split(".")[0] in ML}


def _kind_modules() -> list[str]:
    """Every module of the kinds package (the registry, the kinds, their shared pieces)."""
    import pkgutil

    import orienteer.jobs.kinds as kinds

    return ["orienteer.jobs.kinds"] + [m.name for m in pkgutil.iter_modules(kinds.__path__, "orienteer.jobs.kinds.")]


@pytest.mark.parametrize(
    "statement",
    [
        "import orienteer.tui.cli.main",
        "import orienteer.tui.app",
        "from orienteer.jobs.kinds import all_kinds; all_kinds()",
        "import orienteer.tui.screens.launch, orienteer.tui.screens.jobs, orienteer.tui.cli.jobs",
    ],
)
def test_the_cli_the_app_and_the_kinds_table_never_load_the_model_code(statement):
    """``orienteer.jobs.model`` may import torch at the top of its modules: only running a job loads it."""
    mods = _modules_after(statement)
    assert not {m for m in mods if m.startswith("orienteer.jobs.model")}
    assert not {m for m in mods if m.split(".")[0] in ML}


def test_no_kind_module_loads_the_model_code_at_import():
    mods = _modules_after("\n".join(f"import {name}" for name in _kind_modules()))
    assert len(_kind_modules()) > 9  # the registry, base, shared and the nine kinds
    assert not {m for m in mods if m.startswith("orienteer.jobs.model")}
    assert not {m for m in mods if m.split(".")[0] in ML}


def test_cli_start_imports_no_ml_packages():
    mods = _modules_after("import orienteer.tui.cli.main\nimport orienteer.data.queries.report, orienteer.data.ingest_preds")
    assert not {m for m in mods if m.split(".")[0] in ML}


def test_no_top_level_core_data_jobs_tui_packages():
    mods = _modules_after("import orienteer.core, orienteer.data, orienteer.jobs, orienteer.tui")
    assert not {"core", "data", "jobs", "tui"} & mods


def test_every_package_folder_is_listed_in_pyproject():
    """A non-editable install only ships listed packages: a new subfolder must be added there."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"orienteer"}
    for top in ("core", "data", "jobs", "tui"):
        for init in (root / top).rglob("__init__.py"):  # __pycache__ never holds an __init__.py
            rel = init.parent.relative_to(root).parts
            found.add(".".join(("orienteer", *rel)))
    for init in (root / "orienteer").rglob("__init__.py"):  # orienteer/demo/ -> orienteer.demo
        found.add(".".join(init.parent.relative_to(root).parts))
    assert found == listed
