"""Episode tensors: CAT-Net's shapes, masks from the right slices, identical across DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from monai_fewshot.data import CHAOS_CLASSES, CMR_CLASSES, ClassSplit, DistributedEpisodeSampler, EpisodeDataset, EpisodeSampler
from monai_fewshot.transforms import lineage_augmentations


def test_2d_item_shapes_and_masks(cmr_store, cmr_raw):
    sampler = EpisodeSampler(cmr_store, ClassSplit(CMR_CLASSES, (3,)), k_shot=2, num_episodes=6, seed=0)
    dataset = EpisodeDataset(cmr_store, sampler)
    for index, episode in enumerate(sampler.episodes()):
        item = dataset[index]
        assert item["query"].shape == (1, 256, 256) and item["query_label"].shape == (1, 256, 256)
        assert item["support"].shape == (2, 1, 256, 256) and item["support_mask"].shape == (2, 1, 256, 256)
        (c,) = episode.classes
        q = episode.query
        np.testing.assert_array_equal(item["query_label"][0].numpy(), cmr_raw[int(q.volume)][..., q.start] == c)
        np.testing.assert_allclose(item["query"].numpy(), cmr_store[q.volume].image[..., q.start])
        for k, ref in enumerate(episode.support[0]):
            np.testing.assert_array_equal(item["support_mask"][k, 0].numpy(), cmr_raw[int(ref.volume)][..., ref.start] == c)


def test_3d_and_n_way_shapes(chaos_store):
    split = ClassSplit(CHAOS_CLASSES, (2, 3), setting=1)
    sampler = EpisodeSampler(chaos_store, split, n_way=2, k_shot=1, spatial_dims=3, depth=4, num_episodes=2, seed=0)
    item = EpisodeDataset(chaos_store, sampler)[0]
    assert item["query"].shape == (1, 256, 256, 4)
    assert item["support"].shape == (2, 1, 1, 256, 256, 4) and item["support_mask"].shape == (2, 1, 1, 256, 256, 4)
    assert item["query_label"].shape == (2, 256, 256, 4)


def test_workers_give_identical_batches(cmr_store, one_torch_thread):
    """0 and 2 workers, and two ranks' shares put together, give the same augmented episodes."""
    sampler = EpisodeSampler(cmr_store, ClassSplit(CMR_CLASSES, (3,)), num_episodes=6, seed=11)
    dataset = EpisodeDataset(cmr_store, sampler, transform=lineage_augmentations())
    serial = list(DataLoader(dataset, batch_size=2, num_workers=0))
    parallel = list(DataLoader(dataset, batch_size=2, num_workers=2))
    for a, b in zip(serial, parallel):
        for key in a:
            torch.testing.assert_close(a[key], b[key])
    by_index = {}
    for rank in range(2):
        loader = DataLoader(dataset, batch_size=1, sampler=DistributedEpisodeSampler(sampler, num_replicas=2, rank=rank))
        for batch in loader:
            by_index[int(batch["index"])] = batch["query"][0]
    for index in range(6):
        torch.testing.assert_close(by_index[index], serial[index // 2]["query"][index % 2])
    assert not torch.equal(serial[0]["query"][0], EpisodeDataset(cmr_store, sampler)[0]["query"])  # augmented


def test_batches_feed_catnet(cmr_store):
    from monai_fewshot.networks import catnet_light
    from monai_fewshot.networks.utils import resize_to

    sampler = EpisodeSampler(cmr_store, ClassSplit(CMR_CLASSES, (3,)), num_episodes=2, seed=0)
    batch = next(iter(DataLoader(EpisodeDataset(cmr_store, sampler), batch_size=2)))
    size = (64, 64)
    query = resize_to(batch["query"], size)
    support = resize_to(batch["support"].flatten(0, 1), size).unflatten(0, (2, 1))
    mask = resize_to(batch["support_mask"].flatten(0, 1), size, mode="nearest").unflatten(0, (2, 1))
    torch.manual_seed(0)
    with torch.no_grad():
        out = catnet_light(spatial_dims=2).eval()(query, support, mask)
    assert out.logits.shape == (2, 1, 64, 64)


def test_transform_without_random_state(cmr_store):
    sampler = EpisodeSampler(cmr_store, ClassSplit(CMR_CLASSES, (3,)), num_episodes=2)
    with pytest.raises(ValueError, match="set_random_state"):
        EpisodeDataset(cmr_store, sampler, transform=lambda d: d)


def test_support_keeps_its_class_when_the_augmentation_moves_it_out(cmr_store, cmr_raw):
    """A shift that pushes everything out of the slice: supports stay un-augmented, the query is shifted."""
    from monai.transforms import Affined, Compose

    sampler = EpisodeSampler(cmr_store, ClassSplit(CMR_CLASSES, (3,)), k_shot=2, num_episodes=2, seed=0)
    away = Compose([Affined(("image", "label"), translate_params=(512, 512), mode=("bilinear", "nearest"), padding_mode="zeros")])
    dataset = EpisodeDataset(cmr_store, sampler, transform=away)
    for index, episode in enumerate(sampler.episodes()):
        item = dataset[index]
        (c,) = episode.classes
        for k, ref in enumerate(episode.support[0]):
            np.testing.assert_array_equal(item["support_mask"][k, 0].numpy(), cmr_raw[int(ref.volume)][..., ref.start] == c)
            np.testing.assert_allclose(item["support"][k].numpy(), cmr_store[ref.volume].image[..., ref.start])
        assert item["query_label"].sum() == 0 and item["query"].abs().sum() == 0  # the query was augmented
