"""CloFormer's convolutional feed-forward network (Fan et al., arXiv 2303.17803)."""

from __future__ import annotations

import torch
from monai.networks.layers import Conv
from torch import nn

from monai_fewshot.networks.blocks.capped_conv import CappedConv

__all__ = ["ConvFFN"]


class ConvFFN(nn.Module):
    """1x1 conv to ``hidden_channels``, GELU, depthwise ``kernel_size`` conv (stride 1 or 2), 1x1 conv out.

    With ``stride=2`` it is the downsampling form used by the last block of CloFormer's stages 1-3:
    the strided depthwise convolution halves every spatial size and the output has the next stage's width.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        hidden_channels: width of the hidden layer (the paper uses 4x ``in_channels``).
        out_channels: output channels.
        kernel_size: odd kernel of the depthwise convolution. Defaults to 5.
        stride: stride of the depthwise convolution. Defaults to 1.
        dropout: dropout after the depthwise and the output convolutions. Defaults to 0.

    Shapes: (B, in_channels, *S) -> (B, out_channels, *ceil(S / stride)).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        stride: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.fc1 = conv(in_channels, hidden_channels, 1)
        self.act = nn.GELU()
        self.dwconv = CappedConv(spatial_dims, hidden_channels, hidden_channels, kernel_size, stride, hidden_channels)
        self.fc2 = conv(hidden_channels, out_channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.dwconv(self.act(self.fc1(x))))
        return self.drop(self.fc2(x))
