"""The Clo block: CloFormer's transformer block (Fan et al., arXiv 2303.17803)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Conv, DropPath, get_norm_layer
from torch import nn

from monai_fewshot.networks.blocks.attnconv import AttnConv
from monai_fewshot.networks.blocks.capped_conv import CappedConv
from monai_fewshot.networks.blocks.convffn import ConvFFN
from monai_fewshot.networks.blocks.global_attention import PooledGlobalAttention

__all__ = ["CloAttention", "CloBlock"]


class CloAttention(nn.Module):
    """CloFormer's token mixer: AttnConv heads (local) beside pooled global heads, concatenated, 1x1 proj.

    Args:
        spatial_dims: 1, 2 or 3.
        channels: input and output channels.
        num_heads: total heads; ``channels`` must be divisible by it.
        group_split: (local heads, global heads), summing to ``num_heads``; either may be 0.
        kernel_size: odd depthwise kernel of the local branch.
        pool_size: key/value pooling window of the global branch.
        qkv_bias: biases of the q/k/v projections and of the output projection. Defaults to True.
        attn_drop: dropout on the attention weights. Defaults to 0.
        proj_drop: dropout after the output projection. Defaults to 0.

    Shapes: (B, channels, *S) -> (B, channels, *S).
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        num_heads: int,
        group_split: Sequence[int],
        kernel_size: int,
        pool_size: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if channels % num_heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads}).")
        if len(group_split) != 2 or sum(group_split) != num_heads or min(group_split) < 0:
            raise ValueError(
                f"group_split must be (local heads, global heads) summing to num_heads={num_heads}, got {group_split}."
            )
        head_dim = channels // num_heads
        local_heads, global_heads = group_split
        branches = []
        if local_heads:
            branches.append(AttnConv(spatial_dims, channels, local_heads, head_dim, kernel_size, qkv_bias, attn_drop))
        if global_heads:
            branches.append(
                PooledGlobalAttention(spatial_dims, channels, global_heads, head_dim, pool_size, qkv_bias, attn_drop)
            )
        self.branches = nn.ModuleList(branches)
        self.proj = Conv[Conv.CONV, spatial_dims](channels, channels, 1, bias=qkv_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_drop(self.proj(torch.cat([branch(x) for branch in self.branches], dim=1)))


class CloBlock(nn.Module):
    """``x = x + DropPath(CloAttention(GN(x)))``, then ``x = shortcut(x) + DropPath(ConvFFN(GN(x)))``.

    Both pre-norms are GroupNorm(1, C). With ``stride=2`` the block downsamples: the ConvFFN's depthwise
    convolution is strided and the shortcut is a ``mlp_kernel_size`` stride-2 convolution, a norm and a 1x1
    convolution to ``out_channels``; otherwise ``out_channels`` must equal ``in_channels`` and the shortcut
    is the identity. :meth:`token_mixing` and :meth:`channel_mixing` are the two halves, so that an encoder
    can read the features at full resolution before the downsampling.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        num_heads: attention heads.
        group_split: (local heads, global heads), see :class:`CloAttention`.
        kernel_size: depthwise kernel of AttnConv.
        pool_size: key/value pooling window of the global heads.
        mlp_kernel_size: depthwise kernel of the ConvFFN and of the downsampling shortcut. Defaults to 5.
        mlp_ratio: ConvFFN hidden width over ``in_channels``. Defaults to 4.
        stride: 1, or 2 to downsample. Defaults to 1.
        qkv_bias: biases of the attention projections. Defaults to True.
        attn_drop: attention dropout. Defaults to 0.
        drop: dropout after the attention projection and in the ConvFFN. Defaults to 0.
        drop_path: stochastic depth rate of both residual branches. Defaults to 0.
        norm: norm of the downsampling shortcut, MONAI name or (name, args). The reference uses BatchNorm;
            the default GroupNorm(1, C) has the same parameters and works at batch size 1.

    Shapes: (B, in_channels, *S) -> (B, out_channels, *ceil(S / stride)).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        num_heads: int,
        group_split: Sequence[int],
        kernel_size: int,
        pool_size: int,
        mlp_kernel_size: int = 5,
        mlp_ratio: float = 4.0,
        stride: int = 1,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        norm: str | tuple = ("group", {"num_groups": 1}),
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}.")
        if stride == 1 and out_channels != in_channels:
            raise ValueError(f"a stride-1 block keeps its width: out_channels {out_channels} != {in_channels}.")
        group_norm = ("group", {"num_groups": 1})
        self.norm1 = get_norm_layer(group_norm, spatial_dims, in_channels)
        self.attn = CloAttention(
            spatial_dims, in_channels, num_heads, group_split, kernel_size, pool_size, qkv_bias, attn_drop, drop
        )
        self.norm2 = get_norm_layer(group_norm, spatial_dims, in_channels)
        self.mlp = ConvFFN(
            spatial_dims, in_channels, int(in_channels * mlp_ratio), out_channels, mlp_kernel_size, stride, drop
        )
        self.drop_path = DropPath(drop_path)
        self.shortcut: nn.Module = nn.Identity()
        if stride == 2:
            self.shortcut = nn.Sequential(
                CappedConv(spatial_dims, in_channels, in_channels, mlp_kernel_size, stride=2),
                get_norm_layer(norm, spatial_dims, in_channels),
                Conv[Conv.CONV, spatial_dims](in_channels, out_channels, 1),
            )

    def token_mixing(self, x: torch.Tensor) -> torch.Tensor:
        """The attention half, at the input resolution."""
        return x + self.drop_path(self.attn(self.norm1(x)))

    def channel_mixing(self, x: torch.Tensor) -> torch.Tensor:
        """The ConvFFN half, which downsamples when ``stride=2``."""
        return self.shortcut(x) + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_mixing(self.token_mixing(x))
