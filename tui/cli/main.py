"""The ``orienteer`` command: import, report, explore and export from the shell.

Heavy modules (pandas, the data layer) are imported inside the commands, so ``--help``
stays fast; torch and friends are never imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from orienteer.tui.cli.common import (
    DEBUG_ENV,
    ImagesOpt,
    JsonOpt,
    MapOpt,
    State,
    ThemeOpt,
    WorkspaceOpt,
    console,
    current_workspace,
    err,
    error_line,
    errors,
    no_limit,
    note,
    one_line,
    parse_mapping,
    piped,
    print_json,
    show,
    write_tsv,
)

if TYPE_CHECKING:
    from orienteer.data.service import WorkspaceService

T = TypeVar("T")

app = typer.Typer(
    name="orienteer",
    help="Find out why a vision-language model gets spatial questions wrong.",
    no_args_is_help=False,
    add_completion=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(help="Import a benchmark or a predictions file into the workspace.", no_args_is_help=True)
export_app = typer.Typer(help="Export predictions to CSV, JSONL or Parquet.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")

NO_TERMINAL_EXIT = 2
NO_TERMINAL_HINT = ("orienteer: the app needs a terminal (stdin and stdout are not both one); "
                    "run a command instead, e.g. orienteer runs (orienteer --help lists them)")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("orienteer")
        except PackageNotFoundError:  # run from a source tree that is not installed
            number = "unknown"
        sys.stdout.write(f"orienteer {number}\n")
        raise typer.Exit()


def _terminal() -> bool:
    """Whether the app can run here: it reads keys from stdin and draws on stdout."""
    return sys.stdin.isatty() and sys.stdout.isatty()


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context, workspace: WorkspaceOpt = None, images: ImagesOpt = "auto",
          theme: ThemeOpt = "dark",
          show_version: Annotated[bool, typer.Option(
              "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Find out why a vision-language model gets spatial questions wrong.

    With no command, opens the app on the workspace (in a terminal; without one it prints a one-line
    hint and exits with status 2 instead of waiting for keys that never come).
    """
    State.workspace = workspace
    State.images = images
    State.theme = theme
    # Piped, a message is one line whatever its length (a path is never broken across lines for a script).
    console.soft_wrap = piped()
    err.soft_wrap = not err.is_terminal
    if ctx.invoked_subcommand is None:
        if not _terminal():
            err.print(NO_TERMINAL_HINT, highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(NO_TERMINAL_EXIT)
        with errors():
            _open_app(current_workspace())


def read(ask: Callable[["WorkspaceService"], T]) -> T:
    """Ask the workspace (through its typed service) once; the connection is closed before anything prints."""
    from orienteer.data.service import WorkspaceService

    with WorkspaceService(current_workspace()) as service:
        return ask(service)


def _open_app(ws: Any) -> None:
    from orienteer.data.errors import WorkspaceError

    if not ws.exists():
        raise WorkspaceError(
            f"no workspace at {ws.root}: import a benchmark (orienteer import bench ...), "
            "build the demo (orienteer demo), or pass --workspace"
        )
    from orienteer.tui.app import run_app

    run_app(ws, image_mode=State.images, theme=State.theme)


# --- import ------------------------------------------------------------------------------------

@import_app.command("bench")
def import_bench(
    file: Annotated[Path, typer.Argument(help="ViewSpatial-Bench JSON, or JSONL/CSV/Parquet items.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the benchmark in the workspace.")],
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder the image paths are relative to.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="viewspatial-json or items (default: detect).")] = None,
    mapping: MapOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a benchmark of the same name.")] = False,
    notes: Annotated[Optional[str], typer.Option("--notes")] = None,
    id_prefix: Annotated[Optional[str], typer.Option(
        "--id-prefix", help="Prefix of padded ids in its prediction files (PREFIX000123 = item 123); "
                            "default viewspatial_test_ for ViewSpatial JSON, none otherwise; \"\" for none.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a benchmark (its items: questions, options, answers, images)."""
    with errors(file):
        from orienteer.data.ingest_bench import import_benchmark

        result = import_benchmark(current_workspace(), file, name, images=images, fmt=fmt, mapping=parse_mapping(mapping),
                                  replace=replace, notes=notes, id_prefix=id_prefix)
        from orienteer.tui.safe_text import safe

        if as_json:
            print_json({"bench": result.name, "replaced": result.replaced, "format": result.format,
                        "items": result.n_items, "tasks": result.tasks, "images_checked": result.images_checked,
                        "images_found": result.images_found, "image_root": str(result.image_root),
                        "id_prefix": result.id_prefix})
            return
        verb = "replaced" if result.replaced else "imported"
        console.print(f"{verb} benchmark [bold]{safe(result.name)}[/]: {result.n_items} items in {len(result.tasks)} tasks "
                      f"({safe(result.format)})", highlight=False)
        for task, n in result.tasks.items():
            console.print(f"  {n:>6}  {safe(task)}", highlight=False)
        found = f"{result.images_found} of {result.images_checked} sampled images found under {safe(result.image_root)}"
        if result.images_found:
            console.print("  " + found, highlight=False)
        else:  # a warning goes to stderr, so a script reading stdout sees only the summary
            err.print("[yellow]warning:[/] " + found, highlight=False)
        if result.id_prefix:
            console.print(f"  padded ids: {safe(result.id_prefix)}000123 = item 123", highlight=False)


@import_app.command("preds")
def import_preds(
    file: Annotated[Path, typer.Argument(
        help="A predictions file (official CSV, results JSON, JSONL, lmms-eval, VLMEvalKit, CSV/Parquet).")],
    bench: Annotated[str, typer.Option("--bench", "-b", help="The benchmark these predictions answer.")],
    run: Annotated[Optional[str], typer.Option(
        "--run", "-r", help="Run name (files with a run column may leave it out).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Force a format (default: detect).")] = None,
    parser: Annotated[str, typer.Option("--parser", help="viewspatial (official rule) or strict.")] = "viewspatial",
    replace: Annotated[bool, typer.Option("--replace", help="Replace a run of the same name.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Model or checkpoint that produced the run.")] = None,
    notes: Annotated[Optional[str], typer.Option("--notes")] = None,
    mapping: MapOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import model answers as a run, scored against the benchmark."""
    with errors(file):
        from orienteer.data.ingest_preds import import_predictions
        from orienteer.tui.safe_text import safe

        results = import_predictions(current_workspace(), file, bench, run, fmt=fmt, parser=parser, replace=replace, model=model,
                                     notes=notes, mapping=parse_mapping(mapping))
        if as_json:
            print_json([{"run": r.name, "bench": bench, "answers": r.rows, "items": r.n_items, "correct": r.correct,
                          "parser": parser, "ids": r.ids, "gold_checked": r.gold_rows, "warning": r.warning,
                          "scored_field": r.scored_field}
                         for r in results])
            return
        for r in results:
            console.print(
                f"imported run [bold]{safe(r.name)}[/]: {r.rows} answers to {r.n_items} items of {safe(bench)}, "
                f"{r.correct} correct ({100 * r.correct / r.n_items:.2f}% of items, parser {safe(parser)})",
                highlight=False,
            )
        forms = ", ".join(f"{n} {form.replace('_', ' ')}" for form, n in sorted(results[0].ids.items()) if n)
        console.print(f"  ids: {forms}; gold answers checked on {results[0].gold_rows} rows", highlight=False)
        if results[0].scored_field:
            console.print(f"  scored field: {safe(results[0].scored_field)}", highlight=False)
        if results[0].warning:
            err.print(f"[yellow]warning:[/] {safe(results[0].warning)}", highlight=False)


# --- read commands -----------------------------------------------------------------------------

@app.command("benchmarks")
def benchmarks(as_json: JsonOpt = False) -> None:
    """List the benchmarks in the workspace."""
    with errors():
        rows = read(lambda service: service.benchmarks())
        if as_json:
            print_json([r.as_json() for r in rows])
            return
        from rich.table import Table

        from orienteer.tui.safe_text import text

        table = Table(title="Benchmarks", header_style="bold")
        for col in ("benchmark", "items", "tasks", "format", "image root"):
            table.add_column(col)
        for r in rows:
            table.add_row(text(r.name), str(r.items), str(r.tasks), text(r.format or ""), text(r.image_root or ""))
        show(table)


@app.command("runs")
def runs(
    bench: Annotated[Optional[str], typer.Option("--bench", "-b")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs: benchmark, items, coverage, accuracy, parser, created."""
    with errors():
        from dataclasses import asdict

        from orienteer.tui.cli.render import runs_table

        rows = read(lambda service: service.list_runs(bench))
        if as_json:
            print_json([asdict(r) for r in rows])
        else:
            show(runs_table(rows, plain=piped(), width=console.width))


@app.command("report")
def report(
    run: Annotated[Optional[list[str]], typer.Option("--run", "-r", help="Runs to include (repeatable; default all).")] = None,
    bench: Annotated[Optional[str], typer.Option("--bench", "-b")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Run to compare against (default: the first).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-task accuracy with 95% intervals; runs side by side with deltas and McNemar tests."""
    with errors():
        from orienteer.data.queries.report import report_json
        from orienteer.tui.cli.render import report_tables

        reports = read(lambda service: service.task_report(run or None, bench, baseline))
        if as_json:
            print_json(report_json(reports))
            return
        if not reports:
            note("no runs yet: import one with [bold]orienteer import preds[/]")
        show(*report_tables(reports, width=None if piped() else console.width))


@app.command("confusion")
def confusion(
    run: Annotated[str, typer.Option("--run", "-r")],
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="One task (default: all).")] = None,
    grouping: Annotated[str, typer.Option(
        "--grouping", "-g", help="fine: every category; deck: the research's four types (Horizontal, Vertical "
                                 "flip, Orthogonal, Adjacent = any angle but 90/180) plus Other 180-degree.")] = "fine",
    as_json: JsonOpt = False,
) -> None:
    """Gold x predicted direction labels and the error categories of one run, each against chance."""
    with errors():
        from orienteer.tui.cli.render import confusion_tables

        result = read(lambda service: service.confusion(run, task, grouping))
        if as_json:
            print_json(result.as_json())
            return
        show(*confusion_tables(result))


@app.command("audit")
def audit(
    run: Annotated[str, typer.Option("--run", "-r")],
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to show (0: all).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Items where the file's own correct/incorrect verdict disagrees with Orienteer's scoring."""
    with errors():
        from orienteer.tui.safe_text import safe, visible

        found = read(lambda service: service.audit(run))
        if as_json:
            print_json(found.as_json())
            return
        checked, rows = found.checked, found.rows
        if not checked:
            note(f"run {safe(run)} carries no verdicts of its own: nothing to audit")
            return
        note(f"{len(rows)} of {checked} items disagree with the file's own verdict")
        if rows:
            show_rows(f"Audit: {visible(run)}", rows[:no_limit(limit)], extra=("file_verdict", "source_line"))


def _filter(run: list[str] | None, task: list[str] | None, category: list[str] | None, source: list[str] | None,
            gold: list[str] | None, pred: list[str] | None, text: str | None, all_rows: bool) -> Any:
    from orienteer.core.directions import category_from_name
    from orienteer.data.errors import OrienteerError
    from orienteer.data.filters import PredictionFilter

    try:
        categories = tuple(category_from_name(c).value for c in category or [])
    except ValueError as exc:
        raise OrienteerError(str(exc)) from None
    return PredictionFilter(runs=tuple(run or ()), tasks=tuple(task or ()), categories=categories,
                            sources=tuple(source or ()), gold_labels=tuple(gold or ()), pred_labels=tuple(pred or ()),
                            text=text, failures_only=not all_rows)


RunsOpt = Annotated[Optional[list[str]], typer.Option("--run", "-r", help="Run (repeatable).")]
TaskOpt = Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task (repeatable).")]
CategoryOpt = Annotated[Optional[list[str]], typer.Option(
    "--category", "-c", help="Error category, e.g. horizontal (repeatable).")]
SourceOpt = Annotated[Optional[list[str]], typer.Option("--source", help="Image source, e.g. coco, scannet.")]
GoldOpt = Annotated[Optional[list[str]], typer.Option("--gold", help="Gold label, e.g. left.")]
PredOpt = Annotated[Optional[list[str]], typer.Option("--pred", help="Predicted label.")]
TextOpt = Annotated[Optional[str], typer.Option("--text", help="Text in the question or reply.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Include correct answers too.")]


@app.command("failures")
def failures(
    run: RunsOpt = None, task: TaskOpt = None, category: CategoryOpt = None, source: SourceOpt = None,
    gold: GoldOpt = None, pred: PredOpt = None, text: TextOpt = None, all_rows: AllOpt = False,
    sort: Annotated[str, typer.Option("--sort", help="item, task, category, gold or pred.")] = "item",
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to show (0: all).")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List failing items (or any filtered set) a page at a time."""
    with errors():
        filt = _filter(run, task, category, source, gold, pred, text, all_rows)
        page = read(lambda service: service.page_with_total(filt, sort=sort, limit=no_limit(limit), offset=offset))
        if as_json:
            print_json(page.as_json())
            return
        total, rows = page.total, page.rows
        show_rows(f"{total} matching, showing {offset + 1 if rows else 0}-{offset + len(rows)}", rows)


def show_rows(title: str, rows: Any, extra: tuple[str, ...] = ()) -> None:
    """Prediction rows: a table fitted to the terminal, or (piped) every column as tab-separated rows
    with the title on stderr."""
    from orienteer.tui.cli.render import prediction_rows_table, prediction_rows_tsv

    if piped():
        err.print(title, highlight=False, markup=False, soft_wrap=True)
        write_tsv(*prediction_rows_tsv(rows, extra))
        return
    console.print(prediction_rows_table(title, rows, extra=extra, width=console.width))


@export_app.command("failures")
def export_failures(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .csv, .jsonl or .parquet.")],
    run: RunsOpt = None, task: TaskOpt = None, category: CategoryOpt = None, source: SourceOpt = None,
    gold: GoldOpt = None, pred: PredOpt = None, text: TextOpt = None, all_rows: AllOpt = False,
    force: Annotated[bool, typer.Option("--force", help=(
        "Overwrite an existing file. A symbolic link is written through (its target is replaced, the link stays); "
        "folders, devices and FIFOs are refused."))] = False,
) -> None:
    """Export failures (or any filtered set, with --all) with questions, options, labels, replies and images."""
    with errors():
        filt = _filter(run, task, category, source, gold, pred, text, all_rows)
        output.parent.mkdir(parents=True, exist_ok=True)  # as dataset export does
        count = read(lambda service: service.export_predictions(filt, output, force=force))
        from orienteer.tui.safe_text import safe

        console.print(f"wrote {count} rows to {safe(output)}", highlight=False)


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="Run A (e.g. the baseline).")],
    run_b: Annotated[str, typer.Argument(help="Run B.")],
    as_json: JsonOpt = False,
) -> None:
    """Two runs of one benchmark: per task, items fixed and broken, with McNemar p-values."""
    with errors():
        from dataclasses import asdict

        from orienteer.tui.cli.render import compare_table

        rows = read(lambda service: service.compare(run_a, run_b))
        if as_json:
            print_json({"a": run_a, "b": run_b, "tasks": [asdict(r) for r in rows]})
        else:
            show(compare_table(run_a, run_b, rows))


@app.command("rescore")
def rescore(
    run: Annotated[str, typer.Option("--run", "-r")],
    parser: Annotated[str, typer.Option("--parser", help="viewspatial or strict.")],
) -> None:
    """Score a run's stored replies again with another parser."""
    with errors():
        from orienteer.data.rescore import rescore_run

        before, after = rescore_run(current_workspace(), run, parser)
        from orienteer.tui.safe_text import safe

        console.print(f"re-scored {safe(run)} with {safe(parser)}: {before} -> {after} correct", highlight=False)


@app.command("delete-run")
def delete_run(run: Annotated[str, typer.Argument()]) -> None:
    """Remove a run and its predictions."""
    with errors():
        from orienteer.data.store import delete_runs

        delete_runs(current_workspace(), [run])
        from orienteer.tui.safe_text import safe

        console.print(f"deleted run {safe(run)}", highlight=False)


@app.command("demo")
def demo(
    path: Annotated[Optional[Path], typer.Option("--path", help="Where to build it (default: ./orienteer-demo).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    items: Annotated[int, typer.Option("--items", help="Number of items.")] = 1000,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build again even if it exists.")] = False,
    open_app: Annotated[bool, typer.Option("--open/--no-open", help="Open the app on it when built.")] = True,
    model: Annotated[bool, typer.Option(
        "--model/--no-model", help="Also build the tiny random Qwen2.5-VL for trying jobs.")] = True,
) -> None:
    """Build the demo workspace (a rendered synthetic benchmark, three runs and a tiny random model) and open the app."""
    with errors():
        from orienteer.data.workspace import Workspace
        from orienteer.demo.build import DEFAULT_DEMO_DIR, build_demo_workspace

        target = path or Path.cwd() / DEFAULT_DEMO_DIR
        summary = build_demo_workspace(target, seed=seed, n_items=items, rebuild=rebuild)
        console.print(str(summary), highlight=False)
        if model:
            from orienteer.jobs.demo_model import add_demo_model

            console.print(add_demo_model(Workspace(summary.workspace)), highlight=False)
        if open_app and sys.stdout.isatty():
            _open_app(Workspace(summary.workspace))
        else:
            console.print(f"open it with: orienteer -w {summary.workspace}", highlight=False)


# --- saliency ----------------------------------------------------------------------------------

saliency_app = typer.Typer(help="Read what saliency jobs measured.", no_args_is_help=True)
app.add_typer(saliency_app, name="saliency")


@saliency_app.command("summary")
def saliency_summary(
    run: Annotated[str, typer.Option("--run", "-r", help="The run whose saliency maps to summarise.")],
    vs: Annotated[Optional[str], typer.Option("--vs", help="A second run: paired comparison of inside share "
                                                           "on the same parent items.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Share of saliency inside the reference box against the box's area share, per task (Wilcoxon signed-rank)."""
    with errors():
        from orienteer.tui.saliency_tables import summary_renderables

        summary = read(lambda service: service.saliency_summary(run, vs))
        if as_json:
            print_json(summary.as_json())
            return
        for renderable in summary_renderables(summary, app=False):
            console.print(renderable, highlight=False)


def _register_subcommands() -> None:
    from orienteer.tui.cli import config, jobs, prompt, workspace

    config.register(app)
    jobs.register(app)
    prompt.register(app)
    workspace.register(app)


_register_subcommands()


def main() -> None:
    """The console script: ``app()`` behind a last handler, so even an error outside a command's
    ``_errors`` block (option parsing, registration) prints one line instead of a traceback."""
    try:
        app()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        code, line = error_line(exc, [])
        err.print(f"[bold red]error:[/] {one_line(line)}", highlight=False, soft_wrap=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
