"""Whole-volume scores of located propagation on the protocol's folds: what ``segment --support`` delivers."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import nibabel as nib
import numpy as np
import torch
from monai.utils import optional_import

from monai_fewshot.data.protocol import EpisodeProtocol
from monai_fewshot.inferers.support_propagation import segment_from_support_volume
from monai_fewshot.metrics import VolumeScore, volume_dice

__all__ = ["propagation_scores"]

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

_Case = tuple[int, str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple, tuple]


def _cases(protocol: EpisodeProtocol) -> Iterator[_Case]:
    store, classes = protocol.store, protocol.store.classes or {}
    for episode in protocol.episodes_3d():
        query, support = store[episode.query], store[episode.support]
        yield (
            episode.fold, classes.get(episode.class_id, str(episode.class_id)), episode.query,
            query.image, query.label == episode.class_id, support.image, support.label == episode.class_id,
            tuple(nib.affines.voxel_sizes(query.affine)), tuple(nib.affines.voxel_sizes(support.affine)),
        )


def _score(case: _Case, network: Callable[..., torch.Tensor], device: torch.device) -> VolumeScore:
    fold, class_name, volume, query, truth, support, support_mask, query_spacing, support_spacing = case
    if multiprocessing.parent_process() is not None:  # a worker: one thread each, as the registrations
        torch.set_num_threads(1)
    result = segment_from_support_volume(network, query, support, support_mask, query_spacing, support_spacing, device=device)
    return VolumeScore(fold, class_name, volume, volume_dice(result.mask > 0, truth))


def propagation_scores(
    network: Callable[..., torch.Tensor],
    protocol: EpisodeProtocol,
    device: str | torch.device = "cpu",
    workers: int = 1,
    desc: str = "query volumes",
) -> list[VolumeScore]:
    """Segment each query volume of ``protocol`` by located propagation from its fold's support volume, and score
    every slice (whole-volume Dice, slices without the class included).

    For each (fold, class, query volume) of ``protocol.episodes_3d()``,
    :func:`~monai_fewshot.inferers.segment_from_support_volume` locates the class by 3D registration of the support
    volume, predicts three seed slices with ``network`` and propagates them until the organ ends.

    Args:
        network: the seed slices' few-shot network, in eval mode (``network(query (1, C, H, W), support
            (1, 1, C, H, W), support_mask (1, 1, 1, H, W))`` -> logits).
        protocol: the folds, split and classes; its volumes carry labels.
        device: where the network runs.
        workers: query volumes segmented at once, in worker processes, on CPU (default 1: in this process).
        desc: the progress bar's label.

    Returns:
        one :class:`~monai_fewshot.metrics.VolumeScore` per fold, class and query volume, in the protocol's order.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    device = torch.device(device)
    total = sum(1 for _ in protocol.episodes_3d())
    progress = (lambda scores: tqdm(scores, total=total, desc=desc)) if has_tqdm else (lambda scores: scores)  # noqa: E731
    if workers == 1 or device.type != "cpu":
        return list(progress(_score(case, network, device) for case in _cases(protocol)))
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_score, case, network, device) for case in _cases(protocol)]
        return list(progress(future.result() for future in futures))
