"""Session fixtures for the data tests: the real CHAOS and CMR volumes, loaded once."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.data import CHAOS_CLASSES, CMR_CLASSES, VolumeStore, read_folder


@pytest.fixture(scope="session")
def chaos_store(chaos_dir: Path) -> VolumeStore:
    store = VolumeStore(read_folder(chaos_dir), CHAOS_CLASSES)
    for volume_id in store:
        store[volume_id]
    return store


@pytest.fixture(scope="session")
def cmr_store(cmr_dir: Path) -> VolumeStore:
    store = VolumeStore(read_folder(cmr_dir), CMR_CLASSES)
    for volume_id in store:
        store[volume_id]
    return store


def raw_labels(folder: Path) -> dict[int, np.ndarray]:
    """Labels read straight with nibabel, keyed by the numeric id: the tests' independent view of the data."""
    labels = {}
    for path in folder.glob("label_*.nii.gz"):
        labels[int(re.findall(r"\d+", path.name)[0])] = np.asarray(nib.load(path).dataobj)
    return labels


@pytest.fixture(scope="session")
def chaos_raw(chaos_dir: Path) -> dict[int, np.ndarray]:
    return raw_labels(chaos_dir)


@pytest.fixture(scope="session")
def cmr_raw(cmr_dir: Path) -> dict[int, np.ndarray]:
    return raw_labels(cmr_dir)


@pytest.fixture
def one_torch_thread():
    """Augmenting 256x256 slices with several torch threads on a small shared CPU is slower than with one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
