"""The paper configuration on a GPU: a fixed number of training steps under AMP, then validation Dice.

Trains CAT-Net as the paper sets it (ResNet-50, 256 features, 8 heads, T = 4, 256 x 256 slices; with
``--guided`` inside :class:`~monai_fewshot.registration.RegistrationGuided`) on the bundle's self-supervised
supervoxel episodes of one CHAOS fold, with the bundle's loss and optimiser, under ``torch.autocast`` on CUDA
(bf16 where supported, else fp16 with a gradient scaler). Writes the median step time, the peak GPU memory
and the protocol Dice on the fold's validation volumes as JSON. On a CPU it runs the same code without
autocast, which is how it is tested with a tiny budget.

    python benchmarks/gpu_check.py [--data ../shared/data/chaos_t2_mri] [--fold 0] [--steps 300] [--batch 8]
        [--size 256] [--guided] [--workers 8] [--val-slices 0] [--out benchmarks/results/gpu_check.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from monai_fewshot.data import CHAOS_CLASSES
from monai_fewshot.data.builders import protocol_slices, supervoxel_episodes
from monai_fewshot.engines import EpisodicEvaluator
from monai_fewshot.losses import CATNetLoss
from monai_fewshot.networks import ResizedFewShot, catnet_paper
from monai_fewshot.registration import RegistrationGuided
from monai_fewshot.utils import write_text_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "chaos_t2_mri"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="working size (the paper's 256)")
    parser.add_argument("--guided", action="store_true", help="registration-guided (alignment runs on the CPU workers)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="data loader / registration workers")
    parser.add_argument("--val-slices", type=int, default=0, help="validate on the first N slices only (0: all)")
    parser.add_argument("--cache", default=None, help="supervoxel cache (default: a temporary folder)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gpu_check.json"))
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    torch.manual_seed(0)
    network: torch.nn.Module = catnet_paper(2)
    if args.guided:
        network = RegistrationGuided(network, workers=args.workers)
    network = ResizedFewShot(network, (args.size, args.size)).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda" and dtype == torch.float16)
    loss_function = CATNetLoss()

    with tempfile.TemporaryDirectory() as scratch:
        episodes = supervoxel_episodes(args.data, args.fold, args.cache or scratch, num_episodes=args.steps * args.batch,
                                       classes=CHAOS_CLASSES)
        loader = DataLoader(episodes, batch_size=args.batch, num_workers=0 if args.guided else args.workers)
        times = []
        network.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for index, batch in enumerate(loader):
            start = time.perf_counter()
            query, support, mask, label = (batch[k].to(device) for k in ("query", "support", "support_mask", "query_label"))
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
                loss = loss_function(network(query, support, mask), label)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            print(f"step {index + 1}/{args.steps}: loss {loss.item():.4f}, {times[-1]:.3f} s", flush=True)

    validation = protocol_slices(args.data, CHAOS_CLASSES, args.fold, split="validation")
    if args.val_slices:
        validation.items = validation.items[: args.val_slices]
    evaluator = EpisodicEvaluator(device, DataLoader(validation, batch_size=args.batch), network)
    evaluator.run()
    record = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "network": "catnet_paper" + (" (registration-guided)" if args.guided else ""), "size": args.size,
        "batch": args.batch, "steps": args.steps, "amp_dtype": str(dtype) if device.type == "cuda" else None,
        "median_step_s": statistics.median(times[1:] or times),
        "peak_memory_GiB": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "validation_mean_dice": 100 * evaluator.state.metrics["mean_dice"], "validation_slices": len(validation),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(record, indent=2))
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
