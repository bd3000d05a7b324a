"""The offline default dataset (MNI152 from the nilearn wheel) runs through the episodic pipeline."""

from __future__ import annotations

import numpy as np
from torch.utils.data import DataLoader

from monai_fewshot.data import ClassSplit, EpisodeDataset, EpisodeSampler, VolumeStore, read_folder
from monai_fewshot.data.demo import DEMO_CLASSES, write_mni152_folder
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
