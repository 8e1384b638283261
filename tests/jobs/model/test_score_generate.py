"""Score mode equals a plain full forward pass; batching and left padding do not change an item's answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from orienteer.data.items import Item
from orienteer.jobs.model.images import PixelBudget

BUDGET = PixelBudget(max_pixels=28 * 28 * 64)


def _encode(tiny: Any, item_id: str, sizes: list[tuple[int, int]], question: str, seed: int) -> Any:
    from orienteer.jobs.model.batching import encode_item

    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    item = Item(item_id, "t", question, list("ABCD"), ["left", "right", "front", "back"], "A",
                [f"{k}.jpg" for k in range(len(sizes))])
    return encode_item(tiny.processor, item, frames, budget=BUDGET)


def _items(tiny: Any) -> list[Any]:
    return [
        _encode(tiny, "one", [(320, 240)], "Where is the cup?", 0),
        _encode(tiny, "two", [(200, 300), (120, 90)], "Which way is the person facing from the camera?", 1),
        _encode(tiny, "three", [(640, 480)], "Is it left?", 2),
    ]


def test_score_equals_full_forward_softmax(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.score import letter_token_ids, score_batch

    encoded = _items(tiny)
    ids = letter_token_ids(tiny.tokenizer, list("ABCD"))
    for enc in encoded:
        batch = collate([enc], tiny.tokenizer.pad_token_id)
        with torch.no_grad():
            full = tiny.model(**batch, use_cache=False).logits  # every position, whole vocabulary
        assert full.shape[1] == enc.length
        expected = torch.softmax(full[0, -1, ids].double(), dim=-1).numpy()
        scored = score_batch(tiny.model, batch, [list("ABCD")], tiny.tokenizer)[0]
        got = np.array([scored.probs[letter] for letter in "ABCD"])
        np.testing.assert_allclose(got, expected, atol=2e-6)
        assert scored.letter == "ABCD"[int(expected.argmax())]


def test_only_the_last_position_is_projected(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate

    batch = collate(_items(tiny), tiny.tokenizer.pad_token_id)
    with torch.no_grad():
        out = tiny.model(**batch, use_cache=False, logits_to_keep=1)
    assert tuple(out.logits.shape) == (3, 1, tiny.model.config.text_config.vocab_size)


def test_probs_do_not_depend_on_batch_partners(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.score import score_batch

    encoded = _items(tiny)
    alone = [score_batch(tiny.model, collate([e], 0), [list("ABCD")], tiny.tokenizer)[0] for e in encoded]
    together = score_batch(tiny.model, collate(encoded, 0), [list("ABCD")] * 3, tiny.tokenizer)
    reordered = score_batch(tiny.model, collate(encoded[::-1], 0), [list("ABCD")] * 3, tiny.tokenizer)[::-1]
    for a, b, c in zip(alone, together, reordered):
        assert a.letter == b.letter == c.letter
        for letter in "ABCD":
            assert abs(a.probs[letter] - b.probs[letter]) < 1e-5
            assert abs(a.probs[letter] - c.probs[letter]) < 1e-5
    assert len({tuple(s.probs.values()) for s in alone}) == 3  # the items really differ


def test_two_option_items_softmax_over_their_own_letters(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.score import score_batch

    encoded = _items(tiny)[:2]
    scored = score_batch(tiny.model, collate(encoded, 0), [["A", "B"], list("ABCD")], tiny.tokenizer)
    assert set(scored[0].probs) == {"A", "B"} and abs(sum(scored[0].probs.values()) - 1) < 1e-5
    assert set(scored[1].probs) == set("ABCD")


def test_generate_returns_text_per_row(tiny: Any) -> None:
    from orienteer.jobs.model.batching import collate
    from orienteer.jobs.model.generate import clean_reply, generate_batch

    encoded = _items(tiny)
    replies = generate_batch(tiny.model, collate(encoded, 0), tiny.tokenizer, max_new_tokens=5)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert any(replies)
    alone = generate_batch(tiny.model, collate([encoded[1]], 0), tiny.tokenizer, max_new_tokens=5)
    assert alone[0] == replies[1]  # greedy and left padded: the same reply alone or in a batch
    assert clean_reply(" A.\x07\n") == "A.\ufffd"


def test_precomputed_rope_positions_equal_the_models_own(tiny: Any) -> None:
    """Per-item positions laid out by collate == get_rope_index on the padded batch; scores unchanged."""
    from orienteer.jobs.model.batching import collate, rope_positions
    from orienteer.jobs.model.score import score_batch

    positions = rope_positions(tiny.model)
    assert positions is not None
    encoded = _items(tiny)  # different lengths, one item with two frames
    for enc in encoded:
        enc.position_ids = positions(enc)
    pad = tiny.tokenizer.pad_token_id
    batch = collate(encoded, pad, positions=True)
    plain = collate(encoded, pad)
    assert "position_ids" not in plain
    expected, _ = tiny.model.model.get_rope_index(
        plain["input_ids"], mm_token_type_ids=plain["mm_token_type_ids"], image_grid_thw=plain["image_grid_thw"],
        attention_mask=plain["attention_mask"])
    assert torch.equal(batch["position_ids"], expected)
    letters = [list("ABCD")] * len(encoded)
    with_pos = score_batch(tiny.model, batch, letters, tiny.tokenizer)
    without = score_batch(tiny.model, plain, letters, tiny.tokenizer)
    assert [s.probs for s in with_pos] == [s.probs for s in without]


def test_text_only_items_get_plain_positions(tiny: Any) -> None:
    from orienteer.jobs.model.batching import rope_positions

    enc = _encode(tiny, "text", [], "Is it left?", 3)
    pos = rope_positions(tiny.model)(enc)
    assert torch.equal(pos, torch.arange(enc.length).expand(3, -1))
