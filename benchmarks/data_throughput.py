"""Episodes per second from the sampler + transforms, and supervoxel time per CHAOS volume.

Reads the real CHAOS volumes in ../shared/data (a folder beside the repository). Cases:
- 2D 1-way 1-shot episodes (Setting 2, kidneys held out, fold 0's training volumes, 256x256), with and without
  the lineage augmentation, through a DataLoader (batch 1) with 0 and 2 workers; the main process runs with
  one torch thread (DataLoader workers do too), since the augmentations oversubscribe a small CPU otherwise.
- supervoxel pseudo-label episodes (SLIC, adjacent slices, with augmentation), 0 and 2 workers.
- supervoxels per CHAOS volume: 3D SLIC (our default: in-plane downsample 2, 400 segments), 3D SLIC at full
  resolution, and 2D Felzenszwalb slice by slice; seconds per volume over the first ``--sv-volumes`` volumes.

    python benchmarks/data_throughput.py [--episodes 200] [--sv-volumes 3] [--out benchmarks/results/data_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monai_fewshot.data import (  # noqa: E402
    CHAOS_CLASSES,
    ClassSplit,
    EpisodeDataset,
    EpisodeSampler,
    SupervoxelCache,
    SupervoxelEpisodeSampler,
    VolumeStore,
    compute_supervoxels,
    lineage_folds,
    read_folder,
)
from monai_fewshot.transforms import lineage_augmentations  # noqa: E402


def episodes_per_second(dataset, workers: int, episodes: int) -> float:
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, persistent_workers=False)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start, first item
    start = time.perf_counter()
    count = 0
    for _ in iterator:
        count += 1
        if count >= episodes - 1:
            break
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "chaos_t2_mri"))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--sv-volumes", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.perf_counter()
    store = VolumeStore(read_folder(args.data), CHAOS_CLASSES)
    for volume_id in store:
        store[volume_id]
    load_s = (time.perf_counter() - start) / len(store)
    fold = lineage_folds(list(store))[0]
    sampler = EpisodeSampler(store, ClassSplit(CHAOS_CLASSES, (2, 3)), volume_ids=fold.train, num_episodes=args.episodes, seed=0)

    rows = []
    for name, transform in (("2D episodes, no augmentation", None), ("2D episodes + lineage augmentation", lineage_augmentations())):
        dataset = EpisodeDataset(store, sampler, transform=transform)
        for workers in (0, 2):
            rows.append({"case": name, "workers": workers, "episodes_per_s": episodes_per_second(dataset, workers, args.episodes)})

    with tempfile.TemporaryDirectory() as cache_dir:
        cache = SupervoxelCache(cache_dir, method="slic")
        images = VolumeStore(read_folder(args.data, require_labels=False), load_labels=False)
        ids = list(images)[: args.sv_volumes]
        timings: dict[str, list[float]] = {"slic (3D, downsample 2, 400 segments)": [], "slic (3D, full resolution, 400 segments)": [], "felzenszwalb (2D per slice)": []}
        maps = {}
        for volume_id in ids:
            volume = images[volume_id]
            t0 = time.perf_counter()
            maps[volume_id] = cache.get(volume)
            timings["slic (3D, downsample 2, 400 segments)"].append(time.perf_counter() - t0)
            spacing = (1.25, 1.25, 7.7)
            t0 = time.perf_counter()
            compute_supervoxels(volume.image, "slic", spacing, downsample=1)
            timings["slic (3D, full resolution, 400 segments)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            compute_supervoxels(volume.image, "felzenszwalb", spacing)
            timings["felzenszwalb (2D per slice)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for volume_id in ids:
            cache.get(images[volume_id])
        cached_s = (time.perf_counter() - t0) / len(ids)
        sv_sampler = SupervoxelEpisodeSampler(maps, mode="adjacent", num_episodes=args.episodes, seed=0)
        sv_dataset = EpisodeDataset(images, sv_sampler, transform=lineage_augmentations(), label_maps=maps)
        for workers in (0, 2):
            rows.append({"case": "supervoxel episodes + augmentation", "workers": workers, "episodes_per_s": episodes_per_second(sv_dataset, workers, args.episodes)})

    supervoxel_rows = [
        {"method": method, "volumes": len(values), "seconds_per_volume": statistics.mean(values)} for method, values in timings.items()
    ]
    supervoxel_rows.append({"method": "slic, read from the disk cache", "volumes": len(ids), "seconds_per_volume": cached_s})

    print(f"{'case':<40} {'workers':>7} {'episodes/s':>11}")
    for row in rows:
        print(f"{row['case']:<40} {row['workers']:>7} {row['episodes_per_s']:>11.1f}")
    print()
    print(f"{'supervoxels per CHAOS volume':<44} {'volumes':>7} {'s/volume':>9}")
    for row in supervoxel_rows:
        print(f"{row['method']:<44} {row['volumes']:>7} {row['seconds_per_volume']:>9.2f}")
    print(f"\nvolume load (LoadImaged + checks + z-score): {load_s:.2f} s/volume")

    result = {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
        "settings": {"episodes": args.episodes, "batch_size": 1, "torch_threads_main": 1, "spatial": [256, 256]},
        "episodes": rows,
        "supervoxels": supervoxel_rows,
        "load_seconds_per_volume": load_s,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
