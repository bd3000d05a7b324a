"""Small dimension-agnostic tensor helpers shared by the networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["resize_like", "resize_to"]


def resize_to(x: torch.Tensor, size: Sequence[int], mode: str = "linear") -> torch.Tensor:
    """Resize ``x`` of shape (N, C, *spatial) to ``size``.

    Args:
        x: tensor with 1, 2 or 3 spatial dimensions.
        size: target spatial size.
        mode: ``"linear"`` (bi-/tri-linear by dimension), ``"area"`` (average, for masks going down) or
            ``"nearest"``.
    """
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if mode == "linear":
        mode = ("linear", "bilinear", "trilinear")[x.ndim - 3]
        return F.interpolate(x, size=size, mode=mode, align_corners=False)
    return F.interpolate(x, size=size, mode=mode)


def resize_like(x: torch.Tensor, reference: torch.Tensor, mode: str = "linear") -> torch.Tensor:
    """Resize ``x`` to the spatial size of ``reference``; see :func:`resize_to`."""
    return resize_to(x, reference.shape[2:], mode)
