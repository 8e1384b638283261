"""The pipelined score loop: the same numbers as transformers' forward, and no read of device data inside a launch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from orienteer.data.items import Item
from orienteer.jobs.model.images import PixelBudget

BUDGET = PixelBudget(max_pixels=28 * 28 * 64)


def _encode(tiny: Any, item_id: str, sizes: list[tuple[int, int]], n_options: int, seed: int) -> Any:
    from orienteer.jobs.model.batching import encode_item, rope_positions

    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    letters = list("ABCD")[:n_options]
    item = Item(item_id, "t", f"Where is object {seed}?", letters, ["left", "right", "front", "back"][:n_options], "A",
                [f"{k}.jpg" for k in range(len(sizes))])
    enc = encode_item(tiny.processor, item, frames, budget=BUDGET)
    enc.position_ids = rope_positions(tiny.model)(enc)
    return enc


@pytest.fixture(scope="module")
def encoded(tiny: Any) -> list[Any]:
    """Different lengths (left padding), two frames in one item, a two-option item, a text-only item."""
    return [
        _encode(tiny, "one", [(320, 240)], 4, 0),
        _encode(tiny, "two", [(200, 300), (120, 90)], 4, 1),
        _encode(tiny, "three", [(640, 480)], 2, 2),
        _encode(tiny, "text", [], 4, 3),
    ]


def _reference(tiny: Any, rows: list[Any]) -> list[Any]:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.score import score_batch

    return score_batch(tiny.model, collate(rows, tiny.pad_id), [list(e.item.option_letters) for e in rows], tiny.tokenizer)


def _stream(tiny: Any, batches: list[tuple[Any, list[Any]]]) -> list[tuple[Any, list[Any], list[Any]]]:
    from orienteer.jobs.model.score_pipeline import score_stream

    return list(score_stream(tiny.model, tiny.tokenizer, batches, tiny.pad_id, "cpu", torch.float32))


def test_pipeline_equals_transformers_forward(tiny: Any, encoded: list[Any]) -> None:
    from orienteer.jobs.model.score_pipeline import supports_pipeline

    assert supports_pipeline(tiny.model)
    batches = [("padded", encoded[:3]), ("alone", encoded[3:]), ("all", encoded)]
    got = _stream(tiny, batches)
    assert [tag for tag, _, _ in got] == ["padded", "alone", "all"]
    for (_, rows), (_, got_rows, scored) in zip(batches, got):
        assert [e.item.item_id for e in got_rows] == [e.item.item_id for e in rows]
        for want, have in zip(_reference(tiny, rows), scored):
            assert have.letter == want.letter
            assert set(have.probs) == set(want.probs)
            assert max(abs(have.probs[k] - want.probs[k]) for k in want.probs) <= 1e-6
    assert set(got[0][2][2].probs) == {"A", "B"}  # the two-option item: softmax over its own letters
    assert abs(sum(got[0][2][2].probs.values()) - 1) < 1e-5


def test_empty_batches_keep_their_place(tiny: Any, encoded: list[Any]) -> None:
    got = _stream(tiny, [(0, encoded[:1]), (1, []), (2, encoded[1:2]), (3, [])])
    assert [(tag, len(rows), len(scored)) for tag, rows, scored in got] == [(0, 1, 1), (1, 0, 0), (2, 1, 1), (3, 0, 0)]


def test_masks_are_what_the_language_model_builds(tiny: Any, encoded: list[Any]) -> None:
    """No padding: no mask at all (SDPA's causal flag, the flash kernel); padding: transformers' own mask."""
    from transformers.masking_utils import create_causal_mask

    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.score_pipeline import prepare

    ids = {letter: 100 + i for i, letter in enumerate("ABCD")}
    same = prepare(tiny.model, [encoded[0], encoded[0]], tiny.pad_id, ids, torch.float32)
    assert same.masks == {"full_attention": None}
    padded = prepare(tiny.model, encoded, tiny.pad_id, ids, torch.float32)
    batch = collate(encoded, tiny.pad_id)
    lm = tiny.model.model.language_model
    embeds = lm.embed_tokens(batch["input_ids"])
    expected = create_causal_mask(config=lm.config, inputs_embeds=embeds, attention_mask=batch["attention_mask"], cache=None)
    assert torch.equal(padded.masks["full_attention"], expected)
    assert padded.letter_valid.tolist()[2] == [True, True, False, False]
    image_id = tiny.model.config.image_token_id
    assert torch.equal(batch["input_ids"].reshape(-1)[padded.image_slots], torch.full_like(padded.image_slots, image_id))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_launch_reads_nothing_back_from_the_device(tiny_model_dir: Any, encoded: list[Any], dtype: Any) -> None:
    """On the ``meta`` device tensors have no data, so any host read (``.item()``, ``.tolist()``, a
    data-dependent shape) raises: a launch that runs there puts no host-device sync into the forward."""
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.loading import load_model
    from orienteer.jobs.model.score_pipeline import launch, prepare

    loaded = load_model(str(tiny_model_dir), device="cpu", dtype=dtype)
    model = loaded.model.to("meta")
    ids = {letter: 100 + i for i, letter in enumerate("ABCD")}
    for rows in (encoded, encoded[:1] * 2):  # with and without padding
        flight = launch(model, prepare(model, rows, loaded.pad_id, ids, dtype), "meta")
        assert flight.probs.device.type == "meta" and tuple(flight.probs.shape) == (len(rows), 4)
    # the control: transformers' own forward does read the device back
    batch = {k: v.to("meta") for k, v in collate(encoded, loaded.pad_id, positions=True).items()}
    with pytest.raises((NotImplementedError, RuntimeError)), torch.inference_mode():
        model(**batch, use_cache=False, logits_to_keep=1)


def test_other_models_fall_back_to_one_batch_at_a_time(tiny: Any, encoded: list[Any]) -> None:
    from orienteer.jobs.model.score_pipeline import supports_pipeline

    class Wrapped(torch.nn.Module):
        """A model of no known shape: only its forward is used."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, **kwargs: Any) -> Any:
            return self.inner(**kwargs)

    wrapped = Wrapped(tiny.model)
    assert not supports_pipeline(wrapped)
    from orienteer.jobs.model.score_pipeline import score_stream

    got = list(score_stream(wrapped, tiny.tokenizer, [("x", encoded[:2]), ("y", [])], tiny.pad_id, "cpu", torch.float32))
    assert [(tag, len(scored)) for tag, _, scored in got] == [("x", 2), ("y", 0)]
    assert [s.probs for s in got[0][2]] == [s.probs for s in _reference(tiny, encoded[:2])]


def test_host_copies_keep_values_and_take_the_dtype() -> None:
    from orienteer.jobs.model.host_copy import to_device_async

    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    y = to_device_async(x, "cpu", torch.bfloat16)
    assert y.dtype == torch.bfloat16 and torch.equal(y.float(), x)
    assert to_device_async(x, "meta").device.type == "meta"


def test_windows_sorted_by_length_leave_the_tower_output_unchanged(tiny: Any) -> None:
    """The pipeline's window layout: windowed layers slice instead of gathering, outputs are the same."""
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index

    from orienteer.jobs.model.score_pipeline import windows_by_length
    from orienteer.jobs.model.vision_attention import make_plan, register_plans

    rng = np.random.default_rng(5)
    sizes = [(640, 480), (200, 300), (90, 100), (640, 480)]  # several window lengths, images of different sizes
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    out = tiny.processor.image_processor(images=frames, return_tensors="pt")
    pixels, grid = out["pixel_values"], out["image_grid_thw"]
    visual = tiny.model.model.visual
    index, cu_window = get_vision_window_index(grid, visual.spatial_merge_size, visual.window_size, visual.patch_size)
    cu = get_vision_cu_seqlens(grid)
    new_index, new_cu, segments = windows_by_length(index, cu_window, cu, visual.spatial_merge_size ** 2)
    assert sorted(new_index.tolist()) == sorted(index.tolist())
    lengths = (new_cu[1:] - new_cu[:-1]).tolist()
    assert lengths == sorted(lengths) and len(set(lengths)) > 1
    windowed = make_plan(segments["cu_window_seqlens"], "cpu")
    assert windowed["inverse"] is None and all(flat is None for _, _, flat, _ in windowed["groups"])
    assert make_plan([range(a, b) for a, b in zip(cu_window[:-1].tolist(), cu_window[1:].tolist())], "cpu")["inverse"] is not None
    kwargs = {"position_ids": get_vision_position_ids(grid, visual.spatial_merge_size), "cu_seqlens": cu.clone(),
              "window_index": new_index, "cu_window_seqlens": new_cu}
    assert register_plans(tiny.model, [(kwargs["cu_seqlens"], segments["cu_seqlens"]),
                                       (kwargs["cu_window_seqlens"], segments["cu_window_seqlens"])])
    with torch.no_grad():
        expected = visual(pixels, grid_thw=grid).pooler_output
        got = visual(pixels, grid_thw=grid, **kwargs).pooler_output
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
