"""Every kind is one module whose declarations hold together: its spec, the names it reads and makes,
its prefill, and the params dicts job folders already hold."""

from __future__ import annotations

import dataclasses
import json

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.jobs.kinds import KINDS, all_kinds, get_kind
from orienteer.jobs.kinds.base import Here
from orienteer.jobs.params import COMMON_PARAMS, complete, option, spec_from_params, spec_params, spec_values, to_args

HERE = Here(run="r1", bench="b1", model="m1", task="Camera perspective - Relative Direction",
            selection="ids-file:/tmp/x.txt", pool="p1")


@pytest.mark.parametrize("name", list(KINDS))
def test_a_kind_module_declares_itself_consistently(name):
    kind = get_kind(name)
    assert kind.available and kind.name == name and kind.summary
    assert dataclasses.is_dataclass(kind.spec) and kind.spec.__dataclass_params__.frozen
    fields = {p.name for p in kind.params}
    assert all(p.help for p in kind.params), "every option says what it is for"
    assert {key for key, _ in kind.reads} <= fields and set(kind.models) <= fields
    assert {table for _, table in kind.reads} <= {"runs", "benchmarks", "datasets", "pools"}
    assert set(kind.prefill(HERE)) <= fields
    assert not fields & {p.name for p in COMMON_PARAMS}


@pytest.mark.parametrize("name", list(KINDS))
def test_a_job_folders_params_give_the_typed_spec_and_back(name):
    kind = get_kind(name)
    required = {p.name: "x" for p in kind.params if p.required}
    params = complete(name, kind.params, required)
    assert list(params) == [p.name for p in kind.params] + [p.name for p in COMMON_PARAMS]
    stored = json.loads(json.dumps(params))  # what the job folder's spec.json holds
    spec = kind.make_spec(stored)
    assert isinstance(spec, kind.spec)
    assert spec_values(spec) == {k: v for k, v in params.items() if k not in ("gpu", "note", "runner")}
    assert to_args(kind.params, params) == [arg for p in kind.params if p.required for arg in (p.flag, "x")]


def test_recorded_values_are_read_as_the_fields_types():
    kind = get_kind("hard-negatives")
    spec = kind.make_spec({"run": "r", "name": "n", "ratio": 3, "top": "4", "flipped": "no", "seed": None,
                           "an_option_an_older_version_had": 1})
    assert (spec.ratio, spec.top, spec.flipped, spec.seed) == (3.0, 4, False, 0)
    assert isinstance(spec.ratio, float)
    with pytest.raises(OrienteerError, match="--name is required"):
        kind.make_spec({"run": "r"})
    with pytest.raises(OrienteerError, match="--top expects a whole number"):
        kind.make_spec({"run": "r", "name": "n", "top": "many"})


def test_every_kind_names_only_what_its_spec_declares_as_outputs():
    for kind in all_kinds():
        required = {p.name: "x" for p in kind.params if p.required}
        for new in kind.output_names(complete(kind.name, kind.params, required)):
            assert new.table in ("runs", "benchmarks", "datasets", "models") and new.flag.startswith("--")
    flip = get_kind("flip")
    assert [tuple(n) for n in flip.output_names({"bench": "b", "name": "f", "to": "dataset"})] == [("f", "datasets", "--name")]
    assert [tuple(n) for n in flip.output_names({"bench": "b", "name": "f"})] == [("f", "benchmarks", "--name")]


def test_a_spec_field_needs_a_plain_type():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Odd:
        sizes: list[int] = option(None, help="not an option type")

    with pytest.raises(TypeError, match="must be str, int, float or bool"):
        spec_params(Odd)


def test_the_registry_marks_a_kind_without_a_module_and_refuses_an_unknown_one(monkeypatch):
    monkeypatch.setitem(KINDS, "dream", "no_such_module")
    dream = get_kind("dream")
    assert not dream.available and dream.params == ()
    with pytest.raises(OrienteerError, match="not implemented yet"):
        dream.run(None)
    with pytest.raises(OrienteerError, match="unknown job kind 'nope'"):
        get_kind("nope")
    assert spec_from_params(get_kind("sleep").spec, {}).steps == 10
