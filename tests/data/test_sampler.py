"""Episode samplers: seeded reproducibility, 2D and 3D episodes, and the distributed share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_fewshot.data import CHAOS_CLASSES, CMR_CLASSES, ClassSplit, DistributedEpisodeSampler, EpisodeSampler


def _sampler(store, classes, test_classes, **kwargs):
    return EpisodeSampler(store, ClassSplit(classes, test_classes), **kwargs)


def test_same_seed_same_episodes_other_seed_different(chaos_store, cmr_store):
    for store, classes, test in ((chaos_store, CHAOS_CLASSES, (2, 3)), (cmr_store, CMR_CLASSES, (3,))):
        first = _sampler(store, classes, test, num_episodes=50, seed=7).episodes()
        again = _sampler(store, classes, test, num_episodes=50, seed=7).episodes()
        other = _sampler(store, classes, test, num_episodes=50, seed=8).episodes()
        assert first == again
        assert first != other
        assert sum(a == b for a, b in zip(first, other)) < 5
    sampler = _sampler(chaos_store, CHAOS_CLASSES, (2, 3), num_episodes=20, seed=7)
    assert sampler.episodes(epoch=0) != sampler.episodes(epoch=1)


def test_global_rng_untouched(chaos_store):
    np.random.seed(0)
    torch.manual_seed(0)
    expected_np, expected_torch = np.random.random(), torch.rand(1)
    np.random.seed(0)
    torch.manual_seed(0)
    _sampler(chaos_store, CHAOS_CLASSES, (2, 3), num_episodes=10).episodes()
    assert np.random.random() == expected_np and torch.equal(torch.rand(1), expected_torch)


def test_2d_episode_content(cmr_store, cmr_raw):
    sampler = _sampler(cmr_store, CMR_CLASSES, (3,), n_way=2, k_shot=3, num_episodes=40, seed=1)
    for episode in sampler:
        assert len(episode.classes) == 2 and set(episode.classes) <= {1, 2}
        assert [len(shots) for shots in episode.support] == [3, 3]
        assert episode.query.stop - episode.query.start == 1
        assert (cmr_raw[int(episode.query.volume)][..., episode.query.start] == episode.classes[0]).any()
        for class_id, shots in zip(episode.classes, episode.support):
            for ref in shots:
                assert ref.volume != episode.query.volume  # distinct volumes, as the lineage
                assert (cmr_raw[int(ref.volume)][..., ref.start] == class_id).any()
                assert not (cmr_raw[int(ref.volume)][..., ref.start] == 3).any()  # Setting 2


def test_3d_slabs_and_whole_volumes(chaos_store, chaos_raw):
    slabs = _sampler(chaos_store, CHAOS_CLASSES, (2, 3), spatial_dims=3, depth=8, num_episodes=20, seed=2)
    for episode in slabs:
        for ref in [episode.query, *episode.support[0]]:
            block = chaos_raw[int(ref.volume)][..., ref.start : ref.stop]
            assert ref.stop - ref.start == 8 and ref.stop <= block.shape[-1] + ref.start
            assert (block == episode.classes[0]).any() and not np.isin(block, (2, 3)).any()
    setting1 = EpisodeSampler(chaos_store, ClassSplit(CHAOS_CLASSES, (2, 3), setting=1), spatial_dims=3, num_episodes=5)
    for episode in setting1:
        assert episode.query.start == 0 and episode.query.stop == chaos_raw[int(episode.query.volume)].shape[-1]


def test_setting2_whole_volume_3d_is_refused(chaos_store):
    with pytest.raises(ValueError, match="usable in 0 training volume"):
        _sampler(chaos_store, CHAOS_CLASSES, (2, 3), spatial_dims=3, num_episodes=5)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_distributed_shares_cover_the_episode_list(chaos_store, world):
    sampler = _sampler(chaos_store, CHAOS_CLASSES, (2, 3), num_episodes=10, seed=4)
    shares = [list(DistributedEpisodeSampler(sampler, num_replicas=world, rank=r)) for r in range(world)]
    assert len({len(s) for s in shares}) == 1
    assert sorted(set(i for s in shares for i in s)) == list(range(10))
    if 10 % world == 0:
        assert sum(len(s) for s in shares) == 10
    everything = sampler.episodes()
    assert [sampler.episode(0, i) for i in shares[0]] == [everything[i] for i in shares[0]]


def test_distributed_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        DistributedEpisodeSampler(10, num_replicas=2, rank=2)


def test_too_few_volumes(chaos_store):
    with pytest.raises(ValueError, match="fewer than the 3"):
        _sampler(chaos_store, CHAOS_CLASSES, (2, 3), volume_ids=["1", "2"], k_shot=2)


def test_fold_guards_against_test_leakage(chaos_store):
    from monai_fewshot.data import lineage_folds

    fold = lineage_folds(list(chaos_store))[1]
    sampler = _sampler(chaos_store, CHAOS_CLASSES, (2, 3), fold=fold, num_episodes=30)
    assert sampler.volume_ids == list(fold.train)
    used = {ref.volume for e in sampler for ref in [e.query, *e.support[0]]}
    assert used <= set(fold.train)
    with pytest.raises(ValueError, match=r"\['10'\] are test or validation volumes of fold 1"):
        _sampler(chaos_store, CHAOS_CLASSES, (2, 3), fold=fold, volume_ids=[*fold.train, "10"])


def test_distributed_defaults_from_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        sampler = DistributedEpisodeSampler(7)
        assert (sampler.num_replicas, sampler.rank) == (1, 0) and list(sampler) == list(range(7))
    finally:
        dist.destroy_process_group()
