"""AttnConv: CloFormer's local attention (Fan et al., "Rethinking Local Perception in Lightweight Vision
Transformer", arXiv 2303.17803)."""

from __future__ import annotations

import torch
from monai.networks.layers import Conv
from torch import nn

from monai_fewshot.networks.blocks.capped_conv import CappedConv

__all__ = ["AttnConv"]


class AttnConv(nn.Module):
    """Convolutional attention with shared weights and context-aware weights.

    A 1x1 convolution gives q, k and v; a depthwise ``kernel_size`` convolution aggregates local
    information into each (shared weights). The context-aware weights are
    ``tanh(AttnMap(q * k) / sqrt(head_dim))`` with ``AttnMap`` = 1x1 conv, Swish, 1x1 conv, and the
    output is their element-wise product with v (no softmax). Every operation is a 1x1 or depthwise
    convolution, so the block is translation equivariant up to the border.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        num_heads: heads of this branch.
        head_dim: channels per head; the branch outputs ``num_heads * head_dim`` channels.
        kernel_size: odd kernel of the depthwise mixing (capped to the map, see :class:`CappedConv`).
        qkv_bias: whether the q/k/v projection has a bias. Defaults to True.
        attn_drop: dropout on the context-aware weights. Defaults to 0.

    Shapes: (B, in_channels, *S) -> (B, num_heads * head_dim, *S).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_heads: int,
        head_dim: int,
        kernel_size: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        width = num_heads * head_dim
        self.scale = head_dim**-0.5
        self.qkv = conv(in_channels, 3 * width, 1, bias=qkv_bias)
        self.mixer = CappedConv(spatial_dims, 3 * width, 3 * width, kernel_size, groups=3 * width)
        self.attn_map = nn.Sequential(conv(width, width, 1), nn.SiLU(), conv(width, width, 1))
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.mixer(self.qkv(x)).chunk(3, dim=1)
        weights = torch.tanh(self.attn_map(q * k) * self.scale)
        return self.attn_drop(weights) * v
