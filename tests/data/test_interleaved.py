"""Episodes from supervoxels of several sizes, served in turn."""

from __future__ import annotations

import numpy as np
import pytest

from monai_fewshot.data import InterleavedEpisodes
from monai_fewshot.data.builders import supervoxel_episodes

SUBJECTS = ("1", "2", "3", "5", "8", "10", "13", "15", "19", "20")
FINE, COARSE = {"n_segments": 150, "downsample": 4}, {"n_segments": 15, "downsample": 4}


class _Numbers:
    def __init__(self, offset: int, length: int = 3) -> None:
        self.offset, self.length, self.epoch = offset, length, 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[int, int]:
        return self.epoch, self.offset + index


def test_items_alternate_and_epochs_reach_every_source():
    a, b = _Numbers(0), _Numbers(100)
    mixed = InterleavedEpisodes([a, b])
    assert len(mixed) == 6
    assert [mixed[i][1] for i in range(6)] == [0, 100, 1, 101, 2, 102]
    assert mixed[-1] == mixed[5]
    mixed.set_epoch(4)
    assert a.epoch == b.epoch == 4 and mixed[1] == (4, 100)
    with pytest.raises(IndexError, match="out of range"):
        mixed[6]
    with pytest.raises(ValueError, match="same length"):
        InterleavedEpisodes([_Numbers(0, 3), _Numbers(0, 4)])
    with pytest.raises(ValueError, match="empty"):
        InterleavedEpisodes([])
    cut = InterleavedEpisodes([a, b], length=5)  # a total the two sources do not divide
    assert len(cut) == 5 and cut[4][1] == 2
    with pytest.raises(IndexError):
        cut[5]
    with pytest.raises(ValueError, match="length must be in 1..6"):
        InterleavedEpisodes([a, b], length=7)


@pytest.fixture(scope="module")
def small_folder(chaos_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chaos10")
    for subject in SUBJECTS:
        for kind in ("image", "label"):
            (folder / f"{kind}_{subject}.nii.gz").symlink_to(chaos_dir / f"{kind}_{subject}.nii.gz")
    return folder


def test_supervoxel_episodes_of_two_sizes(small_folder, tmp_path_factory):
    cache = tmp_path_factory.mktemp("supervoxels")
    mixed = supervoxel_episodes(small_folder, 0, cache, num_episodes=24, supervoxel_params=[FINE, COARSE], augment=False)
    assert isinstance(mixed, InterleavedEpisodes) and len(mixed) == 24
    areas = np.array([float(mixed[i]["support_mask"].sum()) for i in range(24)])
    assert np.median(areas[1::2]) > 3 * np.median(areas[0::2])  # odd items: the coarse supervoxels
    fine_only = supervoxel_episodes(small_folder, 0, cache, num_episodes=12, supervoxel_params=FINE, augment=False)
    for i in range(4):  # the first scale keeps the seed, so its stream is the single-scale one
        np.testing.assert_array_equal(mixed[2 * i]["support_mask"].numpy(), fine_only[i]["support_mask"].numpy())
    mixed.set_epoch(1)
    assert not np.array_equal(mixed[1]["support_mask"].numpy(), mixed.datasets[1].build(
        mixed.datasets[1].sampler.episode(0, 0))["support_mask"].numpy())
    odd = supervoxel_episodes(small_folder, 0, cache, num_episodes=5, supervoxel_params=[FINE, COARSE], augment=False)
    assert len(odd) == 5 and odd[4]["support_mask"].sum() > 0
    with pytest.raises(ValueError, match="empty list"):
        supervoxel_episodes(small_folder, 0, cache, num_episodes=4, supervoxel_params=[])
