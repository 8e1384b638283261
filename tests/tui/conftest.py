"""Fixtures for the app's tests: one demo workspace per test session, opened read-only."""

from __future__ import annotations

import pytest

from orienteer.data.workspace import Workspace
from orienteer.demo.build import build_demo_workspace


@pytest.fixture(scope="session")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The demo workspace (1,000 rendered items, three runs), built once; treat it as read-only."""
    root = tmp_path_factory.mktemp("demo") / "orienteer-demo"
    build_demo_workspace(root, seed=7, n_items=1000)
    return Workspace(root)


@pytest.fixture
def app_factory(demo_ws: Workspace):
    """Make an app on the demo workspace; images as half-cell blocks so output is terminal-independent."""
    from orienteer.tui.app import OrienteerApp

    def make(ws: Workspace | None = None, image_mode: str = "halfcell") -> OrienteerApp:
        return OrienteerApp(ws or demo_ws, image_mode=image_mode)

    return make
