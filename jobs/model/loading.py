"""Loading a model + processor (and a LoRA adapter) for the eval, saliency and training kinds.

Everything that can go wrong with the user's ``--model``/``--adapter`` is checked and reported as
one ``OrienteerError`` line before a kind writes anything: a path that does not exist, a folder
that is not a model, a hub id that is not in the local cache while offline, a failed load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orienteer.data.errors import OrienteerError
from orienteer.jobs.model.tiny import is_random_weights

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    name: str  # base model ref, plus "+adapter" when one is applied (identifies the weights)
    base: str  # the base model folder or hub id (what a run records as its model)
    adapter: str | None
    random_weights: bool
    device: str
    dtype: Any
    vision_attention: str = "reference"

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def pad_id(self) -> int:
        """The id left padding uses (0 when the tokenizer names no pad token)."""
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else (text or type(exc).__name__)


def resolve_model_ref(model: str) -> tuple[str, str | None]:
    """``(base model ref, adapter folder or None)`` for ``--model``; raises on refs that cannot work.

    A folder holding ``adapter_config.json`` but no ``config.json`` is an adapter (what the train
    kind writes): its base model comes from the adapter's config.
    """
    text = str(model).strip()
    if not text:
        raise OrienteerError("--model is empty (expected a model folder or a hub id like Qwen/Qwen2.5-VL-3B-Instruct)")
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise OrienteerError(f"model {path}: not a folder (expected a folder with config.json from save_pretrained)")
        if (path / "config.json").is_file():
            return str(path.resolve()), None
        if (path / "adapter_config.json").is_file():
            base = _adapter_base(path)
            return resolve_model_ref(base)[0], str(path.resolve())
        raise OrienteerError(f"model {path}: folder has no config.json (expected a folder written by save_pretrained)")
    if not _HUB_ID.match(text):
        raise OrienteerError(
            f"model {text}: no such folder, and not a hub id (expected a model folder or an id like Qwen/Qwen2.5-VL-3B-Instruct)"
        )
    return text, None


def _adapter_base(adapter: Path) -> str:
    try:
        base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise OrienteerError(f"adapter {adapter}: adapter_config.json cannot be read ({_one_line(exc)})") from None
    if not base:
        raise OrienteerError(f"adapter {adapter}: adapter_config.json names no base_model_name_or_path (pass --model too)")
    return str(base)


def check_adapter(adapter: str | None) -> str | None:
    """The adapter folder, resolved, or an error when it is not a peft adapter folder."""
    if adapter is None or str(adapter).strip() == "":
        return None
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise OrienteerError(f"adapter {path}: no such folder (expected a peft adapter folder with adapter_config.json)")
    if not (path / "adapter_config.json").is_file():
        raise OrienteerError(f"adapter {path}: folder has no adapter_config.json (expected a peft adapter folder)")
    return str(path.resolve())


def cuda_available() -> bool | None:
    """Whether torch sees a CUDA device; None when torch is not installed (the job then runs on the CPU)."""
    try:
        import torch
    except ImportError:
        return None
    return bool(torch.cuda.is_available())


def load_processor_offline(base: str) -> Any:
    """The model's processor from local files only (raises OSError/ValueError when it is not there)."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(base, local_files_only=True)


def model_dtype(device: str) -> Any:
    """bf16 on a GPU, fp32 on the CPU (bf16 matmuls on CPUs are slow and imprecise)."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def set_fast_path(model: Any, mode: str = "auto") -> str:
    """Switch ``model`` to the fast path or back; the vision attention mode in effect.

    ``mode`` is the vision attention (``vision_attention.py``, which also switches the GEMM patch
    embedding); every mode but ``reference`` adds one-kernel RMSNorm (``fused_norm.py``) and
    one-kernel SwiGLU (``fused_swiglu.py``) in half precision. ``reference`` is transformers' code
    throughout.
    """
    from orienteer.jobs.model.fused_norm import patch_rms_norm
    from orienteer.jobs.model.fused_swiglu import patch_swiglu
    from orienteer.jobs.model.vision_attention import patch_vision_attention

    used = patch_vision_attention(model, mode)
    patch_rms_norm(model, fused=used != "reference")
    patch_swiglu(model, fused=used != "reference")
    return used


def load_model(
    model: str,
    adapter: str | None = None,
    device: str = "cpu",
    dtype: Any = None,
    vision_attention: str = "auto",
    merge_adapter: bool = True,
) -> LoadedModel:
    """Load ``model`` (folder or hub id) and its processor, apply ``adapter``, move to ``device``.

    ``vision_attention``: ``auto`` (the fast path: windowed attention and a GEMM patch embedding,
    ``vision_attention.py``, plus one-kernel RMSNorm in half precision, ``fused_norm.py``), or
    ``reference`` (transformers' own code throughout). Raises ``OrienteerError`` (one line) on any failure.
    """
    base, implied_adapter = resolve_model_ref(model)
    adapter_path = check_adapter(adapter) or implied_adapter
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar is noise in a job's log (and its tail on the jobs screen)
    dtype = dtype if dtype is not None else model_dtype(device)
    net: Any  # the transformers model, then maybe a PeftModel around it
    try:
        processor = AutoProcessor.from_pretrained(base)
        net = AutoModelForImageTextToText.from_pretrained(base, dtype=dtype, attn_implementation="sdpa")
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one line for the user
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only cached models can be loaded)" if offline and not Path(base).exists() else ""
        raise OrienteerError(f"cannot load model {base}{hint}: {_one_line(exc)}") from None
    if adapter_path is not None:
        try:
            from peft import PeftModel

            net = PeftModel.from_pretrained(net, adapter_path)
            if merge_adapter:
                net = net.merge_and_unload()
        except Exception as exc:  # noqa: BLE001
            raise OrienteerError(f"cannot load adapter {adapter_path} on {base}: {_one_line(exc)}") from None
    try:
        net = net.to(device)
    except Exception as exc:  # noqa: BLE001
        raise OrienteerError(f"cannot move model {base} to {device}: {_one_line(exc)}") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    used = set_fast_path(net, vision_attention)
    name = base if adapter_path is None else f"{base}+{adapter_path}"
    random_weights = is_random_weights(base) or (adapter_path is not None and is_random_weights(adapter_path))
    return LoadedModel(net, processor, name, base, adapter_path, random_weights, device, dtype, used)
