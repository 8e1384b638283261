"""A tiny random Qwen2.5-VL (ARCHITECTURE.md section 8) and the real 3B shapes, both built in code.

Nothing here downloads: the tokenizer is byte-level (256 byte symbols + Qwen's special tokens, no
merges), so tests, the demo workspace and the GPU bench run on a fresh machine. A folder built here
carries ``orienteer-random-weights.json`` so every run made with it is labelled as a random-weight run.
torch/transformers are imported inside functions: this module is cheap to import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RANDOM_WEIGHTS_MARKER = "orienteer-random-weights.json"

# The Qwen2.5-VL-Instruct chat template (chat_template.json of the released checkpoints).
QWEN25VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2.5-VL's special tokens in their released order (ids 151643.. in the real vocabulary).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# Tiny image sizes keep CPU tests fast: 2x2 .. 8x8 merged tokens per image.
TINY_MIN_PIXELS = 28 * 28 * 4
TINY_MAX_PIXELS = 28 * 28 * 64


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which byte-level BPE vocabularies use."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def byte_vocab() -> dict[str, int]:
    """256 byte symbols (ids 0-255) followed by the Qwen special tokens (ids 256-269)."""
    vocab = {sym: i for i, sym in enumerate(_bytes_to_unicode()[b] for b in range(256))}
    for k, tok in enumerate(QWEN_SPECIAL_TOKENS):
        vocab[tok] = 256 + k
    return vocab


def build_tokenizer() -> Any:
    """A byte-level ``Qwen2Tokenizer`` (no merges): every character is one or more byte tokens."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer(
        vocab=byte_vocab(),
        merges=[],
        unk_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS], special_tokens=True)
    tok.chat_template = QWEN25VL_CHAT_TEMPLATE
    return tok


def build_processor(tokenizer: Any, min_pixels: int = TINY_MIN_PIXELS, max_pixels: int = TINY_MAX_PIXELS) -> Any:
    """``Qwen2_5_VLProcessor`` with the Qwen2.5-VL chat template and the given pixel range."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    video_processor = Qwen2VLVideoProcessor()
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN25VL_CHAT_TEMPLATE,
    )


def _special_ids() -> dict[str, int]:
    vocab = byte_vocab()
    return {
        "bos_token_id": vocab["<|endoftext|>"],
        "eos_token_id": vocab["<|im_end|>"],
        "pad_token_id": vocab["<|endoftext|>"],
        "image_token_id": vocab["<|image_pad|>"],
        "video_token_id": vocab["<|video_pad|>"],
        "vision_start_token_id": vocab["<|vision_start|>"],
        "vision_end_token_id": vocab["<|vision_end|>"],
    }


def tiny_config() -> Any:
    """The tiny Qwen2.5-VL of ARCHITECTURE.md section 8 (vocabulary: the byte tokenizer's 270, rounded up)."""
    from transformers import Qwen2_5_VLConfig

    ids = _special_ids()
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 320,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"],
            "pad_token_id": ids["pad_token_id"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
            "window_size": 112,
        },
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


def qwen25vl_3b_config(vocab_size: int = 151936) -> Any:
    """Qwen2.5-VL-3B-Instruct's shapes (config.json of the release), for timing with random weights."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "pad_token_id": 151643,
        },
        vision_config={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "window_size": 112,
            "tokens_per_second": 2,
        },
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=True,
    )


def model_stack_installed() -> bool:
    """Whether torch and transformers import, so the demo can build the tiny model or say why it did not."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def quiet_transformers() -> None:
    """Silence transformers' progress bars ("Writing model shards" would clutter the demo's output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def build_tiny_qwen25vl(folder: Path | str, seed: int = 0) -> Path:
    """Build the tiny random model + processor and ``save_pretrained`` both into ``folder``.

    ``from_pretrained(folder)`` then works offline, like a downloaded checkpoint. Takes about a second.
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config())
    model.generation_config.eos_token_id = _special_ids()["eos_token_id"]
    model.generation_config.pad_token_id = _special_ids()["pad_token_id"]
    model.save_pretrained(folder)
    build_processor(build_tokenizer()).save_pretrained(folder)
    (folder / RANDOM_WEIGHTS_MARKER).write_text(
        json.dumps({"random_weights": True, "built_by": "orienteer.jobs.model.tiny", "seed": seed}) + "\n",
        encoding="utf-8",
    )
    return folder


def is_random_weights(path: Path | str | None) -> bool:
    """True when ``path`` is a model folder (or an adapter whose base is one) built with random weights."""
    if path is None:
        return False
    folder = Path(path)
    if (folder / RANDOM_WEIGHTS_MARKER).is_file():
        return True
    adapter_cfg = folder / "adapter_config.json"
    if adapter_cfg.is_file():
        try:
            base = json.loads(adapter_cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError):
            return False
        if base and Path(base) != folder:
            return (Path(base) / RANDOM_WEIGHTS_MARKER).is_file()
    return False
