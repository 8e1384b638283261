"""`orienteer.core` must stay standard library only and import nothing else of the project."""

from __future__ import annotations

import json
import subprocess
import sys

CORE_MODULES = ["orienteer.core", "orienteer.core.directions", "orienteer.core.answers", "orienteer.core.stats",
                "orienteer.core.chance", "orienteer.core.box_geometry", "orienteer.core.prompts"]

_PROBE = f"""
import json, sys
before = set(sys.modules)
for name in {CORE_MODULES!r}:
    __import__(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_core_imports_only_stdlib_and_itself() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    outside = [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names
        and name != "orienteer"
        and not name.startswith("orienteer.core")
    ]
    assert outside == [], f"orienteer.core pulled in non-stdlib or project modules: {outside}"
    assert not [n for n in loaded if n.startswith("orienteer.") and not n.startswith("orienteer.core")]
