"""The few-shot networks by name: what the command, the bundles, the benchmarks and the MONAI Label app build.

An entry names an importable builder (a bundle ``_target_``), the in-plane working size the network is
trained and served at, and whether it has weights. Adding a network is one module with its builder plus one
:func:`register_fewshot_network` call; ``monai-fewshot train/evaluate --network NAME`` and the app's
``--conf network NAME`` then find it. This module imports nothing heavy, so that ``--help`` stays fast.

Registered: ``catnet`` (CAT-Net light), ``alpnet`` (the ALPNet-style prototype baseline), and the two
training-free methods scored beside every model: ``registration`` and ``floor`` (copy the support's mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FEWSHOT_NETWORKS", "FewShotNetworkSpec", "build_fewshot_network", "register_fewshot_network"]


@dataclass(frozen=True)
class FewShotNetworkSpec:
    """How to build one few-shot network.

    Attributes:
        target: dotted path of its builder or class, ``builder(spatial_dims=..., **kwargs)`` (a bundle ``_target_``).
        working_size: the in-plane size (H, W) it is trained and served at; None for a method without weights,
            which runs at the data's size.
        trained: whether it has weights that the bundle's training writes.
        description: one line for ``--help``.
    """

    target: str
    working_size: tuple[int, int] | None = (128, 128)
    trained: bool = True
    description: str = ""


FEWSHOT_NETWORKS: dict[str, FewShotNetworkSpec] = {}


def register_fewshot_network(name: str, spec: FewShotNetworkSpec) -> FewShotNetworkSpec:
    """Register ``spec`` under ``name``; a name is registered once."""
    if name in FEWSHOT_NETWORKS:
        raise ValueError(f"few-shot network {name!r} is already registered.")
    FEWSHOT_NETWORKS[name] = spec
    return spec


def build_fewshot_network(name: str, **kwargs: Any):
    """The network registered as ``name``, built with ``kwargs`` (e.g. ``spatial_dims=2``)."""
    from monai.utils import instantiate

    if name not in FEWSHOT_NETWORKS:
        raise ValueError(f"unknown few-shot network {name!r}; registered: {sorted(FEWSHOT_NETWORKS)}.")
    return instantiate(FEWSHOT_NETWORKS[name].target, "default", **kwargs)


register_fewshot_network("catnet", FewShotNetworkSpec(
    "monai_fewshot.networks.nets.catnet_light", description="CAT-Net light (ResNet-18, 128 features, T = 4)"))
register_fewshot_network("alpnet", FewShotNetworkSpec(
    "monai_fewshot.networks.nets.alpnet_light", description="the ALPNet-style prototype baseline, same backbone"))
register_fewshot_network("registration", FewShotNetworkSpec(
    "monai_fewshot.registration.SupportRegistration", None, False,
    "the support registered onto each query (affine, organ affine, demons); no weights"))
register_fewshot_network("floor", FewShotNetworkSpec(
    "monai_fewshot.networks.SupportMaskCopy", None, False, "the support's mask copied onto the query; no weights"))
