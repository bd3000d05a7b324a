"""Restoration in float32 and under bfloat16 autocast on one volume: PSNR of each, their difference, and the time.

The precision goal of GRL on a GPU: bfloat16 autocast must give the PSNR of float32 to 0.05 dB. Gaussian noise of
standard deviation ``--sigma`` of the clean volume's range (seeded) is added to a clean 3D NIfTI volume, and the
restoration bundle's denoising model (``bundles/grl_restoration/configs/inference.json``: its network, weights and
sliding windows) restores it twice through :func:`~monai_fewshot.inferers.restore_volume`, once per precision, on
``--device``. PSNR is on the clean volume's range. The table goes to stdout, the record to JSON.

    python benchmarks/restore_precision.py --clean ../shared/data/chaos_t2_mri/image_3.nii.gz [--device cuda]
        [--sigma 0.05] [--seed 3] [--out benchmarks/results/restore_precision.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.metrics import PSNRMetric

from monai_fewshot.inferers import restore_volume
from monai_fewshot.utils import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "grl_restoration"


def psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    """PSNR (dB, MONAI's ``PSNRMetric``) with the clean volume's range as the data range."""
    metric = PSNRMetric(max_val=float(clean.max() - clean.min()))
    return float(metric(torch.as_tensor(estimate, dtype=torch.float64)[None, None],
                        torch.as_tensor(clean, dtype=torch.float64)[None, None]).item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="clean 3D NIfTI volume")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sigma", type=float, default=0.05, help="noise standard deviation, fraction of the range")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "restore_precision.json")
    args = parser.parse_args()
    if not args.clean.is_file():
        raise SystemExit(f"error: clean volume {args.clean} does not exist.")

    config = ConfigParser()
    config.read_config(str(BUNDLE / "configs" / "inference.json"))
    config.update({"bundle_root": str(BUNDLE), "device": f"$torch.device('{args.device}')"})
    network, inferer = config.get_parsed_content("network"), config.get_parsed_content("inferer")
    inferer.progress = False

    image = nib.load(args.clean)
    clean = image.get_fdata(dtype=np.float32)
    noise = np.random.default_rng(args.seed).normal(0, args.sigma * (clean.max() - clean.min()), clean.shape)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        noisy = Path(folder) / "noisy.nii.gz"
        nib.save(nib.Nifti1Image((clean + noise).astype(np.float32), image.affine), noisy)
        rows.append({"method": "noisy input", "psnr": psnr(clean + noise, clean)})
        for precision, amp in (("float32", False), ("bfloat16 autocast", True)):
            output = Path(folder) / f"{precision.split()[0]}.nii.gz"
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            restore_volume(network, noisy, output, inferer, device=args.device, amp=amp)
            seconds = time.perf_counter() - start
            rows.append({"method": precision, "psnr": psnr(nib.load(output).get_fdata(dtype=np.float32), clean),
                         "seconds": seconds})
    difference = rows[2]["psnr"] - rows[1]["psnr"]
    print("| method | PSNR (dB) | seconds |\n|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['psnr']:.3f} | {row.get('seconds', float('nan')):.1f} |")
    print(f"bfloat16 - float32: {difference:+.4f} dB")
    machine = {"device": args.device, "platform": platform.platform(), "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    record = {"clean": str(args.clean), "shape": list(clean.shape), "sigma": args.sigma, "seed": args.seed,
              "machine": machine, "rows": rows, "bf16_minus_fp32_db": difference}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
