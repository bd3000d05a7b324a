"""Torch datasets that turn sampled episodes into the tensors CAT-Net takes.

One item (1-way): ``query`` (C, *S), ``support`` (K, C, *S), ``support_mask`` (K, 1, *S), ``query_label``
(1, *S), plus ``class_id`` (N,) and ``index``; after a DataLoader's default collation: query (B, C, *S),
support (B, K, C, *S), support_mask (B, K, 1, *S), CAT-Net's input shapes. With ``n_way > 1`` the class axis
comes first: support (N, K, C, *S), support_mask (N, K, 1, *S), query_label (N, *S). ``*S`` is (H, W) for 2D
episodes and (H, W, D) for 3D ones.

Augmentations are drawn per image from the episode's own seed (``episode.seed + k``), so an item is the same
whichever worker builds it and in whatever order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from monai.utils import convert_to_tensor
from torch.utils.data import Dataset

from monai_fewshot.data.layout import VolumeStore
from monai_fewshot.data.sampler import Episode, EpisodeSampler, SlabRef

__all__ = ["EpisodeDataset"]


class EpisodeDataset(Dataset):
    """Map-style dataset of the episodes of an ``EpisodeSampler`` (or a supervoxel sampler), as tensors.

    Args:
        store: the volumes the episodes read images from.
        sampler: anything with ``episode(epoch, index)``, ``__len__`` and ``spatial_dims``.
        transform: an optional dictionary transform applied to each ``{"image": (C, *S), "label": (1, *S)}``
            pair (support shots and query alike), e.g. ``lineage_augmentations``; it must have
            ``set_random_state`` (MONAI ``Compose`` has). A support shot whose class the transform moves out of
            the slice is served un-augmented, so that every support keeps its foreground.
        label_maps: integer maps ``{volume id: (H, W, D)}`` the masks come from; required for pseudo-label
            episodes (supervoxels), whose masks must never come from a real label. None uses the store's labels.
        epoch: the epoch whose episodes are served (``set_epoch`` changes it).
    """

    def __init__(
        self,
        store: VolumeStore,
        sampler: EpisodeSampler,
        transform: Callable | None = None,
        label_maps: Mapping[str, np.ndarray] | None = None,
        epoch: int = 0,
    ) -> None:
        if transform is not None and not hasattr(transform, "set_random_state"):
            raise ValueError("transform must have set_random_state (wrap MONAI transforms in monai.transforms.Compose).")
        self.store, self.sampler, self.transform = store, sampler, transform
        self.label_maps, self.epoch = label_maps, epoch
        self.spatial_dims = sampler.spatial_dims

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _mask_source(self, episode: Episode, volume_id: str) -> np.ndarray:
        if self.label_maps is not None:
            if volume_id not in self.label_maps:
                raise KeyError(f"label_maps has no map for volume {volume_id!r}.")
            return self.label_maps[volume_id]
        if episode.pseudo:
            raise ValueError("a pseudo-label episode needs label_maps (supervoxels): it must not read a real label.")
        label = self.store[volume_id].label
        if label is None:
            raise ValueError(f"{self.store.records[volume_id].image} was loaded without its label.")
        return label

    def _pair(
        self, episode: Episode, ref: SlabRef, class_ids: tuple[int, ...], seed: int, support: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.store[ref.volume].image[..., ref.start : ref.stop]
        source = self._mask_source(episode, ref.volume)[..., ref.start : ref.stop]
        masks = np.stack([source == c for c in class_ids]).astype(np.float32)
        if self.spatial_dims == 2:
            image, masks = image[..., 0], masks[..., 0]
        image_t, masks_t = torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(masks)
        if self.transform is not None:
            self.transform.set_random_state(seed=seed % (2**32))
            out = self.transform({"image": image_t, "label": masks_t})
            augmented = convert_to_tensor(out["label"], dtype=torch.float32, track_meta=False)
            if not support or augmented.flatten(1).amax(1).all() or not masks_t.flatten(1).amax(1).all():
                image_t = convert_to_tensor(out["image"], dtype=torch.float32, track_meta=False)
                masks_t = augmented
            # else: the augmentation moved a support's class out of the slice; the support stays un-augmented
        return image_t, masks_t

    def build(self, episode: Episode, index: int = -1) -> dict[str, torch.Tensor]:
        """The tensors of one episode."""
        images, masks = [], []
        k = 0
        for class_id, shots in zip(episode.classes, episode.support):
            row_images, row_masks = [], []
            for ref in shots:
                image, mask = self._pair(episode, ref, (class_id,), episode.seed + k, support=True)
                row_images.append(image)
                row_masks.append(mask)
                k += 1
            images.append(torch.stack(row_images))
            masks.append(torch.stack(row_masks))
        query, query_label = self._pair(episode, episode.query, episode.classes, episode.seed + k)
        support, support_mask = torch.stack(images), torch.stack(masks)
        if len(episode.classes) == 1:
            support, support_mask = support[0], support_mask[0]
        return {
            "query": query,
            "support": support,
            "support_mask": support_mask,
            "query_label": query_label,
            "class_id": torch.tensor(episode.classes),
            "index": torch.tensor(index),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.build(self.sampler.episode(self.epoch, int(index)), int(index))
