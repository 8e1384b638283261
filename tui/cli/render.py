"""Rich tables for the CLI's read commands (the ``--json`` forms live beside them in cli.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from orienteer.core.chance import EXPECTED_MEANS
from orienteer.data.queries.compare import CompareRow
from orienteer.data.queries.confusion import Confusion
from orienteer.data.queries.report import OVERALL, Report, RunReport, RunRow
from orienteer.data.rows import PredictionRow
from orienteer.tui.labels import category_name, short_task
from orienteer.tui.safe_text import safe, text, visible


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def table_rows(table: Table) -> tuple[list[str], list[list[str]], list[str]]:
    """A rendered-for-a-terminal table as plain data for a pipe: (headers, rows, remarks), remarks being
    its title and caption. Cells are the full values (rich cuts only when it draws), as plain text."""
    columns = table.columns
    headers = [_plain(c.header) for c in columns]
    cells = [list(c.cells) for c in columns]
    rows = [[_plain(col[i]) if i < len(col) else "" for col in cells] for i in range(table.row_count)]
    remarks = [_plain(r, markup=True) for r in (table.title, table.caption) if r]
    return headers, rows, remarks


def _plain(cell: Any, markup: bool = False) -> str:
    """The text of a cell, header, title or caption (markup in a caption read as markup, never shown)."""
    if isinstance(cell, Text):
        return cell.plain.strip()
    value = "" if cell is None else str(cell)
    if markup:
        try:
            return Text.from_markup(value).plain.strip()
        except Exception:  # noqa: BLE001 - a caption that is not valid markup is shown as written
            return value.strip()
    return value.strip()


_RUN_WIDTHS = {"run": (10, 32), "benchmark": (6, 24), "items": (5, 9), "cover": (6, 7), "acc %": (5, 6),
               "parser": (4, 11), "created": (5, 11), "random weights": (3, 14)}


def runs_table(rows: list[RunRow], plain: bool = False, width: int | None = None) -> Table:
    """The runs; ``plain`` (for a pipe) puts "random weights" in a column of its own instead of under the
    name. ``width``: the terminal's; created, parser and benchmark give way first, so the run, its
    items, coverage and accuracy always show."""
    table = Table(title="Runs", header_style="bold", padding=(0, 1, 0, 0), pad_edge=False)
    columns = ["run", "benchmark", "items", "cover", "acc %", "parser", "created"] + (["random weights"] if plain else [])
    body: list[list[Text]] = []
    for r in rows:
        coverage = Text(f"{pct(r.coverage)}%", style="yellow" if r.coverage < 1 else "")
        body.append([text(r.run), text(r.benchmark), Text(str(r.items)), coverage, Text(pct(r.accuracy)), text(r.parser),
                     Text(r.created.strftime("%m-%d %H:%M")), *([Text("yes" if r.random_weights else "")] if plain else [])])
    natural = [max([len(c), *(row[k].cell_len for row in body)]) for k, c in enumerate(columns)]
    natural[0] = max(natural[0], len("random weights") if any(r.random_weights for r in rows) and not plain else 0)
    widths = (fit_widths(columns, natural, width, _RUN_WIDTHS, ("created", "parser", "benchmark", "run"))
              if width else [None] * len(columns))
    for col, w in zip(columns, widths):
        right = col in ("items", "cover", "acc %")
        table.add_column(col, no_wrap=True, overflow="fold" if col == "run" else "ellipsis", width=w,
                         max_width=None if w else _RUN_WIDTHS[col][1], justify="right" if right else "left")
    for r, row in zip(rows, body):
        if r.random_weights and not plain:
            row[0].append("\nrandom weights", style="bold red")
        table.add_row(*row)
    return table


def _delta_text(delta: float, significant: bool) -> Text:
    style = ("bold green" if delta > 0 else "bold red") if significant else "dim"
    return Text(f"{'+' if delta >= 0 else ''}{pct(delta)}{'*' if significant else ''}", style=style)


RUN_COLUMNS_WIDTH = 22  # one run's accuracy and Δ columns, borders included, as narrow as they read well
TASK_COLUMNS_WIDTH = 24  # the task and n columns


def report_tables(reports: list[Report], width: int | None = None) -> list[Table]:
    """One table per benchmark; in a terminal ``width`` columns wide, as many tables per benchmark as it
    takes for every run's accuracy and Δ to show whole (``width=None``: one table, e.g. for a pipe)."""
    tables = []
    for report in reports:
        per_table = len(report.runs) if width is None else max(1, (width - TASK_COLUMNS_WIDTH) // RUN_COLUMNS_WIDTH)
        chunks = [report.runs[k:k + per_table] for k in range(0, len(report.runs), per_table)] or [report.runs]
        for k, runs in enumerate(chunks):
            first, shown = k * per_table + 1, k * per_table + len(runs)
            part = "" if len(chunks) == 1 else f" (runs {first}–{shown} of {len(report.runs)})"
            tables.append(_report_table(report, runs, part, last=k == len(chunks) - 1))
    return tables


def _report_table(report: Report, runs: list[RunReport], part: str, last: bool) -> Table:
    """The table of ``runs`` of one benchmark (``part``: which of them, when split); the caption on the last."""
    caption = ("accuracy % and its 95% Wilson interval; missing answers count as wrong, except in a task "
               "a run has no answer for at all (not run)")
    if report.baseline:
        caption += (f"; Δ vs {safe(report.baseline)} in points, * = exact McNemar p < 0.05 after Holm correction "
                    "across all Δ cells of this table")
    table = Table(title=text(report.benchmark) + part, caption=caption if last else None, header_style="bold")
    # At 80 columns a long run name wraps in its header and an interval wraps under its accuracy; the
    # task, n, accuracy and Δ figures themselves never shrink away (min widths).
    table.add_column("task", no_wrap=True, min_width=7)
    table.add_column("n", justify="right", no_wrap=True, min_width=3)
    for rr in runs:
        table.add_column(text(rr.run + (" (random weights)" if rr.random_weights else "")), justify="right",
                         min_width=5)
        if rr.deltas:
            table.add_column("Δ", justify="right", no_wrap=True, min_width=6)
    for task in [*report.tasks, OVERALL]:
        cells: list[Any] = []
        n = 0
        for rr in runs:
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
    return table


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
    cats.add_row(Text("errors", style="bold"), str(c.errors), f"of {c.answered + c.unanswered}", "", "", "", "",
                 end_section=True)
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


# Widths of the prediction rows' columns in a terminal: (least, most). The item id, task and answers
# shrink at most to their least width (at 80 columns they all show); the reply takes what is left.
_ROW_WIDTHS = {"run": (8, 20), "item": (6, 14), "task": (6, 12), "gold": (6, 13), "pred": (6, 13),
               "category": (6, 19), "reply": (8, 1000), "file_verdict": (5, 12), "source_line": (4, 11)}


def prediction_rows_table(title: str, rows: Sequence[PredictionRow], extra: tuple[str, ...] = (),
                          width: int | None = None) -> Table:
    """Prediction rows; the run column is left out (and named in the title) when there is one run.

    ``extra``: more fields of the rows to show (an audit's ``file_verdict``, ``source_line``).
    ``width``: the terminal's width; the columns are sized to fit it (``fit_widths``).
    """
    runs = {r.run for r in rows}
    show_run = len(runs) > 1
    title = title if show_run or not runs else f"{title} · run {visible(next(iter(runs)))}"
    table = Table(title=Text(title), header_style="bold", padding=(0, 1, 0, 0), pad_edge=False)
    columns = (("run",) if show_run else ()) + ("item", "task", "gold", "pred", "category", "reply", *extra)
    body: list[list[Text]] = []
    for r in rows:
        reply = visible(r.reply or "", multiline=True).replace("\n", "⏎")
        cells = [text(c) for c in (r.item_id, short_task(r.task), *_answers(r), category_name(r.category))]
        cells += [Text(reply), *[text(getattr(r, e, None)) for e in extra]]
        body.append(([text(r.run)] if show_run else []) + cells)
    natural = [max([len(col), *(cell.cell_len for cell in (row[k] for row in body))]) for k, col in enumerate(columns)]
    widths = fit_widths(columns, natural, width) if width else [None] * len(columns)
    for col, w in zip(columns, widths):
        low, high = _ROW_WIDTHS.get(col, (6, 14))
        table.add_column(col, overflow="ellipsis", no_wrap=True, width=w, max_width=None if w else high)
    for row in body:
        table.add_row(*row)
    return table


def fit_widths(columns: Sequence[str], natural: Sequence[int], width: int,
               bounds: Mapping[str, tuple[int, int]] | None = None, give_first: Sequence[str] = ("reply",)) -> list[int]:
    """Content widths of the columns so the table fits ``width`` terminal cells: each as wide as its
    longest value up to its most (``bounds``, default ``_ROW_WIDTHS``); while too wide, the columns of
    ``give_first`` (in order) give up cells down to their least, then the widest column over its least
    gives a cell at a time, so no column vanishes. Borders: one per column plus one, and one cell of
    padding after every column but the last (``padding=(0, 1, 0, 0), pad_edge=False``)."""
    limits = [(bounds or _ROW_WIDTHS).get(c, (6, 14)) for c in columns]
    widths = [max(1, min(n, high)) for n, (low, high) in zip(natural, limits)]
    least = [max(1, min(low, n)) for n, (low, _) in zip(natural, limits)]
    excess = sum(widths) - (width - (len(columns) + 1) - (len(columns) - 1))
    for name in give_first:
        if name in columns and excess > 0:
            k = list(columns).index(name)
            give = min(excess, widths[k] - least[k])
            widths[k] -= give
            excess -= give
    while excess > 0:
        spare, k = max((w - low, k) for k, (w, low) in enumerate(zip(widths, least)))
        if spare <= 0:
            break  # narrower than every column's least: rich cuts the table at the edge
        widths[k] -= 1
        excess -= 1
    return widths


def _answers(r: PredictionRow) -> tuple[str, str]:
    """(gold, predicted) as "A. left"; "–" for a reply that names no option."""
    pred = f"{r.pred_letter}. {r.pred_label or ''}" if r.pred_letter else "–"
    return f"{r.gold_letter}. {r.gold_label}", pred


def prediction_rows_tsv(rows: Sequence[PredictionRow], extra: tuple[str, ...] = ()) -> tuple[list[str], list[list[str]]]:
    """The same rows for a pipe: every column (the run too), the full task name and the whole reply
    (``write_tsv`` escapes its tabs and line breaks)."""
    headers = ["run", "item", "task", "gold", "pred", "category", "reply", *extra]
    out = []
    for r in rows:
        value = [getattr(r, e, None) for e in extra]
        out.append([r.run, r.item_id, r.task, *_answers(r), category_name(r.category), r.reply or "",
                    *["" if v is None else str(v) for v in value]])
    return headers, out


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
