"""The views' CSS is parsed once while the app is idle, so no first visit re-parses the stylesheet."""

from __future__ import annotations

from typing import Any

from orienteer.tui.css_preload import preload_css, widget_classes
from tests.tui.pilot import drive, until


def test_preload_registers_what_textual_would_and_is_idempotent(app_factory):
    from textual.css.stylesheet import Stylesheet

    from orienteer.tui.screens import case, failures

    classes = widget_classes([failures, case])
    names = {cls.__name__ for cls in classes}
    assert {"FailuresScreen", "CaseScreen", "Input", "Toast"} <= names
    sheet = Stylesheet(variables=app_factory().get_css_variables())
    added = preload_css(sheet, classes)
    assert added > 0 and sheet.rules, "sources were added and parsed"
    assert preload_css(sheet, classes) == 0, "a second call adds nothing"
    # the same (location -> css) pairs that Textual's Widget._post_register would add
    screen_css = failures.FailuresScreen.__new__(failures.FailuresScreen)._get_default_css()
    for read_from, css, _tie, _scope in screen_css:
        assert sheet.source[read_from].content == css


def test_no_view_reparses_the_stylesheet_after_the_preload(app_factory, monkeypatch):
    """Visit every view, a case, help, the palette, a toast, the export dialog and a job form.

    Counts every ``Stylesheet.parse`` (Textual's ``reparse`` parses a fresh stylesheet, so the
    class is patched, not the app's instance): a new view's first visit used to parse twice.
    """
    from textual.css.stylesheet import Stylesheet

    app = app_factory()
    parses: list[str] = []
    armed = {"on": False}
    original = Stylesheet.parse

    def counting_parse(self: Stylesheet) -> None:
        if armed["on"]:
            parses.append(type(app.screen).__name__)
        original(self)

    monkeypatch.setattr(Stylesheet, "parse", counting_parse)

    async def scenario(pilot: Any) -> None:
        await until(pilot, lambda: app.css_preloaded is not None, timeout=15)
        assert app.css_preloaded > 0
        armed["on"] = True
        for key in ("3", "2", "4", "5", "1"):
            await pilot.press(key)
            await pilot.pause()
        await pilot.press("3")
        await until(pilot, lambda: app.screen.query("DataTable"))
        await pilot.pause()
        await pilot.press("enter")  # a case
        await until(pilot, lambda: type(app.screen).__name__ == "CaseScreen")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("escape")
        app.notify("a toast")
        await pilot.pause()
        await pilot.press("ctrl+s")  # the export dialog
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("5", "n")  # the job picker and a form
        await pilot.pause()
        await pilot.press("escape", "escape")
        await pilot.press("ctrl+p")  # the command palette
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()

    drive(app, scenario)
    assert parses == [], f"the stylesheet was re-parsed on: {parses}"


def test_a_failing_preload_leaves_the_app_working(app_factory, monkeypatch):
    import orienteer.tui.css_preload as css_preload

    def broken(*_args: Any) -> int:
        raise AttributeError("a later Textual renamed something")

    monkeypatch.setattr(css_preload, "preload_css", broken)
    app = app_factory()

    async def scenario(pilot: Any) -> None:
        await until(pilot, lambda: app.css_preloaded is not None, timeout=15)
        assert app.css_preloaded == 0
        await pilot.press("2")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfusionScreen"

    drive(app, scenario)
