"""How a dataset's composition reads in the CLI and the app: for a cot dataset, what the teacher was
asked and, per task, how many items were tried, how many kept, and how often its samples agreed with
the gold letter (a task where the teacher rarely agrees teaches little, whatever the kept count).

The composition is JSON from the workspace (or a job folder): every value is treated as untrusted,
numbers are checked before they are formatted, and control characters are shown as escapes
(``safe_text.visible``). The lines are plain text; callers print them with markup off (``rich.text.Text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orienteer.tui.labels import short_task
from orienteer.tui.safe_text import visible

__all__ = ["cot_lines", "is_cot", "visible"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{int(number):,}"


def _agreement(value: Any) -> str:
    number = _number(value)
    return "" if number is None else f", agreement {number:.2f}"


def is_cot(composition: Mapping[str, Any]) -> bool:
    """A composition written by the cot kind (a teacher and per-task counts)."""
    return "teacher" in composition and isinstance(composition.get("tasks"), Mapping)


def cot_lines(composition: Mapping[str, Any]) -> list[str]:
    """``[summary, one line per task]`` for a cot dataset; ``[]`` for any other dataset.

    e.g. ``cot solve, 5 samples at temperature 0.7: kept 12 of 40 items, agreement 0.55`` then
    ``Per Rel.Dir: kept 3 of 10, agreement 0.62``.
    """
    if not is_cot(composition):
        return []
    samples = _number(composition.get("samples")) or 1
    temperature = _number(composition.get("temperature"))
    how = f"{int(samples)} samples" if samples > 1 else "1 sample"
    how += f" at temperature {temperature:g}" if temperature else " (greedy)"
    tasks: Mapping[str, Any] = composition["tasks"]
    tried = sum(int(_number(row.get("tried")) or 0) for row in tasks.values() if isinstance(row, Mapping))
    lines = [visible(f"cot {composition.get('mode') or 'solve'}, {how}: kept {_count(composition.get('n_kept'))} "
                     f"of {tried:,} items{_agreement(composition.get('agreement'))}")]
    for task, row in sorted(tasks.items(), key=lambda kv: str(kv[0])):  # the catalog stores keys sorted
        if not isinstance(row, Mapping):
            continue
        lines.append(visible(f"{short_task(str(task))}: kept {_count(row.get('kept'))} of {_count(row.get('tried'))}"
                             f"{_agreement(row.get('agreement'))}"))
    return lines
