"""Dataset layout reader and volume loading: real CHAOS/CMR files, and each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.data import CHAOS_CLASSES, VolumeRecord, VolumeStore, load_volume, read_datalist, read_folder
from monai_fewshot.data.protocol import support_slices

CHAOS_IDS = [1, 2, 3, 5, 8, 10, 13, 15, 19, 20, 21, 22, 31, 32, 33, 34, 36, 37, 38, 39]


def test_folder_sorted_by_numeric_id(chaos_dir, cmr_dir):
    records = read_folder(chaos_dir)
    assert [int(r.id) for r in records] == CHAOS_IDS
    assert all(r.image.name == f"image_{r.id}.nii.gz" and r.label.name == f"label_{r.id}.nii.gz" for r in records)
    assert [int(r.id) for r in read_folder(cmr_dir)] == list(range(1, 36))


def test_store_volumes(chaos_store, chaos_raw):
    volume = chaos_store["1"]
    assert volume.image.shape == (1, 256, 256, 37) and volume.image.dtype == np.float32
    assert abs(float(volume.image.mean())) < 1e-3 and abs(float(volume.image.std()) - 1) < 1e-3  # z-score
    np.testing.assert_array_equal(volume.label, chaos_raw[1])
    assert set(np.unique(volume.label)) == {0, 1, 2, 3, 4}


def test_itk_reader_matches_nibabel(cmr_dir):
    record = read_folder(cmr_dir)[0]
    nib_volume = load_volume(record, reader="NibabelReader", normalisation="none")
    itk_volume = load_volume(record, reader="SimpleITKReader", normalisation="none")
    np.testing.assert_array_equal(nib_volume.label, itk_volume.label)
    np.testing.assert_allclose(nib_volume.image, itk_volume.image)
    np.testing.assert_allclose(nib_volume.affine, itk_volume.affine, atol=1e-3)


def test_orientation_and_minmax(cmr_dir):
    record = read_folder(cmr_dir)[0]
    volume = load_volume(record, orientation="RAS", normalisation="minmax")
    assert volume.image.min() == 0 and volume.image.max() == pytest.approx(1)
    assert np.all(np.diag(volume.affine)[:3] > 0)  # RAS: positive diagonal
    assert volume.label.shape == volume.image.shape[1:]


def test_datalist(tmp_path, chaos_dir):
    entries = [{"image": str(chaos_dir / f"image_{i}.nii.gz"), "label": str(chaos_dir / f"label_{i}.nii.gz")} for i in (2, 1)]
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": entries}))
    records = read_datalist(path)
    assert [r.id for r in records] == ["2", "1"]
    assert load_volume(records[1], CHAOS_CLASSES).label.shape == (256, 256, 37)
    with pytest.raises(ValueError, match="validation"):
        read_datalist(path, key="validation")


# ---- bad input: small synthetic NIfTI in tmp_path -------------------------------------------------------------


def _write(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return path


def _pair(folder: Path, label: np.ndarray, image_shape=None, label_affine=None) -> VolumeRecord:
    image = np.random.default_rng(0).normal(size=image_shape or label.shape).astype(np.float32)
    return VolumeRecord(
        "1", _write(folder / "image_1.nii.gz", image), _write(folder / "label_1.nii.gz", label, label_affine)
    )


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        read_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent_folder"):
        read_folder(tmp_path / "absent_folder")


def test_image_without_label(tmp_path):
    _write(tmp_path / "image_3.nii.gz", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(FileNotFoundError, match="label_3.nii.gz"):
        read_folder(tmp_path)
    assert read_folder(tmp_path, require_labels=False)[0].label is None


def test_shape_mismatch_names_file(tmp_path):
    record = _pair(tmp_path, np.zeros((8, 8, 3), np.uint8), image_shape=(8, 8, 4))
    with pytest.raises(ValueError, match=r"label_1\.nii\.gz has shape \(8, 8, 3\)"):
        load_volume(record)


def test_affine_mismatch_names_file(tmp_path):
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    record = _pair(tmp_path, np.zeros((8, 8, 3), np.uint8), label_affine=shifted)
    with pytest.raises(ValueError, match=r"label_1\.nii\.gz has a different affine"):
        load_volume(record)


def test_unreadable_file_names_file(tmp_path):
    label = _write(tmp_path / "label_1.nii.gz", np.zeros((4, 4, 2), np.uint8))
    broken = tmp_path / "image_1.nii.gz"
    broken.write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ValueError, match=r"cannot read .*image_1\.nii\.gz"):
        load_volume(VolumeRecord("1", broken, label))
    with pytest.raises(FileNotFoundError, match="image_9.nii.gz"):
        load_volume(VolumeRecord("9", tmp_path / "image_9.nii.gz", label))


def test_label_value_outside_class_map_names_file(tmp_path):
    label = np.zeros((8, 8, 3), np.uint8)
    label[2:4, 2:4, 1] = 7
    record = _pair(tmp_path, label)
    with pytest.raises(ValueError, match=r"label_1\.nii\.gz holds label value\(s\) \[7\]"):
        load_volume(record, CHAOS_CLASSES)


def test_class_absent_from_volume_names_file(tmp_path):
    label = np.zeros((8, 8, 3), np.uint8)
    label[2:4, 2:4, 1] = 1
    store = VolumeStore([_pair(tmp_path, label)], CHAOS_CLASSES)
    with pytest.raises(ValueError, match=r"label value 4 is absent from .*label_1\.nii\.gz"):
        support_slices(store["1"].label, 4, name=str(store.records["1"].label))


def test_truncated_real_file_names_file(tmp_path, cmr_dir):
    truncated = tmp_path / "image_1.nii.gz"
    truncated.write_bytes((cmr_dir / "image_1.nii.gz").read_bytes()[:20000])
    with pytest.raises(ValueError, match=r"cannot read .*image_1\.nii\.gz"):
        load_volume(VolumeRecord("1", truncated, cmr_dir / "label_1.nii.gz"))
