"""The few-shot networks and the datasets by name: what the command, the bundles, the benchmarks and the MONAI
Label app build and read.

An entry names an importable builder (a bundle ``_target_``), the in-plane working size the network is
trained and served at, and whether it has weights. Adding a network is one module with its builder plus one
registration: a :func:`register_fewshot_network` call that the module makes when imported, declared to this
package by an entry point of the group ``monai_fewshot.networks`` (:func:`load_network_plugins`), so that
``monai-fewshot train/evaluate --network NAME``, the bundles' ``network_name`` and the app's ``--conf network
NAME`` find it in every process. This module imports nothing heavy, so that ``--help`` stays fast.

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
from collections.abc import Sequence
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
    "ENTRY_POINT_GROUP",
    "build_fewshot_network",
    "evaluation_name",
    "load_network_plugins",
    "model_family",
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


def build_fewshot_network(name: str, backbone: str | None = None, **kwargs: Any):
    """The network registered as ``name``, built with ``kwargs`` (e.g. ``spatial_dims=2``) and, when given, the
    encoder ``backbone`` (a :data:`~monai_fewshot.networks.BACKBONES` name): the bundles' ``network_def`` builder."""
    from monai.utils import instantiate

    if name not in FEWSHOT_NETWORKS:
        raise ValueError(f"unknown few-shot network {name!r}; registered: {sorted(FEWSHOT_NETWORKS)}.")
    return instantiate(FEWSHOT_NETWORKS[name].target, "default", **kwargs, **({"backbone": backbone} if backbone else {}))


def model_family(
    dataset: str, network: str, backbone: str | None = None, exclude_classes: Sequence[int] = (), guided: bool = False
) -> list[str]:
    """The folder-name parts of a model family, so that families never share weights, runs or evaluations: the
    dataset (unless ``chaos``), Setting 2's excluded classes, the network (unless ``catnet``), the backbone (when
    given) and ``registration_guided``. The catnet_fewshot bundle's ``ckpt_dir`` is ``models/<parts>``, its
    ``run_dir`` ``runs/<parts>_fold<F>``, e.g. ``["cmr", "alpnet"]``; CAT-Net on CHAOS is ``[]``."""
    parts = [] if dataset == "chaos" else [dataset]
    if exclude_classes:
        parts.append("setting2_exclude" + "-".join(str(c) for c in sorted(exclude_classes)))
    if network != "catnet":
        parts.append(network)
    return parts + ([backbone] if backbone else []) + (["registration_guided"] if guided else [])


def evaluation_name(
    dataset: str,
    family: Sequence[str],
    split: str = "test",
    scored: str = "labelled",
    folds: Sequence[int] | None = None,
    propagate: bool = False,
) -> str:
    """The folder name of an evaluation under the bundle's ``eval/``: ``<dataset>_<family>_<split>``, then
    ``propagated`` for whole volumes segmented by located propagation, else ``wholevolume`` when every slice is
    scored, and ``fold<F>`` when chosen folds are evaluated, e.g. ``chaos_alpnet_test``,
    ``cmr_test_wholevolume_fold0`` or ``chaos_registration_test_propagated``."""
    chosen = ["fold" + "-".join(str(f) for f in sorted(set(folds)))] if folds else []
    scored_part = ["propagated"] if propagate else ["wholevolume"] if scored == "volume" else []
    return "_".join([dataset, *(p for p in family if p != dataset), split, *scored_part, *chosen])


ENTRY_POINT_GROUP = "monai_fewshot.networks"


def load_network_plugins() -> list[str]:
    """Register the few-shot networks that installed packages declare under the entry-point group
    :data:`ENTRY_POINT_GROUP` (``[project.entry-points."monai_fewshot.networks"] NAME = "module:SPEC"``): the
    object an entry names is a :class:`FewShotNetworkSpec`, registered as ``NAME``, or a module whose import
    registers ``NAME``. Run when this module is imported, so the command, the bundles and the MONAI Label app all
    see them. Returns the names registered.

    Raises:
        ImportError: a declared plugin cannot be imported. ValueError: it registers no network of its name.
    """
    from importlib.metadata import entry_points

    registered = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in FEWSHOT_NETWORKS:
            continue
        try:
            declared = entry.load()
        except Exception as error:  # noqa: BLE001 - any import failure of a third-party plugin: name it once
            raise ImportError(f"few-shot network plugin {entry.name!r} ({entry.value}) cannot be imported: {error}") from error
        if isinstance(declared, FewShotNetworkSpec):
            register_fewshot_network(entry.name, declared)
        if entry.name not in FEWSHOT_NETWORKS:
            raise ValueError(f"few-shot network plugin {entry.value!r} registers no network {entry.name!r}.")
        registered.append(entry.name)
    return registered


register_fewshot_network("catnet", FewShotNetworkSpec(
    "monai_fewshot.networks.nets.catnet_light", description="CAT-Net light (ResNet-18, 128 features, T = 4)"))
register_fewshot_network("alpnet", FewShotNetworkSpec(
    "monai_fewshot.networks.nets.alpnet_light", description="the ALPNet-style prototype baseline, same backbone"))
register_fewshot_network("registration", FewShotNetworkSpec(
    "monai_fewshot.registration.SupportRegistration", None, False,
    "the support registered onto each query (affine, organ affine, demons); no weights"))
register_fewshot_network("registration_intensity", FewShotNetworkSpec(
    "monai_fewshot.registration.intensity_corrected_registration", None, False,
    "the registration method with its boundary moved to where the support organ's intensities end; no weights"))
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
load_network_plugins()
