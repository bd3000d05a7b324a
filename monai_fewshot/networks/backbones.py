"""Backbone registry: feature extractors that CAT-Net's MIFE (and any other consumer) builds by name.

A backbone is an ``nn.Module`` whose ``forward(x)`` returns a list of feature maps, finest first, and which
describes them with two attributes:

- ``feature_channels``: channels of each returned map,
- ``feature_strides``: the down-sampling factor of each returned map relative to the input.

Adding an encoder is one call to :func:`register_backbone`; consumers never name a concrete class.
Registered: ``resnet10`` ... ``resnet200`` (MONAI's ``ResNetFeatures``) and ``cloformer_xxs``, ``cloformer_xs``,
``cloformer_s`` (:class:`~monai_fewshot.networks.nets.cloformer.CloFormer` feature extractors).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.networks.nets.resnet import ResNetEncoder, ResNetFeatures
from torch import nn

__all__ = ["BACKBONES", "FEW_SHOT_STRIDES", "ResNetBackbone", "build_backbone", "level_indices", "register_backbone"]

BackboneBuilder = Callable[..., nn.Module]
BACKBONES: dict[str, BackboneBuilder] = {}
FEW_SHOT_STRIDES = (8, 16, 32)  # the levels CAT-Net's MIFE and the ALPNet-style baseline read


def level_indices(backbone: nn.Module, strides: tuple[int, ...] = FEW_SHOT_STRIDES) -> tuple[int, ...]:
    """Positions of the levels at ``strides`` among what ``backbone`` returns (its ``feature_strides``).

    Raises:
        ValueError: a stride the backbone does not return, naming the strides it has.
    """
    available = tuple(getattr(backbone, "feature_strides", ()))
    missing = [s for s in strides if s not in available]
    if missing:
        raise ValueError(
            f"{type(backbone).__name__} returns feature maps at strides {available}; levels at strides {tuple(strides)} "
            f"are needed ({missing} missing)."
        )
    return tuple(available.index(s) for s in strides)


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``builder(spatial_dims, in_channels) -> nn.Module`` under ``name``."""

    def decorator(builder: BackboneBuilder) -> BackboneBuilder:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered.")
        BACKBONES[name] = builder
        return builder

    return decorator


def build_backbone(name: str, spatial_dims: int, in_channels: int) -> nn.Module:
    """Build the registered backbone ``name`` for ``spatial_dims`` (2 or 3) and ``in_channels``."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}.")
    return BACKBONES[name](spatial_dims=spatial_dims, in_channels=in_channels)


class ResNetBackbone(nn.Module):
    """MONAI's ``ResNetFeatures`` (2D or 3D) as a registered backbone, randomly initialised.

    Returns five maps at strides 2, 4, 8, 16 and 32 (stem, layer1..layer4). Weights from a user's
    checkpoint can be loaded afterwards with ``load_state_dict``; nothing is downloaded.

    Args:
        spatial_dims: 2 or 3.
        in_channels: number of input channels.
        model_name: one of ``resnet10`` ... ``resnet200``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, model_name: str = "resnet50") -> None:
        super().__init__()
        names = ResNetEncoder.backbone_names
        if model_name not in names:
            raise ValueError(f"model_name must be one of {names}, got {model_name!r}.")
        self.encoder = ResNetFeatures(model_name, pretrained=False, spatial_dims=spatial_dims, in_channels=in_channels)
        self.feature_channels = ResNetEncoder.num_channels_per_output()[names.index(model_name)]
        self.feature_strides = (2, 4, 8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)


def _resnet_builder(model_name: str) -> BackboneBuilder:
    def build(spatial_dims: int, in_channels: int) -> nn.Module:
        return ResNetBackbone(spatial_dims, in_channels, model_name)

    return build


for _name in ResNetEncoder.backbone_names:
    register_backbone(_name)(_resnet_builder(_name))


def _cloformer_builder(variant: str) -> BackboneBuilder:
    def build(spatial_dims: int, in_channels: int) -> nn.Module:
        # imported here: nets import this registry, so the registry must not import nets at module level
        from monai_fewshot.networks.nets.cloformer import CloFormer

        return CloFormer(spatial_dims, in_channels, variant=variant, pad_input=True)

    return build


for _variant in ("xxs", "xs", "s"):
    register_backbone(f"cloformer_{_variant}")(_cloformer_builder(_variant))
