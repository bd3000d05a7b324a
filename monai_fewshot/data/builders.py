"""Ready-made training and evaluation data for a dataset folder: what the bundles' configs call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_fewshot.data.episodes import EpisodeDataset
from monai_fewshot.data.interleaved import InterleavedEpisodes
from monai_fewshot.data.layout import VolumeStore, read_folder
from monai_fewshot.data.protocol import N_VAL_QUERIES, EpisodeProtocol, Fold, lineage_folds
from monai_fewshot.data.protocol_dataset import ProtocolSliceDataset
from monai_fewshot.data.splits import ClassSplit
from monai_fewshot.data.supervoxels import SupervoxelCache, SupervoxelEpisodeSampler
from monai_fewshot.transforms import lineage_augmentations

__all__ = ["dataset_folds", "protocol_slices", "supervoxel_episodes"]


def dataset_folds(dataset_dir: str | Path, n_folds: int = 5, n_val_queries: int = N_VAL_QUERIES) -> list[Fold]:
    """The lineage's folds (with a validation split) of an ``image_N``/``label_N`` folder."""
    return lineage_folds([record.id for record in read_folder(dataset_dir)], n_folds, n_val_queries)


def supervoxel_episodes(
    dataset_dir: str | Path,
    fold: int,
    cache_dir: str | Path,
    num_episodes: int = 1000,
    seed: int = 0,
    classes: Mapping[int, str] | None = None,
    exclude_classes: Sequence[int] = (),
    method: str = "slic",
    mode: str = "adjacent",
    min_size: int = 200,
    augment: bool = True,
    folds: Sequence[Fold] | None = None,
    supervoxel_params: Mapping | Sequence[Mapping] | None = None,
    augmentation: Mapping | None = None,
) -> EpisodeDataset | InterleavedEpisodes:
    """Self-supervised training episodes from the supervoxels of fold ``fold``'s training volumes.

    The fold's test volumes and its validation volumes are left out, so a model trained on these episodes
    is evaluated honestly on that fold. No real label is read, except for Setting 2: ``exclude_classes``
    removes every training slice holding any of those classes (the ANY rule) before episodes are drawn.

    Args:
        dataset_dir: folder of ``image_N``/``label_N`` NIfTI.
        fold: the fold whose training volumes are used.
        cache_dir: where supervoxels are cached (computed once per image).
        num_episodes: episodes per epoch.
        seed: the episode stream's seed.
        classes: the dataset's class map (needed with ``exclude_classes``).
        exclude_classes: Setting 2's test classes; empty for Setting 1.
        method, mode, min_size: supervoxel method, episode mode and minimum supervoxel area, see
            :class:`~monai_fewshot.data.SupervoxelEpisodeSampler`.
        augment: apply the lineage's augmentations (gamma, affine, elastic).
        folds: the dataset's fold split (the bundle's ``folds``, computed once from its ``n_val_queries``);
            None: :func:`dataset_folds` of ``dataset_dir``. The fold's validation volumes are kept out of training.
        supervoxel_params: the method's parameters (e.g. ``{"n_segments": 100}``), or a list of them to draw
            episodes from supervoxels of several sizes in turn (an :class:`InterleavedEpisodes` of
            ``num_episodes`` in all, each scale with its own seed): large organs need large pseudo-labels.
        augmentation: keyword arguments of :func:`~monai_fewshot.transforms.lineage_augmentations` (e.g. wider
            rotation and shift ranges, so that registration-guided training sees misaligned supports).
    """
    folds = dataset_folds(dataset_dir) if folds is None else list(folds)
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold must be in 0..{len(folds) - 1}, got {fold}.")
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}.")
    single = supervoxel_params is None or isinstance(supervoxel_params, Mapping)
    scales = [supervoxel_params or {}] if single else list(supervoxel_params)
    if not scales:
        raise ValueError("supervoxel_params is an empty list: give at least one parameter set.")
    records = [r for r in read_folder(dataset_dir) if r.id in set(folds[fold].train)]
    store = VolumeStore(records, load_labels=False)
    allowed = None
    if exclude_classes:
        if classes is None:
            raise ValueError("exclude_classes (Setting 2) needs the dataset's class map in classes.")
        split = ClassSplit(classes, tuple(exclude_classes), setting=2)
        labelled = VolumeStore(records, classes)
        allowed = {volume_id: split.allowed_slices(labelled[volume_id].label) for volume_id in store}
    transform = lineage_augmentations(**(augmentation or {})) if augment else None
    datasets = []
    for index, params in enumerate(scales):
        cache = SupervoxelCache(cache_dir, method=method, **params)
        label_maps = {volume_id: cache.get(store[volume_id]) for volume_id in store}
        if allowed is not None:
            label_maps = {volume_id: np.where(allowed[volume_id], maps, 0) for volume_id, maps in label_maps.items()}
        sampler = SupervoxelEpisodeSampler(
            label_maps, mode=mode, min_size=min_size, num_episodes=-(-num_episodes // len(scales)), seed=seed + index
        )
        datasets.append(EpisodeDataset(store, sampler, transform=transform, label_maps=label_maps))
    return datasets[0] if len(datasets) == 1 else InterleavedEpisodes(datasets, length=num_episodes)

def protocol_slices(
    dataset_dir: str | Path,
    classes: Mapping[int, str],
    fold_indices: Sequence[int] | int | None = None,
    split: str = "test",
    class_ids: Sequence[int] | None = None,
    scored: str = "labelled",
    folds: Sequence[Fold] | None = None,
) -> ProtocolSliceDataset:
    """The protocol's scored query slices of the folds ``fold_indices`` (all by default), test or validation split;
    ``scored`` chooses the slices (:data:`~monai_fewshot.data.protocol.SCORED`: ``"volume"`` gives whole-volume
    Dice). ``folds`` is the dataset's fold split (None: :func:`dataset_folds` of ``dataset_dir``)."""
    all_folds = dataset_folds(dataset_dir) if folds is None else list(folds)
    chosen = range(len(all_folds)) if fold_indices is None else [fold_indices] if isinstance(fold_indices, int) else list(fold_indices)
    bad = [f for f in chosen if not 0 <= f < len(all_folds)]
    if bad:
        raise ValueError(f"folds {bad} are out of range 0..{len(all_folds) - 1}.")
    store = VolumeStore(read_folder(dataset_dir), classes)
    protocol = EpisodeProtocol(store, [all_folds[f] for f in chosen], class_ids=class_ids, split=split, scored=scored)
    return ProtocolSliceDataset(protocol)
