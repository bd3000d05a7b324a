"""N-D (shifted) window cosine attention, the local half of GRL's mixed attention."""

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

__all__ = ["WindowAttention"]


class WindowAttention(nn.Module):
    """Cosine self attention inside non-overlapping N-D windows, optionally cyclically shifted by half a window.

    The windows of MONAI's Swin ``window_partition``; a shifted block rolls the map by ``-window // 2``
    first, masks the token pairs that the roll brought together from opposite sides (-100, the masks of
    MONAI's ``compute_mask``, held once per window pattern by
    :func:`~monai_fewshot.networks.blocks.shift_masks.shift_masks`) and rolls back afterwards. Roll,
    partition and grouping are one gather of the tokens, and their inverse one more
    (:func:`~monai_fewshot.networks.blocks.window_layout.window_layout`).

    Args:
        spatial_dims: 2 or 3.
        num_heads: attention heads.
        window_size: window size per axis (an int for all axes).
        shift: cyclic shift by half a window. Defaults to False.
        dropout_rate: attention dropout. Defaults to 0.
    """

    def __init__(
        self,
        spatial_dims: int,
        num_heads: int,
        window_size: Sequence[int] | int,
        shift: bool = False,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = ensure_tuple_rep(window_size, spatial_dims)
        if min(self.window_size) < 1:
            raise ValueError(f"window_size must be positive, got {window_size}.")
        self.shift_size = tuple(w // 2 for w in self.window_size) if shift else (0,) * spatial_dims
        self.num_heads = num_heads
        self.attention = CosineAttention(spatial_dims, num_heads, dropout_rate=dropout_rate)

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        """
        Args:
            qkv: (B, *S, 3C) channels-last q, k and v, each C = heads * d wide; every axis of S must be a
                multiple of the window size along it.

        Returns:
            (B, *S, C).
        """
        spatial = tuple(qkv.shape[1:-1])
        shifted = tuple(s > 0 for s in self.shift_size)
        layout = window_layout(spatial, self.window_size, self.shift_size, shifted, qkv.device)
        q, k, v = rearrange(
            layout.windows(qkv), "b (w n) (three h d) -> three b w h n d", n=math.prod(self.window_size), three=3,
            h=self.num_heads,
        )
        grid = tuple(s // w for s, w in zip(spatial, self.window_size))
        mask = (
            shift_masks(grid, self.window_size, self.shift_size, self.window_size, self.shift_size, qkv.device)
            if any(shifted)
            else None
        )
        out = self.attention(q, k, v, self.window_size, self.window_size, mask)  # (B, W, N, heads, d)
        return layout.to_map(out, spatial)
