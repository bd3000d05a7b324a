"""MIFE: mask incorporated feature extraction, the first stage of CAT-Net (Lin et al., MICCAI 2023)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from monai_fewshot.networks.backbones import level_indices
from monai_fewshot.networks.blocks.prototype import shot_prototype
from monai_fewshot.networks.utils import resize_like, resize_to

__all__ = ["MIFE", "MIFEOutput", "prior_mask"]


class MIFEOutput(NamedTuple):
    """What MIFE hands to the CMAT blocks; spatial size ``s`` is that of the backbone's stride-8 level."""

    query_features: torch.Tensor  # (B, F, *s)
    support_features: torch.Tensor  # (B, K, F, *s)
    support_mask: torch.Tensor  # (B, K, 1, *s), fraction of foreground in each cell
    initial_logits: torch.Tensor  # (B, 1, *s)


def prior_mask(query_high: torch.Tensor, support_high: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
    """PFENet-style training-free prior: how much each query location resembles the support foreground.

    For each query location, the maximum cosine similarity to any masked support location, min-max
    normalised over the query's locations, averaged over the K shots.

    Args:
        query_high: (B, C, *h) high-level query features.
        support_high: (B, K, C, *h) high-level support features.
        support_mask: (B, K, 1, *h) support mask at the same resolution.

    Returns:
        (B, 1, *h), values in [0, 1].
    """
    b, k = support_high.shape[:2]
    query = F.normalize(query_high.flatten(2), dim=1, eps=1e-7)  # (B, C, Nq)
    support = F.normalize((support_high * support_mask).flatten(3), dim=2, eps=1e-7)  # (B, K, C, Ns)
    similarity = torch.einsum("bcq,bkcs->bkqs", query, support).amax(-1)  # (B, K, Nq)
    low = similarity.amin(-1, keepdim=True)
    high = similarity.amax(-1, keepdim=True)
    normalised = (similarity - low) / (high - low + 1e-7)
    return normalised.mean(1, keepdim=True).view(b, 1, *query_high.shape[2:])


class MIFE(nn.Module):
    """Mask incorporated feature extraction.

    A shared backbone encodes the query and the K support images in one pass. The two middle levels
    (strides 8 and 16 for the registered backbones) are concatenated and reduced to ``feature_size``
    channels; the support mask, pooled to that resolution, gives the prototype (masked average pooling)
    that is expanded and concatenated to both branches; the deepest level gives the prior mask that is
    concatenated to the query branch; a small classifier predicts the initial query mask.

    Args:
        spatial_dims: 2 or 3.
        backbone: a registered backbone module (see :mod:`monai_fewshot.networks.backbones`) returning levels
            at strides 8, 16 and 32 among others, described by ``feature_channels`` and ``feature_strides``.
        feature_size: channels F of the features handed to CMAT. Defaults to 256.
        dropout_rate: dropout after the reduction. Defaults to 0.1.
        act: activation name or (name, args), MONAI style. Defaults to ``"relu"``.
        norm: normalisation name or (name, args), MONAI style, or None. Defaults to None.
    """

    def __init__(
        self,
        spatial_dims: int,
        backbone: nn.Module,
        feature_size: int = 256,
        dropout_rate: float = 0.1,
        act: str | tuple = "relu",
        norm: str | tuple | None = None,
    ) -> None:
        super().__init__()
        channels = tuple(backbone.feature_channels)
        self.levels = level_indices(backbone)  # strides 8, 16 and 32, wherever the backbone returns them
        self.backbone = backbone

        def conv(in_ch: int, out_ch: int, kernel_size: int = 1, dropout: float | None = None) -> nn.Module:
            return Convolution(
                spatial_dims, in_ch, out_ch, kernel_size=kernel_size, act=act, norm=norm, dropout=dropout, bias=False
            )

        fine, middle, _ = self.levels
        self.reduce = conv(channels[fine] + channels[middle], feature_size, dropout=dropout_rate or None)
        self.query_merge = conv(2 * feature_size + 1, feature_size)
        self.support_merge = conv(2 * feature_size, feature_size)
        self.initial_classifier = nn.Sequential(
            conv(feature_size, feature_size, kernel_size=3),
            Convolution(spatial_dims, feature_size, 1, kernel_size=1, conv_only=True),
        )

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> MIFEOutput:
        """
        Args:
            query: (B, C_in, *S) query images.
            support: (B, K, C_in, *S) support images.
            support_mask: (B, K, 1, *S) binary support masks.
        """
        b, k = support.shape[:2]
        fine, middle, coarse = (self.backbone(torch.cat([query, support.flatten(0, 1)]))[i] for i in self.levels)
        features = self.reduce(torch.cat([fine, resize_like(middle, fine)], dim=1))
        high = coarse

        query_features, support_features = features[:b], features[b:]
        mask = resize_like(support_mask.flatten(0, 1).float(), features, mode="area")
        support_features = support_features.view(b, k, *support_features.shape[1:])
        mask = mask.view(b, k, *mask.shape[1:])
        prototype = shot_prototype(support_features, mask)
        expanded = prototype.view(*prototype.shape, *([1] * (features.ndim - 2))).expand_as(query_features)

        support_high = high[b:].view(b, k, *high.shape[1:])
        mask_high = resize_to(support_mask.flatten(0, 1).float(), high.shape[2:], mode="area")
        prior = prior_mask(high[:b], support_high, mask_high.view(b, k, *mask_high.shape[1:]))
        prior = resize_like(prior, query_features)

        query_features = self.query_merge(torch.cat([query_features, expanded, prior], dim=1))
        support_flat = support_features.flatten(0, 1)
        support_features = self.support_merge(
            torch.cat([support_flat, expanded.repeat_interleave(k, dim=0)], dim=1)
        ).view(b, k, -1, *features.shape[2:])
        return MIFEOutput(query_features, support_features, mask, self.initial_classifier(query_features))
