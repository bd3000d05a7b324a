"""Small dimension-agnostic tensor helpers shared by the networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache, wraps

import torch
import torch.nn.functional as F

__all__ = ["check_dims_and_channels", "resize_like", "resize_to", "tensor_cache"]


def tensor_cache(maxsize: int) -> Callable[[Callable], Callable]:
    """``functools.lru_cache`` for functions that build constant tensors from hashable arguments.

    While ``torch.compile`` or ``torch.export`` traces, the function runs uncached: tensors made during a
    trace are fake or symbolic and must not outlive it. ``cache_info`` and ``cache_clear`` are kept.
    """

    def decorator(fn: Callable) -> Callable:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def wrapper(*args):
            return fn(*args) if torch.compiler.is_compiling() else cached(*args)

        wrapper.cache_info = cached.cache_info  # type: ignore[attr-defined]
        wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return wrapper

    return decorator


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


def check_dims_and_channels(spatial_dims: int, in_channels: int) -> None:
    """The constructor check every network shares: ``spatial_dims`` is 2 or 3 and ``in_channels`` >= 1."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}.")
