"""Host-to-device copies that do not make the host wait for the GPU.

A ``.to("cuda", non_blocking=True)`` from ordinary (pageable) host memory is still a synchronous
copy: PyTorch waits for the stream, so the GPU drains before the copy and the host cannot queue
the next batch behind the current one. Copies from pinned memory are queued on the stream like a
kernel. Everything the score pipeline sends to the GPU goes through here.
"""

from __future__ import annotations

from typing import Any


def to_device_async(tensor: Any, device: Any, dtype: Any = None) -> Any:
    """``tensor`` on ``device`` (and in ``dtype``), queued without a host-device sync on CUDA.

    The pinned staging buffer stays reserved until the copy has run (PyTorch's host allocator
    records the copy's stream), so the caller may drop it at once.
    """
    import torch

    target = torch.device(device)
    dtype = dtype if dtype is not None else tensor.dtype
    if target.type == "cuda" and tensor.device.type == "cpu":
        # copy as is, convert on the device (in stream order, after the copy)
        return tensor.pin_memory().to(target, non_blocking=True).to(dtype)
    return tensor.to(device=target, dtype=dtype)
