"""CloFormer's global branch: attention from full-resolution queries to pooled keys and values."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv, Pool
from torch import nn

__all__ = ["PooledGlobalAttention"]


class PooledGlobalAttention(nn.Module):
    """Softmax attention whose keys and values come from an average-pooled map (low-frequency, global).

    ``q = 1x1(x)``, ``k, v = 1x1(AvgPool_p(x))`` with a ``pool_size`` window and stride, then multi-head
    scaled dot-product attention of every location over the ``N / p^d`` pooled tokens.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        num_heads: heads of this branch.
        head_dim: channels per head; the branch outputs ``num_heads * head_dim`` channels.
        pool_size: window and stride of the key/value pooling; each spatial size must be divisible by it.
        qkv_bias: whether the q and k/v projections have a bias. Defaults to True.
        attn_drop: dropout on the attention weights while training. Defaults to 0.

    Shapes: (B, in_channels, *S) -> (B, num_heads * head_dim, *S).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_heads: int,
        head_dim: int,
        pool_size: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.attn_drop = attn_drop
        self.q = conv(in_channels, num_heads * head_dim, 1, bias=qkv_bias)
        self.kv = conv(in_channels, 2 * num_heads * head_dim, 1, bias=qkv_bias)
        self.pool = Pool[Pool.AVG, spatial_dims](pool_size, pool_size) if pool_size > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, spatial = x.shape[0], x.shape[2:]
        q = self.q(x).reshape(b, self.num_heads, self.head_dim, -1).transpose(-1, -2)  # (B, h, N, d)
        k, v = self.kv(self.pool(x)).reshape(b, 2, self.num_heads, self.head_dim, -1).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return out.transpose(-1, -2).reshape(b, -1, *spatial)
