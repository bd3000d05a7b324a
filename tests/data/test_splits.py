"""Setting 1 / Setting 2 on the real CHAOS labels: the ANY rule leaves no training slice with any test class."""

from __future__ import annotations

import numpy as np
import pytest

from monai_fewshot.data import CHAOS_CLASSES, CHAOS_SETTING2_TEST_CLASSES, ClassSplit, EpisodeSampler, excluded_slices, lineage_folds


@pytest.mark.parametrize("group", ["lower", "upper"])
def test_setting2_no_training_slice_with_any_test_class(chaos_store, chaos_raw, group):
    test_classes = CHAOS_SETTING2_TEST_CLASSES[group]
    split = ClassSplit(CHAOS_CLASSES, test_classes, setting=2)
    train_ids = lineage_folds(list(chaos_store))[0].train
    sampler = EpisodeSampler(chaos_store, split, volume_ids=train_ids, num_episodes=300, seed=3)
    # every slice the sampler could ever draw, checked against labels read independently with nibabel
    for class_id, volumes in sampler.candidates.items():
        assert class_id not in test_classes
        for volume_id, starts in volumes.items():
            label = chaos_raw[int(volume_id)]
            for z in starts:
                assert not np.isin(label[..., z], test_classes).any(), (group, volume_id, z)
                assert (label[..., z] == class_id).any()
    for episode in sampler:
        for ref in [episode.query, *(r for shots in episode.support for r in shots)]:
            assert not np.isin(chaos_raw[int(ref.volume)][..., ref.start : ref.stop], test_classes).any()


def test_any_rule_removes_more_than_the_lineage_and_rule(chaos_raw):
    kidneys = CHAOS_SETTING2_TEST_CLASSES["lower"]
    removed_any = removed_and = one_kidney_kept_by_and = 0
    for label in chaos_raw.values():
        any_rule, and_rule = excluded_slices(label, kidneys, "any"), excluded_slices(label, kidneys, "and")
        assert np.all(and_rule <= any_rule)
        removed_any, removed_and = removed_any + any_rule.sum(), removed_and + and_rule.sum()
        has = [(label == c).any(axis=(0, 1)) for c in kidneys]
        one_kidney_kept_by_and += int(((has[0] ^ has[1]) & ~and_rule).sum())
    assert (removed_any, removed_and) == (324, 261)  # the README's figures (718 CHAOS slices)
    assert one_kidney_kept_by_and == removed_any - removed_and > 0  # the slices the AND rule wrongly keeps


def test_setting1_keeps_every_slice(chaos_store):
    split = ClassSplit(CHAOS_CLASSES, (2, 3), setting=1)
    label = chaos_store["1"].label
    assert split.allowed_slices(label).all()
    assert split.train_classes == (1, 4)


def test_split_validation():
    with pytest.raises(ValueError, match="not in the class map"):
        ClassSplit(CHAOS_CLASSES, (5,))
    with pytest.raises(ValueError, match="setting must be 1 or 2"):
        ClassSplit(CHAOS_CLASSES, (2,), setting=3)
