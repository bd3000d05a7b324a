"""Supervoxel pseudo-labels: disk cache, and episodes that never read a real label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monai_fewshot.data import (
    EpisodeDataset,
    SupervoxelCache,
    SupervoxelEpisodeSampler,
    VolumeStore,
    compute_supervoxels,
    read_folder,
)
from monai_fewshot.data import supervoxels as supervoxel_module
from monai_fewshot.transforms import lineage_augmentations

FAST_SLIC = {"n_segments": 150, "downsample": 4}


@pytest.fixture(scope="module")
def image_only(chaos_dir, tmp_path_factory) -> VolumeStore:
    """Two CHAOS images in a folder that holds no label file at all."""
    folder = tmp_path_factory.mktemp("images_only")
    for i in (1, 2):
        (folder / f"image_{i}.nii.gz").symlink_to(chaos_dir / f"image_{i}.nii.gz")
    return VolumeStore(read_folder(folder, require_labels=False), load_labels=False)


@pytest.fixture(scope="module")
def slic_maps(image_only, tmp_path_factory):
    cache = SupervoxelCache(tmp_path_factory.mktemp("cache"), method="slic", **FAST_SLIC)
    return cache, {v: cache.get(image_only[v]) for v in image_only}


def test_supervoxel_maps(image_only, slic_maps):
    _, maps = slic_maps
    for volume_id, supervoxels in maps.items():
        image = image_only[volume_id].image[0]
        assert supervoxels.shape == image.shape and supervoxels.dtype == np.int32
        assert np.all(supervoxels[image == image.min()] == 0)
        ids = np.unique(supervoxels)
        np.testing.assert_array_equal(ids, np.arange(ids.size))  # dense 0..n
        assert 50 < ids.size < 300
        # a 3D supervoxel spans several slices
        spans = [np.ptp(np.flatnonzero((supervoxels == i).any(axis=(0, 1)))) for i in ids[1:20]]
        assert max(spans) >= 2


def test_cache_reads_instead_of_recomputing(image_only, slic_maps, monkeypatch):
    cache, maps = slic_maps
    path = cache.path_for(image_only["1"].record.image)
    assert path.is_file() and not list(cache.cache_dir.glob("*.tmp"))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(supervoxel_module, "compute_supervoxels", fail)
    np.testing.assert_array_equal(cache.get(image_only["1"]), maps["1"])
    other = SupervoxelCache(cache.cache_dir, method="slic", n_segments=151, downsample=4)
    assert other.path_for(image_only["1"].record.image) != path
    with pytest.raises(AssertionError, match="recomputed"):
        other.get(image_only["1"])


def test_cache_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown slic parameter"):
        SupervoxelCache(tmp_path, method="slic", scale=3)
    with pytest.raises(ValueError, match="method must be one of"):
        SupervoxelCache(tmp_path, method="watershed")
    with pytest.raises(FileNotFoundError, match="image_404"):
        SupervoxelCache(tmp_path).path_for(tmp_path / "image_404.nii.gz")


def test_adjacent_episodes_never_use_a_real_label(image_only, slic_maps):
    _, maps = slic_maps
    sampler = SupervoxelEpisodeSampler(maps, mode="adjacent", min_size=100, num_episodes=30, seed=5)
    dataset = EpisodeDataset(image_only, sampler, label_maps=maps)
    for index, episode in enumerate(sampler.episodes()):
        assert episode.pseudo
        support = episode.support[0][0]
        assert support.volume == episode.query.volume and abs(support.start - episode.query.start) == 1
        item = dataset[index]
        supervoxels = maps[episode.query.volume]
        (sv,) = episode.classes
        np.testing.assert_array_equal(item["support_mask"][0, 0].numpy(), supervoxels[..., support.start] == sv)
        np.testing.assert_array_equal(item["query_label"][0].numpy(), supervoxels[..., episode.query.start] == sv)
        assert item["support_mask"].sum() >= 100 and item["query_label"].sum() >= 100
    assert all(image_only[v].label is None for v in image_only)  # no label was ever loaded
    with pytest.raises(ValueError, match="must not read a real label"):
        EpisodeDataset(image_only, sampler)[0]


def test_supervoxel_episodes_seeded(slic_maps):
    _, maps = slic_maps
    first = SupervoxelEpisodeSampler(maps, num_episodes=20, seed=1).episodes()
    assert first == SupervoxelEpisodeSampler(maps, num_episodes=20, seed=1).episodes()
    assert first != SupervoxelEpisodeSampler(maps, num_episodes=20, seed=2).episodes()


def test_augment_episodes_felzenszwalb(image_only, one_torch_thread):
    image = image_only["1"].image[0]
    superpixels = np.zeros(image.shape, np.int32)
    superpixels[..., 14:18] = compute_supervoxels(image[..., 14:18], method="felzenszwalb")  # 4 slices keep it quick
    maps = {"1": superpixels}
    # 2D superpixels: no id on two slices
    per_slice = [set(np.unique(maps["1"][..., z])) - {0} for z in range(maps["1"].shape[-1])]
    assert all(not (a & b) for a, b in zip(per_slice, per_slice[1:]))
    sampler = SupervoxelEpisodeSampler(maps, mode="augment", min_size=200, num_episodes=4, seed=0)
    dataset = EpisodeDataset(image_only, sampler, transform=lineage_augmentations(), label_maps=maps)
    for index, episode in enumerate(sampler.episodes()):
        assert episode.support[0][0] == episode.query
        item = dataset[index]
        assert not np.allclose(item["support"][0].numpy(), item["query"].numpy())  # two augmentations


def test_sampler_errors():
    with pytest.raises(ValueError, match="no supervoxel covers"):
        SupervoxelEpisodeSampler({"1": np.ones((8, 8, 3), np.int32)}, min_size=100)
    with pytest.raises(ValueError, match="mode"):
        SupervoxelEpisodeSampler({"1": np.ones((8, 8, 3), np.int32)}, mode="pairs")


def test_3d_slab_episodes(image_only, slic_maps):
    _, maps = slic_maps
    sampler = SupervoxelEpisodeSampler(maps, mode="adjacent", min_size=500, num_episodes=6, seed=3, spatial_dims=3, depth=4)
    dataset = EpisodeDataset(image_only, sampler, label_maps=maps)
    for index, episode in enumerate(sampler.episodes()):
        support, query = episode.support[0][0], episode.query
        assert support.stop - support.start == query.stop - query.start == 4 and abs(support.start - query.start) == 1
        item = dataset[index]
        assert item["query"].shape[-1] == 4 and item["support_mask"].shape == (1, 1, 256, 256, 4)
        (sv,) = episode.classes
        block = maps[query.volume][..., query.start : query.stop] == sv
        np.testing.assert_array_equal(item["query_label"][0].numpy(), block)
        assert block.sum() >= 500 and item["support_mask"].sum() >= 500


def test_setting2_filter_for_supervoxel_episodes(chaos_dir, image_only, slic_maps):
    """Setting 2 for self-supervision: slices with a test class are never drawn; masks still from supervoxels."""
    import nibabel as nib

    from monai_fewshot.data import CHAOS_CLASSES, ClassSplit

    _, maps = slic_maps
    split = ClassSplit(CHAOS_CLASSES, (2, 3), setting=2)
    labels = {v: np.asarray(nib.load(chaos_dir / f"label_{v}.nii.gz").dataobj) for v in maps}
    allowed = {v: split.allowed_slices(labels[v]) for v in maps}
    for spatial_dims, depth in ((2, 1), (3, 3)):
        sampler = SupervoxelEpisodeSampler(
            maps, min_size=100, num_episodes=60, seed=0, spatial_dims=spatial_dims, depth=depth, allowed_slices=allowed
        )
        for episode in sampler.episodes():
            for ref in (episode.query, episode.support[0][0]):
                assert allowed[ref.volume][ref.start : ref.stop].all()
                assert not np.isin(labels[ref.volume][..., ref.start : ref.stop], (2, 3)).any()
    with pytest.raises(ValueError, match="no entry for volume"):
        SupervoxelEpisodeSampler(maps, allowed_slices={"1": allowed["1"]})
