"""Support-to-query registration: seconds per slice pair and per protocol fold for each stage, with the Dice
each stage reaches on the same pairs (the default stages followed by the support organ's intensity correction,
the ``registration_intensity`` method, last), and a training step with alignment (and with the intensity-corrected
prior, the ``--guided`` default) beside the same step without it.

Pairs are the protocol's test episodes of one CHAOS fold (support slice -> query slice, 256 x 256), a seeded
sample of them; every registration runs on one thread, as the evaluator's workers do. The per-fold time is
the per-pair median times the fold's number of scored slices. The training step is the bundle's CAT-Net light
at its working size with the loss, backward and AdamW update, with and without ``RegistrationGuided``
(alignment at the working size), taking turns step by step so that the machine's load hits both alike.

    python benchmarks/registration_speed.py [--data ../shared/data/chaos_t2_mri] [--fold 0] [--pairs 24]
        [--steps 8] [--size 128] [--out benchmarks/results/registration_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import SimpleITK as sitk
import torch

from monai_fewshot.data import CHAOS_CLASSES
from monai_fewshot.data.builders import protocol_slices
from monai_fewshot.losses import CATNetLoss
from monai_fewshot.networks import ResizedFewShot, catnet_light
from monai_fewshot.registration import (
    INTENSITY_WEIGHT,
    RegistrationGuided,
    intensity_corrected_registration,
    register_support,
)
from monai_fewshot.utils import write_text_atomic

STAGES = {  # register_support options of each stage sequence
    "affine": {"focus_margin": None, "deformable": None},
    "affine + demons": {"focus_margin": None, "deformable": "demons"},
    "affine + organ affine": {"deformable": None},
    "affine + organ affine + demons (default)": {"deformable": "demons"},
    "affine + organ affine + B-spline": {"deformable": "bspline"},
}


def slice_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((prediction & truth).sum()) / max(float(prediction.sum() + truth.sum()), 1.0)


def stage_row(stage: str, times: list[float], scores: list[float], fold_pairs: int) -> dict:
    """One table row: the median seconds per pair, that times the fold's pairs, and the mean slice Dice."""
    per_pair = statistics.median(times)
    print(f"{stage}: {per_pair:.2f} s per pair", flush=True)
    return {"stage": stage, "seconds_per_pair": per_pair, "seconds_per_fold": per_pair * fold_pairs,
            "mean_slice_dice": 100 * float(np.mean(scores))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "chaos_t2_mri"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=24, help="protocol slice pairs timed per stage")
    parser.add_argument("--steps", type=int, default=8, help="training steps timed per variant")
    parser.add_argument("--size", type=int, default=128, help="training working size")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "registration_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    dataset = protocol_slices(args.data, CHAOS_CLASSES, args.fold)
    chosen = np.random.default_rng(0).choice(len(dataset), min(args.pairs, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in chosen]
    rows = []
    for stage, options in STAGES.items():
        times, scores = [], []
        for item in items:
            start = time.perf_counter()
            result = register_support(
                item["query"][0].numpy(), item["support"][0, 0].numpy(), item["support_mask"][0, 0].numpy(), **options
            )
            times.append(time.perf_counter() - start)
            scores.append(slice_dice(result.binary_mask, item["query_label"][0].numpy() > 0))
        rows.append(stage_row(stage, times, scores, len(dataset)))
    corrected = intensity_corrected_registration()
    times, scores = [], []
    for item in items:
        start = time.perf_counter()
        logits = corrected(item["query"][None], item["support"][None], item["support_mask"][None])
        times.append(time.perf_counter() - start)
        scores.append(slice_dice(logits[0, 0].numpy() > 0, item["query_label"][0].numpy() > 0))
    rows.append(stage_row(f"the default + intensity correction (weight {INTENSITY_WEIGHT:g})", times, scores, len(dataset)))

    torch.manual_seed(0)
    network = catnet_light(2)
    variants = {"CAT-Net light": ResizedFewShot(network, (args.size, args.size)),
                "CAT-Net light, registration-guided": ResizedFewShot(RegistrationGuided(network), (args.size, args.size)),
                "CAT-Net light, registration-guided, intensity-corrected prior": ResizedFewShot(
                    RegistrationGuided(network, intensity_weight=INTENSITY_WEIGHT), (args.size, args.size))}
    optimizer = torch.optim.AdamW(network.parameters(), 3e-4)
    loss_function = CATNetLoss()
    batch = [items[0], items[1]]
    query, support, mask, label = (torch.stack([b[key] for b in batch]) for key in ("query", "support", "support_mask", "query_label"))
    step_times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.steps + 1):  # the first step of each is a warm-up
        for name, variant in variants.items():
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_function(variant(query, support, mask), label).backward()
            optimizer.step()
            step_times[name].append(time.perf_counter() - start)
    steps = {name: statistics.median(t[1:]) for name, t in step_times.items()}

    print(f"\n| stage (one thread, {platform.processor() or platform.machine()}) | s / slice pair | s / fold {args.fold} "
          f"({len(dataset)} pairs) | mean slice Dice of the {len(items)} pairs |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['stage']} | {row['seconds_per_pair']:.2f} | {row['seconds_per_fold']:.0f} | {row['mean_slice_dice']:.2f} |")
    base = steps["CAT-Net light"]
    print(f"\n| training step, batch 2, {args.size} px, one thread | s / step | ratio |")
    print("|---|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} |")
    record = {"machine": platform.platform(), "cpu_threads": 1, "fold": args.fold, "fold_pairs": len(dataset),
              "timed_pairs": len(items), "stages": rows, "training_step_seconds": steps, "batch": 2, "size": args.size,
              "date": time.strftime("%Y-%m-%d")}
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
