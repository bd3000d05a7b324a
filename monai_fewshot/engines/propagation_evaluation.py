"""Whole-volume scores of located propagation on the protocol's folds: what ``segment --support`` delivers."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator

import nibabel as nib
import numpy as np
import torch
from monai.utils import optional_import

from monai_fewshot.data.protocol import EpisodeProtocol, ProtocolEpisode3D
from monai_fewshot.inferers.support_propagation import segment_from_support_volume
from monai_fewshot.metrics import VolumeScore, volume_dice
from monai_fewshot.registration.parallel import process_pool

__all__ = ["propagation_scores"]

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

_Case = tuple[int, str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple, tuple]


def _cases(protocol: EpisodeProtocol, episodes: list[ProtocolEpisode3D]) -> Iterator[_Case]:
    store, classes = protocol.store, protocol.store.classes or {}
    for episode in episodes:
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
    episodes = list(protocol.episodes_3d())
    progress = (lambda scores: tqdm(scores, total=len(episodes), desc=desc)) if has_tqdm else (lambda scores: scores)  # noqa: E731
    if workers == 1 or device.type != "cpu":
        return list(progress(_score(case, network, device) for case in _cases(protocol, episodes)))
    with process_pool(workers) as pool:
        futures = [pool.submit(_score, case, network, device) for case in _cases(protocol, episodes)]
        return list(progress(future.result() for future in futures))
