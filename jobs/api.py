"""The one entry point the CLI and the TUI use to launch, re-run and cancel jobs."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.jobs.gpu_queue import job_gpus, normalize_gpu
from orienteer.jobs.kinds import get_kind
from orienteer.jobs.kinds.base import KindDef, NewName
from orienteer.jobs.params import complete, parse_args, to_args
from orienteer.jobs.runner import get_runner
from orienteer.jobs.store import JobDir, create_job, find_job


def resolve_params(kind: KindDef, values: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled, required checked, GPU normalised: the params a job's spec records."""
    if not kind.available:
        raise OrienteerError(f"job kind {kind.name!r} is not implemented yet")
    params = complete(kind.name, kind.params, values)
    params["gpu"] = normalize_gpu(params.get("gpu"), kind.wants_gpu(params))
    if "gpus" in params:  # --gpus against --gpu (a GPU list cannot run on the CPU), before a job exists
        job_gpus(params["gpu"], params["gpus"])
    return params


def command_argv(kind: KindDef, params: dict[str, Any], workspace: Workspace | None = None) -> list[str]:
    """The exact ``orienteer job run`` command for these params (what the TUI shows before starting)."""
    argv = ["orienteer"]
    if workspace is not None:
        argv += ["--workspace", str(workspace.root)]
    shown = dict(params)
    if shown.get("gpu") is None:
        shown["gpu"] = "none" if kind.needs_gpu else None
    if shown.get("runner") == "local" and (workspace is None or default_runner(workspace) == "local"):
        shown["runner"] = None  # the default needs no flag
    return argv + ["job", "run", kind.name, *to_args(kind.params, shown)]


def command_line(kind: KindDef, params: dict[str, Any], workspace: Workspace | None = None) -> str:
    return shlex.join(command_argv(kind, params, workspace))


def default_runner(ws: Workspace) -> str:
    """The workspace's ``runner`` setting (``orienteer config set runner slurm``), else local."""
    from orienteer.data.ws_config import get_setting

    return get_setting(ws, "runner") or "local"


def job_runner(spec: dict[str, Any]) -> str:
    """The runner a job was started with (jobs from before runners were recorded ran locally)."""
    return str((spec.get("params") or {}).get("runner") or "local")


def submit(ws: Workspace, kind_name: str, params: dict[str, Any], runner: str | None = None) -> JobDir:
    """Validate, create the job folder, start it detached; returns as soon as it is started.

    The runner is the params' ``runner`` (``--runner``), else ``runner``, else the workspace's default;
    the spec records the one used. When the runner cannot start the job (sbatch refuses it), the new
    job folder is removed again: the workspace is as it was."""
    kind = get_kind(kind_name)
    params = resolve_params(kind, params)
    if not ws.exists():
        ws.ensure()
    params["runner"] = params.get("runner") or runner or default_runner(ws)
    runner_impl = get_runner(params["runner"])
    params = resolve_model_names(ws, params, kind.models)
    check_inputs(ws, kind, params)
    spec = kind.make_spec(params)
    if kind.check is not None:
        kind.check(spec)
    if kind.check_devices is not None:
        from orienteer.jobs.gpus import gpu_plan

        kind.check_devices(spec, gpu_plan(params.get("gpu"), params.get("gpus")))
    if kind.preflight is not None:  # checks that read the workspace (e.g. train's test overlap)
        kind.preflight(ws, spec)
    _refuse_taken_names(ws, kind, params)
    _refuse_live_clash(ws, kind, params)
    job = create_job(ws, kind.name, params, command_argv(kind, params, ws))
    try:
        runner_impl.submit(job)
    except (OrienteerError, OSError):
        import shutil

        shutil.rmtree(job.path, ignore_errors=True)
        raise
    return job


NOUN = {"runs": "run", "benchmarks": "benchmark", "datasets": "dataset", "models": "model"}


def check_inputs(ws: Workspace, kind: KindDef, params: dict[str, Any]) -> None:
    """Before a job exists: every output name follows the one name rule (``data.names``), every
    workspace name it reads exists, every model it loads is a model folder or a hub id, and every
    path parameter names an existing file or folder. One line each, naming the option."""
    from orienteer.data.names import check_name

    for name, table, flag in kind.output_names(params):
        try:
            check_name(name, NOUN.get(table, "output"))
        except OrienteerError as exc:
            raise OrienteerError(f"{flag}: {exc}") from None
    for key, table in kind.reads:
        value = params.get(key)
        if value:
            _require_name(ws, str(value), table, "--" + key.replace("_", "-"))
    for key in kind.models:
        if params.get(key):
            from orienteer.jobs.model.loading import resolve_model_ref

            try:
                resolve_model_ref(str(params[key]))
            except OrienteerError as exc:
                raise OrienteerError(f"--{key}: {exc}") from None
    for param in kind.params:
        value = params.get(param.name)
        if param.type == "path" and value:
            _require_path(str(value), param.flag)


def _require_name(ws: Workspace, value: str, table: str, flag: str) -> None:
    from orienteer.data.service import WorkspaceService

    tables = ("benchmarks", "datasets") if table == "pools" else (table,)
    if ws.exists():
        with WorkspaceService(ws) as service:
            if service.first_table_with(tables, value) is not None:
                return
    what = " or ".join(NOUN[t] for t in tables)
    raise OrienteerError(f"{flag}: no {what} named {value!r} in this workspace")


def _require_path(value: str, flag: str) -> None:
    import errno
    import os

    from orienteer.data.fileio import os_reason

    path = Path(value).expanduser()
    try:
        os.stat(path)
    except OSError as exc:
        reason = "a symlink loop" if exc.errno == errno.ELOOP else os_reason(exc)
        raise OrienteerError(f"{flag}: {value!r}: {reason}") from None


def resolve_model_names(ws: Workspace, params: dict[str, Any], keys: Sequence[str] = ("model",)) -> dict[str, Any]:
    """A registered model's name (``orienteer job models``) in one of the options ``keys`` becomes its
    folder, so the spec is exact."""
    from orienteer.data.service import WorkspaceService

    if not any(isinstance(params.get(key), str) and params.get(key) for key in keys) or not ws.exists():
        return dict(params)
    with WorkspaceService(ws) as service:
        folders = {m.name: m.path for m in service.models()}
    return with_model_folders(params, folders, keys)


def with_model_folders(params: dict[str, Any], folders: dict[str, str], keys: Sequence[str] = ("model",)) -> dict[str, Any]:
    """``params`` with every option of ``keys`` that names a registered model replaced by its folder."""
    out = dict(params)
    for key in keys:
        if out.get(key) in folders:
            out[key] = folders[out[key]]
    return out


def output_names(kind: str, params: dict[str, Any]) -> list[NewName]:
    """Every catalog name a job of ``kind`` with ``params`` will create; none for a spec that is no
    longer valid (an older version's, or another kind's that is gone)."""
    try:
        return get_kind(kind).output_names(params)
    except OrienteerError:
        return []


def _refuse_taken_names(ws: Workspace, kind: KindDef, params: dict[str, Any]) -> None:
    from orienteer.data.service import WorkspaceService

    names = kind.output_names(params)
    if not names or not ws.exists():
        return
    with WorkspaceService(ws) as service:
        for name, table, flag in names:
            if service.name_taken(table, name):
                noun = table.rstrip("s")
                raise OrienteerError(f"a {noun} named {name!r} already exists; choose another {flag}")


def _refuse_live_clash(ws: Workspace, kind: KindDef, params: dict[str, Any]) -> None:
    """Refuse a job that would clash with a live one.

    Two live jobs with one spec would share a resume folder (partial results, checkpoints); two
    jobs making the same output name would both do the work and the second ingest would fail, so a
    job's output names are reserved while it is queued or running, or done and not yet ingested.
    """
    from orienteer.jobs.status import job_view
    from orienteer.jobs.store import list_job_dirs, spec_key

    key = spec_key(kind.name, params)
    mine = {(name, table): flag for name, table, flag in kind.output_names(params)}
    for job in list_job_dirs(ws)[:200]:
        try:
            spec = job.spec()
        except OrienteerError:
            continue
        twin = spec.get("spec_key") == key
        theirs = output_names(str(spec.get("kind")), dict(spec.get("params") or {})) if mine else []
        clash = [(name, table) for name, table, _ in theirs if (name, table) in mine]
        if not twin and not clash:
            continue
        view = job_view(job)
        if twin and view.active:
            raise OrienteerError(f"job {job.job_id} with the same spec is still {view.status}; cancel it or wait")
        if clash and (view.active or view.awaiting_ingest):
            name, table = clash[0]
            raise OrienteerError(
                f"job {job.job_id} ({view.status}) will make the {table.rstrip('s')} {name!r}; "
                f"choose another {mine[(name, table)]}, or cancel that job"
            )


def submit_args(ws: Workspace, kind_name: str, args: Sequence[str], runner: str | None = None) -> JobDir:
    kind = get_kind(kind_name)
    if not kind.available:
        raise OrienteerError(f"job kind {kind.name!r} is not implemented yet")
    return submit(ws, kind_name, parse_args(kind.name, kind.params, args), runner)


def rerun(ws: Workspace, job_id: str, runner: str | None = None) -> JobDir:
    """A new job with the same spec (it resumes from the old one's partial results when the kind can), on
    the old job's runner unless ``runner`` names another."""
    old = find_job(ws, job_id)
    spec = old.spec()
    params = dict(spec["params"])
    params["runner"] = runner or job_runner(spec)
    if params.get("gpu") is None:
        params["gpu"] = "none"  # the spec's None is the CPU; left empty it would mean "the default GPU"
    return submit(ws, spec["kind"], params)


def cancel(ws: Workspace, job_id: str) -> bool:
    """Stop a job through the runner it was started with (scancel for a Slurm job)."""
    job = find_job(ws, job_id)
    return get_runner(job_runner(job.spec())).cancel(job)
