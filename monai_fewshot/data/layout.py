"""Dataset layouts: a folder of ``image_N`` / ``label_N`` NIfTI pairs or a MONAI datalist JSON, and volume loading.

Volumes are read through MONAI ``LoadImaged`` (its nibabel reader or our SimpleITK reader), optionally reoriented
(``Orientationd``) and intensity-normalised, and checked at the boundary: an image and its label must have
the same shape and affine, a label may only hold the values of its class map, and every failure names the
file. Axial slices are the last spatial axis (``(H, W, D)`` arrays, as the NIfTI files store them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_fewshot.registry import CHAOS_CLASSES, CMR_CLASSES  # noqa: F401 - defined once there, re-exported here
from monai_fewshot.transforms.intensity import robust_zscore

__all__ = [
    "CHAOS_CLASSES",
    "CMR_CLASSES",
    "INTENSITY_NORMALISATIONS",
    "READERS",
    "Volume",
    "VolumeRecord",
    "VolumeStore",
    "load_volume",
    "read_datalist",
    "read_folder",
]

INTENSITY_NORMALISATIONS = ("zscore", "minmax", "none")
READERS = ("NibabelReader", "SimpleITKReader")

_NIFTI = re.compile(r"^(image|label)_(\d+)\.nii(\.gz)?$")


@dataclass(frozen=True)
class VolumeRecord:
    """One subject: its id (the ``N`` of ``image_N``), image path and label path (``None`` when unlabelled)."""

    id: str
    image: Path
    label: Path | None = None


@dataclass
class Volume:
    """A loaded subject: ``image`` (C, H, W, D) float32, ``label`` (H, W, D) uint8 or ``None``, its affine."""

    id: str
    image: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    record: VolumeRecord

    @property
    def depth(self) -> int:
        return int(self.image.shape[-1])


def _numeric_key(record: VolumeRecord) -> tuple[int, str]:
    return (int(record.id), record.id) if record.id.isdigit() else (1 << 62, record.id)


def read_folder(path: str | Path, require_labels: bool = True) -> list[VolumeRecord]:
    """List the ``image_N`` / ``label_N`` NIfTI pairs of a folder, sorted by the numeric id ``N``.

    Args:
        path: folder holding ``image_N.nii.gz`` and ``label_N.nii.gz`` (``.nii`` also accepted).
        require_labels: raise when an image has no label (default True); False gives ``label=None`` records
            (self-supervised training reads images only).

    Raises:
        FileNotFoundError: the folder does not exist, or an image lacks its label.
        ValueError: the folder holds no ``image_N`` NIfTI file.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {folder} does not exist.")
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for entry in folder.iterdir():
        match = _NIFTI.match(entry.name)
        if match:
            (images if match.group(1) == "image" else labels)[match.group(2)] = entry
    if not images:
        raise ValueError(f"dataset folder {folder} holds no image_N.nii(.gz) file (expected image_N / label_N pairs).")
    records = []
    for key, image in images.items():
        label = labels.get(key)
        if label is None and require_labels:
            raise FileNotFoundError(f"{image} has no label: expected {folder / f'label_{key}.nii.gz'}.")
        records.append(VolumeRecord(id=key, image=image, label=label))
    return sorted(records, key=_numeric_key)


def read_datalist(path: str | Path, key: str = "training", require_labels: bool = True) -> list[VolumeRecord]:
    """Read a MONAI (Decathlon-style) datalist JSON: ``{key: [{"image": ..., "label": ...}, ...]}``.

    Relative paths are resolved against the JSON's folder, as ``monai.data.load_decathlon_datalist`` does.
    A record's id is its ``"id"`` entry, else the ``N`` of an ``image_N`` file name, else its position.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"datalist {source} does not exist.")
    try:
        content = json.loads(source.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"datalist {source} is not valid JSON: {error}") from error
    if key not in content or not isinstance(content[key], list):
        raise ValueError(f"datalist {source} has no list under key {key!r} (keys: {sorted(content)}).")
    if not content[key]:
        raise ValueError(f"datalist {source} key {key!r} is an empty list.")
    records = []
    for position, item in enumerate(content[key]):
        if "image" not in item:
            raise ValueError(f"datalist {source} entry {position} of {key!r} has no 'image'.")
        image = (source.parent / item["image"]).resolve()
        label = (source.parent / item["label"]).resolve() if item.get("label") else None
        if label is None and require_labels:
            raise ValueError(f"datalist {source} entry {position} ({image.name}) has no 'label'.")
        match = _NIFTI.match(image.name)
        record_id = str(item.get("id", match.group(2) if match else position))
        records.append(VolumeRecord(id=record_id, image=image, label=label))
    return records


def _read(path: Path, reader: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one file through ``LoadImaged``; return (channel-first array, affine)."""
    from monai.transforms import LoadImaged

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    if reader == "SimpleITKReader":
        from monai_fewshot.data.readers import SimpleITKReader

        loader = LoadImaged(keys="x", reader=SimpleITKReader(), image_only=True, ensure_channel_first=True)
    else:
        loader = LoadImaged(keys="x", reader=reader, image_only=True, ensure_channel_first=True)
    try:
        data = loader({"x": str(path)})["x"]
    except Exception as error:  # the readers raise RuntimeError/OSError/EOFError/...: name the file once
        raise ValueError(f"cannot read {path} with {reader}: {type(error).__name__}: {error}") from error
    return data, np.asarray(data.affine, dtype=np.float64)


def load_volume(
    record: VolumeRecord,
    classes: Mapping[int, str] | None = None,
    reader: str = "NibabelReader",
    orientation: str | None = None,
    normalisation: str = "zscore",
    load_label: bool = True,
) -> Volume:
    """Load and check one subject.

    Args:
        record: the subject's files.
        classes: the dataset's class map ``{value: name}``; when given, a label value outside it (other than 0)
            raises. Defaults to None (no check).
        reader: ``"NibabelReader"`` (default) or ``"SimpleITKReader"`` (``data/readers.py``; MONAI's own
            ``ITKReader`` needs the ``itk`` package, which is not a dependency).
        orientation: axis codes for ``Orientationd`` (e.g. ``"RAS"``); None keeps the file's orientation
            (default, which is the slice geometry of the few-shot literature).
        normalisation: ``"zscore"`` per volume after clipping to percentiles (default: the lineage's, made robust to
            outliers: :func:`~monai_fewshot.transforms.robust_zscore`), ``"minmax"`` to [0, 1], or ``"none"``.
        load_label: False reads the image only (self-supervised training never touches a label).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: an unreadable file, NaN or infinite intensities, image/label shape or affine mismatch, a label value not in ``classes``,
            an unknown ``reader`` / ``normalisation``.
    """
    if normalisation not in INTENSITY_NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {INTENSITY_NORMALISATIONS}, got {normalisation!r}.")
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}.")
    image, affine = _read(Path(record.image), reader)
    label = None
    if load_label:
        if record.label is None:
            raise FileNotFoundError(f"{record.image} has no label file in its record.")
        label, label_affine = _read(Path(record.label), reader)
        if tuple(label.shape[1:]) != tuple(image.shape[1:]):
            raise ValueError(
                f"{record.label} has shape {tuple(label.shape[1:])} but its image {record.image} has "
                f"{tuple(image.shape[1:])}: an image and its label must share the voxel grid."
            )
        if not np.allclose(label_affine, affine, atol=1e-3):
            raise ValueError(
                f"{record.label} has a different affine from its image {record.image}:\n"
                f"{np.round(label_affine, 4)}\nvs\n{np.round(affine, 4)}"
            )
    if orientation is not None:
        from monai.transforms import Orientationd

        keys = ["image"] + (["label"] if label is not None else [])
        data = Orientationd(keys=keys, axcodes=orientation, labels=(("L", "R"), ("P", "A"), ("I", "S")))({"image": image, "label": label} if label is not None else {"image": image})
        image, label = data["image"], data.get("label")
        affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(np.asarray(image))):
        raise ValueError(f"{record.image} holds NaN or infinite intensities.")
    if normalisation == "zscore":
        array = robust_zscore(np.asarray(image), name=str(record.image))
    else:
        array = np.asarray(image, dtype=np.float32)
    if normalisation == "minmax":
        array = (array - array.min()) / max(float(array.max() - array.min()), 1e-8)
    label_array = None
    if label is not None:
        label_array = np.asarray(label[0])
        if not np.allclose(label_array, np.round(label_array)) or label_array.min() < 0 or label_array.max() > 255:
            raise ValueError(f"{record.label} must hold integer class values in 0..255.")
        label_array = label_array.astype(np.uint8)
        if classes is not None:
            unknown = sorted(set(np.unique(label_array).tolist()) - set(classes) - {0})
            if unknown:
                raise ValueError(
                    f"{record.label} holds label value(s) {unknown} that are not in the class map {dict(classes)}."
                )
    return Volume(id=record.id, image=np.ascontiguousarray(array), label=label_array, affine=affine, record=record)


class VolumeStore(Mapping):
    """Subjects loaded once and kept in memory, by id; the per-class slice tables the samplers need.

    Args:
        records: the subjects (``read_folder`` / ``read_datalist``).
        classes: the class map ``{value: name}``; labels are checked against it.
        load_labels: False for image-only (self-supervised) use.
        **load_kwargs: ``reader``, ``orientation``, ``normalisation`` for ``load_volume``.
    """

    def __init__(
        self,
        records: Sequence[VolumeRecord],
        classes: Mapping[int, str] | None = None,
        load_labels: bool = True,
        **load_kwargs,
    ) -> None:
        if not records:
            raise ValueError("records is empty: give at least one VolumeRecord.")
        ids = [record.id for record in records]
        if len(set(ids)) != len(ids):
            raise ValueError(f"record ids must be unique, got {ids}.")
        self.records = {record.id: record for record in records}
        self.classes = dict(classes) if classes is not None else None
        self.load_labels = load_labels
        self.load_kwargs = load_kwargs
        self._volumes: dict[str, Volume] = {}

    def __getitem__(self, volume_id: str) -> Volume:
        if volume_id not in self.records:
            raise KeyError(f"volume id {volume_id!r} is not in this store (ids: {list(self.records)}).")
        if volume_id not in self._volumes:
            self._volumes[volume_id] = load_volume(
                self.records[volume_id], self.classes, load_label=self.load_labels, **self.load_kwargs
            )
        return self._volumes[volume_id]

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def class_slices(self, volume_id: str, class_id: int) -> np.ndarray:
        """Axial indices of the slices of ``volume_id`` that contain ``class_id`` (empty when absent)."""
        label = self[volume_id].label
        if label is None:
            raise ValueError(f"volume {self.records[volume_id].image} was loaded without its label.")
        return np.flatnonzero((label == class_id).any(axis=(0, 1)))
