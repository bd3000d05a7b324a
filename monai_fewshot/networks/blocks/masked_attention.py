"""Multi-head cross attention restricted to a boolean set of context tokens (Mask2Former-style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["MaskedCrossAttention"]


class MaskedCrossAttention(nn.Module):
    """Cross attention in which each query token sees only the context tokens that ``context_mask`` allows.

    A batch element whose mask allows no context token at all falls back to unmasked attention, as in
    Mask2Former, so that no row of the softmax is empty. The attention runs through
    :func:`torch.nn.functional.scaled_dot_product_attention` with a broadcast boolean mask of shape
    (B, 1, 1, L_context): the (L_query x L_context) mask is never materialised.

    Args:
        hidden_size: token width C.
        num_heads: number of heads; must divide ``hidden_size``.
        dropout_rate: dropout on the output projection. Defaults to 0.
        attention_dropout_rate: dropout on the attention weights (materialises them on CPU, costly). Defaults to 0.
        qkv_bias: bias on the query, key and value projections. Defaults to False.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}).")
        for name, rate in (("dropout_rate", dropout_rate), ("attention_dropout_rate", attention_dropout_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {rate}.")
        self.num_heads = num_heads
        self.attention_dropout_rate = attention_dropout_rate
        self.to_q = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.to_kv = nn.Linear(hidden_size, 2 * hidden_size, bias=qkv_bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.drop_output = nn.Dropout(dropout_rate)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            x: (B, L_query, C) tokens that attend.
            context: (B, L_context, C) tokens attended to.
            context_mask: (B, L_context) boolean, True where a context token may be attended to; None for
                unmasked attention.

        Returns:
            (B, L_query, C).
        """
        q = rearrange(self.to_q(x), "b l (h d) -> b h l d", h=self.num_heads)
        k, v = rearrange(self.to_kv(context), "b l (two h d) -> two b h l d", two=2, h=self.num_heads)
        attn_mask = None
        if context_mask is not None:
            allowed = context_mask.bool()
            allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
            attn_mask = allowed[:, None, None, :]
        dropout = self.attention_dropout_rate if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.drop_output(self.out_proj(rearrange(out, "b h l d -> b l (h d)")))
