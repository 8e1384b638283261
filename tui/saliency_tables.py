"""The saliency summary as rich renderables, shared by ``orienteer saliency summary`` and the app's modal.

Run, benchmark and task names come from files: they only ever enter ``Text`` objects, never markup, and
always through ``safe_text.visible`` (control characters written out).
"""

from __future__ import annotations

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from orienteer.data.saliency_summary import OVERALL, RERUN_HINT, BoxStats, PairStats, SaliencySummary
from orienteer.tui.labels import short_task
from orienteer.tui.safe_text import text, visible

NO_MAPS_APP = "no saliency maps for this run yet: S starts a saliency job"
P_MEANING = ("p: two-sided Wilcoxon signed-rank test of inside share against area share, paired per item; "
             "enrichment = mean inside share / mean area share (1 = no more than a uniform map); p Holm: corrected "
             "across the rows (tasks and overall)")
VS_P_MEANING = ("difference = the run's inside share minus the other's, in points; p: two-sided Wilcoxon "
                "signed-rank test on the paired differences")
DASH = "—"


def _share(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.1f}%"


def _p(value: float | None) -> str:
    return DASH if value is None else f"{value:.3g}"


def no_maps_message(run: str, *, app: bool) -> Text:
    """What to do when a run has no saliency maps (in the app: the key; in the shell: the command)."""
    if app:
        return Text(NO_MAPS_APP)
    line = Text("no saliency maps for run ")
    line.append(visible(run), style="bold")
    line.append(" yet: orienteer job run saliency --run ")
    line.append(visible(run))
    line.append(" makes them (S on the app's runs screen)")
    return line


def _label(task: str) -> Text:
    """A task's row label: the short names of the report and the app's screens."""
    if task == OVERALL:
        return Text("Overall", style="bold")
    return text(short_task(task))


def _table(title: Text, compact: bool) -> Table:
    return Table(title=title, header_style="bold", title_justify="left", box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD)


def _no_p_lines(groups: dict[str, BoxStats] | dict[str, PairStats]) -> list[Text]:
    lines = []
    for task, stats in groups.items():
        if stats.p is None and stats.p_note and stats.n:
            line = Text(f"{DASH} ", style="dim")
            line.append("all tasks" if task == OVERALL else visible(short_task(task)))
            line.append(f": {visible(stats.p_note)}")
            lines.append(line)
    return lines


def summary_table(summary: SaliencySummary, compact: bool = False) -> Table:
    """Per task and overall: n, inside share, area share, enrichment, p (compact: the app's short names)."""
    title = Text("Saliency inside the reference box: ")
    title.append(visible(summary.run), style="bold")
    title.append(f" ({visible(summary.benchmark)})")
    if summary.random_weights:
        title.append(" RANDOM WEIGHTS: the numbers mean nothing", style="bold red")
    table = _table(title, compact)
    table.add_column("task")
    for col in ("n", "inside share", "area share", "enrichment", "p", "p Holm"):
        table.add_column(col, justify="right")
    for task, stats in [*summary.tasks.items(), (OVERALL, summary.overall)]:
        if task == OVERALL:
            table.add_section()
        table.add_row(
            _label(task), str(stats.n), _share(stats.mass_in_bbox), _share(stats.bbox_area),
            DASH if stats.enrichment is None else f"{stats.enrichment:.2f}x", _p(stats.p), _p(stats.p_holm),
        )
    return table


def summary_notes(summary: SaliencySummary) -> list[Text]:
    """What the figures are computed on, and the items they leave out (and why)."""
    o = summary.overall
    lines = [text(f"computed on: {summary.computed_on}", style="dim"), Text(P_MEANING, style="dim")]
    counts = Text(f"{o.items_with_maps} items with maps: {o.n} measured")
    if o.no_box:
        counts.append(f", {o.no_box} without a box (no measurement)")
    if o.outdated:
        counts.append(f", {o.outdated} {RERUN_HINT}", style="yellow")
    if o.no_mass:
        counts.append(f", {o.no_mass} with an all-zero map")
    lines.append(counts)
    return lines + _no_p_lines({**summary.tasks, OVERALL: o})


def vs_table(summary: SaliencySummary, compact: bool = False) -> Table | None:
    """The paired comparison of inside share between the run and ``--vs`` (None without one)."""
    vs = summary.vs
    if vs is None:
        return None
    title = Text("Inside share, paired by parent item: ")
    title.append(visible(summary.run), style="bold")
    title.append(" vs ")
    title.append(visible(vs.run), style="bold")
    title.append(f" ({visible(vs.benchmark)})")
    table = _table(title, compact)
    table.add_column("task")
    table.add_column("pairs", justify="right")
    table.add_column(text(summary.run), justify="right")
    table.add_column(text(vs.run), justify="right")
    table.add_column("difference", justify="right")
    table.add_column("p", justify="right")
    table.add_column("p Holm", justify="right")
    for task, stats in [*vs.tasks.items(), (OVERALL, vs.overall)]:
        if task == OVERALL:
            table.add_section()
        diff = DASH if stats.difference is None else f"{100 * stats.difference:+.1f} pts"
        table.add_row(_label(task), str(stats.n), _share(stats.mass_in_bbox_run), _share(stats.mass_in_bbox_vs), diff,
                      _p(stats.p), _p(stats.p_holm))
    return table


def vs_notes(summary: SaliencySummary) -> list[Text]:
    vs = summary.vs
    if vs is None:
        return []
    lines = [Text(f"{vs.shared_items} parent items in both benchmarks; {vs.overall.n} with a current box "
                  f"measurement in both runs, {vs.unmeasured_pairs} without"), Text(VS_P_MEANING, style="dim")]
    return lines + _no_p_lines({**vs.tasks, OVERALL: vs.overall})


def summary_renderables(summary: SaliencySummary, *, app: bool) -> list[RenderableType]:
    """Everything the CLI prints and the modal shows, in order (the app's tables are compact)."""
    if not summary.has_maps:
        out: list[RenderableType] = [no_maps_message(summary.run, app=app)]
    else:
        out = [summary_table(summary, compact=app), *summary_notes(summary)]
    table = vs_table(summary, compact=app)
    if table is not None:
        out += [Text(""), table, *vs_notes(summary)]
    return out
