"""Generate mode: greedy decoding of a reply, parsed afterwards like any imported run (and needed for CoT)."""

from __future__ import annotations

import re
from typing import Any

END_TOKENS = ("<|im_end|>", "<|endoftext|>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids that end a chat reply (``<|im_end|>``, ``<|endoftext|>``) in this tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    return sorted({int(vocab[t]) for t in END_TOKENS if t in vocab})


def generate_batch(model: Any, batch: dict[str, Any], tokenizer: Any, max_new_tokens: int = 16) -> list[str]:
    """Greedy replies for a collated, left-padded, on-device batch (text after the prompt only)."""
    import torch

    stops = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=stops,
            pad_token_id=pad,
        )
    new_tokens = out[:, batch["input_ids"].shape[1]:]
    return [clean_reply(text) for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_reply(text: str) -> str:
    """Strip, and replace control characters (never meaningful in a reply; they garble terminals)."""
    return _CONTROL.sub("\ufffd", text.strip())
