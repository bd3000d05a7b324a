"""Where each token of a (shifted, grouped) window partition comes from: one gather in, one gather out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from monai_fewshot.networks.blocks.shift_masks import group_windows
from monai_fewshot.networks.utils import tensor_cache

__all__ = ["WindowLayout", "window_layout"]


class WindowLayout(NamedTuple):
    """Token permutations between a channels-last map and its windows.

    :meth:`windows` gives the windows of the map rolled by ``-shift``, window after window in the grouped order
    of :func:`~monai_fewshot.networks.blocks.shift_masks.group_windows`, tokens of a window in raster order:
    roll, ``window_partition`` and grouping in one copy. :meth:`to_map` puts them back (window reverse and roll
    back in one copy).

    Attributes:
        gather: (N,) long, the map position (raster index) of each windowed token.
        scatter: (N,) long, the inverse permutation.
    """

    gather: torch.Tensor
    scatter: torch.Tensor

    def windows(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, *S, C) channels-last map (any strides that merge S, e.g. a channel slice) -> (B, N, C) windowed."""
        return tokens.reshape(tokens.shape[0], -1, tokens.shape[-1]).index_select(1, self.gather)

    def to_map(self, windows: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
        """(B, W, n, ...) windowed tokens, their trailing dimensions merged into channels -> (B, *spatial, C)."""
        batch = windows.shape[0]
        tokens = windows.reshape(batch, math.prod(spatial), -1).index_select(1, self.scatter)
        return tokens.reshape(batch, *spatial, tokens.shape[-1])


@tensor_cache(maxsize=128)
def window_layout(
    spatial: tuple[int, ...],
    window: tuple[int, ...],
    shift: tuple[int, ...],
    grouped_axes: tuple[bool, ...],
    device: torch.device | None = None,
) -> WindowLayout:
    """The :class:`WindowLayout` of a map (cached per geometry).

    Args:
        spatial: map size per axis, a multiple of ``window`` along each.
        window: window shape.
        shift: cyclic roll per axis (the map is rolled by ``-shift``; 0: none).
        grouped_axes: the axes whose last windows form their own groups (the shifted axes of the attention
            this layout feeds; a pooled anchor grid uses its stripes' axes even where its own shift is 0).
        device: where the tensors live.
    """
    if any(s % w for s, w in zip(spatial, window)):
        raise ValueError(f"map size {spatial} must be a multiple of the window {window} along each axis.")
    dims = len(spatial)
    grid = [s // w for s, w in zip(spatial, window)]
    strides = [math.prod(spatial[a + 1 :]) for a in range(dims)]
    index = torch.zeros([1] * (2 * dims), dtype=torch.long)
    for a in range(dims):
        position = (torch.arange(grid[a])[:, None] * window[a] + torch.arange(window[a]) + shift[a]) % spatial[a]
        shape = [1] * (2 * dims)
        shape[a], shape[dims + a] = grid[a], window[a]
        index = index + position.reshape(shape) * strides[a]
    index = index.reshape(math.prod(grid), math.prod(window))
    order = [w for _, windows in group_windows(grid, grouped_axes) for w in windows]
    gather = index[torch.tensor(order)].reshape(-1)
    scatter = torch.empty_like(gather)
    scatter[gather] = torch.arange(gather.numel())
    return WindowLayout(gather.to(device), scatter.to(device))
