"""Cosine attention with a continuous relative position bias (Swin V2; used by GRL's window and stripe attention)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_fewshot.networks.blocks.shift_masks import ShiftMasks
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
    the logit scale (``scale=1``), and bias plus shift mask go in as one float ``attn_mask`` per group of
    windows that share a shift mask. Query and key windows may have different shapes (GRL's stripe <-> anchor
    attention).

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
        self._frozen_bias: dict = {}  # bias tables computed without autograd, see `_frozen_bias_table`

    def position_bias(self, query_shape: Sequence[int], key_shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """(num_heads, N_q, N_k) bias ``16 * sigmoid(CPB(coords))`` for windows of these shapes."""
        geometry = (tuple(query_shape), tuple(key_shape), device)
        table, index = relative_coordinates(*geometry)
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            bias = 16 * torch.sigmoid(self.cpb_mlp(table))  # (T, heads)
        else:
            bias = self._frozen_bias_table(geometry, table)
        return bias.t()[:, index]  # gathered head-major: contiguous, as the attention kernel wants it

    def _frozen_bias_table(self, geometry: tuple, table: torch.Tensor) -> torch.Tensor:
        """The (T, heads) bias table without autograd, kept while the MLP's weights are unchanged.

        The MLP over a 3D stripe's ~14k offsets costs a quarter of a 32^3 forward; inference (sliding
        windows, many forwards) computes it once per geometry. Weights that change in place (an optimizer
        step, ``load_state_dict``) or are replaced change the key and drop the kept tables.
        """
        weights = tuple((p.data_ptr(), p._version, p.dtype) for p in self.cpb_mlp.parameters())
        if self._frozen_bias.get("weights") != weights:
            self._frozen_bias = {"weights": weights}
        if geometry not in self._frozen_bias:
            self._frozen_bias[geometry] = 16 * torch.sigmoid(self.cpb_mlp(table))
        return self._frozen_bias[geometry]

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        query_shape: Sequence[int],
        key_shape: Sequence[int],
        mask: ShiftMasks | None = None,
    ) -> torch.Tensor:
        """
        Args:
            q: (B, W, heads, N_q, d) queries of W windows with ``prod(query_shape)`` tokens each.
            k: (B, W, heads, N_k, d) keys.
            v: (B, W, heads, N_k, d_v) values.
            query_shape: window shape of the queries.
            key_shape: window shape of the keys.
            mask: the shift masks of the W windows (:func:`~monai_fewshot.networks.blocks.shift_masks.shift_masks`),
                or None. Each group of windows runs with its own mask, so memory stays that of one window's
                logits per head, not W of them.

        Returns:
            (B, W, heads, N_q, d_v).
        """
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = (F.normalize(q, dim=-1) * scale).to(v.dtype)
        k = F.normalize(k, dim=-1).to(v.dtype)
        bias = self.position_bias(query_shape, key_shape, q.device).to(v.dtype)  # (heads, N_q, N_k)
        if mask is None:
            return self._attend(q, k, v, bias)
        if len(mask.masks) == 1:
            return self._attend(q, k, v, bias + mask.masks[0].to(v.dtype))
        parts = [
            self._attend(q.index_select(1, w), k.index_select(1, w), v.index_select(1, w), bias + m.to(v.dtype))
            for m, w in zip(mask.masks, mask.windows)
        ]
        return torch.cat(parts, dim=1).index_select(1, mask.restore)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Softmax attention of (B, W, heads, N, d) windows with one (heads, N_q, N_k) float mask for all."""
        batch, windows = q.shape[:2]
        # 4D inputs and a broadcast 4D mask take the fused kernels (CPU flash attention: ~7x the math path it
        # falls back to with 5D inputs or a 3D mask; a broadcast mask is read in place, never expanded)
        q, k, v = (t.flatten(0, 1) for t in (q, k, v))
        dropout = self.dropout_rate if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask[None], dropout_p=dropout, scale=1.0)
        return out.unflatten(0, (batch, windows))
