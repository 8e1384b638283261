"""Rich tables for the CLI's read commands (the ``--json`` forms live beside them in cli.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from orienteer.core.chance import EXPECTED_MEANS
from orienteer.data.queries.compare import CompareRow
from orienteer.data.queries.confusion import Confusion
from orienteer.data.queries.report import OVERALL, Report, RunRow
from orienteer.data.rows import PredictionRow
from orienteer.tui.labels import category_name, short_task
from orienteer.tui.safe_text import safe, text, visible


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def runs_table(rows: list[RunRow]) -> Table:
    table = Table(title="Runs", header_style="bold")
    table.add_column("run", no_wrap=True, overflow="fold", min_width=10, max_width=32)
    table.add_column("benchmark", no_wrap=True, overflow="ellipsis", min_width=6)
    table.add_column("items", justify="right", min_width=5)
    table.add_column("cover", justify="right", min_width=6)
    table.add_column("acc %", justify="right", min_width=5)
    table.add_column("parser", no_wrap=True, overflow="ellipsis", max_width=11)
    table.add_column("created", no_wrap=True, min_width=11)
    for r in rows:
        coverage = Text(f"{pct(r.coverage)}%", style="yellow" if r.coverage < 1 else "")
        name = text(r.run)
        if r.random_weights:
            name.append("\nrandom weights", style="bold red")
        table.add_row(name, text(r.benchmark), str(r.items), coverage, pct(r.accuracy), text(r.parser),
                      r.created.strftime("%m-%d %H:%M"))
    return table


def _delta_text(delta: float, significant: bool) -> Text:
    style = ("bold green" if delta > 0 else "bold red") if significant else "dim"
    return Text(f"{'+' if delta >= 0 else ''}{pct(delta)}{'*' if significant else ''}", style=style)


def report_tables(reports: list[Report]) -> list[Table]:
    tables = []
    for report in reports:
        caption = ("accuracy % and its 95% Wilson interval; missing answers count as wrong, except in a task "
                   "a run has no answer for at all (not run)")
        if report.baseline:
            caption += (f"; Δ vs {safe(report.baseline)} in points, * = exact McNemar p < 0.05 after Holm correction "
                        "across all Δ cells of this table")
        table = Table(title=text(report.benchmark), caption=caption, header_style="bold")
        table.add_column("task", no_wrap=True)
        table.add_column("n", justify="right")
        for rr in report.runs:
            table.add_column(text(rr.run + (" (random weights)" if rr.random_weights else "")), justify="right",
                             no_wrap=True)
            if rr.deltas:
                table.add_column("Δ", justify="right")
        for task in [*report.tasks, OVERALL]:
            cells: list[Any] = []
            n = 0
            for rr in report.runs:
                cell = rr.overall if task == OVERALL else rr.tasks.get(task)
                not_run = cell is not None and cell.answered == 0 and cell.n > 0
                if cell is None:
                    cells.append("")
                elif not_run:  # no prediction in this task at all (an eval of a subset): not 0%
                    n = cell.n
                    cells.append(Text("not run", style="dim"))
                else:
                    n = cell.n
                    interval = Text(f" {100 * cell.ci_low:.0f}–{100 * cell.ci_high:.0f}", style="dim")
                    cells.append(Text(pct(cell.accuracy)) + interval)
                if rr.deltas:
                    d = None if not_run else rr.deltas.get(task)
                    cells.append(_delta_text(d.delta, d.significant) if d else "")
            label = Text("Overall", style="bold") if task == OVERALL else text(short_task(task))
            table.add_row(label, str(n), *cells, end_section=task == report.tasks[-1])
        tables.append(table)
    return tables


def confusion_tables(c: Confusion) -> list[Table]:
    return [categories_table(c), _matrix_table(c)]


def ratio_text(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def categories_table(c: Confusion) -> Table:
    """Counts per category, and each against what a uniform wrong pick would give (section 5b)."""
    scope = c.task or "all tasks"
    caption = (f"{EXPECTED_MEANS}, over the {c.wrong_picks} answered wrong items (unparsed and invalid replies "
               f"are not picks); obs/exp = ratio; p: exact Poisson-binomial, two-sided; * = Holm-corrected "
               f"p < 0.05 across this table's categories; grouping {c.grouping}")
    cats = Table(title=text(f"Error categories: {c.run}, {scope}"), caption=caption, header_style="bold",
                 box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    cats.add_column("category", no_wrap=True)
    for header in ("count", "share", "exp.", "obs/exp", "offered", "p Holm"):
        cats.add_column(header, justify="right", no_wrap=True)
    for name in c.rows:
        count = c.count(name)
        share = count / c.errors if c.errors else 0.0
        row = c.chance.get(name)
        if row is None:  # unparsed / invalid: not a pick among options, no chance figure
            chance_cells: list[Any] = [Text("–", style="dim")] * 4
        else:
            mark = "*" if row.significant else ""
            style = ("bold green" if (row.ratio or 0) > 1 else "bold red") if row.significant else "dim"
            chance_cells = [f"{row.expected:.1f}", Text(ratio_text(row.ratio) + mark, style=style), str(row.offered),
                            f"{row.p_holm:.2g}"]
        cats.add_row(text(category_name(name)), str(count), f"{pct(share)}%", *chance_cells)
    cats.add_row(Text("errors", style="bold"), str(c.errors), f"of {c.answered}", "", "", "", "", end_section=True)
    return cats


def _matrix_table(c: Confusion) -> Table:
    preds = [*c.labels] + [p for p in ("(unparsed)", "(invalid)") if any(m.pred == p for m in c.matrix)]
    golds = [g for g in c.labels if any(m.gold == g for m in c.matrix)]
    counts = {(m.gold, m.pred): m.n for m in c.matrix}
    peak = max((n for (g, p), n in counts.items() if g != p), default=1)
    grid = Table(title="gold (rows) × predicted (columns)", header_style="bold", show_lines=False, padding=(0, 0))
    grid.add_column("gold \\ pred")
    for p in preds:
        grid.add_column(text(_abbrev(p)), justify="right")
    for g in golds:
        row: list[Any] = [text(g)]
        for p in preds:
            n = counts.get((g, p), 0)
            if not n:
                row.append(Text(" ·", style="dim"))
            elif g == p:
                row.append(Text(f" {n}", style="green"))
            else:
                level = n / peak
                style = "bold red" if level > 0.5 else ("red" if level > 0.15 else "yellow")
                row.append(Text(f" {n}", style=style))
        grid.add_row(*row)
    return grid


def _abbrev(label: str) -> str:
    parts = label.strip("()").split("-")
    if label.startswith("("):
        return label[:4] + ")"
    return "-".join(p[:2] for p in parts) if len(parts) > 1 else label[:5]


def prediction_rows_table(title: str, rows: Sequence[PredictionRow], extra: tuple[str, ...] = ()) -> Table:
    """Prediction rows; the run column is left out (and named in the title) when there is one run.

    ``extra``: more fields of the rows to show (an audit's ``file_verdict``, ``source_line``).
    """
    runs = {r.run for r in rows}
    show_run = len(runs) > 1
    title = title if show_run or not runs else f"{title} · run {visible(next(iter(runs)))}"
    table = Table(title=Text(title), header_style="bold")
    columns = (("run",) if show_run else ()) + ("item", "task", "gold", "pred", "category", "reply", *extra)
    for col in columns:
        table.add_column(col, overflow="ellipsis", no_wrap=True, max_width=None if col == "reply" else 14)
    for r in rows:
        reply = visible(r.reply or "", multiline=True).replace("\n", "⏎")
        pred = f"{r.pred_letter}. {r.pred_label or ''}" if r.pred_letter else "–"
        cells = [text(c) for c in (r.item_id, short_task(r.task), f"{r.gold_letter}. {r.gold_label}", pred,
                                   category_name(r.category))]
        cells += [Text(reply), *[text(getattr(r, e, None)) for e in extra]]
        table.add_row(*([text(r.run)] if show_run else []), *cells)
    return table


def compare_table(run_a: str, run_b: str, rows: list[CompareRow]) -> Table:
    table = Table(title=text(f"{run_a} → {run_b}"),
                  caption="fixed: A wrong, B right; broken: A right, B wrong; p: exact McNemar, Holm-corrected across the "
                          "rows; * p < 0.05",
                  header_style="bold")
    for col in ("task", "n", run_a, run_b, "Δ", "fixed", "broken", "p"):
        table.add_column(text(col), justify="left" if col == "task" else "right")
    for r in rows:
        sig = r.significant
        table.add_row(
            Text("Overall", style="bold") if r.task == OVERALL else text(short_task(r.task)), str(r.n),
            pct(r.accuracy_a), pct(r.accuracy_b), _delta_text(r.accuracy_b - r.accuracy_a, sig),
            Text(str(r.fixed), style="green"), Text(str(r.broken), style="red"), f"{r.p_holm:.3g}",
            end_section=r.task != OVERALL and rows[-1].task == OVERALL and r is rows[-2],
        )
    return table
