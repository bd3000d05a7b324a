"""CAT-Net: cross masked attention transformer for few-shot medical image segmentation.

Lin et al., "Few Shot Medical Image Segmentation with Cross Attention Transformer", MICCAI 2023,
arXiv 2303.13867. Built from the paper's description (the authors' public code does not implement it).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from monai_fewshot.networks.backbones import build_backbone
from monai_fewshot.networks.blocks.cmat import CMATBlock
from monai_fewshot.networks.blocks.mife import MIFE
from monai_fewshot.networks.utils import check_dims_and_channels, check_episode_inputs, resize_like

__all__ = ["CATNet", "CATNetOutput", "catnet_light", "catnet_paper"]


class CATNetOutput(NamedTuple):
    """CAT-Net's predictions, all foreground logits at the query's spatial size S."""

    logits: torch.Tensor  # (B, 1, *S): the last refinement step, the prediction to use
    iteration_logits: torch.Tensor  # (B, T, 1, *S): every refinement step, for deep supervision
    initial_logits: torch.Tensor  # (B, 1, *S): MIFE's initial query mask


class CATNet(nn.Module):
    """CAT-Net for 1-way K-shot segmentation of 2D slices or 3D volumes.

    MIFE encodes query and support with a shared backbone and predicts an initial query mask; T CMAT
    blocks then refine query features, support features and the query mask in turn, each step's mask
    masking the next step's support -> query attention.

    Args:
        spatial_dims: 2 (slices) or 3 (volumes).
        in_channels: image channels. Defaults to 1.
        backbone: a name registered in :mod:`monai_fewshot.networks.backbones`. Defaults to ``"resnet50"``
            (the paper's encoder).
        feature_size: channels of the features inside MIFE and CMAT. Defaults to 256.
        num_heads: attention heads in CMAT. Defaults to 8.
        num_iterations: number T of CMAT refinement steps, 1 to 5. Defaults to 4 (the paper's choice).
        mlp_ratio: CMAT MLP width over ``feature_size``. Defaults to 2.
        dropout_rate: dropout in MIFE and CMAT. Defaults to 0.1.
        scale: cosine scale of the prototype heads. Defaults to 20.

    Example::

        net = CATNet(spatial_dims=2, backbone="resnet18", feature_size=128, num_heads=4)
        query = torch.randn(1, 1, 256, 256)
        support = torch.randn(1, 1, 1, 256, 256)  # (B, K, C, H, W)
        mask = torch.zeros(1, 1, 1, 256, 256); mask[..., 96:160, 96:160] = 1
        out = net(query, support, mask)  # out.logits: (1, 1, 256, 256)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        backbone: str = "resnet50",
        feature_size: int = 256,
        num_heads: int = 8,
        num_iterations: int = 4,
        mlp_ratio: float = 2.0,
        dropout_rate: float = 0.1,
        scale: float = 20.0,
    ) -> None:
        super().__init__()
        check_dims_and_channels(spatial_dims, in_channels)
        if not 1 <= num_iterations <= 5:
            raise ValueError(f"num_iterations must be between 1 and 5, got {num_iterations}.")
        if feature_size % num_heads != 0:
            raise ValueError(f"feature_size ({feature_size}) must be divisible by num_heads ({num_heads}).")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.mife = MIFE(
            spatial_dims, build_backbone(backbone, spatial_dims, in_channels), feature_size, dropout_rate=dropout_rate
        )
        self.cmat = nn.ModuleList(
            CMATBlock(feature_size, num_heads, mlp_ratio, dropout_rate, scale) for _ in range(num_iterations)
        )

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> CATNetOutput:
        """
        Args:
            query: (B, C, *S) query images.
            support: (B, K, C, *S) support images, K >= 1 shots.
            support_mask: (B, K, 1, *S) binary support masks; each must hold foreground.

        Returns:
            :class:`CATNetOutput` with foreground logits at size S.
        """
        check_episode_inputs(query, support, support_mask, self.spatial_dims, self.in_channels)
        query_features, support_features, mask, initial = self.mife(query, support, support_mask)
        logits, steps = initial, []
        for block in self.cmat:
            query_features, support_features, logits = block(
                query_features, support_features, mask, torch.sigmoid(logits)
            )
            steps.append(resize_like(logits, query))
        iteration_logits = torch.stack(steps, dim=1)
        return CATNetOutput(iteration_logits[:, -1], iteration_logits, resize_like(initial, query))


def catnet_paper(spatial_dims: int = 2, in_channels: int = 1, **kwargs) -> CATNet:
    """The paper's configuration: ResNet-50 backbone, 256 features, 8 heads, T = 4 (256x256 slices)."""
    return CATNet(spatial_dims, in_channels, **{"backbone": "resnet50", "feature_size": 256, "num_heads": 8, **kwargs})


def catnet_light(spatial_dims: int = 2, in_channels: int = 1, **kwargs) -> CATNet:
    """A configuration that trains on a 2-core CPU: ResNet-18 (ResNet-10 in 3D), 128 features, 4 heads, T = 4."""
    backbone = "resnet18" if spatial_dims == 2 else "resnet10"
    return CATNet(spatial_dims, in_channels, **{"backbone": backbone, "feature_size": 128, "num_heads": 4, **kwargs})
