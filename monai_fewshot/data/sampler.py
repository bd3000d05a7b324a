"""Episode samplers: N-way K-shot episodes drawn from an explicitly seeded generator, 2D or 3D.

An episode names classes and *where* to read (volume id, axial slab ``start:stop``); turning it into tensors
is ``episodes.py``'s job. Episode ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e, i])``
alone, so the episode list is the same whatever the number of workers or ranks, and a rank can draw its
share without drawing the others'. No global random state is read or changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from monai_fewshot.data.layout import VolumeStore
from monai_fewshot.data.protocol import Fold
from monai_fewshot.data.splits import ClassSplit

__all__ = ["DistributedEpisodeSampler", "Episode", "EpisodeSampler", "SlabRef", "window_starts"]


@dataclass(frozen=True)
class SlabRef:
    """Where an image comes from: axial slices ``start:stop`` of volume ``volume`` (one slice in 2D)."""

    volume: str
    start: int
    stop: int


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot episode.

    Attributes:
        classes: the N class values (supervoxel ids for pseudo-label episodes).
        support: N tuples of K ``SlabRef`` (the shots of each class).
        query: the query's ``SlabRef``.
        seed: a per-episode seed for the augmentations, derived from the sampler's seed.
        pseudo: True when ``classes`` are supervoxel ids (self-supervised), False for real classes.
    """

    classes: tuple[int, ...]
    support: tuple[tuple[SlabRef, ...], ...]
    query: SlabRef
    seed: int
    pseudo: bool = False


def window_starts(allowed: np.ndarray, present: np.ndarray, depth: int) -> np.ndarray:
    """Start indices ``s`` of the windows ``s:s+depth`` made only of allowed slices that hold the class somewhere.

    Args:
        allowed: boolean (D,), the slices the class split keeps.
        present: boolean (D,), the slices that contain the class.
        depth: window length in slices (1 for 2D episodes).
    """
    total = allowed.shape[0]
    if depth > total:
        return np.zeros(0, dtype=np.int64)
    allowed_sum = np.concatenate([[0], np.cumsum(allowed)])
    present_sum = np.concatenate([[0], np.cumsum(present & allowed)])
    starts = np.arange(total - depth + 1)
    ok = (allowed_sum[starts + depth] - allowed_sum[starts] == depth) & (present_sum[starts + depth] > present_sum[starts])
    return starts[ok]


class EpisodeSampler:
    """Seeded N-way K-shot episodes over the training volumes of a class split.

    Args:
        store: the loaded volumes (with labels).
        split: train/test classes and Setting 1/2; episodes use train classes only, on the slices it keeps.
        volume_ids: the training volumes (default: all of ``store``); keep test and validation volumes out.
        n_way: classes per episode (default 1).
        k_shot: support images per class (default 1).
        spatial_dims: 2 (one axial slice per image, default) or 3 (a slab or the whole volume).
        depth: slab depth in slices for ``spatial_dims=3``; None takes the whole volume (default).
        num_episodes: episodes per epoch (default 1000).
        seed: the generator seed (default 0).
        distinct_volumes: draw the query from a volume none of the shots use, as the lineage does (default True).
        fold: the evaluation fold; when given, ``volume_ids`` defaults to ``fold.train`` and a test or validation
            volume of the fold in ``volume_ids`` raises (default None: no check).

    The query slab contains the episode's first class (for ``n_way > 1`` the others may or may not appear in it;
    its label has one mask per class).

    Example:
        >>> sampler = EpisodeSampler(store, ClassSplit(CHAOS_CLASSES, (2, 3)), num_episodes=100, seed=1)
        >>> episode = sampler.episode(epoch=0, index=5)  # the same Episode on every machine and worker
    """

    def __init__(
        self,
        store: VolumeStore,
        split: ClassSplit,
        volume_ids: Sequence[str] | None = None,
        n_way: int = 1,
        k_shot: int = 1,
        spatial_dims: int = 2,
        depth: int | None = None,
        num_episodes: int = 1000,
        seed: int = 0,
        distinct_volumes: bool = True,
        fold: Fold | None = None,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if n_way < 1 or k_shot < 1 or num_episodes < 1:
            raise ValueError(f"n_way, k_shot and num_episodes must be >= 1, got {n_way}, {k_shot}, {num_episodes}.")
        if spatial_dims == 2 and depth not in (None, 1):
            raise ValueError(f"depth applies to spatial_dims=3 only, got depth={depth} with spatial_dims=2.")
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be >= 1 or None, got {depth}.")
        self.store, self.split = store, split
        if volume_ids is None:
            volume_ids = fold.train if fold is not None else list(store)
        self.volume_ids = list(volume_ids)
        if fold is not None:
            held_out = {fold.support, *fold.queries, *([fold.val_support] if fold.val_support else []), *fold.val_queries}
            leaked = sorted(set(self.volume_ids) & held_out, key=str)
            if leaked:
                raise ValueError(f"volume_ids {leaked} are test or validation volumes of fold {fold.index}: train on fold.train.")
        missing = [v for v in self.volume_ids if v not in store]
        if missing:
            raise ValueError(f"volume_ids {missing} are not in the store (ids: {list(store)}).")
        if n_way > len(split.train_classes):
            raise ValueError(f"n_way={n_way} exceeds the {len(split.train_classes)} train classes {split.train_classes}.")
        self.n_way, self.k_shot, self.spatial_dims = n_way, k_shot, spatial_dims
        self.depth = 1 if spatial_dims == 2 else depth
        self.num_episodes, self.seed, self.distinct_volumes = num_episodes, seed, distinct_volumes
        self.epoch = 0
        self.candidates = self._build_candidates()

    def _build_candidates(self) -> dict[int, dict[str, np.ndarray]]:
        """Per train class, per volume: the window starts an episode may use (empty volumes dropped)."""
        table: dict[int, dict[str, np.ndarray]] = {c: {} for c in self.split.train_classes}
        for volume_id in self.volume_ids:
            label = self.store[volume_id].label
            if label is None:
                raise ValueError(f"{self.store.records[volume_id].image} was loaded without its label.")
            allowed = self.split.allowed_slices(label)
            depth = label.shape[-1] if self.depth is None else self.depth
            for c in table:
                starts = window_starts(allowed, (label == c).any(axis=(0, 1)), depth)
                if starts.size:
                    table[c][volume_id] = starts
        for c, volumes in table.items():
            needed = self.k_shot + 1 if self.distinct_volumes else 1
            if len(volumes) < needed:
                raise ValueError(
                    f"class {c} ({self.split.classes[c]}) is usable in {len(volumes)} training volume(s) "
                    f"{sorted(volumes)}, fewer than the {needed} that k_shot={self.k_shot} needs"
                    + (" with the query from another volume." if self.distinct_volumes else ".")
                )
        return table

    def __len__(self) -> int:
        return self.num_episodes

    def set_epoch(self, epoch: int) -> None:
        """Move to another epoch's episodes (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def _ref(self, rng: np.random.Generator, class_id: int, volume_id: str) -> SlabRef:
        starts = self.candidates[class_id][volume_id]
        start = int(starts[rng.integers(starts.size)])
        depth = self.store[volume_id].depth if self.depth is None else self.depth
        return SlabRef(volume_id, start, start + depth)

    def episode(self, epoch: int, index: int) -> Episode:
        """Episode ``index`` of ``epoch``: a pure function of (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, epoch, index])
        classes = tuple(int(c) for c in rng.choice(self.split.train_classes, size=self.n_way, replace=False))
        query_volumes = sorted(self.candidates[classes[0]])
        query_volume = query_volumes[rng.integers(len(query_volumes))]
        query = self._ref(rng, classes[0], query_volume)
        support = []
        for c in classes:
            pool = sorted(v for v in self.candidates[c] if not (self.distinct_volumes and v == query_volume))
            replace = len(pool) < self.k_shot
            chosen = rng.choice(len(pool), size=self.k_shot, replace=replace)
            support.append(tuple(self._ref(rng, c, pool[i]) for i in chosen))
        return Episode(classes, tuple(support), query, seed=int(rng.integers(2**31)))

    def episodes(self, epoch: int | None = None) -> list[Episode]:
        epoch = self.epoch if epoch is None else epoch
        return [self.episode(epoch, i) for i in range(self.num_episodes)]

    def __iter__(self) -> Iterator[Episode]:
        epoch = self.epoch
        return (self.episode(epoch, i) for i in range(self.num_episodes))


class DistributedEpisodeSampler(Sampler[int]):
    """Episode indices for one rank: rank ``r`` of ``W`` takes indices ``r, r + W, ...``.

    Use with a map-style episode dataset (``EpisodeDataset``) as the DataLoader's ``sampler``. The episode
    list is padded by wrapping round so every rank gets ``ceil(num_episodes / W)`` episodes, as
    ``torch.utils.data.DistributedSampler`` does; the union of the ranks' shares is the single-process list.

    The epoch is the dataset's: call ``EpisodeDataset.set_epoch(e)`` on every rank.

    Args:
        num_episodes: episodes per epoch (``len(EpisodeSampler)``).
        num_replicas: world size; default ``torch.distributed.get_world_size()`` when initialised, else 1.
        rank: this rank; default ``torch.distributed.get_rank()`` when initialised, else 0.
    """

    def __init__(self, num_episodes: int | EpisodeSampler, num_replicas: int | None = None, rank: int | None = None) -> None:
        if isinstance(num_episodes, EpisodeSampler):
            num_episodes = len(num_episodes)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if num_replicas is None:
            num_replicas = torch.distributed.get_world_size() if distributed else 1
        if rank is None:
            rank = torch.distributed.get_rank() if distributed else 0
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}.")
        self.num_episodes, self.num_replicas, self.rank = int(num_episodes), num_replicas, rank
        self.num_samples = math.ceil(self.num_episodes / num_replicas)

    def __iter__(self) -> Iterator[int]:
        total = self.num_samples * self.num_replicas
        return (i % self.num_episodes for i in range(self.rank, total, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:  # episodes change with the dataset's epoch; kept for the API
        self.epoch = epoch

