"""Shift masks of (shifted) window attention, one per distinct window pattern instead of one per window."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch

from monai_fewshot.networks.utils import tensor_cache

__all__ = ["ShiftMasks", "group_windows", "shift_masks"]


class ShiftMasks(NamedTuple):
    """The additive masks of a cyclically shifted window partition, one per group of windows.

    After a roll by ``-shift``, only the last window along a shifted axis holds tokens from both ends of the
    map, so a window's mask depends only on which axes it is last along: at most ``2 ** spatial_dims``
    distinct masks, whatever the map size. Windows are taken group after group (:func:`group_windows`), so
    each group is a contiguous run of windows and attention runs once per group with its mask broadcast
    over the group: no (windows x N_q x N_k) tensor is ever built.

    Attributes:
        masks: one (N_q, N_k) additive mask per group (0 where the tokens came from the same region, -100
            where not).
        sizes: the number of windows in each group, in the grouped order.
    """

    masks: tuple[torch.Tensor, ...]
    sizes: tuple[int, ...]


def group_windows(windows_per_axis: Sequence[int], grouped_axes: Sequence[bool]) -> tuple[tuple[tuple[bool, ...], list[int]], ...]:
    """The windows of a partition grouped by the shifted axes they are last along.

    Args:
        windows_per_axis: number of windows along each spatial axis.
        grouped_axes: per axis, whether it is shifted (only those tell windows apart).

    Returns:
        ``(pattern, windows)`` per group, groups in sorted pattern order, windows as indices in
        ``window_partition`` order (the last axis fastest), ascending.
    """
    groups: dict[tuple[bool, ...], list[int]] = {}
    for index, position in enumerate(itertools.product(*(range(n) for n in windows_per_axis))):
        pattern = tuple(p == n - 1 and g for p, n, g in zip(position, windows_per_axis, grouped_axes))
        groups.setdefault(pattern, []).append(index)
    return tuple(sorted(groups.items()))


def _region_codes(window: Sequence[int], shift: Sequence[int], last: Sequence[bool]) -> torch.Tensor:
    """(N,) code of the region each token of one window came from, given the axes the window is last along.

    In a last window along a shifted axis, in-window positions ``>= window - shift`` wrapped round from the
    start of the map; elsewhere every token is from the same region along that axis.
    """
    axes = [
        (torch.arange(w) >= w - s).long() if is_last and s > 0 else torch.zeros(w, dtype=torch.long)
        for w, s, is_last in zip(window, shift, last)
    ]
    grids = torch.meshgrid(*axes, indexing="ij")
    return sum(g.reshape(-1) << a for a, g in enumerate(grids))


@tensor_cache(maxsize=64)
def shift_masks(
    windows_per_axis: tuple[int, ...],
    query_window: tuple[int, ...],
    query_shift: tuple[int, ...],
    key_window: tuple[int, ...],
    key_shift: tuple[int, ...],
    device: torch.device | None = None,
) -> ShiftMasks:
    """Masks between query and key tokens of each group of windows of a map rolled by ``-shift`` (cached).

    Equal to MONAI's Swin ``compute_mask`` for self attention (query and key windows the same), and also
    serves GRL's stripe <-> anchor attention, whose anchor grid is the stripe grid pooled (its own window
    and shift, the same number of windows). Groups are those of :func:`group_windows` with the axes where
    the query or the key grid is shifted.

    Args:
        windows_per_axis: number of windows along each spatial axis.
        query_window: window shape on the query grid.
        query_shift: roll of the query grid per axis (0: not shifted).
        key_window: window shape on the key grid.
        key_shift: roll of the key grid per axis.
        device: where the tensors live.
    """
    grouped_axes = tuple(qs > 0 or ks > 0 for qs, ks in zip(query_shift, key_shift))
    masks, sizes = [], []
    for last, windows in group_windows(windows_per_axis, grouped_axes):
        same = _region_codes(query_window, query_shift, last)[:, None] == _region_codes(key_window, key_shift, last)
        masks.append(torch.zeros(same.shape).masked_fill(~same, -100.0).to(device))
        sizes.append(len(windows))
    return ShiftMasks(tuple(masks), tuple(sizes))
