"""Loading: clear one-line errors for bad model/adapter refs; a LoRA adapter changes the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from orienteer.data.errors import OrienteerError


def test_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    from orienteer.jobs.model.loading import load_model

    with pytest.raises(OrienteerError) as err:
        load_model(str(tmp_path / "no-such-model"))
    message = str(err.value)
    assert "no-such-model" in message and "no such folder" in message and "\n" not in message


def test_folder_without_config_and_uncached_hub_id(tmp_path: Path) -> None:
    from orienteer.jobs.model.loading import load_model

    (tmp_path / "empty").mkdir()
    with pytest.raises(OrienteerError, match="has no config.json"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(OrienteerError, match=r"cannot load model nobody-here/no-model") as err:
        load_model("nobody-here/no-model")  # HF_HUB_OFFLINE=1 in these tests: nothing is fetched
    assert "\n" not in str(err.value)


def test_bad_adapter_is_refused_before_loading(tiny_model_dir: Path, tmp_path: Path) -> None:
    from orienteer.jobs.model.loading import load_model

    with pytest.raises(OrienteerError, match="adapter .*no such folder"):
        load_model(str(tiny_model_dir), adapter=str(tmp_path / "nope"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(OrienteerError, match="no adapter_config.json"):
        load_model(str(tiny_model_dir), adapter=str(tmp_path / "plain"))


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model's language layers with non-zero B (so it changes outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=32, init_lora_weights=False,
                        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    peft_model = get_peft_model(base, config)
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft_model.save_pretrained(folder)
    return folder


def _last_logits(loaded: Any) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    from orienteer.data.items import Item
    from orienteer.jobs.model.batching import collate, encode_item
    from orienteer.jobs.model.score import last_logits

    item = Item("x", "t", "Where?", list("ABCD"), ["l", "r", "f", "b"], "A", ["a.jpg"])
    frame = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    with torch.no_grad():
        return last_logits(loaded.model, collate([encode_item(loaded.processor, item, [frame])], 0))


def test_adapter_changes_outputs_and_is_recorded(tiny: Any, tiny_model_dir: Path, lora_dir: Path) -> None:
    from orienteer.jobs.model.loading import load_model

    adapted = load_model(str(tiny_model_dir), adapter=str(lora_dir))
    assert adapted.adapter == str(lora_dir.resolve())
    assert adapted.random_weights  # the base is the random tiny model
    assert not any(type(m).__name__.startswith("Lora") for m in adapted.model.modules())  # merged for speed
    assert not torch.allclose(_last_logits(adapted), _last_logits(tiny), atol=1e-4)
    unmerged = load_model(str(tiny_model_dir), adapter=str(lora_dir), merge_adapter=False)
    torch.testing.assert_close(_last_logits(unmerged), _last_logits(adapted), atol=1e-4, rtol=1e-4)


def test_adapter_folder_as_model(lora_dir: Path, tiny_model_dir: Path) -> None:
    from orienteer.jobs.model.loading import load_model, resolve_model_ref

    base, adapter = resolve_model_ref(str(lora_dir))
    assert Path(base) == tiny_model_dir.resolve() and adapter == str(lora_dir.resolve())
    loaded = load_model(str(lora_dir))
    assert loaded.base == str(tiny_model_dir.resolve()) and loaded.adapter == str(lora_dir.resolve())
