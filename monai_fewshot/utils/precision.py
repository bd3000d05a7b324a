"""Whether a device computes in bfloat16 natively, so that autocast to it is a speed-up, not an emulation."""

from __future__ import annotations

import torch

__all__ = ["native_bf16"]


def native_bf16(device: str | torch.device) -> bool:
    """True for a CUDA device with bfloat16 support and for a CPU with AVX512-BF16 or AMX instructions; False
    elsewhere, where bfloat16 matrix products are emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False
