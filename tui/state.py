"""What the user is looking at, shared by the screens so drill-downs land where they should."""

from __future__ import annotations

from dataclasses import dataclass, field

from orienteer.data.filters import PredictionFilter


@dataclass
class ViewState:
    bench: str | None = None
    baseline: str | None = None
    confusion_run: str | None = None
    confusion_task: str | None = None
    confusion_grouping: str = "fine"  # fine categories or the deck grouping (core.chance.GROUPINGS)
    compare_a: str | None = None
    compare_b: str | None = None
    failures: PredictionFilter = field(default_factory=PredictionFilter)
    failures_sort: str = "item"
    # Bumped when new data arrives or the benchmark / baseline changes: every screen reloads when it moved.
    generation: int = 0
    # Bumped when a drill-down sets the failures filter: only the failures screen depends on it.
    failures_generation: int = 0

    def show_failures(self, filt: PredictionFilter) -> None:
        self.failures = filt
        self.failures_generation += 1
