"""The offline default dataset (MNI152 from the nilearn wheel) runs through the episodic pipeline."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from torch.utils.data import DataLoader

from monai_fewshot.data import (
    ClassSplit, EpisodeDataset, EpisodeSampler, VolumeStore, lineage_folds, read_folder, write_mni152_cohort,
)
from monai_fewshot.data.demo import DEMO_CLASSES, load_mni152_demo, write_mni152_folder
from monai_fewshot.data.protocol import query_chunks, scored_slices, support_slices
from monai_fewshot.transforms import lineage_augmentations


def test_mni152_folder_episodes(tmp_path, one_torch_thread):
    records = read_folder(write_mni152_folder(tmp_path))
    assert [r.id for r in records] == ["1"]
    store = VolumeStore(records, DEMO_CLASSES)
    brain = store["1"]
    assert brain.image.shape == (1, 99, 117, 95)
    assert set(np.unique(brain.label)) == {0, 1, 2}
    sampler = EpisodeSampler(
        store, ClassSplit(DEMO_CLASSES, (1,), setting=1), num_episodes=8, seed=0, distinct_volumes=False
    )
    episodes = sampler.episodes()
    assert any(e.query.start != e.support[0][0].start for e in episodes)
    batch = next(iter(DataLoader(EpisodeDataset(store, sampler, transform=lineage_augmentations()), batch_size=4)))
    assert batch["support"].shape == (4, 1, 1, 99, 117) and batch["query_label"].shape == (4, 1, 99, 117)
    assert batch["support_mask"].sum() > 0
    chunks = query_chunks(scored_slices(brain.label, 2))
    assert sum(c.size for c in chunks) == scored_slices(brain.label, 2).size
    assert support_slices(brain.label, 2).size == 3


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_mni152_cohort(tmp_path_factory.mktemp("cohort"), subjects=10, seed=0)


def test_cohort_is_a_protocol_dataset(cohort):
    records = read_folder(cohort)
    assert [r.id for r in records] == [str(n) for n in range(1, 11)]
    folds = lineage_folds([r.id for r in records])
    assert [len(fold.queries) for fold in folds] == [2] * 5  # the lineage's folds overlap by one volume
    store = VolumeStore(records, DEMO_CLASSES)
    first, second = store["1"], store["2"]
    assert first.image.shape == second.image.shape == (1, 99, 117, 95)
    assert np.allclose(first.affine, second.affine)
    assert not np.array_equal(first.label, second.label)  # subjects differ in shape, not only in noise
    for volume in (first, second):  # labels move with their image: white matter is brighter than grey in T1
        raw = np.asarray(nib.load(volume.record.image).dataobj)
        label = np.asarray(nib.load(volume.record.label).dataobj)
        assert raw[label == 2].mean() > raw[label == 1].mean() + 0.1
        assert 0.9 < (label == 2).sum() / (np.asarray(load_mni152_demo()["label"][0]) == 2).sum() < 1.1


def test_cohort_is_reproducible_and_reused(cohort, tmp_path):
    again = write_mni152_cohort(tmp_path / "again", subjects=10, seed=0)
    for name in ("image_3.nii.gz", "label_7.nii.gz"):
        assert np.array_equal(np.asarray(nib.load(cohort / name).dataobj), np.asarray(nib.load(again / name).dataobj))
    stamp = (again / "image_1.nii.gz").stat().st_mtime_ns
    assert write_mni152_cohort(again, subjects=10, seed=0) == again
    assert (again / "image_1.nii.gz").stat().st_mtime_ns == stamp  # finished cohort: nothing rewritten


def test_cohort_needs_ten_subjects(tmp_path):
    with pytest.raises(ValueError, match="subjects must be at least 10"):
        write_mni152_cohort(tmp_path, subjects=5)
    assert not any(tmp_path.iterdir())
