"""Score mode: one forward pass per batch, the last position's logits only, softmax over the options.

The model is asked for ``logits_to_keep=1``: the vocabulary projection (151,936 columns on
Qwen2.5-VL) runs for one position per row instead of every position. With LEFT padding the last
position of every row is where its answer letter would be generated, so one pass scores the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orienteer.data.errors import OrienteerError


@dataclass(frozen=True)
class Scored:
    letter: str
    probs: dict[str, float]


def letter_token_id(tokenizer: Any, letter: str) -> int:
    """The token the model emits first when it answers ``letter`` right after ``assistant\\n``."""
    ids = tokenizer.encode(letter, add_special_tokens=False)
    if not ids:
        raise OrienteerError(f"the tokenizer has no token for option letter {letter!r}")
    if len(ids) != 1:
        raise OrienteerError(f"option letter {letter!r} is {len(ids)} tokens for this tokenizer (expected one)")
    return int(ids[0])


def letter_token_ids(tokenizer: Any, letters: Sequence[str]) -> list[int]:
    return [letter_token_id(tokenizer, letter) for letter in letters]


def last_logits(model: Any, batch: dict[str, Any]) -> Any:
    """``(batch, vocab)`` logits at the last position, computed for that position only."""
    out = model(**batch, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, :]


def option_probs(logits_row: Any, letters: Sequence[str], token_ids: Sequence[int]) -> Scored:
    """Softmax over the item's option-letter logits -> argmax letter + probabilities."""
    import torch

    sub = logits_row.float()[torch.as_tensor(list(token_ids), device=logits_row.device)]
    return scored_from_probs(letters, torch.softmax(sub, dim=-1).tolist())


def scored_from_probs(letters: Sequence[str], probs: Sequence[float]) -> Scored:
    """The most probable letter (the first on a tie) and every letter's probability, rounded to 1e-6."""
    best = max(range(len(letters)), key=lambda i: (probs[i], -i))
    return Scored(letters[best], {letter: round(float(p), 6) for letter, p in zip(letters, probs)})


def score_batch(model: Any, batch: dict[str, Any], letters: Sequence[Sequence[str]], tokenizer: Any) -> list[Scored]:
    """Score every row of a collated, on-device batch; ``letters[i]`` are row i's option letters."""
    import torch

    with torch.inference_mode():
        logits = last_logits(model, batch)
    ids = {letter: letter_token_id(tokenizer, letter) for letter in dict.fromkeys(x for row in letters for x in row)}
    return [option_probs(logits[row], row_letters, [ids[x] for x in row_letters])
            for row, row_letters in enumerate(letters)]
