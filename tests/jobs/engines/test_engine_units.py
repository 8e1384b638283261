"""The engine options, the request body, score mode's arithmetic and the engine command lines, without a server."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.engines.client import backoff
from orienteer.jobs.engines.logprobs import NoLogprobs, letter_scores
from orienteer.jobs.engines.options import check_key_env, parse_endpoint
from orienteer.jobs.engines.serve import ServeRequest, engine_argv, tensor_parallel_size
from orienteer.jobs.kinds import get_kind


@pytest.mark.parametrize(("given", "base", "host"), [
    ("http://gpu-box:8000", "http://gpu-box:8000/v1", "gpu-box:8000"),
    ("http://gpu-box:8000/v1/", "http://gpu-box:8000/v1", "gpu-box:8000"),
    ("https://api.example.com/v1/chat/completions", "https://api.example.com/v1", "api.example.com"),
    ("http://[::1]:9000/openai/v1", "http://[::1]:9000/openai/v1", "::1:9000"),
])
def test_endpoint_is_normalised_to_a_base_url(given: str, base: str, host: str) -> None:
    endpoint = parse_endpoint(given)
    assert endpoint.base_url == base and endpoint.host == host
    assert endpoint.url("chat/completions") == base + "/chat/completions"


@pytest.mark.parametrize("given", ["http://user:sk-123@host/v1", "http://host/v1?key=sk-123", "ftp://host/v1", "host:8000"])
def test_endpoint_with_credentials_or_no_scheme_is_refused_without_echoing_it(given: str) -> None:
    with pytest.raises(OrienteerError) as exc:
        parse_endpoint(given)
    assert "sk-123" not in str(exc.value) and str(exc.value).startswith("--endpoint")


def test_api_key_env_must_be_a_name_and_a_key_given_there_is_not_shown() -> None:
    check_key_env("MY_KEY")
    with pytest.raises(OrienteerError) as exc:
        check_key_env("sk-live-abc123")
    assert "sk-live-abc123" not in str(exc.value)


def _spec(kind: str, **values: object) -> object:
    base = {"eval": {"model": "org/model", "bench": "b", "run": "r"}, "cot": {"teacher": "org/model", "name": "d"}}[kind]
    return get_kind(kind).make_spec({**base, **values})


@pytest.mark.parametrize("kind", ["eval", "cot"])
def test_engine_options_contradictions_are_refused(kind: str) -> None:
    check = get_kind(kind).check
    assert check is not None
    with pytest.raises(OrienteerError, match="--endpoint is an option of --engine openai"):
        check(_spec(kind, endpoint="http://h:1/v1"))
    with pytest.raises(OrienteerError, match="exactly one of --endpoint"):
        check(_spec(kind, engine="openai"))
    with pytest.raises(OrienteerError, match="exactly one of --endpoint"):
        check(_spec(kind, engine="openai", endpoint="http://h:1/v1", serve="vllm"))
    with pytest.raises(OrienteerError, match="--concurrency must be at least 1"):
        check(_spec(kind, engine="openai", endpoint="http://h:1/v1", concurrency=0))
    check(_spec(kind, engine="openai", endpoint="http://h:1/v1"))  # a hub-id-shaped label needs no folder


def test_eval_adapter_with_an_engine_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    check = get_kind("eval").check
    assert check is not None
    with pytest.raises(OrienteerError, match="the server applies adapters itself"):
        check(_spec("eval", engine="openai", endpoint="http://h:1/v1", adapter=str(tmp_path)))


def _response(tops: list[tuple[str, float]], content: str = "B") -> dict[str, object]:
    entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in tops]
    return {"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                       "logprobs": {"content": [{**entries[0], "top_logprobs": entries}]}}]}


def test_letter_probabilities_are_a_softmax_over_the_letters_logprobs() -> None:
    scores = letter_scores(_response([("B", -0.2), ("The", -1.0), ("A", -1.7), ("C", -3.0)]), ["A", "B", "C", "D"])
    z = math.exp(-0.2) + math.exp(-1.7) + math.exp(-3.0)
    assert scores.letter == "B"
    assert scores.probs == {"A": round(math.exp(-1.7) / z, 6), "B": round(math.exp(-0.2) / z, 6),
                            "C": round(math.exp(-3.0) / z, 6), "D": 0.0}
    # only the exact token counts: " A" is another token than the "A" the in-process path scores
    assert letter_scores(_response([("The", -0.1), (" A", -0.5)], "The"), ["A", "B"]).probs is None
    assert letter_scores(_response([("The", -0.1), (" A", -0.5)], "The"), ["A", "B"]).text == "The"


def test_an_answer_without_logprobs_is_refused() -> None:
    with pytest.raises(NoLogprobs):
        letter_scores({"choices": [{"message": {"content": "B"}, "finish_reason": "length"}]}, ["A", "B"])


def test_backoff_grows_then_caps() -> None:
    assert 0.5 <= backoff(0) <= 1.0 and 4.0 <= backoff(3) <= 8.0 and backoff(20) <= 30.0


def test_engine_command_lines() -> None:
    vllm = engine_argv(ServeRequest("vllm", "/opt/vllm/bin/vllm", "/m/qwen", "qwen", 4), 8123)
    assert vllm[:3] == ["/opt/vllm/bin/vllm", "serve", "/m/qwen"]
    assert vllm[vllm.index("--tensor-parallel-size") + 1] == "4" and vllm[vllm.index("--port") + 1] == "8123"
    assert vllm[vllm.index("--host") + 1] == "127.0.0.1" and vllm[vllm.index("--served-model-name") + 1] == "qwen"
    sglang = engine_argv(ServeRequest("sglang", "/opt/sg/bin/sglang", "/m/qwen", "qwen", 2), 8124)
    assert sglang[:4] == ["/opt/sg/bin/sglang", "serve", "--model-path", "/m/qwen"] and "--tp-size" in sglang
    assert tensor_parallel_size(None) == 1 and tensor_parallel_size("0") == 1
    assert tensor_parallel_size("0", "4") == 4 and tensor_parallel_size("0", "1,3") == 2


def test_request_frames_have_the_in_process_frame_size(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from PIL import Image

    from orienteer.jobs.engines.request import chat_body, elided, item_frames
    from orienteer.jobs.model.images import PixelBudget, UpstreamResize, processed_size

    Image.new("RGB", (640, 480), (10, 200, 30)).save(tmp_path / "a.jpg")
    Image.new("RGB", (300, 500), (200, 20, 30)).save(tmp_path / "b.jpg")
    item = Item("7", "task", "Where?", ["A", "B"], ["left", "right"], "A", ["a.jpg", "b.jpg"])
    budget = PixelBudget(28 * 28 * 40)
    frames = item_frames(item, tmp_path, budget)
    for frame, (w, h) in zip(frames, [(640, 480), (300, 500)]):
        assert (frame.height, frame.width) == processed_size(h, w, budget.frame_pixels(2), budget.min_pixels)
        png = Image.open(io.BytesIO(base64.b64decode(frame.url.split(",", 1)[1])))
        assert png.format == "PNG" and png.size == (frame.width, frame.height)
    assert [(f.height, f.width) for f in item_frames(item, tmp_path, UpstreamResize())] == [(392, 560), (392, 560)]
    body = chat_body("served", "Where?\nA. left\nB. right", frames, "score", 128)
    content = body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0
    shown = elided(body, frames)
    assert "base64 characters elided" in shown["messages"][0]["content"][0]["image_url"]["url"]
    assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    sampled = chat_body("served", "t", [], "generate", 64, temperature=0.7, seed=5)
    assert sampled["max_tokens"] == 64 and sampled["seed"] == 5 and sampled["top_p"] == 1.0


def test_gpus_size_only_an_engine_the_job_starts() -> None:
    cot, ev = get_kind("cot").check, get_kind("eval").check
    assert cot is not None and ev is not None
    with pytest.raises(OrienteerError, match="cot: --gpus N is the tensor-parallel size of an engine the job starts"):
        cot(_spec("cot", gpus="2"))
    with pytest.raises(OrienteerError, match="--gpus N with --endpoint: the server's GPUs are its own"):
        ev(_spec("eval", engine="openai", endpoint="http://h:1/v1", gpus="2"))
    cot(_spec("cot", engine="openai", serve="vllm", gpus="4"))


def test_a_job_that_only_sends_requests_takes_no_gpu_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """--endpoint: the server's GPUs are its own, so the job does not queue for one of ours; --serve and the
    hf engine load a model here and take the default GPU; an explicit --gpu is kept."""
    from orienteer.jobs.api import resolve_params
    from orienteer.jobs.kinds import get_kind

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    base = {"model": "Qwen/Qwen2.5-VL-3B-Instruct", "bench": "b", "run": "r"}
    for kind, model_key in (("eval", "model"), ("cot", "teacher")):
        k = get_kind(kind)
        values = {model_key: base["model"], "bench": "b", "run": "r"} if kind == "eval" else {
            "teacher": base["model"], "bench": "b", "name": "n"}
        assert resolve_params(k, {**values, "engine": "openai", "endpoint": "http://127.0.0.1:9/v1"})["gpu"] is None
        assert resolve_params(k, {**values, "engine": "openai", "endpoint": "http://127.0.0.1:9/v1", "gpu": "1"})["gpu"] == "1"
        assert resolve_params(k, {**values, "engine": "openai", "serve": "vllm"})["gpu"] == "2"
        assert resolve_params(k, values)["gpu"] == "2"
