"""CMAT: cross masked attention transformer block of CAT-Net (Lin et al., MICCAI 2023)."""

from __future__ import annotations

import torch
from monai.networks.blocks import MLPBlock
from torch import nn

from monai_fewshot.networks.blocks.masked_attention import MaskedCrossAttention
from monai_fewshot.networks.blocks.prototype import PrototypeSegmentation

__all__ = ["CMATBlock"]


class CMATBlock(nn.Module):
    """One refinement step of CAT-Net: self attention, cross masked attention both ways, prototype head.

    1. Self attention on the query tokens and, shot by shot, on the support tokens (shared weights: both
       branches come from the same backbone and live in one feature space).
    2. Cross masked attention, computed from the same pre-cross state in both directions:
       query -> support attends only to support foreground (cells of the support mask with any
       foreground); support -> query attends only to the query foreground predicted by the previous step
       (probability >= 0.5). An episode with no allowed token falls back to unmasked attention.
    3. A shared MLP on both branches, then :class:`PrototypeSegmentation` on the enhanced features gives
       the refined query mask.

    All sub-layers are pre-norm residuals.

    Args:
        hidden_size: feature channels F.
        num_heads: attention heads; must divide ``hidden_size``.
        mlp_ratio: MLP width as a multiple of ``hidden_size``. Defaults to 2.
        dropout_rate: dropout on the attention outputs and in the MLP (not on attention weights). Defaults to 0.
        scale: cosine scale of the prototype head. Defaults to 20.
    """

    def __init__(
        self, hidden_size: int, num_heads: int, mlp_ratio: float = 2.0, dropout_rate: float = 0.0, scale: float = 20.0
    ) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(hidden_size)
        # MaskedCrossAttention without a mask is plain self attention when context is x. (MONAI 1.6.1's SABlock
        # with use_flash_attention=True applies attention dropout in eval mode too, so it is not used here.)
        self.self_attention = MaskedCrossAttention(hidden_size, num_heads, dropout_rate)
        self.norm_query = nn.LayerNorm(hidden_size)
        self.norm_support = nn.LayerNorm(hidden_size)
        self.query_to_support = MaskedCrossAttention(hidden_size, num_heads, dropout_rate)
        self.support_to_query = MaskedCrossAttention(hidden_size, num_heads, dropout_rate)
        self.norm_mlp = nn.LayerNorm(hidden_size)
        self.mlp = MLPBlock(hidden_size, int(hidden_size * mlp_ratio), dropout_rate)
        self.segmentation = PrototypeSegmentation(scale=scale)

    def forward(
        self,
        query_features: torch.Tensor,
        support_features: torch.Tensor,
        support_mask: torch.Tensor,
        query_probability: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            query_features: (B, F, *s).
            support_features: (B, K, F, *s).
            support_mask: (B, K, 1, *s), foreground fraction per cell.
            query_probability: (B, 1, *s), the previous step's query foreground probability.

        Returns:
            refined query features (B, F, *s), refined support features (B, K, F, *s) and query
            foreground logits (B, 1, *s).
        """
        b, k, f = support_features.shape[:3]
        spatial = query_features.shape[2:]
        query = query_features.flatten(2).transpose(1, 2)  # (B, N, F)
        support = support_features.flatten(3).transpose(2, 3).reshape(b * k, -1, f)  # (B*K, N, F)

        query_normed, support_normed = self.norm_self(query), self.norm_self(support)
        query = query + self.self_attention(query_normed, query_normed)
        support = support + self.self_attention(support_normed, support_normed)
        support = support.reshape(b, -1, f)  # (B, K*N, F)

        support_allowed = support_mask.flatten(1) > 0  # (B, K*N), shot-major like the tokens
        query_allowed = query_probability.flatten(1) >= 0.5  # (B, N)
        query_normed, support_normed = self.norm_query(query), self.norm_support(support)
        query = query + self.query_to_support(query_normed, support_normed, support_allowed)
        support = support + self.support_to_query(support_normed, query_normed, query_allowed)

        query = query + self.mlp(self.norm_mlp(query))
        support = support + self.mlp(self.norm_mlp(support))

        query_features = query.transpose(1, 2).reshape(b, f, *spatial)
        support_features = support.reshape(b, k, -1, f).transpose(2, 3).reshape(b, k, f, *spatial)
        logits = self.segmentation(query_features, support_features, support_mask)
        return query_features, support_features, logits
