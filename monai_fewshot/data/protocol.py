"""The evaluation protocol of the SSL-ALPNet lineage (DESIGN.md §4), exactly, plus a validation split.

What is implemented (and what the lineage's public code does: Q-Net / ADNet ``dataset_specifics.get_folds``,
``TestDataset`` and ``test.py``):

- Folds: the volumes sorted by numeric id, positions ``0..n-1``, ``size = n // 5``. Fold ``f < 4`` holds the
  positions ``f*size .. f*size+size`` (``size + 1`` volumes, so neighbouring folds share one); fold 4 holds
  ``4*size .. n-1`` plus position 0. The support volume is the fold's first volume in sorted order
  (``supp_idx = 0``), the queries are the others. CHAOS (20): support positions 0, 4, 8, 12, 0 with 4 queries
  each; CMR (35): support 0, 7, 14, 21, 0 with 7, 7, 7, 7 and 7 queries. Training uses the volumes outside
  the fold.
- Scored slices: for a query volume and class, the axial slices that contain the class (the lineage's
  ``label.sum(axis=(1, 2)) > 0``); a slice inside the organ's z-range without the class (CHAOS ``label_3``,
  left kidney) is not scored. ``scored="extent"`` scores the whole range ``z_min..z_max`` instead, and
  ``scored="volume"`` every slice of the query volume (whole-volume Dice: slices without the class must be
  left empty, as a user's whole-volume segmentation must; the chunks then cut the whole volume).
- Chunks: the C scored slices are cut at ``np.linspace(0, C, 4).astype(int)`` (the lineage's bounds: the
  last chunk takes the remainder, e.g. 3/3/4 for C=10); ``chunking="array_split"`` uses ``np.array_split``
  (4/3/3) instead.
- Support slices: among the support volume's C_s slices that contain the class, index
  ``int(C_s * (2j + 1) / 6)`` for chunk ``j`` (the lineage's ``get_support_index``: the middle of each third).
  Every query slice of chunk ``j`` is predicted from support slice ``j``.
- Dice: per query volume, over the stacked prediction of its scored slices (3D Dice); averaged over the
  fold's query volumes, then over folds per class, then over classes. Scored by
  :class:`~monai_fewshot.metrics.ProtocolDice` on the items of :class:`~monai_fewshot.data.ProtocolSliceDataset`
  (:func:`~monai_fewshot.engines.evaluate_protocol`), the one scoring path.
- Validation (which the lineage lacks): ``1 + n_val_queries`` training volumes, the ones that follow the fold
  in sorted order (cyclically), are set aside; the first is the validation support. ``n_val_queries=0``
  keeps the lineage's training set.
- 1-shot 3D variant (``ProtocolEpisode3D``): the support volume with its mask, the whole query volume; the
  same scored slices, so 2D and 3D numbers are over the same voxels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from monai_fewshot.data.layout import VolumeStore

__all__ = [
    "ChunkEpisode",
    "EpisodeProtocol",
    "Fold",
    "N_VAL_QUERIES",
    "ProtocolEpisode3D",
    "lineage_folds",
    "query_chunks",
    "SCORED",
    "scored_slices",
    "support_slices",
]


@dataclass(frozen=True)
class Fold:
    """One evaluation fold: test support and queries, validation support and queries, training volumes."""

    index: int
    support: str
    queries: tuple[str, ...]
    train: tuple[str, ...]
    val_support: str | None = None
    val_queries: tuple[str, ...] = ()


def _check_ids(volume_ids: Sequence[str]) -> list[str]:
    ids = [str(v) for v in volume_ids]
    if any(not v.isdigit() for v in ids):
        raise ValueError(f"fold assignment sorts volumes by numeric id; got non-numeric ids {[v for v in ids if not v.isdigit()]}.")
    return sorted(ids, key=int)


N_VAL_QUERIES = 2  # validation queries per fold, the default of every fold split (bundles: "n_val_queries")


def lineage_folds(volume_ids: Sequence[str], n_folds: int = 5, n_val_queries: int = N_VAL_QUERIES) -> list[Fold]:
    """The lineage's folds over volumes sorted by numeric id (see the module docstring), plus validation.

    Args:
        volume_ids: the dataset's ids (``image_N`` -> ``"N"``).
        n_folds: folds (default 5).
        n_val_queries: validation queries taken from the training volumes (default 2; 0 = no validation).
    """
    ids = _check_ids(volume_ids)
    n = len(ids)
    size = n // n_folds if n_folds > 0 else 0
    if n_folds < 2 or size < 1:
        raise ValueError(f"need n_folds >= 2 and at least n_folds volumes, got n_folds={n_folds} and {n} volumes.")
    folds = []
    for f in range(n_folds):
        positions = list(range(f * size, f * size + size + 1)) if f < n_folds - 1 else list(range(f * size, n)) + [0]
        test = sorted(set(positions))
        rest = [p for p in range(n) if p not in test]
        if len(rest) < 1 + n_val_queries + 1 and n_val_queries > 0:
            raise ValueError(f"{n} volumes leave {len(rest)} for training: too few for {n_val_queries} validation queries.")
        top = max(positions)
        after = [p for p in rest if p > top] + [p for p in rest if p < top]
        val = after[: 1 + n_val_queries] if n_val_queries > 0 else []
        train = [p for p in rest if p not in val]
        folds.append(
            Fold(
                index=f,
                support=ids[test[0]],
                queries=tuple(ids[p] for p in test[1:]),
                train=tuple(ids[p] for p in train),
                val_support=ids[val[0]] if val else None,
                val_queries=tuple(ids[p] for p in val[1:]),
            )
        )
    return folds


def _labelled(label: np.ndarray, class_id: int, name: str) -> np.ndarray:
    slices = np.flatnonzero((label == class_id).any(axis=(0, 1)))
    if slices.size == 0:
        raise ValueError(f"label value {class_id} is absent from {name}: it has no slice to use for that class.")
    return slices


#: which query slices a protocol scores: the class's labelled slices, its z-extent, or the whole volume
SCORED = ("labelled", "extent", "volume")


def scored_slices(label: np.ndarray, class_id: int, scored: str = "labelled", name: str = "the label volume") -> np.ndarray:
    """Axial indices scored for ``class_id``: the slices that contain it (default), its whole z-extent
    (``"extent"``) or every slice of the volume (``"volume"``)."""
    if scored not in SCORED:
        raise ValueError(f"scored must be one of {SCORED}, got {scored!r}.")
    slices = _labelled(label, class_id, name)
    if scored == "volume":
        return np.arange(label.shape[-1])
    return slices if scored == "labelled" else np.arange(slices[0], slices[-1] + 1)


def support_slices(label: np.ndarray, class_id: int, n_chunks: int = 3, name: str = "the support label") -> np.ndarray:
    """The support slice of each chunk: index ``int(C * (2j + 1) / (2 n_chunks))`` among the class's C slices."""
    slices = _labelled(label, class_id, name)
    fractions = (2 * np.arange(n_chunks) + 1) / (2 * n_chunks)
    return slices[(fractions * slices.size).astype(int)]


def query_chunks(
    slices: np.ndarray, n_chunks: int = 3, chunking: str = "linspace"
) -> list[np.ndarray]:
    """Cut the scored slices into ``n_chunks``: lineage bounds ``linspace(0, C, n+1).astype(int)`` or ``array_split``."""
    if chunking == "linspace":
        bounds = np.linspace(0, slices.size, n_chunks + 1).astype(int)
        return [slices[bounds[j] : bounds[j + 1]] for j in range(n_chunks)]
    if chunking == "array_split":
        return list(np.array_split(slices, n_chunks))
    raise ValueError(f"chunking must be 'linspace' or 'array_split', got {chunking!r}.")


@dataclass(frozen=True)
class ChunkEpisode:
    """2D protocol episode: predict ``query_slices`` of ``query`` from ``support_slice`` of ``support``."""

    fold: int
    class_id: int
    support: str
    support_slice: int
    query: str
    query_slices: tuple[int, ...]
    chunk: int


@dataclass(frozen=True)
class ProtocolEpisode3D:
    """1-shot 3D protocol episode: the support volume and its mask, the whole query volume."""

    fold: int
    class_id: int
    support: str
    query: str
    scored_slices: tuple[int, ...]


class EpisodeProtocol:
    """The evaluation episodes of a dataset under the lineage protocol.

    Args:
        store: loaded volumes with labels.
        folds: from ``lineage_folds``.
        class_ids: classes to evaluate (default: the store's class map).
        split: ``"test"`` (the fold's support and queries, default) or ``"validation"``.
        n_chunks: chunks per query volume (default 3).
        chunking: ``"linspace"`` (lineage, default) or ``"array_split"``.
        scored: ``"labelled"`` (lineage, default), ``"extent"`` or ``"volume"`` (whole-volume Dice).
    """

    def __init__(
        self,
        store: VolumeStore,
        folds: Sequence[Fold],
        class_ids: Sequence[int] | None = None,
        split: str = "test",
        n_chunks: int = 3,
        chunking: str = "linspace",
        scored: str = "labelled",
    ) -> None:
        if split not in ("test", "validation"):
            raise ValueError(f"split must be 'test' or 'validation', got {split!r}.")
        if n_chunks < 1:
            raise ValueError(f"n_chunks must be >= 1, got {n_chunks}.")
        if class_ids is None:
            if store.classes is None:
                raise ValueError("class_ids is None and the store has no class map: name the classes to evaluate.")
            class_ids = sorted(store.classes)
        self.store, self.folds, self.class_ids = store, list(folds), [int(c) for c in class_ids]
        self.split, self.n_chunks, self.chunking, self.scored = split, n_chunks, chunking, scored
        query_chunks(np.arange(3), 1, chunking)  # validates chunking
        if split == "validation" and any(f.val_support is None for f in self.folds):
            raise ValueError("split='validation' needs folds made with n_val_queries > 0.")

    def _fold_volumes(self, fold: Fold) -> tuple[str, tuple[str, ...]]:
        return (fold.support, fold.queries) if self.split == "test" else (fold.val_support, fold.val_queries)

    def _label(self, volume_id: str) -> tuple[np.ndarray, str]:
        volume = self.store[volume_id]
        return volume.label, str(volume.record.label)

    def episodes(self) -> Iterator[ChunkEpisode]:
        """2D episodes, fold by fold, class by class, query by query, chunk by chunk (empty chunks skipped)."""
        for fold in self.folds:
            support, queries = self._fold_volumes(fold)
            support_label, support_name = self._label(support)
            for c in self.class_ids:
                support_z = support_slices(support_label, c, self.n_chunks, support_name)
                for query in queries:
                    label, name = self._label(query)
                    chunks = query_chunks(scored_slices(label, c, self.scored, name), self.n_chunks, self.chunking)
                    for j, chunk in enumerate(chunks):
                        if chunk.size:
                            yield ChunkEpisode(fold.index, c, support, int(support_z[j]), query, tuple(int(z) for z in chunk), j)

    def episodes_3d(self) -> Iterator[ProtocolEpisode3D]:
        """1-shot 3D episodes: one per fold, class and query volume."""
        for fold in self.folds:
            support, queries = self._fold_volumes(fold)
            support_label, support_name = self._label(support)
            for c in self.class_ids:
                _labelled(support_label, c, support_name)
                for query in queries:
                    label, name = self._label(query)
                    slices = scored_slices(label, c, self.scored, name)
                    yield ProtocolEpisode3D(fold.index, c, support, query, tuple(int(z) for z in slices))

    def scored_slice_counts(self) -> dict[tuple[int, int], int]:
        """``{(fold, class_id): number of scored query slices}``."""
        counts: dict[tuple[int, int], int] = {}
        for episode in self.episodes():
            key = (episode.fold, episode.class_id)
            counts[key] = counts.get(key, 0) + len(episode.query_slices)
        return counts
