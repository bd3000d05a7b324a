"""One painted slice -> the whole organ: whole-volume 3D Dice (every slice scored) per class, per method.

Every volume of a dataset folder and every class it holds: the class's middle slice (the middle of its extent,
or the nearest slice that holds it) is "painted" with the true mask, and each method segments the volume:

- ``propagation`` (the product, :func:`~monai_fewshot.inferers.propagate_annotation` with its defaults);
- ``demons propagation``: the same carrier without the intensity correction, stopped when the mask shrinks
  below 5 % of the painted area (the training-free check of the issue that asked for propagation);
- ``copy over true extent``: the painted mask copied onto every slice of the class's true extent (it needs the
  truth's extent, which no user has).

With ``--shots 3`` it also runs the add-a-shot loop: after 1, 2 and 3 painted slices, the 2nd and 3rd being
the slices ``suggested_slice`` named (painted with the truth there), against 2 and 3 slices evenly spaced over
the true extent. Volumes run in worker processes, each on one thread; the table goes to stdout and JSON.

    python benchmarks/whole_organ.py [--data ../shared/data/chaos_t2_mri] [--classes chaos] [--shots 3]
        [--workers 2] [--volumes 1,2,3] [--out benchmarks/results/whole_organ_chaos.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor

import nibabel as nib
import numpy as np
from monai.utils import optional_import

from monai_fewshot.data import CHAOS_CLASSES, CMR_CLASSES
from monai_fewshot.data.layout import read_folder
from monai_fewshot.inferers import StopRule, propagate_annotation
from monai_fewshot.metrics import copy_over_extent, middle_slice, paint_slices, volume_dice
from monai_fewshot.utils import write_text_atomic

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

CLASS_MAPS = {"chaos": CHAOS_CLASSES, "cmr": CMR_CLASSES}
DEMONS_ONLY = {"likelihood_weight": 0.0, "stop": StopRule(min_area=0.05, min_likelihood=-np.inf, max_extent=np.inf)}


def score_volume(job: tuple[str, str, str, list[int], int]) -> list[dict]:
    image_path, label_path, volume_id, classes, shots = job
    image = nib.load(image_path)
    volume = np.asarray(image.dataobj, dtype=np.float32)
    labels = np.rint(np.asarray(nib.load(label_path).dataobj)).astype(np.int64)
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    rows = []
    for value in classes:
        truth = labels == value
        if not truth.any():
            continue
        middle = middle_slice(truth)
        extent = np.flatnonzero(truth.any((0, 1)))
        row = {"volume": volume_id, "class": value}
        start = time.perf_counter()
        result = propagate_annotation(volume, paint_slices(truth, [middle]), spacing=spacing)
        row["seconds"] = time.perf_counter() - start
        row["propagation"] = volume_dice(result.mask > 0, truth)
        row["demons propagation"] = volume_dice(propagate_annotation(volume, paint_slices(truth, [middle]), spacing=spacing, **DEMONS_ONLY).mask > 0, truth)
        row["copy over true extent"] = volume_dice(copy_over_extent(truth, middle), truth)
        if shots > 1:
            suggested, chosen = [row["propagation"]], [middle]
            for _ in range(shots - 1):
                if result.suggested_slice is not None and truth[..., result.suggested_slice].any():
                    chosen.append(result.suggested_slice)
                    result = propagate_annotation(volume, paint_slices(truth, chosen), spacing=spacing)
                suggested.append(volume_dice(result.mask > 0, truth))
            even = [row["propagation"]]
            for n in range(2, shots + 1):
                spaced = sorted({int(round(x)) for x in np.linspace(extent[0], extent[-1], n + 2)[1:-1]})
                spaced = [int(extent[np.abs(extent - k).argmin()]) for k in spaced]
                even.append(volume_dice(propagate_annotation(volume, paint_slices(truth, spaced), spacing=spacing).mask > 0, truth))
            row["suggested shots"], row["even shots"] = suggested, even
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "chaos_t2_mri"))
    parser.add_argument("--classes", choices=sorted(CLASS_MAPS), default="chaos")
    parser.add_argument("--shots", type=int, default=1, help="painted slices in the add-a-shot loop (1: no loop)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--volumes", help="comma-separated volume ids (default: all)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/whole_organ_<classes>.json)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    classes = CLASS_MAPS[args.classes]
    records = read_folder(args.data)
    if args.volumes:
        wanted = set(args.volumes.split(","))
        records = [r for r in records if r.id in wanted]
    jobs = [(str(r.image), str(r.label), r.id, sorted(classes), args.shots) for r in records]
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        results = pool.map(score_volume, jobs)
        for volume_rows in tqdm(results, total=len(jobs), desc="volumes") if has_tqdm else results:
            rows += volume_rows

    methods = ["propagation", "demons propagation", "copy over true extent"]
    lines = ["| method | " + " | ".join(classes.values()) + " | mean |", "|---" * (len(classes) + 2) + "|"]
    summary = {}
    for method in methods:
        per_class = {name: 100 * float(np.mean([r[method] for r in rows if r["class"] == v])) for v, name in classes.items()}
        summary[method] = {**per_class, "mean": 100 * float(np.mean([r[method] for r in rows]))}
        lines.append(f"| {method} | " + " | ".join(f"{x:.1f}" for x in summary[method].values()) + " |")
    if args.shots > 1:
        lines += ["", "| painted slices | " + " | ".join(str(n) for n in range(1, args.shots + 1)) + " |", "|---" * (args.shots + 1) + "|"]
        for key in ("suggested shots", "even shots"):
            means = 100 * np.mean([r[key] for r in rows], axis=0)
            summary[key] = means.tolist()
            lines.append(f"| {key} | " + " | ".join(f"{x:.1f}" for x in means) + " |")
    seconds = [r["seconds"] for r in rows]
    lines.append(f"\npropagation seconds per class (one thread): median {np.median(seconds):.2f}, max {np.max(seconds):.2f}")
    table = "\n".join(lines)
    print(table)
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"whole_organ_{args.classes}.json")
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "volumes": len(records), "summary": summary, "rows": rows}
    write_text_atomic(out, json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
