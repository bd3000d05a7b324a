"""Small dimension-agnostic tensor helpers shared by the networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache, wraps

import torch
import torch.nn.functional as F

__all__ = ["check_dims_and_channels", "check_episode_inputs", "final_logits", "resize_like", "resize_to", "tensor_cache"]


def final_logits(output) -> torch.Tensor:
    """The final logits of a few-shot network's output: the ``logits`` field of an output with several
    (:class:`~monai_fewshot.networks.CATNetOutput`), else the tensor itself (the baseline, the training-free
    methods). The one place that tells the two output kinds apart."""
    return output.logits if hasattr(output, "logits") else output


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


def _is_traced() -> bool:
    return torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()


def check_episode_inputs(
    query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor, spatial_dims: int, in_channels: int
) -> None:
    """The few-shot networks' input check: (B, C, *S) query, (B, K, C, *S) support, (B, K, 1, *S) masks.

    Raises ``ValueError`` naming the argument and the expected shape; outside tracing also for NaN or infinite
    intensities and for a support mask without foreground.
    """
    d = spatial_dims
    if query.ndim != d + 2:
        raise ValueError(
            f"query must be (B, C, *spatial) with {d} spatial dims (spatial_dims={d}), got shape {tuple(query.shape)}."
        )
    if query.shape[1] != in_channels:
        raise ValueError(f"query must have in_channels={in_channels} channels, got {query.shape[1]}.")
    b, spatial = query.shape[0], tuple(query.shape[2:])
    expected = f"(B={b}, K, {in_channels}, {', '.join(map(str, spatial))})"
    if support.ndim != d + 3 or support.shape[0] != b or support.shape[2] != in_channels:
        raise ValueError(f"support must be {expected} (batch, shots, channels, *spatial), got {tuple(support.shape)}.")
    if tuple(support.shape[3:]) != spatial:
        raise ValueError(
            f"support spatial size {tuple(support.shape[3:])} does not match the query's {spatial}; resample first."
        )
    if tuple(support_mask.shape) != (*support.shape[:2], 1, *spatial):
        raise ValueError(
            f"support_mask must be {(*support.shape[:2], 1, *spatial)} (batch, shots, 1, *spatial), "
            f"got {tuple(support_mask.shape)}."
        )
    if _is_traced():
        return
    for name, image in (("query", query), ("support", support)):
        if not torch.isfinite(image).all():
            raise ValueError(f"{name} image contains NaN or infinite intensities.")
    empty = support_mask.flatten(2).amax(-1) <= 0
    if empty.any():
        episode, shot = (int(i) for i in empty.nonzero()[0])
        raise ValueError(f"support_mask of episode {episode}, shot {shot} has no foreground: a support needs the class.")
