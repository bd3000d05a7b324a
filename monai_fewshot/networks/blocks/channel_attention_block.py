"""Channel attention convolution block (CAB): GRL-B's local (convolutional) branch."""

from __future__ import annotations

import torch
from monai.networks.blocks import ChannelSELayer
from monai.networks.layers.factories import Conv
from torch import nn

__all__ = ["ChannelAttentionBlock"]


class ChannelAttentionBlock(nn.Module):
    """Conv 3 (C -> C/compress), GELU, conv 3 (-> C), then squeeze-and-excitation channel attention.

    The local-modelling branch that GRL-B adds beside the mixed attention (as in HAT/RCAN); the channel
    attention is MONAI's :class:`~monai.networks.blocks.ChannelSELayer` with reduction ``reduction``.

    Args:
        spatial_dims: 2 or 3.
        channels: input and output channels C.
        compress_ratio: width reduction of the inner convolution. Defaults to 4.
        reduction: squeeze-and-excitation reduction. Defaults to 18 (GRL-B: 180 -> 10 channels).
    """

    def __init__(self, spatial_dims: int, channels: int, compress_ratio: int = 4, reduction: int = 18) -> None:
        super().__init__()
        if channels // compress_ratio < 1:
            raise ValueError(f"channels ({channels}) must be >= compress_ratio ({compress_ratio}).")
        conv = Conv[Conv.CONV, spatial_dims]
        self.body = nn.Sequential(
            conv(channels, channels // compress_ratio, 3, padding=1),
            nn.GELU(),
            conv(channels // compress_ratio, channels, 3, padding=1),
            ChannelSELayer(spatial_dims, channels, r=reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> (B, C, *S)."""
        return self.body(x)
