"""``orienteer job ...``: launch, list, follow and cancel background jobs from the shell.

Every TUI launch is exactly one of these commands. Kind options are the fields of each kind's spec
dataclass (``orienteer job kinds`` lists them) and parsed by ``orienteer.jobs.params``, so the
command is the same whether typed or built by the TUI's form.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.text import Text

from orienteer.tui.cli.common import (
    JsonOpt,
    console,
    current_workspace,
    err,
    errors,
    no_limit,
    note,
    piped,
    print_json,
    write_tsv,
)
from orienteer.tui.safe_text import safe, text, visible

if TYPE_CHECKING:
    from orienteer.data.workspace import Workspace
    from orienteer.jobs.kinds.base import KindDef
    from orienteer.jobs.status import JobView

job_app = typer.Typer(help="Run jobs in the background (they outlive the app and the SSH session).", no_args_is_help=True)


@job_app.command("kinds")
def kinds(as_json: JsonOpt = False) -> None:
    """The job kinds, their options, and which are implemented."""
    from orienteer.jobs.kinds import all_kinds

    rows = [_kind_row(kind) for kind in all_kinds()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        _print_kind(row)


def _kind_row(kind: KindDef) -> dict[str, Any]:
    return {
        "kind": kind.name, "available": kind.available, "gpu": kind.needs_gpu, "summary": kind.summary,
        "options": [{"flag": p.flag, "type": p.type, "default": p.default, "required": p.required, "help": p.help,
                     "choices": list(p.choices)} for p in kind.params],
    }


def _print_kind(row: dict[str, Any]) -> None:
    """A kind and its options: flags in a column of their own, each help wrapped at word boundaries
    beside its flag (never under it); the default named only when there is one."""
    from rich.table import Table

    mark = "  [yellow](not implemented yet)[/]" if not row["available"] else ""
    gpu = " [dim](GPU)[/]" if row["gpu"] else ""
    console.print(f"[bold]{row['kind']}[/]{gpu}  {row['summary']}{mark}", highlight=False)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=4)  # indent
    grid.add_column(no_wrap=True)  # flag
    grid.add_column(overflow="fold")  # help, wrapped at spaces
    for opt in row["options"]:
        line = Text(opt["help"])
        if opt["choices"]:
            line.append(f" ({'|'.join(opt['choices'])})", style="dim")
        if opt["required"]:
            line.append(" · required", style="red")
        elif opt["default"] not in (None, ""):
            default = ("on" if opt["default"] else "off") if opt["type"] == "bool" else opt["default"]
            line.append(f" · default {default}", style="dim")
        grid.add_row("", Text(opt["flag"] + (" [true|false]" if opt["type"] == "bool" else "")), line)
    console.print(grid)


@job_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def run(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="Job kind (orienteer job kinds lists them and their options).")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the log until the job ends; exit 1 if it failed.")] = False,
) -> None:
    """Start a job in the background: orienteer job run KIND --option value ... (KIND --help: its options)"""
    with errors():
        if any(arg in ("--help", "-h") for arg in ctx.args):
            from orienteer.jobs.kinds import get_kind

            row = _kind_row(get_kind(kind))
            console.print(f"orienteer job run {kind} --option value ... [--wait]", highlight=False)
            _print_kind(row)
            return
        from orienteer.jobs.api import submit_args

        ws = current_workspace()
        job = submit_args(ws, kind, list(ctx.args))
        console.print(f"started job {job.job_id}", highlight=False)
        if wait:
            code = _follow(ws, job.job_id)
            raise typer.Exit(code)


def _follow(ws: Workspace, job_id: str, lines: int = 0) -> int:
    """Print the log as it grows until the job ends; 0 when it is done, else 1."""
    from orienteer.jobs.reconcile import ingest_finished
    from orienteer.jobs.status import job_view, tail_and_end
    from orienteer.jobs.store import find_job

    job = find_job(ws, job_id)
    position = 0
    if lines:
        last, position = tail_and_end(job.log_path, lines)  # then follow from exactly where they end
        for line in last:
            console.print(visible(line), highlight=False, markup=False)
    while True:
        if job.log_path.exists():
            with open(job.log_path, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
                position += len(chunk)
            if chunk:
                console.out(visible(chunk.decode("utf-8", errors="replace"), multiline=True), end="", highlight=False)
        view = job_view(job)
        if not view.active:
            deadline = time.monotonic() + 120
            while view.awaiting_ingest and time.monotonic() < deadline:
                # The job ingests its own outputs as it ends; take over if it could not.
                ingest_finished(ws, job)
                view = job_view(job)
                if view.ingest is None:
                    time.sleep(0.1)
            _final_line(view)
            return 0 if view.status == "done" else 1
        time.sleep(0.2)


def _final_line(v: JobView) -> None:
    colour = {"done": "green", "failed": "red", "lost": "red", "cancelled": "yellow"}.get(v.status, "white")
    extra = f": {safe(v.error)}" if v.error else ""
    console.print(f"job {safe(v.job_id)} [{colour}]{v.status}[/]{extra}", highlight=False)
    if v.ingest and v.ingest.get("summary"):
        console.print(text("ingested: " + "; ".join(map(str, v.ingest["summary"]))), highlight=False)


@job_app.command("list")
def list_jobs(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Show at most N jobs, newest first (0: all).")] = 30,
) -> None:
    """Jobs of this workspace, newest first (finished jobs' outputs are ingested on the way)."""
    with errors():
        from orienteer.jobs.reconcile import reconcile, summary_line
        from orienteer.jobs.status import format_duration

        views = reconcile(current_workspace())[:no_limit(limit)]
        if as_json:
            print_json([summary_line(v) for v in views])
            return
        if not views:
            note("no jobs yet (orienteer job kinds lists what can run)")
            return
        from rich.table import Table

        table = Table(box=None, header_style="bold", padding=(0, 1, 0, 0), pad_edge=False)
        rows: list[tuple[str, ...]] = []
        for v in views:
            p = v.progress
            prog = f"{p.done}/{p.total}" if p.total else (str(p.done) if p.done else "-")
            rate = f"{p.rate:.2f}/s" if p.rate else ""
            eta = format_duration(p.eta_s) if v.active and p.eta_s is not None else ""
            pending = f"Slurm: pending ({v.reason})" if v.status == "queued" and v.reason else ""
            remark = v.error or pending or "; ".join((v.ingest or {}).get("summary") or [])
            rows.append(tuple(visible(c) for c in (v.job_id, v.kind, v.status, prog, rate, eta,
                                                  format_duration(v.elapsed_s), v.where, remark)))
        headers = ("job", "kind", "status", "progress", "rate", "eta", "elapsed", "on", "note")
        if piped():
            write_tsv(headers, rows)
            return
        widths = _job_widths(headers, rows, console.width)
        for column, width in zip(headers, widths):
            table.add_column(column, no_wrap=True, overflow="ellipsis", width=width,
                             justify="right" if column in ("progress", "rate", "eta", "elapsed") else "left")
        for row in rows:
            table.add_row(*map(Text, row))
        console.print(table)


# Which of ``job list``'s columns give way first when the terminal is narrow (least needed first); the
# job id, its status and progress never do.
_JOB_YIELD = ("note", "on", "rate", "eta", "kind", "elapsed")


def _job_widths(headers: tuple[str, ...], rows: list[tuple[str, ...]], width: int) -> list[int]:
    """Content widths for ``job list`` to fit ``width`` cells (one space between columns): each column as
    wide as its longest value; while too wide, the note shrinks to 4 cells, then the least needed
    columns shrink to 4 (then 1) in the order of ``_JOB_YIELD``."""
    from rich.cells import cell_len

    widths = [max(len(h), *(cell_len(r[k]) for r in rows)) for k, h in enumerate(headers)]
    excess = sum(widths) + len(headers) - 1 - width
    for floor in (4, 1):
        for name in _JOB_YIELD:
            if excess <= 0:
                return widths
            k = headers.index(name)
            give = min(excess, max(0, widths[k] - floor))
            widths[k] -= give
            excess -= give
    return widths


@job_app.command("logs")
def logs(
    job_id: Annotated[str, typer.Argument(help="Job id (a unique prefix or suffix is enough).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines from the end (0 = all).")] = 0,
) -> None:
    """A job's log."""
    with errors():
        from orienteer.jobs.status import tail
        from orienteer.jobs.store import find_job

        ws = current_workspace()
        job = find_job(ws, job_id)
        if follow:
            raise typer.Exit(_follow(ws, job.job_id, lines=lines or 20))
        if not job.log_path.exists():
            console.print("(no log yet)", highlight=False)
            return
        if lines:
            for line in tail(job.log_path, lines):
                console.print(visible(line), highlight=False, markup=False)
        else:
            console.out(visible(job.log_path.read_text(encoding="utf-8", errors="replace"), multiline=True), end="",
                        highlight=False)


@job_app.command("cancel")
def cancel(job_id: Annotated[str, typer.Argument(help="Job id (a unique prefix or suffix is enough).")]) -> None:
    """Stop a job: SIGTERM to its process group, SIGKILL after a grace period (a Slurm job: scancel)."""
    with errors():
        from orienteer.jobs.api import cancel as cancel_job

        if cancel_job(current_workspace(), job_id):
            console.print(f"cancelled job {safe(job_id)}", highlight=False)
        else:
            err.print(f"job {safe(job_id)} was not running", highlight=False)


@job_app.command("rerun")
def rerun(
    job_id: Annotated[str, typer.Argument(help="Job id to run again with the same spec.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new job until it ends.")] = False,
) -> None:
    """Run a job again with the same spec and runner (eval and train pick up where a killed run stopped)."""
    with errors():
        from orienteer.jobs.api import rerun as rerun_job

        ws = current_workspace()
        job = rerun_job(ws, job_id)
        console.print(f"started job {safe(job.job_id)}", highlight=False)
        if wait:
            raise typer.Exit(_follow(ws, job.job_id))


@job_app.command("show")
def show(job_id: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One job: its spec, status, progress and what it ingested."""
    with errors():
        from orienteer.jobs.reconcile import ingest_finished, summary_line
        from orienteer.jobs.status import job_view, tail
        from orienteer.jobs.store import find_job

        ws = current_workspace()
        job = find_job(ws, job_id)
        ingest_finished(ws, job)
        view = job_view(job)
        row = summary_line(view) | {"params": view.params, "folder": str(job.path), "log_tail": tail(job.log_path, 5)}
        if as_json:
            print_json(row)
            return
        for key, value in row.items():
            console.print(f"[bold]{key:<10}[/] {safe(value)}", highlight=False)


dataset_app = typer.Typer(help="Training datasets: import, export (ShareGPT/LLaVA or items), list.", no_args_is_help=True)


@dataset_app.command("list")
def dataset_list(as_json: JsonOpt = False) -> None:
    """Training datasets in the workspace (made by jobs or imported)."""
    with errors():
        from orienteer.data.datasets import list_datasets

        infos = list_datasets(current_workspace())
        if as_json:
            print_json([i.as_json() for i in infos])
            return
        if not infos:
            console.print("no datasets yet (orienteer dataset import FILE --name NAME, or a flip/hard-negatives job)",
                          highlight=False)
            return
        from orienteer.tui.composition import cot_lines

        for info in infos:
            made = f" by job {info.created_by_job}" if info.created_by_job else ""
            line = Text(visible(info.name), style="bold")
            line.append(f"  {info.n_examples:,} examples{visible(made)}  ")
            line.append(visible(info.path), style="dim")
            console.print(line, highlight=False)
            for k, cot in enumerate(cot_lines(info.composition)):  # a cot dataset: kept / tried / agreement per task
                console.print(Text(("  " if k == 0 else "    ") + cot), highlight=False)


@dataset_app.command("import")
def dataset_import(
    path: Annotated[Path, typer.Argument(help="JSONL: items with a target, ShareGPT (messages) or LLaVA (conversations).")],
    name: Annotated[str, typer.Option("--name", help="Dataset name in the workspace.")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="items | sharegpt | llava (default: detected).")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder that relative image paths are relative to.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a dataset of the same name.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a training dataset (multi-turn conversations are kept as they are)."""
    with errors(path):
        from orienteer.data.datasets import import_dataset

        info = import_dataset(current_workspace(), path, name, fmt, replace, images=images)
        if as_json:
            print_json(info.as_json() | {"images_missing": info.images_missing})
            return
        multi = info.composition.get("multi_turn") or 0
        shown = f" ({multi:,} multi-turn)" if multi else ""
        console.print(f"imported dataset {safe(info.name)}: {info.n_examples:,} examples{shown}", highlight=False)
        if info.images_missing:
            err.print(f"[yellow]warning:[/] {info.images_missing} example image(s) not found on this machine", highlight=False)


@dataset_app.command("export")
def dataset_export(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    path: Annotated[Optional[Path], typer.Argument(help=(
        "Output file: .json holds one JSON array, .jsonl JSON Lines. With --bundle, the file's name inside "
        "the bundle (default NAME.json, NAME.jsonl for items)."))] = None,
    fmt: Annotated[str, typer.Option("--format", help="items | sharegpt (messages) | llava (conversations).")] = "items",
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help=(
        "Write the dataset file, its images and dataset_info.json into this folder, with relative paths "
        "(new or empty; --force replaces an earlier bundle)."))] = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Overwrite an existing file. A symbolic link is written through (its target is replaced, the link stays); "
        "folders, devices and FIFOs are refused."))] = False,
) -> None:
    """Export a training dataset for fine-tuning tools (sharegpt/llava also write LLaMA-Factory's dataset_info.json)."""
    with errors():
        from orienteer.data.datasets import export_dataset_files

        if path is None and bundle is None:
            raise typer.BadParameter("give an output file, or --bundle DIR", param_hint="PATH")
        result = export_dataset_files(current_workspace(), name, path, fmt, force, bundle=bundle)
        console.print(f"wrote {result.n_examples:,} examples to {safe(result.path)}", highlight=False, soft_wrap=True)
        if result.bundle is not None:
            console.print(f"bundle {safe(result.bundle)}: {result.n_images:,} image(s) "
                          f"({result.n_linked:,} hard-linked, {result.n_images - result.n_linked:,} copied), "
                          "paths relative to the folder", highlight=False, soft_wrap=True)
        if result.dataset_info is not None:
            console.print(f"dataset_info.json entry {safe(name)} written to {safe(result.dataset_info)} "
                          f"(LLaMA-Factory: dataset_dir {safe(result.dataset_info.parent)}, dataset {safe(name)})",
                          highlight=False, soft_wrap=True)
        if isinstance(result.replaced_entry, dict):
            was = result.replaced_entry.get("file_name")
            err.print(f"[yellow]note:[/] it replaced the entry {safe(name)} that named {safe(was)}", highlight=False,
                      soft_wrap=True)


@dataset_app.command("concat")
def dataset_concat(
    parts: Annotated[list[str], typer.Argument(help="Datasets to join, in order (at least two).")],
    name: Annotated[str, typer.Option("--name", help="Name of the joined dataset.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace a dataset of the same name.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Join datasets into one (e.g. originals + their flipped copies); the result records its parts."""
    with errors():
        from orienteer.data.datasets import concat_datasets

        info = concat_datasets(current_workspace(), parts, name, replace=replace)
        if as_json:
            print_json(info.as_json())
            return
        sizes = " + ".join(f"{p['n_examples']:,}" for p in info.composition["concat"])
        console.print(text(f"dataset {info.name}: {sizes} = {info.n_examples:,} examples"), highlight=False)
        if info.composition.get("shared_item_ids"):
            console.print(Text(f"{info.composition['shared_item_ids']:,} item id(s) occur in more than one part"),
                          highlight=False)


@dataset_app.command("overlap")
def dataset_overlap(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    bench: Annotated[str, typer.Option("--bench", help="Benchmark you will report on.")],
    as_json: JsonOpt = False,
) -> None:
    """Items the dataset shares with a benchmark (id, parent id, image content): what train refuses."""
    with errors():
        from orienteer.data.overlap import check_dataset_against

        overlap = check_dataset_against(current_workspace(), name, bench, allow=True)
        if as_json:
            print_json(overlap.as_json() | {"family": overlap.family, "images_unread": overlap.images_unread})
            return
        message = overlap.message() if overlap else (f"dataset {name!r} shares no item, parent item or image with "
                                                     f"{', '.join(overlap.family)}")
        if overlap.images_unread:
            message += f" ({overlap.images_unread} of its images are not on this machine and were not compared)"
        console.print(Text(visible(message)), highlight=False)
        if overlap:
            raise typer.Exit(1)


@job_app.command("models")
def models(as_json: JsonOpt = False) -> None:
    """Registered models (train outputs and the demo's tiny model): names the eval job accepts."""
    with errors():
        from orienteer.data.service import WorkspaceService

        ws = current_workspace()
        if not ws.exists():
            rows = []
        else:
            with WorkspaceService(ws) as service:
                rows = service.models()
        if as_json:
            print_json([r.__dict__ for r in rows])
            return
        if not rows:
            console.print("no registered models yet (a train job registers its output)", highlight=False)
        from orienteer.tui.safe_text import safe

        for r in rows:
            base = f" on {safe(r.base_model)}" if r.base_model else ""
            console.print(f"[bold]{safe(r.name)}[/]  {safe(r.method or '')}{base}  [dim]{safe(r.path)}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")
    app.add_typer(dataset_app, name="dataset")



