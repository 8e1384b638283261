"""Frames, pixel budgets, hand-made encoding (== the processor's) and left-padded batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from orienteer.data.items import Item
from orienteer.jobs.model.images import MissingImage, PixelBudget, load_images


def _frames(sizes: list[tuple[int, int]], seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _item(item_id: str, n: int, question: str = "Where is the cup?") -> Item:
    return Item(item_id, "t", question, list("ABCD"), ["left", "right", "front", "back"], "A",
                [f"{item_id}_{k}.jpg" for k in range(n)])


def test_pixel_budget_splits_across_frames() -> None:
    budget = PixelBudget(max_pixels=640 * 480, item_pixels=4 * 640 * 480)
    assert budget.frame_pixels(1) == 640 * 480  # capped per image
    assert budget.frame_pixels(4) == 640 * 480
    assert budget.frame_pixels(8) == 640 * 480 // 2
    assert budget.frame_pixels(10_000) == budget.min_pixels  # never below the processor's floor
    assert PixelBudget(max_pixels=5000).frame_pixels(1) == 5000


def test_missing_image_names_item_and_path(tmp_path: Path) -> None:
    item = _item("it7", 2)
    _frames([(64, 48)])[0].save(tmp_path / "it7_0.jpg")
    with pytest.raises(MissingImage, match=r"item it7: image .*it7_1\.jpg does not exist"):
        load_images(item, tmp_path)


def test_encode_item_matches_the_processor(tiny: Any) -> None:
    from orienteer.jobs.model.batching import encode_item
    from orienteer.jobs.model.prompt import build_messages, chat_text

    item = _item("a", 2)
    frames = _frames([(640, 480), (300, 200)])
    budget = PixelBudget(max_pixels=28 * 28 * 64)
    enc = encode_item(tiny.processor, item, frames, budget=budget)
    ref = tiny.processor(text=[chat_text(tiny.processor, build_messages(item))], images=frames, return_tensors="pt",
                         size=budget.size_kwargs(2))
    assert enc.input_ids.tolist() == ref["input_ids"][0].tolist()
    assert enc.mm_token_type_ids.tolist() == ref["mm_token_type_ids"][0].tolist()
    assert enc.image_grid_thw.tolist() == ref["image_grid_thw"].tolist()
    assert np.array_equal(enc.pixel_values.numpy(), ref["pixel_values"].numpy())
    assert enc.sizes == [(640, 480), (300, 200)]


def test_multi_frame_item_gets_a_smaller_share_per_frame(tiny: Any) -> None:
    from orienteer.jobs.model.batching import encode_item

    budget = PixelBudget(max_pixels=28 * 28 * 64, item_pixels=28 * 28 * 64)
    one = encode_item(tiny.processor, _item("a", 1), _frames([(640, 480)]), budget=budget)
    four = encode_item(tiny.processor, _item("b", 4), _frames([(640, 480)] * 4), budget=budget)
    per_frame_one = int(one.image_grid_thw[0].prod())
    per_frame_four = int(four.image_grid_thw[0].prod())
    assert four.image_grid_thw.shape[0] == 4
    assert per_frame_four * 14 * 14 <= 28 * 28 * 64 // 4 < per_frame_one * 14 * 14
    assert int(four.mm_token_type_ids.sum()) == int(four.image_grid_thw.prod(-1).sum()) // 4


def test_collate_left_pads(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate, encode_item

    short = encode_item(tiny.processor, _item("s", 1), _frames([(100, 100)]))
    long = encode_item(tiny.processor, _item("l", 1, "A much longer question about the cup?"), _frames([(100, 100)]))
    batch = collate([short, long], pad_id=0)
    gap = long.length - short.length
    assert gap > 0
    assert batch["attention_mask"][0].tolist() == [0] * gap + [1] * short.length
    assert batch["input_ids"][0, gap:].tolist() == short.input_ids.tolist()
    assert batch["pixel_values"].shape[0] == short.pixel_values.shape[0] + long.pixel_values.shape[0]


def test_plan_groups_by_length_and_is_deterministic() -> None:
    from orienteer.jobs.model.batching import plan_batches

    lengths = [10, 50, 11, 49, 30, 30, 12]
    plan = plan_batches(lengths, 3)
    assert plan == [[1, 3, 4], [5, 6, 2], [0]]
    assert plan == plan_batches(lengths, 3)
    assert sorted(i for b in plan for i in b) == list(range(7))


def test_prefetcher_keeps_order_and_reports_failures() -> None:
    from orienteer.jobs.model.batching import Failed, Prefetcher

    def encode(item: Item) -> Any:
        if item.item_id == "bad":
            raise ValueError("cannot read")
        return __import__("orienteer.jobs.model.batching", fromlist=["Encoded"]).Encoded(item, *([None] * 4))

    batches = [[_item("a", 0), _item("bad", 0)], [_item("c", 0)], [_item("d", 0)]]
    out = list(Prefetcher(batches, encode, workers=2, depth=2))
    assert [[e.item.item_id for e in ok] for ok, _ in out] == [["a"], ["c"], ["d"]]
    assert isinstance(out[0][1][0], Failed) and "cannot read" in out[0][1][0].error
