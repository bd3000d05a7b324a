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

#: float elements of the attention logits one backward chunk may hold (64 MiB in float32)
BACKWARD_CHUNK_ELEMENTS = 2**24


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
    :func:`torch.nn.functional.scaled_dot_product_attention` (CPU flash attention, the fused CUDA kernels):
    q and k are normalised, q is pre-multiplied by the logit scale (``scale=1``), and bias plus shift mask go
    in as one float ``attn_mask`` per group of windows that share a shift mask. In training the backward
    pass recomputes the attention logits window chunk by window chunk (:class:`_BiasedAttention`), so the
    position bias gets its gradient without (windows x heads x N_q x N_k) tensors kept from the forward pass.
    Query and key windows may have different shapes (GRL's stripe <-> anchor attention).

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
        self._frozen_bias: dict = {}  # biases computed without autograd, see `_frozen_bias`

    def position_bias(self, query_shape: Sequence[int], key_shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """(num_heads, N_q, N_k) bias ``16 * sigmoid(CPB(coords))`` for windows of these shapes."""
        geometry = (tuple(query_shape), tuple(key_shape), device)
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._bias(*relative_coordinates(*geometry))
        return self._frozen_bias_for(geometry)

    def _bias(self, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The MLP over the (T, dims) offsets, gathered head-major into (heads, N_q, N_k), contiguous."""
        return (16 * torch.sigmoid(self.cpb_mlp(table))).t()[:, index]

    def _frozen_bias_for(self, geometry: tuple) -> torch.Tensor:
        """The gathered bias without autograd, kept while the MLP's weights are unchanged.

        The MLP over a 3D stripe's ~14k offsets and the gather cost a quarter of a 32^3 forward; inference
        (sliding windows, many forwards) computes them once per geometry. Weights that change in place (an
        optimizer step, ``load_state_dict``) or are replaced change the key and drop the kept biases.
        """
        weights = tuple((p.data_ptr(), p._version, p.dtype) for p in self.cpb_mlp.parameters())
        if self._frozen_bias.get("weights") != weights:
            self._frozen_bias = {"weights": weights}
        if geometry not in self._frozen_bias:
            self._frozen_bias[geometry] = self._bias(*relative_coordinates(*geometry))
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
            q: (B, W, heads, N_q, d) queries of W windows with ``prod(query_shape)`` tokens each (any strides
                with the last dimension contiguous, e.g. a view of the projected tokens).
            k: (B, W, heads, N_k, d) keys.
            v: (B, W, heads, N_k, d_v) values.
            query_shape: window shape of the queries.
            key_shape: window shape of the keys.
            mask: the shift masks of the W windows, which come group after group
                (:func:`~monai_fewshot.networks.blocks.shift_masks.shift_masks`), or None. Each group runs
                with its own mask, so memory stays that of one window's logits per head, not W of them.

        Returns:
            (B, W, N_q, heads, d_v), token-major, so that merging the heads is a view where the kernel wrote
            it contiguous (the fused CPU and CUDA kernels do).
        """
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = (q * (scale / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(1e-12))).to(v.dtype)
        k = (k / torch.linalg.vector_norm(k, dim=-1, keepdim=True).clamp_min(1e-12)).to(v.dtype)
        bias = self.position_bias(query_shape, key_shape, q.device).to(v.dtype)  # (heads, N_q, N_k)
        if mask is None:
            return self._attend(q, k, v, bias)
        parts = []
        for part, group_mask in zip(zip(q.split(mask.sizes, 1), k.split(mask.sizes, 1), v.split(mask.sizes, 1)), mask.masks):
            parts.append(self._attend(*part, bias + group_mask.to(v.dtype)))
        return torch.cat(parts, dim=1)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Softmax attention of (B, W, heads, N, d) windows with one (heads, N_q, N_k) float mask for all
        -> (B, W, N_q, heads, d_v)."""
        batch, windows = q.shape[:2]
        # 4D inputs and a broadcast 4D mask take the fused kernels (CPU flash attention: ~7x the math path it
        # falls back to with 5D inputs or a 3D mask; a broadcast mask is read in place, never expanded)
        q, k, v = (t.flatten(0, 1) for t in (q, k, v))
        dropout = self.dropout_rate if self.training else 0.0
        if dropout == 0.0 and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            out = _BiasedAttention.apply(q, k, v, attn_mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask[None], dropout_p=dropout, scale=1.0)
        # the kernels write token-major memory: the transposed view is contiguous (no copy)
        return out.transpose(1, 2).unflatten(0, (batch, windows))


class _BiasedAttention(torch.autograd.Function):
    """``softmax(q k^T + bias) v`` for (W, heads, N, d) windows sharing one (heads, N_q, N_k) differentiable
    bias: the fused forward kernel, and a backward that recomputes the softmax for a chunk of windows at a
    time (``BACKWARD_CHUNK_ELEMENTS``), instead of the unfused path PyTorch takes for a bias with a gradient,
    which keeps every window's logits and probabilities from the forward pass (8 GiB for a 32^3 GRL-T)."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # detached: inputs that require grad would send the kernel selection to the unfused path
        out = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), attn_mask=bias.detach()[None], scale=1.0)
        ctx.save_for_backward(q, k, v, bias, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        q, k, v, bias, out = ctx.saved_tensors
        grad_out = grad_out.to(out.dtype)
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
        delta = (grad_out * out).sum(-1, keepdim=True)  # (W, heads, N_q, 1): rowsum(dP * P)
        chunk = max(1, BACKWARD_CHUNK_ELEMENTS // bias.numel())
        for start in range(0, q.shape[0], chunk):
            part = slice(start, start + chunk)
            probs = torch.softmax(q[part] @ k[part].transpose(-1, -2) + bias, dim=-1)
            grad_v[part] = probs.transpose(-1, -2) @ grad_out[part]
            grad_logits = probs.mul_((grad_out[part] @ v[part].transpose(-1, -2)).sub_(delta[part]))
            grad_q[part] = grad_logits @ k[part]
            grad_k[part] = grad_logits.transpose(-1, -2) @ q[part]
            grad_bias += grad_logits.sum(0, dtype=torch.float32)
        return grad_q, grad_k, grad_v, grad_bias.to(bias.dtype)
