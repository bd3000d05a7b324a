"""The protocol's evaluation episodes as a map-style dataset of query slices, for MONAI's evaluators."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from monai_fewshot.data.protocol import EpisodeProtocol

__all__ = ["ProtocolSliceDataset"]


class ProtocolSliceDataset(Dataset):
    """One item per scored query slice of an :class:`EpisodeProtocol`, with its chunk's support slice.

    Items hold ``query`` (C, H, W), ``support`` (1, C, H, W), ``support_mask`` (1, 1, H, W), ``query_label``
    (1, H, W) and the bookkeeping the protocol's Dice needs: ``fold``, ``class_id``, ``class_name``, ``volume``
    (the query id), ``slice``, ``support_volume`` and ``support_slice``. Batches of these feed
    :class:`~monai_fewshot.engines.EpisodicEvaluator`, whose :class:`~monai_fewshot.metrics.ProtocolDice` sums
    each query volume's slices into its 3D Dice.

    Args:
        protocol: the evaluation episodes (test or validation split).
    """

    def __init__(self, protocol: EpisodeProtocol) -> None:
        self.protocol = protocol
        self.items = [(episode, z) for episode in protocol.episodes() for z in episode.query_slices]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        episode, z = self.items[index]
        store = self.protocol.store
        query, support = store[episode.query], store[episode.support]
        support_mask = support.label[..., episode.support_slice] == episode.class_id
        classes = store.classes or {}
        return {
            "query": torch.from_numpy(query.image[..., z].copy()),
            "support": torch.from_numpy(support.image[..., episode.support_slice].copy())[None],
            "support_mask": torch.from_numpy(support_mask.astype("float32"))[None, None],
            "query_label": torch.from_numpy((query.label[..., z] == episode.class_id).astype("float32"))[None],
            "fold": episode.fold,
            "class_id": episode.class_id,
            "class_name": classes.get(episode.class_id, str(episode.class_id)),
            "volume": episode.query,
            "slice": z,
            "support_volume": episode.support,
            "support_slice": episode.support_slice,
        }
