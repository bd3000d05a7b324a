"""CloFormer as a 3D encoder against MONAI's SwinUNETR encoder and ResNet feature extractors, and CAT-Net's
time per episode with CloFormer-XXS against the light ResNet backbone.

Encoders (batch 1, one channel, 96^3, eval mode, no grad): parameters, MACs (``FlopCounterMode`` FLOPs / 2:
convolutions, matrix products and attention; norms and element-wise ops are not counted), median forward time
and peak memory. Each case runs in its own subprocess; its peak memory is that process's maximum resident set
size (``ru_maxrss``), reported in full and as the increase over the resident size just before the first forward
(the model's weights and the interpreter are in the baseline). The machine's 1-minute load average before and
after each case is recorded: on a shared machine, times are only comparable at similar load.

CAT-Net episodes (1-way 1-shot, training mode): median forward + backward time of one episode for
``catnet_light`` with its ResNet and with ``backbone="cloformer_xxs"``, 2D 256x256 and 3D 64^3.

Run ``python benchmarks/cloformer_encoder.py`` from the repository root; it prints the tables and writes
``benchmarks/results/cloformer_encoder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monai.networks.nets import ResNetFeatures  # noqa: E402
from monai.networks.nets.swin_unetr import SwinTransformer  # noqa: E402

from monai_fewshot.networks import CloFormer, catnet_light  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cloformer_encoder.json"
ENCODERS = ("cloformer_xxs", "cloformer_xs", "swin_fs24", "swin_fs48", "resnet18", "resnet50")
EPISODES = ("2d_resnet18", "2d_cloformer_xxs", "3d_resnet10", "3d_cloformer_xxs")


def build_encoder(name: str) -> torch.nn.Module:
    """The encoder ``name`` for one-channel 3D input, randomly initialised."""
    if name.startswith("cloformer_"):
        return CloFormer(3, 1, variant=name.split("_")[1])
    if name.startswith("swin_fs"):
        # SwinUNETR's encoder as SwinUNETR builds it (patch 2, window 7, depths 2,2,2,2, heads 3,6,12,24)
        return SwinTransformer(1, int(name[7:]), (7, 7, 7), (2, 2, 2), (2, 2, 2, 2), (3, 6, 12, 24), spatial_dims=3)
    return ResNetFeatures(name, pretrained=False, spatial_dims=3, in_channels=1)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _median_time(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_encoder(name: str, size: int, repeats: int) -> dict:
    torch.manual_seed(0)
    net = build_encoder(name).eval()
    x = torch.randn(1, 1, size, size, size)
    baseline = _rss_mb()
    with torch.no_grad():
        seconds = _median_time(lambda: net(x), repeats)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with FlopCounterMode(display=False) as counter:
            net(x)
    return {
        "case": name,
        "input": [1, 1, size, size, size],
        "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "GMACs": counter.get_total_flops() / 2 / 1e9,
        "forward_s": seconds,
        "peak_rss_MB": peak,
        "forward_peak_increase_MB": peak - baseline,
    }


def run_episode(name: str, repeats: int) -> dict:
    torch.manual_seed(0)
    dims, backbone = int(name[0]), name[3:]
    spatial = (256, 256) if dims == 2 else (64, 64, 64)
    net = catnet_light(dims, backbone=backbone).train()
    query, support = torch.randn(1, 1, *spatial), torch.randn(1, 1, 1, *spatial)
    mask = torch.zeros(1, 1, 1, *spatial)
    mask[(..., *(slice(s // 4, s // 2) for s in spatial))] = 1
    target = mask[:, 0]

    def step() -> None:
        out = net(query, support, mask)
        logits = torch.cat([out.initial_logits, out.iteration_logits.flatten(1, 2)], dim=1)
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target.expand_as(logits)).backward()
        net.zero_grad(set_to_none=True)

    return {
        "case": f"catnet_light {dims}D {backbone}",
        "input": list(spatial),
        "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "backbone_params_M": sum(p.numel() for p in net.mife.backbone.parameters()) / 1e6,
        "forward_backward_s": _median_time(step, repeats),
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_subprocess(kind: str, name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--one", kind, name, "--size", str(args.size), "--repeats", str(args.repeats),
               "--threads", str(args.threads)]
    load_before = os.getloadavg()[0]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    # the 1-minute load average of the machine around the case: other processes share its cores
    return {**result, "load_1min": [load_before, os.getloadavg()[0]]}


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="cube side of the encoder input (default 96)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case after one warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file to write (default {RESULTS})")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        kind, name = args.one
        result = run_encoder(name, args.size, args.repeats) if kind == "encoder" else run_episode(name, args.repeats)
        print(json.dumps(result))
        return

    encoders = [_in_subprocess("encoder", name, args) for name in ENCODERS]
    episodes = [_in_subprocess("episode", name, args) for name in EPISODES]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": args.threads, "device": "cpu"},
        "encoders": encoders,
        "catnet_episodes": episodes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"encoders at {args.size}^3, batch 1, CPU, {args.threads} threads")
    print(_table(encoders, ["case", "params_M", "GMACs", "forward_s", "peak_rss_MB", "forward_peak_increase_MB"]))
    print("\nCAT-Net (catnet_light) one 1-shot training episode, forward + backward")
    print(_table(episodes, ["case", "input", "params_M", "backbone_params_M", "forward_backward_s", "peak_rss_MB"]))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
