"""Cosine attention with a continuous relative position bias (Swin V2; used by GRL's window and stripe attention)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_fewshot.networks.utils import tensor_cache

__all__ = ["CosineAttention", "relative_coordinates"]


@tensor_cache(maxsize=128)
def relative_coordinates(
    query_shape: tuple[int, ...], key_shape: tuple[int, ...], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-spaced relative coordinates between the tokens of a query grid and a key grid (cached).

    Query token ``i`` and key token ``j`` (integer positions on their own grids, both starting at 0) are
    ``(i - j) - (n_q - n_k) / 2`` apart along each axis, so the offsets are centred on zero whether the two
    grids have the same size (a window attending to itself, as Swin V2) or not (a stripe and its anchors on
    the anchor grid, as GRL). Offsets are divided by their largest magnitude, scaled to [-8, 8] and
    log-spaced: ``sign(t) * log2(1 + |t|) / log2(8)``.

    The result is cached per (query_shape, key_shape, device): every block with the same geometry shares
    the same tensors.

    Args:
        query_shape: window shape of the queries, one size per spatial axis.
        key_shape: window shape of the keys, same number of axes.
        device: where the tensors live.

    Returns:
        ``table``: (T, spatial_dims) float coordinates of the T distinct offsets, the input of the bias MLP;
        ``index``: (N_q, N_k) long, the row of ``table`` for each query-key pair.
    """
    if len(query_shape) != len(key_shape):
        raise ValueError(f"query_shape {query_shape} and key_shape {key_shape} need the same number of axes.")
    axes_offsets, axes_index = [], []
    for n_q, n_k in zip(query_shape, key_shape):
        offsets = torch.arange(-(n_k - 1), n_q, dtype=torch.float32) - (n_q - n_k) / 2
        axes_offsets.append(offsets / max((n_q + n_k) / 2 - 1, 1.0))
        axes_index.append(torch.arange(n_q)[:, None] - torch.arange(n_k)[None, :] + (n_k - 1))
    table = torch.stack(torch.meshgrid(*axes_offsets, indexing="ij"), dim=-1).reshape(-1, len(query_shape)) * 8
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
    sizes = [len(o) for o in axes_offsets]
    n_q, n_k = math.prod(query_shape), math.prod(key_shape)
    index = _ravel_pairs(axes_index, sizes).reshape(n_q, n_k)
    return table.to(device), index.to(device)


def _ravel_pairs(axes_index: Sequence[torch.Tensor], sizes: Sequence[int]) -> torch.Tensor:
    """Combine per-axis (n_q_a, n_k_a) offset indices into (*n_q, *n_k) raveled table rows."""
    dims = len(axes_index)
    index = torch.zeros([1] * (2 * dims), dtype=torch.long)
    for a, (axis_index, size) in enumerate(zip(axes_index, sizes)):
        shape = [1] * (2 * dims)
        shape[a], shape[dims + a] = axis_index.shape
        index = index * size + axis_index.reshape(shape)
    return index


class CosineAttention(nn.Module):
    """Multi-head scaled cosine attention with a continuous position bias (Liu et al., Swin V2, CVPR 2022).

    ``softmax(cos(q, k) * exp(min(logit_scale, log 100)) + 16 * sigmoid(CPB(coords)) + mask) v``, with a
    learned logit scale per head (initialised at log 10) and CPB = Linear(spatial_dims, 512), ReLU,
    Linear(512, num_heads, no bias) applied to :func:`relative_coordinates`. The softmax runs in
    :func:`torch.nn.functional.scaled_dot_product_attention`: q and k are normalised, q is pre-multiplied by
    the logit scale (``scale=1``), and bias plus shift mask go in as one float ``attn_mask``. Query and key
    windows may have different shapes (GRL's stripe <-> anchor attention).

    Args:
        spatial_dims: number of spatial axes of the windows (2 or 3), the CPB input width.
        num_heads: attention heads.
        cpb_hidden: hidden width of the bias MLP. Defaults to 512.
        dropout_rate: attention dropout. Defaults to 0.
    """

    def __init__(self, spatial_dims: int, num_heads: int, cpb_hidden: int = 512, dropout_rate: float = 0.0) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if not 0.0 <= dropout_rate <= 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1], got {dropout_rate}.")
        self.num_heads = num_heads
        self.dropout_rate = dropout_rate
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(spatial_dims, cpb_hidden), nn.ReLU(inplace=True), nn.Linear(cpb_hidden, num_heads, bias=False)
        )

    def position_bias(self, query_shape: Sequence[int], key_shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """(num_heads, N_q, N_k) bias ``16 * sigmoid(CPB(coords))`` for windows of these shapes."""
        table, index = relative_coordinates(tuple(query_shape), tuple(key_shape), device)
        bias = 16 * torch.sigmoid(self.cpb_mlp(table))  # (T, heads)
        return bias[index].permute(2, 0, 1)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        query_shape: Sequence[int],
        key_shape: Sequence[int],
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            q: (B, W, heads, N_q, d) queries of W windows with ``prod(query_shape)`` tokens each.
            k: (B, W, heads, N_k, d) keys.
            v: (B, W, heads, N_k, d_v) values.
            query_shape: window shape of the queries.
            key_shape: window shape of the keys.
            mask: (W, N_q, N_k) additive shift mask (0 or -100), or None.

        Returns:
            (B, W, heads, N_q, d_v).
        """
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = (F.normalize(q, dim=-1) * scale).to(v.dtype)
        k = F.normalize(k, dim=-1).to(v.dtype)
        attn_mask = self.position_bias(query_shape, key_shape, q.device)[None]  # (1, heads, N_q, N_k)
        batch, windows = q.shape[:2]
        if mask is not None:
            attn_mask = attn_mask + mask[:, None]  # (W, heads, N_q, N_k)
            attn_mask = attn_mask.expand(batch, *attn_mask.shape).flatten(0, 1)
        # 4D inputs and mask take the fused kernels (CPU flash attention: ~7x the math path it falls back to
        # with 5D inputs or a 3D mask)
        q, k, v = (t.flatten(0, 1) for t in (q, k, v))
        dropout = self.dropout_rate if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(v.dtype), dropout_p=dropout, scale=1.0)
        return out.unflatten(0, (batch, windows))
