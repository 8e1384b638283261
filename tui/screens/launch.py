"""Launching jobs from the app: pick a kind, fill a form prefilled from context, see the command, start.

The form is built from the kind's spec (``KIND.spec``: its options, help and choices) and prefilled
by the kind's own ``prefill``; the command it shows is built by the same code that the CLI parses
(``orienteer.jobs.api.command_line``), so what is shown is exactly what runs. No kind is named
here. Kinds whose code does not exist yet are listed, marked, and cannot be started.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Checkbox, Input, RichLog, Select, Static

from orienteer.data.errors import OrienteerError
from orienteer.jobs.kinds import KINDS, get_kind
from orienteer.jobs.kinds.base import Here, KindDef
from orienteer.jobs.params import Param
from orienteer.jobs.store import JobDir
from orienteer.tui.safe_text import has_hidden, text, visible

if TYPE_CHECKING:
    from orienteer.data.models import ModelInfo
    from orienteer.tui.app import OrienteerApp


def prefill(kind: KindDef, context: dict[str, Any]) -> dict[str, Any]:
    """Option values for ``kind`` from what the user was looking at (``base.Here``: the run under
    the cursor, its benchmark, a model, the table cell's task, an ``ids-file:`` selection of marked
    rows, a training pool), as the kind's own ``prefill`` chooses them."""
    values = kind.prefill(Here.of(context))
    names = {p.name for p in kind.params}
    return {k: v for k, v in values.items() if k in names and v is not None}


def kind_label(kind: KindDef) -> str:
    mark = "" if kind.available else "  (not implemented yet)"
    gpu = " [GPU]" if kind.needs_gpu else ""
    return f"{kind.name}{gpu}: {kind.summary}{mark}"


def pick_and_launch(app: "OrienteerApp", context: dict[str, Any], kinds: list[str] | None = None,
                    title: str = "Start a job") -> None:
    """A kind picker (every kind, unavailable ones marked), then the form for the chosen kind;
    with one kind, its form at once."""
    from orienteer.tui.widgets.pickers import PickerScreen

    if kinds is not None and len(kinds) == 1:
        open_form(app, kinds[0], context)
        return
    chosen_kinds = [get_kind(k) for k in (kinds or list(KINDS))]
    labels = {kind_label(k): k.name for k in chosen_kinds}

    def picked(label: str | None) -> None:
        if label is not None:
            open_form(app, labels[label], context)

    app.push_screen(PickerScreen(title, list(labels)), picked)


def open_form(app: "OrienteerApp", kind_name: str, context: dict[str, Any]) -> None:
    """The form of one kind, prefilled from ``context``; a kind with no code yet only says so."""
    kind = get_kind(kind_name)
    if not kind.available:
        app.notify(f"job kind {kind.name} is not implemented yet", severity="warning")
        return
    app.push_screen(LaunchScreen(kind.name, prefill(kind, context)))


class LaunchScreen(ModalScreen[str | None]):
    """The form for one job kind; dismisses with the new job's id, or None."""

    DEFAULT_CSS = """
    LaunchScreen { align: center middle; }
    LaunchScreen > #launch-box {
        width: 96%; max-width: 110; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    LaunchScreen #launch-title { text-style: bold; height: auto; }
    LaunchScreen #launch-fields { height: 1fr; }
    LaunchScreen .field { height: auto; }
    LaunchScreen .field-label { width: 18; padding: 1 1 0 0; }
    LaunchScreen .field Input, LaunchScreen .field Select { width: 1fr; }
    LaunchScreen .field-help { color: $text-muted; padding: 0 0 0 18; height: auto; }
    LaunchScreen #launch-command { height: auto; color: $text; background: $boost; padding: 0 1; }
    LaunchScreen #launch-error { height: auto; color: $error; }
    LaunchScreen #launch-dataset { height: auto; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start job"),
        Binding("ctrl+l", "choose", "Choose from a list"),
    ]
    # Where the names a field can be picked from come from, by the table the kind reads them from.
    SOURCES = {"pools": "training pools"}

    def __init__(self, kind: str, values: dict[str, Any], title: str | None = None) -> None:
        super().__init__()
        self.kind = get_kind(kind)
        # Fields whose value names something in the workspace (a model to load, a name the kind reads),
        # and where the names come from: an option naming an output (eval's --run) is not listed.
        self.listed = {key: self.SOURCES.get(table, table) for key, table in self.kind.reads}
        self.listed.update({key: "models" for key in self.kind.models})
        # A name with control characters (from a workspace older than the naming rule) is not put into a
        # field, where the terminal would obey it; the form says so and the user picks or types another.
        self.refused = {k: v for k, v in values.items() if isinstance(v, str) and has_hidden(v)}
        self.values = {k: v for k, v in values.items() if k not in self.refused}
        self.title_text = title or f"New {self.kind.name} job"
        self.models: dict[str, str] = {}  # registered model name -> folder

    @property
    def oapp(self) -> "OrienteerApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="launch-box"):
            yield Static(text(f"{self.title_text} · {self.kind.summary}"), id="launch-title")
            with VerticalScroll(id="launch-fields"):
                for param in self.kind.params:
                    with Horizontal(classes="field"):
                        yield Static(param.flag + (" *" if param.required else ""), classes="field-label")
                        yield self._field(param)
                    if param.help:
                        yield Static(param.help, classes="field-help")
                yield from self._runner_field()
            yield Static(id="launch-command")
            yield Static(id="launch-dataset")
            yield Static(self._refused_note(), id="launch-refused", classes="field-help")
            yield Static(id="launch-error")
            yield Static("[b]ctrl+s[/b] or [b]enter[/b] starts · [b]ctrl+l[/b] lists the models, datasets, benchmarks or "
                         "runs a field can name · [b]escape[/b] cancels · * required", classes="field-help")

    def _refused_note(self) -> Text:
        note = Text()
        for name, value in self.refused.items():
            note.append(f"{name}: not filled in, the name has control characters ({visible(value)})\n")
        return note

    def _runner_field(self) -> ComposeResult:
        """Where the job runs (``--runner``, a runtime option of every kind): blank is the workspace's default."""
        from orienteer.jobs.params import COMMON_PARAMS

        param = next(p for p in COMMON_PARAMS if p.name == "runner")
        try:
            from orienteer.jobs.api import default_runner

            default = default_runner(self.oapp.workspace)
        except OrienteerError:
            default = "local"
        value = self.values.get("runner")
        with Horizontal(classes="field"):
            yield Static(param.flag, classes="field-label")
            yield Select([(c, c) for c in param.choices], value=value if value in param.choices else Select.NULL,
                         id="param-runner", allow_blank=True, prompt=f"workspace default ({default})")
        yield Static(param.help, classes="field-help")

    def _field(self, param: Param) -> Any:
        value = self.values.get(param.name, param.default)
        fid = f"param-{param.name}"
        if param.type == "bool":
            return Checkbox(value=bool(value), id=fid)
        if param.type == "choice":
            options = [(c, c) for c in param.choices]
            return Select(options, value=value if value in param.choices else Select.NULL, id=fid, allow_blank=True)
        return Input(value="" if value is None else str(value), id=fid, placeholder=param.type)

    def on_mount(self) -> None:
        try:
            self.models = {m.name: m.path for m in self.oapp.service.models()}
        except OrienteerError:
            self.models = {}
        self.dataset_notes = self._dataset_notes()
        self._ready = True
        self._update_command()
        # The first required field still empty, else the first field: the form opens at its top.
        for param in self.kind.params:
            widget = self.query_one(f"#param-{param.name}")
            if param.required and isinstance(widget, Input) and not widget.value:
                widget.focus()
                return
        fields = self.query(Input)
        if fields:
            fields.first().focus()

    def collect(self) -> dict[str, Any]:
        """The form's values, converted like the CLI converts them (errors name the flag)."""
        values: dict[str, Any] = {}
        for param in self.kind.params:
            widget = self.query_one(f"#param-{param.name}")
            if isinstance(widget, Checkbox):
                values[param.name] = widget.value
            elif isinstance(widget, Select):
                values[param.name] = None if widget.is_blank() else widget.value
            elif isinstance(widget, Input):
                text = widget.value.strip()
                values[param.name] = param.convert(text) if text else None
        runner = self.query_one("#param-runner", Select)
        values["runner"] = None if runner.is_blank() else runner.value
        return values

    def _update_command(self) -> None:
        from orienteer.jobs.api import command_line, resolve_params, with_model_folders

        if not getattr(self, "_ready", False):
            return  # fields announce their first value while the form is still being built
        error = self.query_one("#launch-error", Static)
        command = self.query_one("#launch-command", Static)
        self._show_dataset_notes()
        try:
            params = resolve_params(self.kind, self.collect())
        except NoMatches:
            return  # the form is being taken down
        except OrienteerError as exc:
            error.update(text(exc))
            command.update(Text("$ orienteer job run " + self.kind.name + " ...", style="dim"))
            return
        error.update("")
        params = with_model_folders(params, self.models, self.kind.models)  # as submit records it
        command.update(text("$ " + command_line(self.kind, params, self.oapp.workspace)))

    @property
    def dataset_fields(self) -> list[str]:
        """The fields that name a dataset the kind reads."""
        return [key for key, table in self.kind.reads if table == "datasets"]

    def _dataset_notes(self) -> dict[str, list[str]]:
        """Per cot dataset: what its teacher kept, per task (``tui.composition.cot_lines``); read once."""
        if not self.dataset_fields:
            return {}
        from orienteer.data.datasets import list_datasets
        from orienteer.tui.composition import cot_lines

        try:
            infos = list_datasets(self.oapp.workspace)
        except OrienteerError:
            return {}
        return {d.name: lines for d in infos if (lines := cot_lines(d.composition))}

    def _show_dataset_notes(self) -> None:
        """Under the command: the kept / tried / agreement per task of a cot dataset a field names."""
        lines: list[str] = []
        for name in self.dataset_fields:
            try:
                value = self.query_one(f"#param-{name}", Input).value.strip()
            except NoMatches:
                continue
            notes = getattr(self, "dataset_notes", {}).get(value)
            if notes:
                lines += [f"{visible(value)}: {notes[0]}", *(f"  {line}" for line in notes[1:])]
        try:
            self.query_one("#launch-dataset", Static).update(Text("\n".join(lines)))
        except NoMatches:
            pass

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_command()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._update_command()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._update_command()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _listed_field(self) -> tuple[Param, Input] | None:
        """The focused field when it names something listable, else the first such field."""
        widgets = [(p, self.query_one(f"#param-{p.name}")) for p in self.kind.params if p.name in self.listed]
        fields = [(p, w) for p, w in widgets if isinstance(w, Input)]
        for param, widget in fields:
            if widget.has_focus:
                return param, widget
        return fields[0] if fields else None

    def action_choose(self) -> None:
        """Pick a registered model (or dataset, benchmark, run) for the focused field from a list."""
        from orienteer.tui.widgets.pickers import PickerScreen

        target = self._listed_field()
        if target is None:
            self.app.notify("no field here names a model, dataset, benchmark or run", severity="warning")
            return
        param, widget = target
        source = self.listed[param.name]
        if source == "models":
            names = list(self.models)
        elif source == "datasets":
            from orienteer.data.datasets import list_datasets

            names = [d.name for d in list_datasets(self.oapp.workspace)]
        elif source == "training pools":
            names = self._pools()
        else:
            names = self.oapp.service.bench_names() if source == "benchmarks" else self.oapp.service.run_names()
        if not names:
            self.app.notify(f"there are no {source} yet", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value is not None and has_hidden(value):
                self.app.notify(f"{visible(value)}: the name has control characters; it cannot be used in a form",
                                severity="warning", markup=False)
            elif value is not None:
                widget.value = value
                widget.focus()

        self.app.push_screen(PickerScreen(f"{param.flag}: {source}", names, current=widget.value or None), chosen)

    def _pools(self) -> list[str]:
        """Pools for this form's run: outside its benchmark's family (every dataset and benchmark without a run)."""
        from orienteer.data.datasets import list_datasets
        from orienteer.data.overlap import training_pools

        try:
            run = self.query_one("#param-run", Input).value.strip() or None
        except NoMatches:
            run = self.values.get("run")
        ws = self.oapp.workspace
        try:
            bench = self.oapp.service.run_info(run).bench_name if run else None
        except OrienteerError:
            bench = None
        if bench is not None:
            return training_pools(ws, bench)
        return [d.name for d in list_datasets(ws)] + self.oapp.service.bench_names()

    def action_start(self) -> None:
        from orienteer.jobs.api import submit

        try:
            values = self.collect()
            job = submit(self.oapp.workspace, self.kind.name, values)
        except OrienteerError as exc:
            self.query_one("#launch-error", Static).update(text(exc))
            return
        app = self.oapp
        self.dismiss(job.job_id)
        app.call_later(app.job_started, job.job_id)


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no: y / enter confirms, n / escape declines."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static { width: auto; max-width: 90%; border: round $warning; background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("enter", "answer(True)", "Yes", show=False),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(visible(self.question), "\n\n", ("y", "bold"), " yes · ", ("n", "bold"), " no"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class LogScreen(Screen[None]):
    """A job's log, following new lines as the job writes them (escape goes back)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("f", "toggle_follow", "Follow on/off"),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
    ]

    def __init__(self, job: JobDir) -> None:
        super().__init__()
        self.job = job
        self._position = 0
        self.follow = True

    def compose(self) -> ComposeResult:
        from orienteer.tui.widgets.keybar import KeyBar

        yield Static(Text.assemble("log of job ", (visible(self.job.job_id), "bold"), " · following new lines (f toggles)"),
                     classes="screen-title", id="log-title")
        yield RichLog(id="job-log", wrap=False, markup=False, highlight=False, max_lines=20_000)
        yield KeyBar()

    def on_mount(self) -> None:
        self._read_more()
        self.set_interval(0.5, self._read_more)
        self.query_one(RichLog).focus()

    def _read_more(self) -> None:
        try:
            with open(self.job.log_path, "rb") as fh:
                fh.seek(self._position)
                chunk = fh.read(1 << 20)
        except FileNotFoundError:
            return
        if not chunk:
            return
        cut = chunk.rfind(b"\n") + 1 if len(chunk) == 1 << 20 else len(chunk)
        self._position += cut
        log = self.query_one(RichLog)
        for line in chunk[:cut].decode("utf-8", errors="replace").splitlines():
            log.write(Text(visible(line)), scroll_end=self.follow)  # a job's log quotes replies and names

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.app.notify("following new lines" if self.follow else "not following")

    def action_top(self) -> None:
        self.follow = False
        self.query_one(RichLog).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one(RichLog).scroll_end(animate=False)


def write_selection(app: "OrienteerApp", item_ids: list[str]) -> str:
    """Save chosen item ids for a job (``ids-file:PATH``): a spec stays short and re-runnable."""
    folder = app.workspace.root / "jobs" / ".selections"
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(item_ids) + "\n"
    # The digest keeps two selections of one second apart: a job's spec must keep naming its own ids.
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    path = folder / f"items-{time.strftime('%Y%m%d-%H%M%S')}-{len(item_ids)}-{digest}.txt"
    path.write_text(text, encoding="utf-8")
    return f"ids-file:{path}"


def run_context(app: "OrienteerApp", run: str | None) -> dict[str, Any]:
    """What a job launched on a run starts from: the run, its benchmark and a model to load."""
    context: dict[str, Any] = {"run": run, "bench": app.state.bench}
    if run is None:
        return context
    try:
        found = app.service.run_model(run)
        context["bench"], context["model"] = found.bench, _model_choice(found.model, app.service.models())
    except OrienteerError:
        return context
    from orienteer.data.overlap import training_pools

    pools = training_pools(app.workspace, context["bench"])
    if pools:
        context["pool"] = pools[0]
    return context


def _model_choice(model: str | None, registered: list[ModelInfo]) -> str | None:
    """A model the eval form can load: the run's own when it is a folder or a registered name,
    else the newest registered model (e.g. the demo's tiny one)."""
    names = {m.name for m in registered}
    if model and (model in names or Path(model).exists()):
        return model
    return registered[-1].name if registered else model
