"""Workspace settings: a small typed registry of known keys, kept in ``WORKSPACE/settings.json``.

``orienteer config set KEY VALUE`` writes one; the job runtime reads them (the default runner, the
sbatch options of Slurm jobs, the serving engines' executables). Only known keys are accepted and each
value is checked by its key when it is set, so a typo fails at once with one line rather than at the
next job's submission. The file is written whole and renamed into place (``atomic_file``): a reader
never sees half of it, and a failed write leaves the old one. Values are stored as the text given
(the settings are few and small; a dict of strings is all a JSON file needs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.data.job_outputs import atomic_file

SETTINGS_FILE = "settings.json"
RUNNERS = ("local", "slurm")


def _choice(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return value

    return check


def _positive_int(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]{0,5}", value):
        raise ValueError("a positive whole number")
    return value


# What sbatch --time accepts: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds; or unlimited/infinite.
_TIME = re.compile(r"\d+(:\d{1,2}(:\d{1,2})?)?|\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?")


def _slurm_time(value: str) -> str:
    if value.lower() in ("unlimited", "infinite") or _TIME.fullmatch(value):
        return value
    raise ValueError("a Slurm time: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")


def _memory(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[KMGT]?", value):
        raise ValueError("a size like 32G, 512M or 64000 (megabytes)")
    return value


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.,@+-]{1,128}", value):
        raise ValueError("a Slurm name (letters, digits and _ . , @ + -)")
    return value


# sbatch options the Slurm runner sets itself (``jobs.slurm``), each with why ``slurm.extra`` may not
# take it over: a later option wins in sbatch, so an extra one would silently replace the runner's.
RUNNER_SBATCH_OPTIONS = {
    "export": "the worker needs the submitting environment (PYTHONPATH, HF_HOME...)",
    "export-file": "the worker needs the submitting environment",
    "wrap": "the batch script is the runner's fixed slurm.sh",
    "chdir": "the job runs in its job folder",
    "workdir": "the job runs in its job folder",
    "output": "the job's output goes to its log.txt",
    "error": "the job's output goes to its log.txt",
    "input": "the worker reads nothing on its standard input",
    "open-mode": "log.txt is appended to",
    "parsable": "the runner reads the job id from sbatch's reply",
    "wait": "sbatch must answer at once with the job id",
    "job-name": "the runner names the job orienteer-KIND",
    "comment": "the runner finds a job whose sbatch reply was lost by its comment orienteer:JOB_ID",
    "array": "one job folder is one Slurm job",
    "dependency": "a workspace setting outlives the one-shot Slurm ids it would name (jobs would wait forever)",
}


def _runner_option(name: str) -> str | None:
    """The runner's option that ``--name`` is or abbreviates (sbatch takes any unambiguous prefix)."""
    for option in RUNNER_SBATCH_OPTIONS:
        if name and option.startswith(name):
            return option
    return None


def sbatch_extra(value: str) -> list[str]:
    """``slurm.extra`` as the list of sbatch options it holds (split like a shell would, never run by one);
    each must be an option (``--name`` or ``--name=value``), so no word can be taken for the script, and
    none may be one the runner sets itself (``RUNNER_SBATCH_OPTIONS``)."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"sbatch options as a shell would split them ({exc})") from None
    for word in words:
        if not re.match(r"--[A-Za-z]", word):
            raise ValueError(f"sbatch options that each start with -- (got {word!r}; write --opt=value)")
        taken = _runner_option(word[2:].split("=", 1)[0])
        if taken is not None:
            raise ValueError(f"sbatch options the runner does not set itself (--{taken}: {RUNNER_SBATCH_OPTIONS[taken]})")
    return words


def _extra(value: str) -> str:
    sbatch_extra(value)
    return value


def _executable(value: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError("the path of an executable file that exists")
    return str(path)


@dataclass(frozen=True)
class Setting:
    """One known key: what it is for, and how a value is checked (raises ``ValueError`` with what is expected)."""

    key: str
    help: str
    check: Callable[[str], str]


SETTINGS: tuple[Setting, ...] = (
    Setting("runner", "where jobs run unless --runner says otherwise: local or slurm (default local)", _choice(*RUNNERS)),
    Setting("slurm.partition", "sbatch --partition for Slurm jobs", _name),
    Setting("slurm.account", "sbatch --account for Slurm jobs", _name),
    Setting("slurm.time", "sbatch --time: a job's time limit (e.g. 4:00:00 or 1-00)", _slurm_time),
    Setting("slurm.gpus", "GPUs per GPU job on Slurm, unless the job asks for more with --gpus (default 1)", _positive_int),
    Setting("slurm.cpus", "sbatch --cpus-per-task for Slurm jobs", _positive_int),
    Setting("slurm.mem", "sbatch --mem for Slurm jobs (e.g. 32G)", _memory),
    Setting("slurm.extra", "more sbatch options, e.g. '--qos=high --constraint=a100'", _extra),
    Setting("engines.vllm", "path of a vllm executable (for serving models)", _executable),
    Setting("engines.sglang", "path of an sglang executable (for serving models)", _executable),
)
_BY_KEY = {s.key: s for s in SETTINGS}


def settings_path(ws: Any) -> Path:
    """``ws`` is a ``Workspace`` (or anything with a ``root`` folder)."""
    return Path(ws.root) / SETTINGS_FILE


def _setting(key: str) -> Setting:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise OrienteerError(f"unknown setting {key!r} (known: {', '.join(_BY_KEY)})") from None


def check_value(key: str, value: str) -> str:
    """The value as it will be stored, or ``OrienteerError`` naming the key and what it expects."""
    setting = _setting(key)
    text = str(value).strip()
    try:
        return setting.check(text)
    except ValueError as exc:
        raise OrienteerError(f"{key}: expected {exc}, got {value!r}") from None


def _read(ws: Any) -> dict[str, str]:
    path = settings_path(ws)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OrienteerError(f"{path}: not a readable settings file ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise OrienteerError(f"{path}: expected a JSON object of settings")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int, float))}


def _write(ws: Any, values: dict[str, str]) -> None:
    with atomic_file(settings_path(ws)) as fh:
        fh.write(json.dumps(dict(sorted(values.items())), indent=2) + "\n")


def get_setting(ws: Any, key: str) -> str | None:
    """The value set for ``key`` in this workspace, or None. A value the file holds that no longer passes
    its key's check (edited by hand) is refused with one line, like a bad ``config set``."""
    _setting(key)
    value = _read(ws).get(key)
    return None if value is None else check_value(key, value)


def set_setting(ws: Any, key: str, value: str) -> str:
    """Check ``value`` by its key and store it; returns the stored text."""
    stored = check_value(key, value)
    values = _read(ws)
    values[key] = stored
    Path(ws.root).mkdir(parents=True, exist_ok=True)
    _write(ws, values)
    return stored


def unset_setting(ws: Any, key: str) -> bool:
    """Forget ``key`` (back to its default); True when it was set."""
    _setting(key)
    values = _read(ws)
    if key not in values:
        return False
    del values[key]
    _write(ws, values)
    return True


def all_settings(ws: Any) -> list[tuple[str, str | None, str]]:
    """Every known key with its value here (None when unset) and its help, in the registry's order."""
    values = _read(ws)
    return [(s.key, values.get(s.key), s.help) for s in SETTINGS]
