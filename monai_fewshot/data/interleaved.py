"""Several episode datasets served as one stream, item by item in turn (e.g. supervoxels of several sizes)."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

__all__ = ["InterleavedEpisodes"]


class InterleavedEpisodes(Dataset):
    """Items ``0, 1, 2, ...`` come from ``datasets[0][0], datasets[1][0], ..., datasets[0][1], ...``.

    Unlike ``torch.utils.data.ConcatDataset``, every batch of ``len(datasets)`` consecutive items mixes all the
    sources, and ``set_epoch`` reaches each source, so the stream stays the seeded one after a resume.

    Args:
        datasets: episode datasets of equal length (each with ``set_epoch``).
        length: items served, at most ``len(datasets) * len(datasets[0])`` (the default): the stream is cut
            there, so a total that the number of sources does not divide is possible.
    """

    def __init__(self, datasets: Sequence[Dataset], length: int | None = None) -> None:
        if not datasets:
            raise ValueError("datasets is empty: give at least one episode dataset.")
        lengths = {len(d) for d in datasets}
        if len(lengths) != 1:
            raise ValueError(f"the datasets must have the same length to be interleaved, got lengths {sorted(lengths)}.")
        self.datasets = list(datasets)
        available = len(self.datasets) * len(self.datasets[0])
        self.length = available if length is None else int(length)
        if not 1 <= self.length <= available:
            raise ValueError(f"length must be in 1..{available} ({len(self.datasets)} datasets of {lengths.pop()}), got {length}.")
        self.spatial_dims = getattr(self.datasets[0], "spatial_dims", None)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} episodes.")
        index %= len(self)
        return self.datasets[index % len(self.datasets)][index // len(self.datasets)]
