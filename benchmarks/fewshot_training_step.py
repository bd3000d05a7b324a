"""Time of one training step of the bundle's few-shot networks, side by side in one process.

One step = forward of a batch of 1-way 1-shot episodes through ``ResizedFewShot(net, working size)``, the
bundle's loss (deep supervision for CAT-Net, Dice+CE for the baseline), backward and an AdamW update: what one
iteration of ``monai-fewshot train`` costs apart from data loading. The networks take turns step by step, so a
shared machine's load changes hit them alike; the ratio column is each network's median over the first's.

    python benchmarks/fewshot_training_step.py [--networks catnet:resnet18 catnet:cloformer_xxs alpnet:resnet18]
        [--batch 2] [--size 128] [--steps 10] [--threads 1] [--out benchmarks/results/fewshot_training_step.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from monai_fewshot.losses import CATNetLoss
from monai_fewshot.networks import ResizedFewShot
from monai_fewshot.registry import build_fewshot_network
from monai_fewshot.utils import write_text_atomic


def build(spec: str, size: int) -> torch.nn.Module:
    name, backbone = spec.split(":")
    return ResizedFewShot(build_fewshot_network(name, spatial_dims=2, backbone=backbone), (size, size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["catnet:resnet18", "catnet:cloformer_xxs", "alpnet:resnet18"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=128, help="working size (the data stay 256 x 256)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "fewshot_training_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = {spec: build(spec, args.size).train() for spec in args.networks}
    optimizers = {spec: torch.optim.AdamW(net.parameters(), 3e-4) for spec, net in nets.items()}
    loss_function = CATNetLoss()
    query, support = torch.randn(args.batch, 1, 256, 256), torch.randn(args.batch, 1, 1, 256, 256)
    mask = torch.zeros(args.batch, 1, 1, 256, 256)
    mask[..., 96:160, 80:176] = 1
    target = torch.zeros(args.batch, 1, 256, 256)
    target[..., 100:170, 90:180] = 1

    def step(spec: str) -> float:
        start = time.perf_counter()
        optimizers[spec].zero_grad(set_to_none=True)
        loss_function(nets[spec](query, support, mask), target).backward()
        optimizers[spec].step()
        return time.perf_counter() - start

    times = {spec: [] for spec in nets}
    for spec in nets:
        step(spec)  # warm-up
    for _ in range(args.steps):
        for spec in nets:
            times[spec].append(step(spec))
    first = statistics.median(times[args.networks[0]])
    rows = [
        {
            "network": spec,
            "params_M": round(sum(p.numel() for p in nets[spec].parameters()) / 1e6, 2),
            "median_s": round(statistics.median(t), 3),
            "min_s": round(min(t), 3),
            "ratio": round(statistics.median(t) / first, 2),
        }
        for spec, t in times.items()
    ]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {args.threads} thread(s)"
    print(f"one training step, batch {args.batch}, working size {args.size}, {args.steps} steps each, {machine}, "
          f"torch {torch.__version__}")
    print(f"{'network':<22} {'params M':>9} {'median s':>9} {'min s':>7} {'ratio':>6}")
    for r in rows:
        print(f"{r['network']:<22} {r['params_M']:>9} {r['median_s']:>9} {r['min_s']:>7} {r['ratio']:>6}")
    payload = {"machine": machine, "torch": torch.__version__, "batch": args.batch, "size": args.size,
               "steps": args.steps, "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_text_atomic(args.out, json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
