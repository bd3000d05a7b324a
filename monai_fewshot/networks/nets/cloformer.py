"""CloFormer for 2D images and 3D volumes, as a classifier or a four-level feature extractor.

Fan et al., "Rethinking Local Perception in Lightweight Vision Transformer", arXiv 2303.17803; the
structure (stem, stages, downsampling inside the last block of stages 1-3, head) follows the authors'
reference code (qhfan/CloFormer), so that the 2D ImageNet builds have the paper's parameter counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers import Conv, Pool, get_norm_layer
from torch import nn

from monai_fewshot.networks.blocks.clo_block import CloBlock
from monai_fewshot.networks.utils import check_dims_and_channels

__all__ = ["CLOFORMER_VARIANTS", "CloFormer", "CloFormerStem", "cloformer_s", "cloformer_xs", "cloformer_xxs"]

CLOFORMER_VARIANTS: dict[str, dict] = {
    "xxs": {
        "embed_dims": (32, 64, 128, 256),
        "num_heads": (4, 4, 8, 16),
        "group_splits": ((3, 1), (2, 2), (4, 4), (4, 12)),
        "drop_path_rate": 0.0,
    },
    "xs": {
        "embed_dims": (48, 96, 160, 352),
        "num_heads": (3, 6, 10, 22),
        "group_splits": ((2, 1), (3, 3), (5, 5), (7, 15)),
        "drop_path_rate": 0.06,
    },
    "s": {
        "embed_dims": (64, 128, 224, 448),
        "num_heads": (4, 8, 14, 28),
        "group_splits": ((3, 1), (4, 4), (7, 7), (7, 21)),
        "drop_path_rate": 0.06,
    },
}
"""The paper's presets: widths, heads and (local, global) head splits of the four stages, and the stochastic
depth of the reference's ImageNet training configurations."""


class CloFormerStem(nn.Module):
    """Four 3x3 conv + norm + ReLU (strides 2, 2, 1, 1; widths C/2, C, C, C), 1x1 conv, GroupNorm(1, C).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: width C of the first stage.
        norm: norm after each 3x3 convolution, MONAI name or (name, args).

    Shapes: (B, in_channels, *S) -> (B, out_channels, *S / 4).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, norm: str | tuple) -> None:
        super().__init__()
        widths = (in_channels, out_channels // 2, out_channels, out_channels, out_channels)
        layers: list[nn.Module] = [
            Convolution(spatial_dims, widths[i], widths[i + 1], strides=stride, kernel_size=3, act="relu", norm=norm)
            for i, stride in enumerate((2, 2, 1, 1))
        ]
        layers += [
            Conv[Conv.CONV, spatial_dims](out_channels, out_channels, 1),
            get_norm_layer(("group", {"num_groups": 1}), spatial_dims, out_channels),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CloFormer(nn.Module):
    """CloFormer (2D or 3D): a classifier with ``num_classes``, otherwise a four-level feature extractor.

    A stride-4 stem and four stages of :class:`~monai_fewshot.networks.blocks.clo_block.CloBlock`; the last
    block of stages 1-3 halves the resolution and widens to the next stage. As a feature extractor the
    network returns the four stage features at strides 4, 8, 16 and 32, each taken before its stage's
    downsampling (after the attention half of the stage's last block; the last stage's output), described by
    ``feature_channels`` and ``feature_strides`` as the backbone registry expects. The classifier head is
    the reference's: GroupNorm(1, C), global average pooling, a linear layer.

    Depthwise kernels are capped to the map they see (:class:`~monai_fewshot.networks.blocks.capped_conv.CappedConv`:
    same output, less work on the small maps of deep 3D stages). All norms are GroupNorm(1, C) by default, which
    works at batch size 1; ``norm="batch"`` gives the reference's BatchNorm in the stem and the downsampling
    shortcuts (same parameter count).

    Args:
        spatial_dims: 2 (images) or 3 (volumes). Defaults to 2.
        in_channels: input channels. Defaults to 3.
        num_classes: classes of the linear head; None builds the feature extractor. Defaults to None.
        variant: ``"xxs"``, ``"xs"`` or ``"s"`` (:data:`CLOFORMER_VARIANTS`); fills in ``embed_dims``,
            ``num_heads``, ``group_splits`` and ``drop_path_rate`` that are not given. Defaults to ``"xxs"``.
        embed_dims: widths of the four stages.
        num_heads: attention heads of the four stages.
        group_splits: (local AttnConv heads, global heads) of the four stages.
        depths: blocks per stage. Defaults to (2, 2, 6, 2).
        kernel_sizes: AttnConv kernels per stage. Defaults to (3, 5, 7, 9).
        pool_sizes: key/value pooling windows of the global heads per stage. Defaults to (8, 4, 2, 1).
        mlp_kernel_size: ConvFFN and downsampling kernel. Defaults to 5.
        mlp_ratio: ConvFFN hidden width over the stage width. Defaults to 4.
        qkv_bias: biases in the attention projections. Defaults to True.
        attn_drop: attention dropout. Defaults to 0.
        drop: dropout after projections and in ConvFFN. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly to this over the blocks. Defaults to the variant's
            (0 for XXS, 0.06 for XS and S).
        norm: norm of the stem and the downsampling shortcuts. Defaults to GroupNorm(1, C).
        pad_input: zero-pad inputs whose size is not a multiple of 32 (at the far end of each axis) and crop
            the features to ``ceil(S / stride)``; when False such inputs raise a ``ValueError``. Defaults to False.

    Shapes:
        input (B, in_channels, *S), S divisible by 32 unless ``pad_input``; output (B, num_classes) logits, or
        a list of four (B, embed_dims[i], *S / (4 * 2**i)) features.

    Example::

        encoder = CloFormer(spatial_dims=3, in_channels=1, variant="xxs")
        features = encoder(torch.randn(1, 1, 96, 96, 96))  # 32x24^3, 64x12^3, 128x6^3, 256x3^3
    """

    feature_strides = (4, 8, 16, 32)

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int | None = None,
        variant: str = "xxs",
        embed_dims: Sequence[int] | None = None,
        num_heads: Sequence[int] | None = None,
        group_splits: Sequence[Sequence[int]] | None = None,
        depths: Sequence[int] = (2, 2, 6, 2),
        kernel_sizes: Sequence[int] = (3, 5, 7, 9),
        pool_sizes: Sequence[int] = (8, 4, 2, 1),
        mlp_kernel_size: int = 5,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        drop: float = 0.0,
        drop_path_rate: float | None = None,
        norm: str | tuple = ("group", {"num_groups": 1}),
        pad_input: bool = False,
    ) -> None:
        super().__init__()
        check_dims_and_channels(spatial_dims, in_channels)
        if variant not in CLOFORMER_VARIANTS:
            raise ValueError(f"variant must be one of {sorted(CLOFORMER_VARIANTS)}, got {variant!r}.")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be None (feature extractor) or >= 1, got {num_classes}.")
        preset = CLOFORMER_VARIANTS[variant]
        embed_dims = tuple(embed_dims or preset["embed_dims"])
        num_heads = tuple(num_heads or preset["num_heads"])
        group_splits = tuple(tuple(g) for g in (group_splits or preset["group_splits"]))
        drop_path_rate = preset["drop_path_rate"] if drop_path_rate is None else drop_path_rate
        per_stage = {
            "embed_dims": embed_dims,
            "num_heads": num_heads,
            "group_splits": group_splits,
            "depths": depths,
            "kernel_sizes": kernel_sizes,
            "pool_sizes": pool_sizes,
        }
        for name, values in per_stage.items():
            if len(values) != 4:
                raise ValueError(f"{name} must give the 4 stages, got {values}.")
        if min(depths) < 1:
            raise ValueError(f"depths must be >= 1, got {depths}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.pad_input = pad_input
        self.feature_channels = embed_dims

        self.stem = CloFormerStem(spatial_dims, in_channels, embed_dims[0], norm)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            last_stage = i == len(depths) - 1
            out_dim = embed_dims[i] if last_stage else embed_dims[i + 1]
            blocks = [
                CloBlock(
                    spatial_dims,
                    embed_dims[i],
                    out_dim if j == depth - 1 else embed_dims[i],
                    num_heads[i],
                    group_splits[i],
                    kernel_sizes[i],
                    pool_sizes[i],
                    mlp_kernel_size,
                    mlp_ratio,
                    stride=2 if j == depth - 1 and not last_stage else 1,
                    qkv_bias=qkv_bias,
                    attn_drop=attn_drop,
                    drop=drop,
                    drop_path=rates[sum(depths[:i]) + j],
                    norm=norm,
                )
                for j in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))
        self.head: nn.Module | None = None
        if num_classes is not None:
            self.head = nn.Sequential(
                get_norm_layer(("group", {"num_groups": 1}), spatial_dims, embed_dims[-1]),
                Pool[Pool.ADAPTIVEAVG, spatial_dims](1),
                nn.Flatten(1),
                nn.Linear(embed_dims[-1], num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """
        Args:
            x: (B, in_channels, *S).

        Returns:
            (B, num_classes) logits with a head, else the four stage features, finest first.
        """
        features = self.forward_features(x)
        return features if self.head is None else self.head(features[-1])

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stage features (B, embed_dims[i], *ceil(S / feature_strides[i])), finest first."""
        spatial = self._check_input(x)
        total = self.feature_strides[-1]
        padding = [(-s) % total for s in spatial]
        if any(padding):
            x = F.pad(x, [p for size in reversed(padding) for p in (0, size)])
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            *body, last = stage
            for block in body:
                x = block(x)
            if i < len(self.stages) - 1:
                x = last.token_mixing(x)
                features.append(x)
                x = last.channel_mixing(x)
            else:
                features.append(last(x))
        if any(padding):
            features = [
                f[(slice(None), slice(None), *(slice(0, math.ceil(s / stride)) for s in spatial))]
                for f, stride in zip(features, self.feature_strides)
            ]
        return features

    def _check_input(self, x: torch.Tensor) -> list[int]:
        d, total = self.spatial_dims, self.feature_strides[-1]
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"input must be (B, {self.in_channels}, *spatial) with {d} spatial dims, got {tuple(x.shape)}."
            )
        spatial = [int(s) for s in x.shape[2:]]
        if not self.pad_input and any(s % total for s in spatial):
            raise ValueError(
                f"spatial size {tuple(spatial)} must be divisible by the total stride {total}; "
                f"pad or crop the input, or build with pad_input=True."
            )
        return spatial


def cloformer_xxs(spatial_dims: int = 2, in_channels: int = 3, num_classes: int | None = None, **kwargs) -> CloFormer:
    """CloFormer-XXS: widths 32/64/128/256 (4.2 M parameters as a 2D 1000-class classifier)."""
    return CloFormer(spatial_dims, in_channels, num_classes, variant="xxs", **kwargs)


def cloformer_xs(spatial_dims: int = 2, in_channels: int = 3, num_classes: int | None = None, **kwargs) -> CloFormer:
    """CloFormer-XS: widths 48/96/160/352 (7.2 M parameters as a 2D 1000-class classifier)."""
    return CloFormer(spatial_dims, in_channels, num_classes, variant="xs", **kwargs)


def cloformer_s(spatial_dims: int = 2, in_channels: int = 3, num_classes: int | None = None, **kwargs) -> CloFormer:
    """CloFormer-S: widths 64/128/224/448 (12.3 M parameters as a 2D 1000-class classifier)."""
    return CloFormer(spatial_dims, in_channels, num_classes, variant="s", **kwargs)
