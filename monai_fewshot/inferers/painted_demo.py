"""The main job on the shipped example volumes: paint one slice of each organ, get the whole organ.

For every abdominal organ of the TotalSegmentator example CT and MR (:mod:`monai_fewshot.data.example_volumes`)
its middle slice is painted with the reference mask, :func:`propagate_annotation` segments the volume, and the
whole-volume Dice (every slice scored) is set beside the copy baseline, which copies the painted mask onto every
slice of the organ's true extent.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.utils import optional_import

from monai_fewshot.data.example_volumes import EXAMPLE_ORGANS, example_volume
from monai_fewshot.inferers.propagation import propagate_annotation
from monai_fewshot.metrics.whole_organ import copy_over_extent, middle_slice, paint_slices, volume_dice
from monai_fewshot.utils import write_text_atomic
from monai_fewshot.visualize.whole_organ import save_whole_organ_overlay

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["painted_slice_demo"]

COLUMNS = ("volume", "organ", "painted_slice", "propagation", "copy_over_true_extent", "seconds")


def _table(rows: list[dict]) -> str:
    lines = ["| volume | organ | propagation | copy over true extent |", "|---|---|---|---|"]
    lines += [f"| {r['volume']} | {r['organ']} | {100 * r['propagation']:.1f} | {100 * r['copy_over_true_extent']:.1f} |" for r in rows]
    for name in sorted({r["volume"] for r in rows}) + ["all"]:
        chosen = [r for r in rows if name in ("all", r["volume"])]
        means = [100 * np.mean([r[key] for r in chosen]) for key in ("propagation", "copy_over_true_extent")]
        lines.append(f"| **{name}** | **mean of {len(chosen)}** | **{means[0]:.1f}** | **{means[1]:.1f}** |")
    return "\n".join(lines)


def painted_slice_demo(
    output_dir: str | Path,
    volumes: Iterable[str] = ("ct", "mr"),
    organs: Mapping[int, str] = EXAMPLE_ORGANS,
    overwrite: bool = False,
) -> tuple[str, list[dict]]:
    """Score one painted slice -> whole organ on the example volumes; write the table, CSV, JSON and overlays.

    Args:
        output_dir: folder for ``whole_organ_dice.{md,csv,json}`` and ``overlay_<volume>_<organ>.png``.
        volumes: example names (``"ct"``, ``"mr"``).
        organs: label value -> organ name; organs absent from a volume are skipped.
        overwrite: replace existing outputs. Defaults to False (an existing output is an error).

    Returns:
        the Markdown table and the rows (one per volume and organ, Dice in [0, 1]).

    Raises:
        FileExistsError: an output exists and not ``overwrite``.
    """
    output_dir = Path(output_dir)
    table_path = output_dir / "whole_organ_dice.md"
    if not overwrite and table_path.exists():
        raise FileExistsError(f"{table_path} already exists; choose another --output or pass --overwrite.")
    jobs = []
    for name in volumes:
        image_path, label_path = example_volume(name)
        image = nib.load(str(image_path))
        labels = np.rint(np.asanyarray(nib.load(str(label_path)).dataobj)).astype(np.int64)
        jobs += [(name, image, labels, value, organ) for value, organ in organs.items() if (labels == value).any()]
    rows = []
    for name, image, labels, value, organ in tqdm(jobs, desc="organs") if has_tqdm else jobs:
        array = image.get_fdata(dtype=np.float32)
        truth = labels == value
        painted = middle_slice(truth)
        start = time.perf_counter()
        result = propagate_annotation(array, paint_slices(truth, [painted]), spacing=image.header.get_zooms()[:3])
        seconds = time.perf_counter() - start
        prediction = result.mask > 0
        row = {"volume": name, "organ": organ, "painted_slice": painted, "propagation": volume_dice(prediction, truth),
               "copy_over_true_extent": volume_dice(copy_over_extent(truth, painted), truth), "seconds": round(seconds, 2)}
        rows.append(row)
        save_whole_organ_overlay(
            output_dir / f"overlay_{name}_{organ.replace(' ', '_')}.png", array, prediction, truth, painted,
            title=f"{name.upper()} {organ}: painted slice {painted}, Dice {100 * row['propagation']:.1f} "
            f"(copy {100 * row['copy_over_true_extent']:.1f})",
        )
    table = _table(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(output_dir / "whole_organ_dice.csv", buffer.getvalue())
    write_text_atomic(output_dir / "whole_organ_dice.json", json.dumps(rows, indent=1))
    write_text_atomic(table_path, table + "\n")
    return table, rows
