"""The fused kernels compile for the GPUs the jobs run on, with Triton's own compiler and ptxas (no GPU needed).

The interpreter tests (``test_fused_swiglu.py``, ``test_fused_rotary.py``) check the kernels' maths on
the CPU; they do not lower the kernels for a GPU. Compiling to a cubin for sm_90 (H100/H200) catches
what only the real backend rejects, and the PTX shows how bf16 results are rounded on the device.
"""

from __future__ import annotations

from typing import Any

import pytest

triton = pytest.importorskip("triton")
PTX_TYPE = {"bf16": "bf16", "fp16": "f16"}


def _compile(kernel: Any, signature: dict[str, str], constexprs: dict[str, int]) -> Any:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    source = ASTSource(fn=kernel, signature={**signature, **{k: "constexpr" for k in constexprs}}, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32))


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_swiglu_kernel_compiles_for_sm90(dtype: str) -> None:
    from orienteer.jobs.model.fused_swiglu import _triton_kernel

    compiled = _compile(_triton_kernel(), {"gate_ptr": f"*{dtype}", "up_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "n": "i32"},
                        {"BLOCK": 2048})
    assert len(compiled.asm["cubin"]) > 0
    assert f"cvt.rn.{PTX_TYPE[dtype]}.f32" in compiled.asm["ptx"]  # rounded to nearest on the GPU


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_rotary_kernel_compiles_for_sm90_at_the_3b_head_size(dtype: str) -> None:
    from orienteer.jobs.model.fused_rotary import _triton_kernel

    signature = {"qk_ptr": f"*{dtype}", "cos_ptr": "*fp32", "sin_ptr": "*fp32", "out_ptr": f"*{dtype}",
                 "n_rows": "i32", "rows_per_token": "i32", "token_stride": "i32"}
    compiled = _compile(_triton_kernel(), signature, {"HALF": 40, "BLOCK_R": 64, "BLOCK_D": 64})  # head dim 80
    assert len(compiled.asm["cubin"]) > 0
    assert f"cvt.rn.{PTX_TYPE[dtype]}.f32" in compiled.asm["ptx"]
