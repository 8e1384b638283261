"""Generate mode: decoding of a reply, parsed afterwards like any imported run (and needed for CoT).

A reply that used up its token budget without a stop token was cut: whatever it would have said
last (for a step-by-step prompt, the answer line the parser reads) is missing. ``generate_replies``
says so per reply, so an eval can count them (``truncated`` in the run's settings) instead of
reporting cut replies as wrong answers. Greedy by default; ``temperature`` samples, seeded so a
re-run of the same call draws the same replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

END_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Reply:
    """One decoded reply: its cleaned text, and whether it hit ``max_new_tokens`` with no stop token."""

    text: str
    truncated: bool = False


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids that end a chat reply (``<|im_end|>``, ``<|endoftext|>``) in this tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    return sorted({int(vocab[t]) for t in END_TOKENS if t in vocab})


def generate_replies(model: Any, batch: dict[str, Any], tokenizer: Any, max_new_tokens: int = 128,
                     temperature: float | None = None, seed: int | None = None) -> list[Reply]:
    """Replies for a collated, left-padded, on-device batch (text after the prompt only).

    ``temperature`` None or 0: greedy. Otherwise sampled at that temperature after seeding torch with
    ``seed`` (the draw depends on the whole batch, so the same batch and seed give the same replies).
    """
    import torch

    stops = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    sample = bool(temperature)
    if sample and seed is not None:
        torch.manual_seed(int(seed))
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=float(temperature) if sample and temperature is not None else None,
            top_p=None,
            top_k=None,
            eos_token_id=stops,
            pad_token_id=pad,
        )
    new_tokens = out[:, batch["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [Reply(clean_reply(text), truncated=is_truncated(row.tolist(), stops, max_new_tokens))
            for text, row in zip(texts, new_tokens)]


def is_truncated(new_tokens: list[int], stops: list[int], max_new_tokens: int) -> bool:
    """True when the row holds ``max_new_tokens`` tokens and none of them ends the reply.

    A row that stopped early holds its stop token (then padding to the batch's longest row); one
    that ran out of budget holds exactly the budget and no stop token.
    """
    return len(new_tokens) >= max_new_tokens and not any(t in stops for t in new_tokens)


def generate_batch(model: Any, batch: dict[str, Any], tokenizer: Any, max_new_tokens: int = 128) -> list[str]:
    """Greedy reply texts only (``generate_replies`` also says which were cut)."""
    return [r.text for r in generate_replies(model, batch, tokenizer, max_new_tokens)]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_reply(text: str) -> str:
    """Strip, and replace control characters (never meaningful in a reply; they garble terminals)."""
    return _CONTROL.sub("\ufffd", text.strip())
