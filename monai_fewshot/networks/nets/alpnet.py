"""ALPNet-style prototype network: the few-shot baseline that CAT-Net is measured against.

After SSL-ALPNet (Ouyang et al., ECCV 2020): a shared encoder, adaptive local prototypes of the support's
foreground and background, no attention and no refinement. It uses CAT-Net's backbone registry and the same
feature levels as MIFE, so that a comparison at equal training budget isolates what CAT-Net adds.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

from monai_fewshot.networks.backbones import build_backbone, level_indices
from monai_fewshot.networks.blocks.local_prototypes import AdaptiveLocalPrototypes
from monai_fewshot.networks.utils import check_dims_and_channels, check_episode_inputs, resize_like, resize_to

__all__ = ["ALPNet", "alpnet_light"]


class ALPNet(nn.Module):
    """Prototype segmentation with adaptive local prototypes, 1-way K-shot, 2D or 3D.

    The backbone's three deepest levels (strides 8, 16 and 32 for the registered backbones; CAT-Net's MIFE
    reads the same three) are brought to the stride-8 size, concatenated and reduced to ``feature_size``
    channels. Foreground and background each get an :class:`AdaptiveLocalPrototypes` score; the
    foreground logit is their difference (a two-class softmax written as one sigmoid logit).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels. Defaults to 1.
        backbone: a registered backbone name. Defaults to ``"resnet50"``.
        feature_size: channels of the compared features. Defaults to 256.
        grid_size: local prototype windows per axis. Defaults to 8.
        foreground_threshold: window fill needed for a foreground local prototype. Defaults to 0.95.
        background_threshold: the same for the background. Defaults to 0.95.
        scale: cosine similarity multiplier. Defaults to 20.
        dropout_rate: dropout after the reduction. Defaults to 0.1.

    Example::

        net = alpnet_light(spatial_dims=2)
        logits = net(torch.randn(2, 1, 128, 128), support, support_mask)  # (2, 1, 128, 128)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        backbone: str = "resnet50",
        feature_size: int = 256,
        grid_size: int = 8,
        foreground_threshold: float = 0.95,
        background_threshold: float = 0.95,
        scale: float = 20.0,
        dropout_rate: float = 0.1,
    ) -> None:
        super().__init__()
        check_dims_and_channels(spatial_dims, in_channels)
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.backbone = build_backbone(backbone, spatial_dims, in_channels)
        channels = tuple(self.backbone.feature_channels)
        self.levels = level_indices(self.backbone)  # strides 8, 16 and 32, as MIFE
        self.reduce = Convolution(
            spatial_dims, sum(channels[i] for i in self.levels), feature_size, kernel_size=1, act="relu",
            dropout=dropout_rate or None, bias=False,
        )
        self.foreground = AdaptiveLocalPrototypes(spatial_dims, grid_size, foreground_threshold, scale)
        self.background = AdaptiveLocalPrototypes(spatial_dims, grid_size, background_threshold, scale)

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query: (B, C, *S) query images.
            support: (B, K, C, *S) support images.
            support_mask: (B, K, 1, *S) binary support masks, each with foreground.

        Returns:
            (B, 1, *S) foreground logits.
        """
        check_episode_inputs(query, support, support_mask, self.spatial_dims, self.in_channels)
        b, k = support.shape[:2]
        levels = self.backbone(torch.cat([query, support.flatten(0, 1)]))
        fine, *coarser = (levels[i] for i in self.levels)
        features = self.reduce(torch.cat([fine, *(resize_like(x, fine) for x in coarser)], dim=1))
        query_features = features[:b]
        support_features = features[b:].view(b, k, *features.shape[1:])
        mask = resize_to(support_mask.flatten(0, 1).float(), features.shape[2:], mode="area")
        mask = mask.view(b, k, *mask.shape[1:])
        logits = self.foreground(query_features, support_features, mask) - self.background(
            query_features, support_features, 1.0 - mask
        )
        return resize_like(logits, query)


def alpnet_light(spatial_dims: int = 2, in_channels: int = 1, **kwargs) -> ALPNet:
    """The baseline at ``catnet_light``'s size: ResNet-18 (ResNet-10 in 3D), 128 features."""
    backbone = "resnet18" if spatial_dims == 2 else "resnet10"
    return ALPNet(spatial_dims, in_channels, **{"backbone": backbone, "feature_size": 128, **kwargs})
