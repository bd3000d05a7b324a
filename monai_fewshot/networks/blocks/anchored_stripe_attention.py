"""N-D anchored stripe attention: GRL's regional (stripe-wide) attention through a small set of anchors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange
from monai.utils import ensure_tuple_rep
from torch import nn

from monai_fewshot.networks.blocks.cosine_attention import CosineAttention
from monai_fewshot.networks.blocks.shift_masks import shift_masks
from monai_fewshot.networks.blocks.window_layout import window_layout

__all__ = ["AnchoredStripeAttention", "stripe_shape"]


def stripe_shape(stripe_size: Sequence[int], orientation: int, stripe_axes: Sequence[int] | None = None) -> tuple[int, ...]:
    """The stripe shape of one orientation: ``stripe_size`` with its sizes on ``stripe_axes`` rotated.

    Orientation ``k`` rolls the sizes found on ``stripe_axes`` (default: every axis) by ``k`` places, so
    the long side of the stripe visits each of those axes in turn; sizes on the other axes stay fixed
    (an anisotropic slice axis keeps its own size). 2D ``(64, 128)`` gives ``(64, 128)`` then
    ``(128, 64)``: GRL's horizontal and vertical stripes. 3D ``(32, 16, 16)`` gives tubes along D, H and W.

    Args:
        stripe_size: stripe shape of orientation 0, one size per spatial axis.
        orientation: block's orientation index; taken modulo ``len(stripe_axes)``.
        stripe_axes: the spatial axes whose sizes rotate. Defaults to all.
    """
    axes = tuple(range(len(stripe_size))) if stripe_axes is None else tuple(stripe_axes)
    sizes = [stripe_size[a] for a in axes]
    k = orientation % len(axes)
    rotated = sizes[len(sizes) - k :] + sizes[: len(sizes) - k]
    shape = list(stripe_size)
    for axis, size in zip(axes, rotated):
        shape[axis] = size
    return tuple(shape)


class AnchoredStripeAttention(nn.Module):
    """Anchored stripe attention (Li et al., GRL, CVPR 2023) for 2D and 3D maps.

    The map is cut into stripes (rectangular windows much longer along one axis); the anchors are the
    block input average-pooled by ``anchor_window_down_factor`` and projected (done by the caller, see
    :class:`~monai_fewshot.networks.blocks.mixed_attention.MixedAttention`), cut into the matching anchor
    stripes. Per stripe, the anchors first attend to the stripe, ``Z = softmax(A K^T) V``, then the stripe
    attends to the anchors, ``Y = softmax(Q A^T) Z``: cost O(N_stripe * N_anchor) instead of O(N_stripe^2).
    Both steps are :class:`CosineAttention` with their own logit scales and position-bias MLPs; anchor
    coordinates are positions on the anchor grid. With ``shift``, stripes and anchors are rolled by half a
    stripe and the wrapped regions are masked from each other. Stripes and anchor windows are gathered
    (roll, partition and grouping in one copy) and put back by
    :func:`~monai_fewshot.networks.blocks.window_layout.window_layout`.

    Args:
        spatial_dims: 2 or 3.
        num_heads: attention heads.
        stripe_size: the stripe shape of this block (already oriented, see :func:`stripe_shape`); each size
            must be a multiple of ``anchor_window_down_factor`` along its axis.
        anchor_window_down_factor: pooling factor of the anchors, per axis or an int for all. Defaults to 4.
        shift: cyclic shift by half a stripe. Defaults to False.
        dropout_rate: attention dropout. Defaults to 0.
    """

    def __init__(
        self,
        spatial_dims: int,
        num_heads: int,
        stripe_size: Sequence[int] | int,
        anchor_window_down_factor: Sequence[int] | int = 4,
        shift: bool = False,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.stripe_size = ensure_tuple_rep(stripe_size, spatial_dims)
        df = ensure_tuple_rep(anchor_window_down_factor, spatial_dims)
        if min(df) < 1 or any(s < f or s % f for s, f in zip(self.stripe_size, df)):
            raise ValueError(
                f"stripe_size {self.stripe_size} must be positive multiples of anchor_window_down_factor {df}."
            )
        self.down_factor = df
        self.anchor_size = tuple(s // f for s, f in zip(self.stripe_size, df))
        self.shift_size = tuple(s // 2 for s in self.stripe_size) if shift else (0,) * spatial_dims
        self.num_heads = num_heads
        self.anchor_to_stripe = CosineAttention(spatial_dims, num_heads, dropout_rate=dropout_rate)
        self.stripe_to_anchor = CosineAttention(spatial_dims, num_heads, dropout_rate=dropout_rate)

    def forward(self, qkv: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """
        Args:
            qkv: (B, *S, 3C) channels-last q, k and v, each C = heads * d wide; every axis of S a multiple of
                the stripe size along it.
            anchors: (B, *S / anchor_window_down_factor, C) channels-last anchors.

        Returns:
            (B, *S, C).
        """
        spatial = tuple(qkv.shape[1:-1])
        anchor_spatial = tuple(anchors.shape[1:-1])
        anchor_shift = tuple(s // f for s, f in zip(self.shift_size, self.down_factor))
        shifted = tuple(s > 0 for s in self.shift_size)
        stripes = window_layout(spatial, self.stripe_size, self.shift_size, shifted, qkv.device)
        anchor_windows = window_layout(anchor_spatial, self.anchor_size, anchor_shift, shifted, qkv.device)
        q, k, v = rearrange(
            stripes.windows(qkv),
            "b (w n) (three h d) -> three b w h n d",
            n=math.prod(self.stripe_size),
            three=3,
            h=self.num_heads,
        )
        a = rearrange(
            anchor_windows.windows(anchors),
            "b (w n) (h d) -> b w h n d",
            n=math.prod(self.anchor_size),
            h=self.num_heads,
        )
        mask_a2s = mask_s2a = None
        if any(shifted):
            grid = tuple(s // w for s, w in zip(spatial, self.stripe_size))
            mask_a2s = shift_masks(grid, self.anchor_size, anchor_shift, self.stripe_size, self.shift_size, qkv.device)
            mask_s2a = shift_masks(grid, self.stripe_size, self.shift_size, self.anchor_size, anchor_shift, qkv.device)
        z = self.anchor_to_stripe(a, k, v, self.anchor_size, self.stripe_size, mask_a2s)  # (B, W, N_a, heads, d)
        y = self.stripe_to_anchor(q, a, z.transpose(2, 3), self.stripe_size, self.anchor_size, mask_s2a)
        return stripes.to_map(y, spatial)
