"""Score restoration methods on whole held-out volumes with MONAI's PSNR and SSIM; write CSV and Markdown tables."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from monai.metrics import PSNRMetric, SSIMMetric

from monai_fewshot.utils import write_text_atomic

__all__ = ["evaluate_restoration"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_restoration(
    data: Iterable[Mapping],
    methods: Mapping[str, Callable[[Mapping], torch.Tensor]],
    output_dir: str | Path,
    name: str = "restoration",
    title: str = "",
    ssim_window: int = 7,
) -> dict[str, dict[str, float]]:
    """PSNR and SSIM of every method on every volume, against the clean volume, with a data range of 1.

    Each method's output is clipped to [0, 1] (the clean volumes' range) before scoring; SSIM is the 3D
    SSIM of MONAI (Gaussian window of ``ssim_window`` voxels per axis). Writes ``<name>.csv`` (one row per
    method and volume: ``method,volume,psnr,ssim``) and ``<name>.md`` (mean and standard deviation over the
    volumes), each atomically, after every volume has been scored.

    Args:
        data: dictionaries with ``"label"`` (the clean (1, H, W, D) volume), ``"id"`` and what the methods read
            (:func:`~monai_fewshot.data.restoration_volumes`).
        methods: table name -> callable returning the restored (1, H, W, D) volume.
        output_dir: folder of the tables.
        name: file name stem.
        title: a line above the Markdown table (what was degraded, how, on which volumes).
        ssim_window: SSIM window size.

    Returns:
        ``{method: {"psnr": mean, "ssim": mean}}``.
    """
    if not methods:
        raise ValueError("methods is empty: give at least one method to score.")
    psnr, ssim = PSNRMetric(max_val=1.0), SSIMMetric(spatial_dims=3, data_range=1.0, win_size=ssim_window)
    rows: list[tuple[str, str, float, float]] = []
    for item in data:
        clean = item["label"][None].float()
        for method_name, method in methods.items():
            restored = method(item)
            if restored.shape != item["label"].shape:
                raise ValueError(
                    f"method {method_name!r} gave shape {tuple(restored.shape)} for volume {item['id']}, "
                    f"expected the clean volume's {tuple(item['label'].shape)}."
                )
            restored = restored[None].float().clamp(0.0, 1.0)
            rows.append((method_name, str(item["id"]), float(psnr(restored, clean)), float(ssim(restored, clean))))
            logger.info(f"{method_name} volume {item['id']}: PSNR {rows[-1][2]:.2f} dB, SSIM {rows[-1][3]:.4f}")
    if not rows:
        raise ValueError("data is empty: no volume to score.")

    summary: dict[str, dict[str, float]] = {}
    lines = [title, ""] if title else []
    volumes = sorted({row[1] for row in rows}, key=lambda v: (len(v), v))
    lines += ["| method | PSNR (dB) | SSIM |", "|---|---|---|"]
    for method_name in methods:
        scores = np.asarray([row[2:] for row in rows if row[0] == method_name])
        mean, std = scores.mean(0), scores.std(0)
        summary[method_name] = {"psnr": float(mean[0]), "ssim": float(mean[1])}
        lines.append(f"| {method_name} | {mean[0]:.2f} ± {std[0]:.2f} | {mean[1]:.4f} ± {std[1]:.4f} |")
    lines += ["", f"Mean ± standard deviation over {len(volumes)} volume(s): {', '.join(volumes)}."]
    output = Path(output_dir)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["method", "volume", "psnr", "ssim"])
    writer.writerows((m, v, f"{p:.4f}", f"{s:.6f}") for m, v, p, s in rows)
    write_text_atomic(output / f"{name}.csv", table.getvalue())
    write_text_atomic(output / f"{name}.md", "\n".join(lines) + "\n")
    return summary
