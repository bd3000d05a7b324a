"""Adaptive local prototype pooling: ALPNet's class score (Ouyang et al., "Self-supervision with superpixels",
ECCV 2020), for 2D and 3D features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monai_fewshot.networks.blocks.prototype import shot_prototype

__all__ = ["AdaptiveLocalPrototypes"]


class AdaptiveLocalPrototypes(nn.Module):
    """Score of one class at every query location from the support's local and global prototypes.

    The support features are average-pooled over a ``grid_size`` grid of windows; a window that the class
    fills to more than ``threshold`` gives a local prototype. The masked average over the whole support (the
    global prototype) is always added, so a class too thin to fill any window still has one. Each query
    location is compared with every prototype by ``scale`` x cosine similarity, and the similarities are
    combined by their own softmax weights: ``score = sum_p softmax(sim)_p * sim_p``.

    Args:
        spatial_dims: 2 or 3.
        grid_size: windows per axis; the pooling window is ``feature size // grid_size`` (at least 1) cells.
            Defaults to 8 (ALPNet's).
        threshold: fraction of a window the class must cover to give a local prototype. Defaults to 0.95.
        scale: multiplier of the cosine similarity. Defaults to 20.
    """

    def __init__(self, spatial_dims: int, grid_size: int = 8, threshold: float = 0.95, scale: float = 20.0) -> None:
        super().__init__()
        if grid_size < 1:
            raise ValueError(f"grid_size must be >= 1, got {grid_size}.")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}.")
        self.spatial_dims, self.grid_size, self.threshold, self.scale = spatial_dims, grid_size, threshold, scale

    def prototypes(self, support_features: torch.Tensor, class_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            support_features: (B, K, C, *s).
            class_mask: (B, K, 1, *s), values in [0, 1].

        Returns:
            prototypes (B, P, C) (the K x windows local ones, then the global one) and their validity (B, P).
        """
        b, k, c = support_features.shape[:3]
        window = tuple(max(int(n) // self.grid_size, 1) for n in support_features.shape[3:])
        pool = (F.avg_pool2d, F.avg_pool3d)[self.spatial_dims - 2]
        local = pool(support_features.flatten(0, 1), window).view(b, k, c, -1)  # (B, K, C, G)
        filled = pool(class_mask.flatten(0, 1).float(), window).view(b, k * local.shape[-1])  # (B, K*G)
        local = local.permute(0, 1, 3, 2).reshape(b, -1, c)  # (B, K*G, C)
        global_prototype = shot_prototype(support_features, class_mask.float())[:, None]  # (B, 1, C)
        has_class = class_mask.flatten(1).amax(-1, keepdim=True) > 0  # (B, 1)
        return torch.cat([local, global_prototype], 1), torch.cat([filled > self.threshold, has_class], 1)

    def forward(
        self, query_features: torch.Tensor, support_features: torch.Tensor, class_mask: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            query_features: (B, C, *s).
            support_features: (B, K, C, *s_support).
            class_mask: (B, K, 1, *s_support), the class's support mask at the features' resolution.

        Returns:
            (B, 1, *s) class scores (scaled cosine units).
        """
        prototypes, valid = self.prototypes(support_features, class_mask)
        query = F.normalize(query_features.flatten(2), dim=1, eps=1e-6)  # (B, C, N)
        similarity = self.scale * torch.einsum("bpc,bcn->bpn", F.normalize(prototypes, dim=-1, eps=1e-6), query)
        invalid = ~valid[..., None]
        weights = torch.softmax(similarity.masked_fill(invalid, float("-inf")), dim=1).nan_to_num(0.0)
        score = (weights * similarity.masked_fill(invalid, 0.0)).sum(1, keepdim=True)
        return score.view(query_features.shape[0], 1, *query_features.shape[2:])
