"""GRL's transformer layer: post-norm mixed attention (+ optional CAB) and MLP, Swin V2 style."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import MLPBlock
from monai.networks.layers import DropPath
from torch import nn

from monai_fewshot.networks.blocks.channel_attention_block import ChannelAttentionBlock
from monai_fewshot.networks.blocks.mixed_attention import MixedAttention

__all__ = ["MixedAttentionTransformerLayer"]


class MixedAttentionTransformerLayer(nn.Module):
    """One GRL block (Li et al., CVPR 2023), residual post-norm as in Swin V2.

    ``x = x + DropPath(norm1(MixedAttention(x))) [+ CAB(x)]``, then ``x = x + DropPath(norm2(MLP(x)))``
    with MLP = Linear(C, mlp_ratio * C), GELU, Linear(mlp_ratio * C, C) (MONAI's ``MLPBlock``).

    Args:
        spatial_dims: 2 or 3.
        hidden_size: token width C.
        num_heads_window: heads of the window attention.
        num_heads_stripe: heads of the anchored stripe attention.
        window_size: window size per axis (an int for all axes).
        stripe_size: this block's stripe shape (already oriented).
        anchor_window_down_factor: anchor pooling factor, per axis or an int for all. Defaults to 4.
        window_shift: shift windows by half a window. Defaults to False.
        stripe_shift: shift stripes by half a stripe. Defaults to False.
        mlp_ratio: MLP width over C. Defaults to 2.
        use_cab: add the channel attention convolution block beside the attention (GRL-B). Defaults to False.
        dropout_rate: dropout in attention and MLP. Defaults to 0.
        drop_path_rate: stochastic depth of the two residual branches. Defaults to 0.
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
        mlp_ratio: float = 2.0,
        use_cab: bool = False,
        dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.attention = MixedAttention(
            spatial_dims,
            hidden_size,
            num_heads_window,
            num_heads_stripe,
            window_size,
            stripe_size,
            anchor_window_down_factor,
            window_shift,
            stripe_shift,
            dropout_rate=dropout_rate,
        )
        self.norm1 = nn.LayerNorm(hidden_size)
        self.cab = ChannelAttentionBlock(spatial_dims, hidden_size) if use_cab else None
        self.mlp = MLPBlock(hidden_size, int(hidden_size * mlp_ratio), dropout_rate, act="GELU")
        self.norm2 = nn.LayerNorm(hidden_size)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, *S, C) channels-last tokens; S a multiple of the window and stripe sizes.

        Returns:
            (B, *S, C).
        """
        out = x + self.drop_path(self.norm1(self.attention(x)))
        if self.cab is not None:
            out = out + self.cab(x.movedim(-1, 1)).movedim(1, -1)
        return out + self.drop_path(self.norm2(self.mlp(out)))
