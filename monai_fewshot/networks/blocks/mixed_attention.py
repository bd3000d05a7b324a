"""GRL's mixed attention: window attention on half the channels, anchored stripe attention on the other half."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.utils import ensure_tuple_rep
from torch import nn

from monai_fewshot.networks.blocks.anchored_stripe_attention import AnchoredStripeAttention
from monai_fewshot.networks.blocks.window_attention import WindowAttention

__all__ = ["MixedAttention"]


class MixedAttention(nn.Module):
    """Mixed local (window) and regional (anchored stripe) attention of one GRL block (Li et al., CVPR 2023).

    One Linear(C, 3C) gives q, k and v; their channels are split in half: the first half goes through
    :class:`WindowAttention`, the second through :class:`AnchoredStripeAttention` with anchors
    ``Linear(C, C/2)(AvgPool_df(x))`` (the average taken on the channels-last tokens: no layout change); the two
    C/2 outputs are concatenated and projected by Linear(C, C).

    Args:
        spatial_dims: 2 or 3.
        hidden_size: token width C (even; each half divisible by its head count).
        num_heads_window: heads of the window attention.
        num_heads_stripe: heads of the stripe attention.
        window_size: window size per axis (an int for all axes).
        stripe_size: this block's stripe shape (already oriented), one size per axis.
        anchor_window_down_factor: anchor pooling factor, per axis or an int for all. Defaults to 4.
        window_shift: shift the windows by half a window. Defaults to False.
        stripe_shift: shift the stripes by half a stripe. Defaults to False.
        qkv_bias: bias on the q, k, v projection. Defaults to True.
        dropout_rate: attention and output dropout. Defaults to 0.
    """

    def __init__(
        self,
        spatial_dims: int,
        hidden_size: int,
        num_heads_window: int,
        num_heads_stripe: int,
        window_size: Sequence[int] | int,
        stripe_size: Sequence[int] | int,
        anchor_window_down_factor: Sequence[int] | int = 4,
        window_shift: bool = False,
        stripe_shift: bool = False,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        half = hidden_size // 2
        if hidden_size % 2 or half % num_heads_window or half % num_heads_stripe:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be even with hidden_size / 2 divisible by num_heads_window "
                f"({num_heads_window}) and num_heads_stripe ({num_heads_stripe})."
            )
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)
        self.anchor_window_down_factor = ensure_tuple_rep(anchor_window_down_factor, spatial_dims)
        self.anchor_proj = nn.Linear(hidden_size, half)
        self.window_attention = WindowAttention(spatial_dims, num_heads_window, window_size, window_shift, dropout_rate)
        self.stripe_attention = AnchoredStripeAttention(
            spatial_dims, num_heads_stripe, stripe_size, anchor_window_down_factor, stripe_shift, dropout_rate
        )
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.drop_output = nn.Dropout(dropout_rate)

    def pool_anchors(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *S, C) -> (B, *S / anchor_window_down_factor, C): the mean of each pooling cell.

        One axis at a time, each a mean over ``factor`` contiguous blocks (everything after the axis): 6-8x
        faster on CPU than one mean over the strided cell dimensions of a single reshape.
        """
        for axis, factor in enumerate(self.anchor_window_down_factor, start=1):
            if factor > 1:
                shape = x.shape
                cells = x.reshape(*shape[:axis], shape[axis] // factor, factor, math.prod(shape[axis + 1 :]))
                x = cells.mean(dim=axis + 1).reshape(*shape[:axis], shape[axis] // factor, *shape[axis + 1 :])
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, *S, C) channels-last tokens; S a multiple of the window and stripe sizes.

        Returns:
            (B, *S, C).
        """
        qkv_window, qkv_stripe = self.qkv(x).chunk(2, dim=-1)
        anchors = self.anchor_proj(self.pool_anchors(x))
        out = torch.cat([self.window_attention(qkv_window), self.stripe_attention(qkv_stripe, anchors)], dim=-1)
        return self.drop_output(self.proj(out))
