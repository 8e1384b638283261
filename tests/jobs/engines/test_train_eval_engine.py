"""The closing eval's engine options of ``train`` and the adapter rules of ``eval --engine openai``: the
checks alone (no model, no server; the end-to-end runs are in ``test_serve_adapter.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.jobs.kinds import get_kind


def _spec(kind: str, **values: Any) -> Any:
    required = {p.name: "x" for p in get_kind(kind).params if p.required}
    return get_kind(kind).make_spec({**required, **values})


def _check(kind: str, **values: Any) -> None:
    check = get_kind(kind).check
    assert check is not None
    check(_spec(kind, **values))


def test_train_closing_eval_engine_refusals() -> None:
    _check("train")
    _check("train", eval_bench="b", eval_engine="openai", eval_serve="vllm", eval_concurrency=4)
    with pytest.raises(OrienteerError, match=r"^--eval-engine openai needs --eval-serve vllm\|sglang: the model is trained "
                                             r"by this job, so no running server \(--endpoint\) can already serve it"):
        _check("train", eval_bench="b", eval_engine="openai")
    with pytest.raises(OrienteerError, match=r"^--eval-serve is an option of --eval-engine openai"):
        _check("train", eval_bench="b", eval_serve="vllm")
    with pytest.raises(OrienteerError, match=r"^--eval-concurrency must be at least 1, got 0"):
        _check("train", eval_bench="b", eval_engine="openai", eval_serve="sglang", eval_concurrency=0)
    with pytest.raises(OrienteerError, match=r"^--eval-engine openai: there is no closing eval without --eval-bench"):
        _check("train", eval_engine="openai", eval_serve="vllm")
    with pytest.raises(OrienteerError, match=r"^--eval-engine expects one of hf, openai, got 'vllm'"):
        _check("train", eval_bench="b", eval_engine="vllm")


def test_train_flags_name_the_closing_eval() -> None:
    params = {p.name: p for p in get_kind("train").params}
    assert params["eval_engine"].flag == "--eval-engine" and params["eval_engine"].default == "hf"
    assert params["eval_serve"].choices == ("vllm", "sglang")
    assert params["eval_concurrency"].help.startswith("--eval-engine openai:")
    assert "endpoint" not in " ".join(params) and "api_key_env" not in " ".join(params)


def test_an_adapter_is_served_merged_and_never_sent_to_an_endpoint(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "Qwen/Qwen2.5-VL-3B-Instruct"}',
                                                 encoding="utf-8")
    with pytest.raises(OrienteerError, match=r"^--adapter with --endpoint: the server applies adapters itself"):
        _check("eval", engine="openai", endpoint="http://h:1/v1", adapter=str(adapter))
    _check("eval", engine="openai", serve="vllm", model="Qwen/Qwen2.5-VL-3B-Instruct", adapter=str(adapter))
    _check("eval", engine="openai", serve="vllm", model=str(adapter))  # a train job's result, as --model
    with pytest.raises(OrienteerError, match="adapter .*: no such folder"):
        _check("eval", engine="openai", serve="vllm", model="Qwen/Qwen2.5-VL-3B-Instruct", adapter=str(tmp_path / "none"))
