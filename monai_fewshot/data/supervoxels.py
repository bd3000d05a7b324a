"""Supervoxel self-supervision: pseudo-labels computed once, cached on disk, and episodes drawn from them.

Methods (scikit-image):
- ``"slic"``: 3D SLIC over the volume with its voxel spacing (a supervoxel spans adjacent slices), optionally
  on an in-plane downsampled grid (``downsample=2`` is about 3x faster; labels are upsampled by nearest
  neighbour). Used for ``mode="adjacent"`` episodes.
- ``"felzenszwalb"``: 2D Felzenszwalb superpixels slice by slice (SSL-ALPNet's choice), ids unique across
  the volume; a superpixel never spans two slices, so these serve ``mode="augment"`` episodes.
Only the body (voxels above the volume's minimum intensity) is segmented; 0 is background and never a class.
Measured times are in the README (``benchmarks/data_throughput.py``).

The cache key is the sha256 of the image file's bytes plus the method's parameters; a file is written to a
temporary name and renamed (atomic on POSIX), so concurrent workers never read half a file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_fewshot.data.sampler import Episode, SlabRef
from monai_fewshot.utils import atomic_path

__all__ = ["SUPERVOXEL_METHODS", "SupervoxelCache", "SupervoxelEpisodeSampler", "compute_supervoxels"]

SUPERVOXEL_METHODS = ("slic", "felzenszwalb")
_DEFAULTS = {
    "slic": {"n_segments": 400, "compactness": 0.1, "downsample": 2},
    "felzenszwalb": {"scale": 5.0, "sigma": 0.8, "min_size": 200},
}


def _params(method: str, params: Mapping | None) -> dict:
    if method not in SUPERVOXEL_METHODS:
        raise ValueError(f"method must be one of {SUPERVOXEL_METHODS}, got {method!r}.")
    merged = dict(_DEFAULTS[method])
    unknown = sorted(set(params or {}) - set(merged))
    if unknown:
        raise ValueError(f"unknown {method} parameter(s) {unknown}; known: {sorted(merged)}.")
    merged.update(params or {})
    return merged


def compute_supervoxels(
    image: np.ndarray, method: str = "slic", spacing: Sequence[float] = (1.0, 1.0, 1.0), **params
) -> np.ndarray:
    """Supervoxels of an (H, W, D) (or (1, H, W, D)) image: int32 ids from 1, 0 outside the body.

    Args:
        image: the volume (any intensity scale; it is min-max scaled first).
        method: ``"slic"`` (3D, default) or ``"felzenszwalb"`` (per slice).
        spacing: voxel size (mm) along (H, W, D), used by SLIC.
        **params: ``n_segments``, ``compactness``, ``downsample`` (SLIC) or ``scale``, ``sigma``, ``min_size``
            (Felzenszwalb); defaults in ``_DEFAULTS``.
    """
    from skimage.segmentation import felzenszwalb, slic

    options = _params(method, params)
    volume = np.asarray(image, dtype=np.float32)
    if volume.ndim == 4 and volume.shape[0] == 1:
        volume = volume[0]
    if volume.ndim != 3:
        raise ValueError(f"image must be (H, W, D) or (1, H, W, D), got shape {np.shape(image)}.")
    volume = (volume - volume.min()) / max(float(volume.max() - volume.min()), 1e-8)
    body = volume > 0
    if method == "slic":
        step = int(options["downsample"])
        if step < 1:
            raise ValueError(f"downsample must be >= 1, got {step}.")
        small = slic(
            volume[::step, ::step],
            n_segments=int(options["n_segments"]),
            compactness=float(options["compactness"]),
            spacing=(spacing[0] * step, spacing[1] * step, spacing[2]),
            mask=body[::step, ::step],
            channel_axis=None,
            start_label=1,
        )
        labels = np.repeat(np.repeat(small, step, axis=0), step, axis=1)[: volume.shape[0], : volume.shape[1]]
        labels = np.where(body, labels, 0)
    else:
        labels = np.zeros(volume.shape, dtype=np.int64)
        offset = 0
        for z in range(volume.shape[-1]):
            segments = felzenszwalb(
                volume[..., z], scale=float(options["scale"]), sigma=float(options["sigma"]), min_size=int(options["min_size"])
            )
            segments = np.where(body[..., z], segments + 1 + offset, 0)
            labels[..., z] = segments
            offset = int(segments.max(initial=offset))
    # renumber densely 1..n
    _, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(labels.shape)
    if not (labels == 0).any():
        dense = dense + 1
    return dense.astype(np.int32)


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class SupervoxelCache:
    """Supervoxels computed once per (image file content, method, parameters) and kept in ``cache_dir``.

    Args:
        cache_dir: folder for the ``.npy`` files (created).
        method: ``"slic"`` or ``"felzenszwalb"``.
        **params: the method's parameters (see ``compute_supervoxels``).

    Example:
        >>> cache = SupervoxelCache("~/.cache/monai_fewshot/supervoxels", method="slic")
        >>> maps = {vid: cache.get(store[vid]) for vid in store}   # computes once, then reads
    """

    def __init__(self, cache_dir: str | Path, method: str = "slic", **params) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.method, self.params = method, _params(method, params)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, image_path: str | Path) -> Path:
        image_path = Path(image_path)
        if not image_path.is_file():
            raise FileNotFoundError(f"{image_path} does not exist.")
        key = hashlib.sha256(json.dumps([self.method, self.params], sort_keys=True).encode()).hexdigest()[:12]
        stem = image_path.name.split(".")[0]
        return self.cache_dir / f"{stem}-{_file_hash(image_path)}-{self.method}-{key}.npy"

    def get(self, volume) -> np.ndarray:
        """The supervoxels of a loaded ``Volume`` (its image; its label is never read)."""
        target = self.path_for(volume.record.image)
        if target.is_file():
            return np.load(target)
        spacing = tuple(float(s) for s in np.sqrt((np.asarray(volume.affine)[:3, :3] ** 2).sum(axis=0)))
        labels = compute_supervoxels(volume.image, self.method, spacing, **self.params)
        with atomic_path(target) as temporary:
            np.save(temporary, labels)
        return labels


class SupervoxelEpisodeSampler:
    """Seeded 1-way 1-shot pseudo-label episodes from supervoxel maps; never reads a real label.

    ``mode="adjacent"``: support and query are adjacent axial slices (z, z + 1 in random order) that share a
    supervoxel covering at least ``min_size`` pixels on both. ``mode="augment"``: support and query are the same
    slice (a supervoxel of at least ``min_size`` pixels on it); the episode dataset's transform, drawn with a
    different seed for each, makes them two augmentations. With ``spatial_dims=3`` the same holds for slabs of
    ``depth`` slices (adjacent: slabs ``s:s+depth`` and ``s+1:s+1+depth``; ``min_size`` counts voxels in a slab).

    Args:
        label_maps: ``{volume id: (H, W, D) int supervoxels}``.
        mode: ``"adjacent"`` (default) or ``"augment"``.
        min_size: minimum supervoxel size in pixels (voxels for slabs) in each slice or slab used (default 200).
        num_episodes: episodes per epoch (default 1000).
        seed: generator seed (default 0).
        spatial_dims: 2 (slices, default) or 3 (slabs).
        depth: slab depth in slices for ``spatial_dims=3`` (default 8).
        allowed_slices: optional ``{volume id: boolean (D,)}``, the slices episodes may use; for Setting 2 pass
            ``ClassSplit.allowed_slices(label)`` (SSL-ALPNet removes the slices with test classes from
            self-supervised training too). The masks still come from the supervoxels only.
    """

    def __init__(
        self,
        label_maps: Mapping[str, np.ndarray],
        mode: str = "adjacent",
        min_size: int = 200,
        num_episodes: int = 1000,
        seed: int = 0,
        spatial_dims: int = 2,
        depth: int = 8,
        allowed_slices: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if mode not in ("adjacent", "augment"):
            raise ValueError(f"mode must be 'adjacent' or 'augment', got {mode!r}.")
        if num_episodes < 1 or min_size < 1:
            raise ValueError(f"num_episodes and min_size must be >= 1, got {num_episodes}, {min_size}.")
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}.")
        if not label_maps:
            raise ValueError("label_maps is empty: give at least one volume's supervoxels.")
        self.mode, self.min_size, self.num_episodes, self.seed = mode, min_size, num_episodes, seed
        self.spatial_dims, self.depth = spatial_dims, (1 if spatial_dims == 2 else depth)
        self.epoch = 0
        self.volume_ids: list[str] = []
        self.candidates: list[np.ndarray] = []  # per volume: (n, 2) array of (slab start, supervoxel id)
        if allowed_slices is not None:
            missing = sorted(set(label_maps) - set(allowed_slices))
            if missing:
                raise ValueError(f"allowed_slices has no entry for volume(s) {missing}.")
        for volume_id in sorted(label_maps):
            allowed = None if allowed_slices is None else np.asarray(allowed_slices[volume_id], dtype=bool)
            pairs = self._pairs(np.asarray(label_maps[volume_id]), allowed)
            if pairs.size:
                self.volume_ids.append(volume_id)
                self.candidates.append(pairs)
        if not self.volume_ids:
            where = "slice" if self.depth == 1 else f"slab of {self.depth} slices"
            raise ValueError(
                f"no supervoxel covers {min_size} {'pixels' if self.depth == 1 else 'voxels'} on "
                f"{'two adjacent ' + where + 's' if mode == 'adjacent' else 'a ' + where} in any of the volumes "
                f"{sorted(label_maps)}; lower min_size or use larger supervoxels."
            )

    def _pairs(self, supervoxels: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        count = int(supervoxels.max()) + 1
        if supervoxels.shape[-1] < self.depth:
            return np.zeros((0, 2), dtype=np.int64)
        if allowed is not None:
            if allowed.shape != (supervoxels.shape[-1],):
                raise ValueError(f"allowed_slices entry has shape {allowed.shape}, expected ({supervoxels.shape[-1]},).")
            supervoxels = np.where(allowed, supervoxels, 0)  # a removed slice contributes no area
        areas = np.stack([np.bincount(supervoxels[..., z].ravel(), minlength=count) for z in range(supervoxels.shape[-1])])
        cumulative = np.concatenate([np.zeros((1, count), dtype=np.int64), np.cumsum(areas, axis=0)])
        slabs = cumulative[self.depth :] - cumulative[: -self.depth]  # (D - depth + 1, count)
        big = slabs >= self.min_size
        big[:, 0] = False
        if allowed is not None:  # every slice of a slab must be allowed
            ok_sum = np.concatenate([[0], np.cumsum(allowed)])
            big &= (ok_sum[self.depth :] - ok_sum[: -self.depth] == self.depth)[:, None]
        ok = big[:-1] & big[1:] if self.mode == "adjacent" else big
        return np.argwhere(ok)

    def __len__(self) -> int:
        return self.num_episodes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def episode(self, epoch: int, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, epoch, index])
        v = int(rng.integers(len(self.volume_ids)))
        z, supervoxel = (int(x) for x in self.candidates[v][rng.integers(len(self.candidates[v]))])
        volume_id = self.volume_ids[v]
        if self.mode == "adjacent":
            support_z, query_z = (z, z + 1) if rng.integers(2) == 0 else (z + 1, z)
        else:
            support_z = query_z = z
        return Episode(
            classes=(supervoxel,),
            support=((SlabRef(volume_id, support_z, support_z + self.depth),),),
            query=SlabRef(volume_id, query_z, query_z + self.depth),
            seed=int(rng.integers(2**31)),
            pseudo=True,
        )

    def episodes(self, epoch: int | None = None) -> list[Episode]:
        epoch = self.epoch if epoch is None else epoch
        return [self.episode(epoch, i) for i in range(self.num_episodes)]
