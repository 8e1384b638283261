"""The Orienteer app: five views of one workspace, switched with number keys, keyboard only.

Screens are Textual modes (1 runs and tasks, 2 confusion, 3 failures, 4 compare, 5 jobs); the
case view is pushed on top of any of them. A timer watches the background jobs: it notifies
when one ends and reloads the views when its outputs (a run, a benchmark, a dataset) arrive.
All data comes from ``orienteer.data`` through one ``WorkspaceService`` (typed rows, no SQL
here), whose reader lets go of the database whenever the app is idle so imports and jobs in
other processes can write.
"""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from orienteer.data.errors import OrienteerError
from orienteer.data.filters import PredictionFilter
from orienteer.data.service import WorkspaceService
from orienteer.data.workspace import Workspace
from orienteer.tui.jobs_monitor import JobsMonitor
from orienteer.tui.prefetch import CasePrefetcher
from orienteer.tui.safe_text import notice
from orienteer.tui.screens.base import OrienteerScreen
from orienteer.tui.state import ViewState

if TYPE_CHECKING:
    from orienteer.jobs.status import JobView
    from orienteer.tui.jobs_monitor import JobEvent


SCREEN_KEYS = {"1": "runs", "2": "confusion", "3": "failures", "4": "compare", "5": "jobs"}
JOBS_POLL_S = 2.0
IMAGE_MODES = ("auto", "halfcell", "unicode", "none")


THEME_ALIASES = {"dark": "textual-dark", "light": "textual-light"}


def resolve_theme(name: str, available: Iterable[str]) -> str:
    """A Textual theme name for ``--theme`` (``dark``, ``light`` or a theme's own name), or a one-line error."""
    names = sorted(available)
    chosen = THEME_ALIASES.get(name.strip().lower(), name.strip())
    if chosen not in names:
        raise OrienteerError(f"--theme {name!r}: expected dark, light or one of {', '.join(names)}")
    return chosen


def _screen_factory(module: str, name: str, app: App[None]) -> Callable[[], Screen[None]]:
    """Import a screen's module only when the screen is first shown (start-up paints only the runs view).

    The new screen is marked as styled by the app's current CSS: it is, since it is styled when it
    mounts. Unmarked, Textual's ``switch_mode`` took a brand-new mode screen for one that missed a
    CSS change and refreshed the whole app's CSS twice (a full re-parse of every stylesheet source
    each time): about 120 ms of each view's first visit on this machine.
    """

    from orienteer.tui.textual_compat import mark_styled

    def make() -> Screen[None]:
        screen: Screen[None] = getattr(importlib.import_module(f"orienteer.tui.screens.{module}"), name)()
        mark_styled(screen, app)
        return screen

    return make


# Imported in a background thread once the first screen is painted, so that the first visit of
# each view does not pay for its imports. Not textual-image: in a real terminal it may probe the
# terminal, which only the UI thread may do (see widgets/item_image.py).
WARM_MODULES = ("failures", "confusion", "compare", "case", "help", "jobs", "launch", "export_dialog")
# The parts of textual-image that do not probe anything when imported, and numpy, which its sixel
# module pulls in (~200 ms): otherwise the first case view imports them on the UI thread.
WARM_LIBRARIES = ("numpy", "PIL.ImageFilter", "textual_image._sixel", "textual_image._pixeldata", "textual_image._geometry")


def _warm_up(app: OrienteerApp) -> None:
    modules = [importlib.import_module(f"orienteer.tui.screens.{module}") for module in WARM_MODULES]
    for library in WARM_LIBRARIES:
        try:
            importlib.import_module(library)
        except ImportError:  # optional speed-up only: the case view imports what it needs itself
            pass
    if not app.is_running:  # closed during the imports (tests open and close apps quickly)
        return
    try:
        # The stylesheet belongs to the UI thread: register the views' CSS there, in one parse.
        app.call_from_thread(app.preload_css, modules)
    except Exception:  # noqa: BLE001 - the app is closing; the lazy path still works
        return
    # What exists now (modules, the first screen, the stylesheet) lives as long as the app: keep it
    # out of the collector's full passes, which otherwise re-walk it during later key presses.
    gc.freeze()


def _modes(app: App[None]) -> dict[str, Callable[[], Screen[None]]]:
    return {
        "runs": _screen_factory("runs", "RunsScreen", app),
        "confusion": _screen_factory("confusion", "ConfusionScreen", app),
        "failures": _screen_factory("failures", "FailuresScreen", app),
        "compare": _screen_factory("compare", "CompareScreen", app),
        "jobs": _screen_factory("jobs", "JobsScreen", app),
    }


class OrienteerApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Orienteer"
    BINDINGS = [
        Binding("1", "goto('runs')", "Runs"),
        Binding("2", "goto('confusion')", "Confusion"),
        Binding("3", "goto('failures')", "Failures"),
        Binding("4", "goto('compare')", "Compare"),
        Binding("5", "goto('jobs')", "Jobs"),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+r", "refresh_data", "Refresh", show=False),
    ]

    def __init__(self, workspace: Workspace, image_mode: str = "auto", theme: str = "dark") -> None:
        super().__init__()
        self.theme = resolve_theme(theme, self.available_themes)
        self.workspace = workspace
        self.service = WorkspaceService(workspace)
        self.state = ViewState()
        self.image_mode = image_mode if image_mode in IMAGE_MODES else "auto"
        self._history: list[str] = []
        self.cases = CasePrefetcher(WorkspaceService(workspace))  # its own reader: never holds up the UI's
        self._case_screen: Screen[None] | None = None
        self.jobs = JobsMonitor(workspace)
        self.jobs_generation = 0
        self._jobs_polling = False
        self.css_preloaded: int | None = None  # sources added by preload_css, once it has run
        for name, factory in _modes(self).items():
            self.add_mode(name, factory)

    # --- life cycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        # A table screen holds tens of thousands of small objects; with CPython's default threshold
        # (700) the collector re-walks them many times a second while screens are built.
        gc.set_threshold(50_000, 20, 20)
        self.set_interval(0.25, self.service.release_if_idle)
        self.switch_mode("runs")
        self.set_timer(0.3, self._start_warm_up)
        self.set_interval(JOBS_POLL_S, self._poll_jobs)

    def _start_warm_up(self) -> None:
        threading.Thread(target=_warm_up, args=(self,), name="orienteer-warm-up", daemon=True).start()

    def preload_css(self, modules: list[ModuleType]) -> None:
        """Parse the CSS of every view now, while idle, not on each view's first visit (css_preload.py)."""
        from orienteer.tui.css_preload import preload_css, widget_classes

        try:
            self.css_preloaded = preload_css(self.stylesheet, widget_classes(modules))
        except Exception as exc:  # noqa: BLE001 - a speed-up only (and Textual internals): never break the app
            self.log.warning(f"CSS preload skipped: {exc!r}")
            self.css_preloaded = 0

    def on_unmount(self) -> None:
        self.cases.close()
        self.service.close()

    def case_key(self, run: str, item_id: str) -> tuple[int, str, str]:
        """The key of a case in ``self.cases`` (new data makes every cached case stale)."""
        return self.state.generation, run, item_id

    def prefetch_cases(self, cases: Iterable[tuple[str, str]]) -> None:
        """Fetch these (run, item) cases in the background, most likely first."""
        self.cases.want([self.case_key(run, item_id) for run, item_id in cases])

    # --- background jobs -------------------------------------------------------------------------

    def _poll_jobs(self) -> None:
        if self._jobs_polling or self.current_mode == "jobs":
            return  # the jobs screen polls every second itself, through refresh_jobs
        self._jobs_polling = True
        self.run_worker(self._poll_jobs_thread, thread=True, group="jobs-monitor", exit_on_error=False)

    def _poll_jobs_thread(self) -> None:
        try:
            self.refresh_jobs()
        finally:
            self._jobs_polling = False

    def refresh_jobs(self) -> list[JobView]:
        """Re-read the jobs (in a worker thread); notifications go to the UI thread."""
        events = self.jobs.refresh()
        if events:
            self.call_from_thread(self._on_job_events, events)
        return self.jobs.views

    def job_views(self) -> list[JobView]:
        if not self.jobs.views:
            self._refresh_jobs_here()
        return self.jobs.views

    def _refresh_jobs_here(self) -> None:
        """``refresh_jobs`` on the UI thread: what changed is acted on once the current handler is done."""
        events = self.jobs.refresh()
        if events:
            self.call_later(self._on_job_events, events)

    def _on_job_events(self, events: list[JobEvent]) -> None:
        new_data = False
        for event in events:
            view = event.view
            if event.what == "ingested":
                ingest = view.ingest or {}
                summary = "; ".join(ingest.get("summary") or [])
                if ingest.get("ok", True) and summary:
                    self.notify(notice(f"{view.kind} job {view.job_id}: {summary}"), title="New data", timeout=8,
                                markup=False)
                    new_data = True
                # a failed ingest also turns the job "failed": that event carries the message
            elif event.what == "done":
                self.notify(f"{view.kind} job {view.job_id} finished", title="Job done", timeout=6)
            else:
                detail = f": {view.error}" if view.error else ""
                self.notify(notice(f"{view.kind} job {view.job_id} {event.what}{detail}"), title=f"Job {event.what}",
                            severity="error" if event.what in ("failed", "lost") else "warning", timeout=10,
                            markup=False)
        self.jobs_generation += 1
        if new_data:
            self.state.generation += 1
        screen = self.screen
        if isinstance(screen, OrienteerScreen) and (new_data or self.current_mode == "jobs"):
            screen.reload_if_stale()

    def job_started(self, job_id: str) -> None:
        self.notify(f"started job {job_id} (5 shows its progress)", title="Job started", timeout=5)
        self.jobs_generation += 1
        self._refresh_jobs_here()
        self.action_goto("jobs")

    def launch_jobs(self, context: dict[str, object], kinds: list[str] | None = None, title: str = "Start a job") -> None:
        """Pick a job kind and open its form, prefilled from ``context`` (run, bench, items...)."""
        from orienteer.tui.screens.launch import pick_and_launch

        pick_and_launch(self, dict(context), kinds, title)

    def report_error(self, error: OrienteerError) -> None:
        # Errors quote names and file content: shown as plain text with control characters visible.
        self.notify(notice(error), title="Error", severity="error", timeout=8, markup=False)

    # --- navigation -----------------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        self._pop_to_mode_screen()
        if self.current_mode == mode:
            # switch_mode to the current mode does nothing: reload here if a drill-down changed the state
            if isinstance(self.screen, OrienteerScreen):
                self.screen.reload_if_stale()
            return
        self._history.append(self.current_mode)
        del self._history[:-20]
        self.switch_mode(mode)

    def action_back(self) -> None:  # type: ignore[override]  # sync: screens call it directly
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self._history:
            self.switch_mode(self._history.pop())

    def _pop_to_mode_screen(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def open_failures(self, filt: PredictionFilter) -> None:
        """Drill down: the failures view with exactly these rows."""
        self.state.show_failures(filt)
        self.action_goto("failures")

    def open_case(self, run: str, item_id: str, siblings: list[tuple[str, str]] | None = None) -> None:
        """Show a case on top of the current screen; one case screen is built once and reused."""
        from orienteer.tui.screens.case import CaseScreen

        cases = siblings or [(run, item_id)]
        screen = self._case_screen
        if screen is None:
            screen = CaseScreen(run, item_id, cases)
            self.install_screen(screen, "case")
            self._case_screen = screen
        elif screen in self.screen_stack:  # already showing (a case opened from a case): a one-off screen
            screen = CaseScreen(run, item_id, cases)
        else:
            screen.show_cases(run, item_id, cases)  # type: ignore[attr-defined]
        self.push_screen(screen)

    def action_help(self) -> None:
        from orienteer.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_refresh_data(self) -> None:
        self.state.generation += 1
        screen = self.screen
        if isinstance(screen, OrienteerScreen):
            screen.reload_if_stale()
        self.notify("reloaded")

    # --- command palette: every key of the current screen, plus navigation -----------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        from orienteer.tui.screens.base import screen_bindings

        for binding in [*screen_bindings(screen), *self.BINDINGS]:
            if not isinstance(binding, Binding) or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            action = binding.action
            target = self if action.startswith("app.") or binding in self.BINDINGS else screen
            name = action.removeprefix("app.")
            yield SystemCommand(
                binding.description,
                f"{binding.description} (key {binding.key})",
                (lambda t=target, a=name: self.call_later(t.run_action, a)),
            )


def run_app(workspace: Workspace, image_mode: str = "auto", theme: str = "dark") -> None:
    app = OrienteerApp(workspace, image_mode=image_mode, theme=theme)  # an unknown theme fails here, before the terminal changes
    if image_mode == "auto":
        # textual-image asks the terminal what it can draw (kitty, sixel) when first imported;
        # once Textual reads the terminal, the answer would arrive as key presses.
        from orienteer.tui.widgets.item_image import preload_image_support

        preload_image_support()
    app.run()
