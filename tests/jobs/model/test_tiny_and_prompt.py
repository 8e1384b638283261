"""The tiny random Qwen2.5-VL (saved, reloaded offline) and the prompt builders."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from orienteer.data.errors import OrienteerError
from orienteer.data.items import Item
from orienteer.jobs.model.prompt import OFFICIAL_SUFFIX, build_messages, chat_text, prompt_text


def _item(n_images: int = 1) -> Item:
    return Item("x1", "Camera perspective - Relative Direction", "Where is the cup relative to the lamp?",
                list("ABCD"), ["left", "right", "front", "back"], "B", [f"f{k}.jpg" for k in range(n_images)])


def test_tiny_folder_reloads_offline_and_is_marked_random(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from orienteer.jobs.model.tiny import RANDOM_WEIGHTS_MARKER, is_random_weights

    assert (tiny_model_dir / "config.json").is_file()
    assert json.loads((tiny_model_dir / RANDOM_WEIGHTS_MARKER).read_text())["random_weights"] is True
    assert is_random_weights(tiny_model_dir)
    assert not is_random_weights(tiny_model_dir.parent)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    cfg = model.config
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers, cfg.text_config.num_attention_heads,
            cfg.text_config.num_key_value_heads) == (64, 2, 4, 2)
    assert cfg.text_config.rope_parameters["mrope_section"] == [2, 3, 3]
    assert (cfg.vision_config.depth, cfg.vision_config.hidden_size, cfg.vision_config.out_hidden_size) == (2, 32, 64)
    assert list(cfg.vision_config.fullatt_block_indexes) == [1]
    tok = processor.tokenizer
    vocab = tok.get_vocab()
    for special in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                    "<|video_pad|>", "<|endoftext|>"):
        assert special in vocab
    assert cfg.image_token_id == vocab["<|image_pad|>"] == processor.image_token_id
    assert tok.decode(tok("héllo, wörld")["input_ids"]) == "héllo, wörld"  # byte level: any text round-trips
    assert tok("A", add_special_tokens=False)["input_ids"] == [ord("A")]


def test_build_is_quick_once_imported(tmp_path: Path, tiny_model_dir: Path) -> None:
    from orienteer.jobs.model.tiny import build_tiny_qwen25vl

    started = time.perf_counter()
    build_tiny_qwen25vl(tmp_path / "again", seed=1)
    assert time.perf_counter() - started < 3.0


def test_3b_config_has_the_released_shapes() -> None:
    from orienteer.jobs.model.tiny import qwen25vl_3b_config

    cfg = qwen25vl_3b_config()
    t, v = cfg.text_config, cfg.vision_config
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.intermediate_size,
            t.vocab_size) == (2048, 36, 16, 2, 11008, 151936)
    assert (v.depth, v.hidden_size, v.out_hidden_size, v.window_size) == (32, 1280, 2048, 112)
    assert list(v.fullatt_block_indexes) == [7, 15, 23, 31]
    assert cfg.tie_word_embeddings is True


def test_official_prompt_is_the_upstream_text() -> None:
    # evaluate.py: item["question"] + item["choices"] + suffix, so no separator after the question; the
    # newline this test used to expect is the text of ``official-newline`` now.
    text = prompt_text(_item(), "official")
    assert text == ("Where is the cup relative to the lamp?A. left\nB. right\nC. front\nD. back"
                    "\nReply only to the corresponding option.\nAnswer:")
    assert text.endswith(OFFICIAL_SUFFIX)
    assert prompt_text(_item(), "official-newline") == text.replace("?A. left", "?\nA. left")
    assert "letter" in prompt_text(_item(), "letter")
    with pytest.raises(OrienteerError, match="unknown prompt"):
        prompt_text(_item(), "nope")


def test_chat_template_puts_every_frame_before_the_text(tiny: Any) -> None:
    rendered = chat_text(tiny.processor, build_messages(_item(3)))
    assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert rendered.count("<|vision_start|><|image_pad|><|vision_end|>") == 3
    assert rendered.index("<|vision_end|>Where is") > rendered.rindex("<|vision_start|>")
    assert rendered.endswith("Answer:<|im_end|>\n<|im_start|>assistant\n")
    train = chat_text(tiny.processor, build_messages(_item(1), target="B"), add_generation_prompt=False)
    assert train.endswith("<|im_start|>assistant\nB<|im_end|>\n")
