"""A labelled support volume -> the organ in another patient's volume: whole-volume 3D Dice (every slice scored).

The protocol's folds, support volumes and query volumes (:func:`~monai_fewshot.data.builders.dataset_folds`, as
the evaluate bundle has them), every class: :func:`~monai_fewshot.inferers.segment_from_support_volume` (what
``monai-fewshot segment --support`` runs: locate the organ by 3D registration, predict three seed slices with
the named network, propagate until the organ ends), with the seed slices predicted by the bundle's network
(``--network``, e.g. ``registration`` without weights, or ``catnet`` with ``models/model_fold{F}.pt``).

It writes ``<name>_dice.csv`` in the evaluate bundle's format, so that ``monai-fewshot compare`` pairs it with
the bundle's whole-volume evaluations (``evaluate --whole-volume``: every slice predicted from its chunk's
support slice) on the same fold, class and query volume, and a JSON with the seconds per case.

    python benchmarks/whole_volume_fewshot.py [--data ../shared/data/chaos_t2_mri] [--dataset chaos]
        [--network registration] [--folds 0 1 2 3 4] [--workers 2] [--out benchmarks/results/whole_volume]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.utils import optional_import

from monai_fewshot.data.builders import dataset_folds
from monai_fewshot.data.layout import VolumeRecord, load_volume, read_folder
from monai_fewshot.inferers import segment_from_support_volume
from monai_fewshot.metrics import FewShotScoreTable, VolumeScore, volume_dice
from monai_fewshot.registry import DATASETS, FEWSHOT_NETWORKS, build_fewshot_network
from monai_fewshot.utils import write_text_atomic

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")
BUNDLE = Path(__file__).resolve().parents[1] / "monai_fewshot" / "bundles" / "catnet_fewshot"


def seed_network(name: str, fold: int):
    """The bundle's network ``name`` at its working size, with fold ``fold``'s weights when it has any."""
    from monai_fewshot.engines import load_network_weights
    from monai_fewshot.networks.nets import ResizedFewShot

    spec = FEWSHOT_NETWORKS[name]
    if not spec.trained:  # the training-free methods run at the data's size, in any dims
        return build_fewshot_network(name)
    network = build_fewshot_network(name, spatial_dims=2)
    family = "" if name == "catnet" else f"{name}/"
    load_network_weights(network, BUNDLE / "models" / f"{family}model_fold{fold}.pt")
    return ResizedFewShot(network, list(spec.working_size)).eval()


def score_case(job: tuple) -> list[dict]:
    data, network_name, fold, support_id, query_id, classes = job
    load = lambda i: load_volume(VolumeRecord(i, Path(data) / f"image_{i}.nii.gz", Path(data) / f"label_{i}.nii.gz"))  # noqa: E731
    support, query = load(support_id), load(query_id)
    network = seed_network(network_name, fold)
    rows = []
    for value, name in classes.items():
        truth = query.label == value
        start = time.perf_counter()
        result = segment_from_support_volume(
            network, query.image, support.image, support.label == value,
            nib.affines.voxel_sizes(query.affine), nib.affines.voxel_sizes(support.affine),
        )
        rows.append({"fold": fold, "class": name, "volume": query_id, "dice": volume_dice(result.mask > 0, truth),
                     "seeds": result.support_slices, "seconds": round(time.perf_counter() - start, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "chaos_t2_mri"))
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="chaos")
    parser.add_argument("--network", choices=sorted(FEWSHOT_NETWORKS), default="registration",
                        help="the network that predicts the seed slices (default registration: no weights)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "whole_volume"),
                        help="folder of <dataset>_<network>_dice.csv and .json")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    classes = DATASETS[args.dataset].classes
    folds = dataset_folds(args.data)
    read_folder(args.data)  # a missing or malformed folder fails here, in one line
    jobs = [(args.data, args.network, f, folds[f].support, q, classes) for f in args.folds for q in folds[f].queries]
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        results = pool.map(score_case, jobs)
        for case_rows in tqdm(results, total=len(jobs), desc="query volumes") if has_tqdm else results:
            rows += case_rows
    table = FewShotScoreTable([VolumeScore(r["fold"], r["class"], r["volume"], r["dice"]) for r in rows])
    title = f"located propagation, seeds by {args.network}: whole-volume Dice (%)"
    print(table.to_markdown(title))
    seconds = [r["seconds"] for r in rows]
    print(f"\nseconds per class and query volume (one thread): median {np.median(seconds):.1f}, max {np.max(seconds):.1f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}_{args.network}"
    write_text_atomic(out / f"{stem}_dice.csv", table.to_csv())
    write_text_atomic(out / f"{stem}.json", json.dumps({
        "machine": platform.processor() or platform.machine(), "threads": 1, "network": args.network,
        "folds": args.folds, "per_class": table.per_class(), "mean": table.mean(), "rows": rows,
    }, indent=1))
    print(f"wrote {out / f'{stem}_dice.csv'} and {out / f'{stem}.json'}")


if __name__ == "__main__":
    main()
