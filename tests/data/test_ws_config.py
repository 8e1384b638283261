"""Workspace settings (``data.ws_config``) and ``orienteer config show|set|unset``."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from orienteer.data.errors import OrienteerError
from orienteer.data.workspace import Workspace
from orienteer.data.ws_config import SETTINGS, all_settings, get_setting, sbatch_extra, set_setting, unset_setting
from orienteer.tui.cli.main import app


@pytest.fixture
def cfg_ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


def test_set_get_unset_round_trip_and_the_file_is_whole_json(cfg_ws):
    assert get_setting(cfg_ws, "runner") is None
    assert set_setting(cfg_ws, "runner", "slurm") == "slurm"
    assert set_setting(cfg_ws, "slurm.time", " 1-02:00:00 ") == "1-02:00:00"
    assert get_setting(cfg_ws, "runner") == "slurm" and get_setting(cfg_ws, "slurm.time") == "1-02:00:00"
    path = cfg_ws.root / "settings.json"
    assert json.loads(path.read_text()) == {"runner": "slurm", "slurm.time": "1-02:00:00"}
    assert not [p for p in cfg_ws.root.iterdir() if p.name.endswith(".tmp")]  # written whole, renamed into place
    assert unset_setting(cfg_ws, "runner") and not unset_setting(cfg_ws, "runner")
    rows = all_settings(cfg_ws)
    assert [key for key, _, _ in rows] == [s.key for s in SETTINGS]
    assert dict((k, v) for k, v, _ in rows)["slurm.time"] == "1-02:00:00" and all(h for _, _, h in rows)


@pytest.mark.parametrize(("key", "good", "bad"), [
    ("runner", ["local", "slurm"], ["cloud", ""]),
    ("slurm.time", ["30", "10:00", "4:00:00", "2-00", "1-12:30", "1-00:00:00", "unlimited"], ["1h", "-5", "1:2:3:4", "x"]),
    ("slurm.gpus", ["1", "8"], ["0", "-1", "two", "1.5"]),
    ("slurm.cpus", ["16"], ["0", "many"]),
    ("slurm.mem", ["32G", "512M", "64000"], ["32GB", "-1G", "lots"]),
    ("slurm.partition", ["gpu", "a100-long"], ["two words", "x;rm"]),
    ("slurm.extra", ["--qos=high --constraint=a100", "--exclusive", "--mail-user='two words'"],
     ["--qos=high bad", "-p gpu", "'unclosed", "--output=x.log", "-D /tmp"]),
])
def test_each_value_is_checked_by_its_key(cfg_ws, key, good, bad):
    for value in good:
        set_setting(cfg_ws, key, value)
    for value in bad:
        with pytest.raises(OrienteerError, match=f"^{key}: expected "):
            set_setting(cfg_ws, key, value)
    assert get_setting(cfg_ws, key) == good[-1].strip()  # a refused value leaves the last good one


def test_extra_is_split_like_a_shell_but_never_run_by_one():
    assert sbatch_extra("--mail-user='a b' --qos=x") == ["--mail-user=a b", "--qos=x"]
    assert sbatch_extra("--mail-user='$(touch x)'") == ["--mail-user=$(touch x)"]  # a plain word, never run


@pytest.mark.parametrize("word", ["--export=ALL", "--export-file=f", "--wrap=true", "--chdir=/tmp", "--workdir=/tmp",
                                  "--output=o.log", "--error=e.log", "--input=i", "--open-mode=truncate", "--parsable",
                                  "--wait", "--job-name=x", "--comment=x", "--array=0-3", "--dependency=afterok:1",
                                  "--out=o.log", "--dep=afterok:1"])
def test_extra_refuses_the_options_the_runner_sets(cfg_ws, word):
    name = word[2:].split("=")[0]
    with pytest.raises(OrienteerError, match=rf"^slurm.extra: expected sbatch options the runner does not set itself \(--{name}"):
        set_setting(cfg_ws, "slurm.extra", f"--qos=high {word}")
    assert get_setting(cfg_ws, "slurm.extra") is None


def test_engine_paths_must_name_a_file(cfg_ws, tmp_path):
    exe = tmp_path / "vllm"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert set_setting(cfg_ws, "engines.vllm", str(exe)) == str(exe)
    with pytest.raises(OrienteerError, match="^engines.sglang: expected the path of an executable"):
        set_setting(cfg_ws, "engines.sglang", str(tmp_path / "missing"))


def test_unknown_keys_are_refused_with_the_known_ones(cfg_ws):
    for call in (lambda: set_setting(cfg_ws, "slurm.partiton", "gpu"), lambda: get_setting(cfg_ws, "nope"),
                 lambda: unset_setting(cfg_ws, "nope")):
        with pytest.raises(OrienteerError, match=r"unknown setting .* \(known: runner, slurm.partition, .*engines.sglang\)"):
            call()
    assert not (cfg_ws.root / "settings.json").exists()


def test_a_hand_broken_file_is_one_line_not_a_traceback(cfg_ws):
    cfg_ws.root.mkdir(parents=True)
    (cfg_ws.root / "settings.json").write_text("{not json")
    with pytest.raises(OrienteerError, match="settings.json: not a readable settings file"):
        get_setting(cfg_ws, "runner")
    (cfg_ws.root / "settings.json").write_text(json.dumps({"runner": "mars"}))
    with pytest.raises(OrienteerError, match="^runner: expected one of local, slurm, got 'mars'"):
        get_setting(cfg_ws, "runner")


def run_cli(root, *args: str):
    return CliRunner().invoke(app, ["-w", str(root), "config", *args], env={"COLUMNS": "200"})


def test_config_cli_show_set_unset(tmp_path):
    root = tmp_path / "ws"
    assert run_cli(root, "set", "runner", "slurm").exit_code == 0
    done = run_cli(root, "set", "slurm.extra", "--qos=high --exclusive")  # a value that starts with --
    assert done.exit_code == 0 and "slurm.extra = --qos=high --exclusive" in done.output
    shown = run_cli(root, "show", "--json")
    rows = {row["key"]: row["value"] for row in json.loads(shown.output)}
    assert rows["runner"] == "slurm" and rows["slurm.extra"] == "--qos=high --exclusive" and rows["slurm.time"] is None
    table = run_cli(root, "show").output
    assert "slurm.partition" in table and "(unset)" in table and "--qos=high --exclusive" in table
    assert "runner unset" in run_cli(root, "unset", "runner").output
    assert "runner was not set" in run_cli(root, "unset", "runner").output
    bad = run_cli(root, "set", "slurm.gpus", "zero")
    assert bad.exit_code != 0 and "slurm.gpus: expected a positive whole number, got 'zero'" in bad.output
    unknown = run_cli(root, "set", "colour", "red")
    assert unknown.exit_code != 0 and "unknown setting 'colour' (known: runner," in unknown.output
    assert json.loads((root / "settings.json").read_text()) == {"slurm.extra": "--qos=high --exclusive"}
    assert os.listdir(root) == ["settings.json"]
