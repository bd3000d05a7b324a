"""Prototypes from masked features, and segmentation by cosine similarity to a prototype."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PrototypeSegmentation", "masked_average_pooling", "shot_prototype"]


def masked_average_pooling(features: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Average of ``features`` weighted by ``mask`` over all spatial positions.

    Args:
        features: (N, C, *spatial).
        mask: (N, 1, *spatial), values in [0, 1], same spatial size as ``features``.

    Returns:
        (N, C) prototypes.
    """
    weighted = (features * mask).flatten(2).sum(-1)
    return weighted / (mask.flatten(2).sum(-1) + eps)


def shot_prototype(support_features: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
    """One prototype per episode: the masked average of each shot, averaged over the K shots.

    Args:
        support_features: (B, K, C, *spatial).
        support_mask: (B, K, 1, *spatial).

    Returns:
        (B, C).
    """
    b, k = support_features.shape[:2]
    prototypes = masked_average_pooling(support_features.flatten(0, 1), support_mask.flatten(0, 1))
    return prototypes.view(b, k, -1).mean(1)


class PrototypeSegmentation(nn.Module):
    """Foreground logits from the cosine similarity between query features and the support prototype.

    ``logits = scale / 2 * (cos(query, prototype) - threshold)``, with a learned ``threshold`` on the
    cosine (initialised at 0.5, i.e. the lineage's scale of 20 and threshold of 10 on the scaled score),
    so that ``sigmoid(logits)`` is the foreground probability.

    Args:
        scale: multiplier of the cosine similarity. Defaults to 20.
        threshold: initial value of the learned cosine threshold. Defaults to 0.5.
    """

    def __init__(self, scale: float = 20.0, threshold: float = 0.5) -> None:
        super().__init__()
        self.scale = scale
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(
        self, query_features: torch.Tensor, support_features: torch.Tensor, support_mask: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            query_features: (B, C, *spatial).
            support_features: (B, K, C, *spatial_s).
            support_mask: (B, K, 1, *spatial_s).

        Returns:
            (B, 1, *spatial) foreground logits.
        """
        prototype = shot_prototype(support_features, support_mask)
        prototype = prototype.view(*prototype.shape, *([1] * (query_features.ndim - 2)))
        cosine = F.cosine_similarity(query_features, prototype, dim=1, eps=1e-6).unsqueeze(1)
        return 0.5 * self.scale * (cosine - self.threshold)
