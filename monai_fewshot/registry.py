"""The few-shot networks and the datasets by name: what the command, the bundles, the benchmarks and the MONAI
Label app build and read.

An entry names an importable builder (a bundle ``_target_``), the in-plane working size the network is
trained and served at, and whether it has weights. Adding a network is one module with its builder plus one
:func:`register_fewshot_network` call; ``monai-fewshot train/evaluate --network NAME`` and the app's
``--conf network NAME`` then find it. This module imports nothing heavy, so that ``--help`` stays fast.

Registered: ``catnet`` (CAT-Net light), ``alpnet`` (the ALPNet-style prototype baseline), and the two
training-free methods scored beside every model: ``registration`` and ``floor`` (copy the support's mask).

A dataset is its class map and its Setting 2 test groups: ``chaos``, ``cmr`` and ``mni152`` are registered;
``--classes FILE`` describes another (:func:`read_dataset_spec`), a JSON or YAML file ::

    {"name": "prostate", "classes": {"1": "peripheral zone", "2": "transition zone"},
     "setting2_groups": {"all": [1, 2]}}

or a MONAI datalist (``{"training": [...], "classes": {...}}``) with the same keys; ``name`` (default: the
file's stem) names the dataset's weights and evaluation folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHAOS_CLASSES",
    "CHAOS_SETTING2_TEST_CLASSES",
    "CMR_CLASSES",
    "DATASETS",
    "DEMO_CLASSES",
    "FEWSHOT_NETWORKS",
    "DatasetSpec",
    "FewShotNetworkSpec",
    "build_fewshot_network",
    "trained_networks",
    "read_dataset_spec",
    "register_dataset",
    "register_fewshot_network",
]

CHAOS_CLASSES = {1: "liver", 2: "right kidney", 3: "left kidney", 4: "spleen"}
#: The two test groups of the Abd-MRI Setting 2 (SSL-ALPNet): lower abdomen (kidneys), upper (liver, spleen).
CHAOS_SETTING2_TEST_CLASSES = {"lower": (2, 3), "upper": (1, 4)}
CMR_CLASSES = {1: "LV myocardium", 2: "LV blood pool", 3: "RV"}
DEMO_CLASSES = {1: "grey matter", 2: "white matter"}  # the MNI152 demo cohort


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


def trained_networks() -> list[str]:
    """The registered networks that have weights (what can be trained and served), sorted."""
    return sorted(name for name, spec in FEWSHOT_NETWORKS.items() if spec.trained)


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


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's classes: ``classes`` ``{label value: name}`` and its Setting 2 test groups ``{group name: label
    values}`` (empty: no Setting 2 defined for it)."""

    name: str
    classes: dict[int, str]
    setting2_groups: dict[str, tuple[int, ...]] = field(default_factory=dict)


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register ``spec`` under its name; a name is registered once."""
    if spec.name in DATASETS:
        raise ValueError(f"dataset {spec.name!r} is already registered.")
    DATASETS[spec.name] = spec
    return spec


def read_dataset_spec(path: str | Path) -> DatasetSpec:
    """The :class:`DatasetSpec` a JSON or YAML file (or a MONAI datalist with a ``classes`` key) describes.

    Raises:
        FileNotFoundError: no such file. ValueError: unreadable, no ``classes``, a label value that is not a
        positive integer or a class without a name, or a Setting 2 group naming a value outside ``classes``.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"class file {source} does not exist.")
    try:
        if source.suffix.lower() in (".yaml", ".yml"):
            import yaml

            content = yaml.safe_load(source.read_text())
        else:
            content = json.loads(source.read_text())
    except Exception as error:  # noqa: BLE001 - json and yaml raise their own kinds: name the file once
        raise ValueError(f"class file {source} cannot be read: {type(error).__name__}: {error}") from error
    if not isinstance(content, dict) or not isinstance(content.get("classes"), dict) or not content["classes"]:
        raise ValueError(f'class file {source} needs a "classes" mapping of label value to name, e.g. {{"1": "liver"}}.')
    classes = {}
    for value, name in content["classes"].items():
        if not str(value).isdigit() or int(value) < 1 or not str(name).strip():
            raise ValueError(f"class file {source}: {value!r}: {name!r} is not a positive label value with a name.")
        classes[int(value)] = str(name)
    groups = {}
    for group, values in (content.get("setting2_groups") or {}).items():
        unknown = [v for v in values if v not in classes]
        if unknown:
            raise ValueError(f"class file {source}: Setting 2 group {group!r} names {unknown}, not in {sorted(classes)}.")
        groups[str(group)] = tuple(int(v) for v in values)
    return DatasetSpec(str(content.get("name") or source.stem).strip(), dict(sorted(classes.items())), groups)


register_dataset(DatasetSpec("chaos", CHAOS_CLASSES, dict(CHAOS_SETTING2_TEST_CLASSES)))
register_dataset(DatasetSpec("cmr", CMR_CLASSES))
register_dataset(DatasetSpec("mni152", DEMO_CLASSES))
