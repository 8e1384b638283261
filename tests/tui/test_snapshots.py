"""SVG snapshots of the main screens on the demo workspace (80x24, half-cell images).

Regenerate after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

SCREENS = {
    "runs": [],
    "confusion": ["2"],
    "failures": ["3"],
    "compare": ["4"],
    "drill_from_runs": ["down", "right", "right", "enter"],
    "case": ["3", "enter"],
    "help": ["question_mark"],
}


@pytest.mark.parametrize("name", list(SCREENS))
def test_screen_snapshot(snap_compare, app_factory, name):
    app = app_factory(image_mode="halfcell")
    assert snap_compare(app, press=[*SCREENS[name], "_"], terminal_size=(80, 24))


def test_wide_snapshot(snap_compare, app_factory):
    app = app_factory(image_mode="halfcell")
    assert snap_compare(app, press=["3", "enter", "_"], terminal_size=(160, 45))


def test_light_theme_snapshot(snap_compare, demo_ws):
    """``--theme light``: the confusion heat map and bars on a light background."""
    from orienteer.tui.app import OrienteerApp

    app = OrienteerApp(demo_ws, image_mode="halfcell", theme="light")
    assert app.theme == "textual-light"
    assert snap_compare(app, press=["2", "_"], terminal_size=(120, 30))
