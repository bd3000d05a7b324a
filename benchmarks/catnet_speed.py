"""Time and peak memory of one CAT-Net episode (1-way 1-shot, batch 1), forward and forward+backward.

Each case runs in its own subprocess so that its peak memory is its own: on CUDA the peak of
``torch.cuda.max_memory_allocated``; on CPU the growth of the process's peak resident set size
(``ru_maxrss``) over its size once the network and the inputs exist, i.e. the activations, gradients
and workspace of the pass.

    python benchmarks/catnet_speed.py [--device cuda] [--repeats 3] [--out benchmarks/results/catnet_speed.json]
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

import torch

CASES = [(preset, dims, mode) for preset in ("light", "paper") for dims in (2, 3) for mode in ("forward", "forward+backward")]
SIZES = {2: (256, 256), 3: (64, 64, 64)}


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(preset: str, dims: int, mode: str, device: str, repeats: int) -> dict:
    from monai_fewshot.networks import catnet_light, catnet_paper

    torch.manual_seed(0)
    net = (catnet_light if preset == "light" else catnet_paper)(dims).to(device)
    spatial = SIZES[dims]
    query = torch.randn(1, 1, *spatial, device=device)
    support = torch.randn(1, 1, 1, *spatial, device=device)
    mask = torch.zeros(1, 1, 1, *spatial, device=device)
    mask[..., spatial[0] // 4 : spatial[0] // 2, spatial[1] // 4 : spatial[1] // 2] = 1
    backward = mode == "forward+backward"
    net.train(backward)

    def step() -> None:
        with torch.set_grad_enabled(backward):
            out = net(query, support, mask)
            if backward:
                (out.iteration_logits.mean() + out.initial_logits.mean()).backward()
                net.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    baseline = _max_rss_mib()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up, also the pass whose peak memory is recorded
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else _max_rss_mib() - baseline
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "preset": preset,
        "input": "x".join(map(str, spatial)),
        "mode": mode,
        "params_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "peak_MiB": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "catnet_speed.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        preset, dims, mode = args.case.split(",")
        print(json.dumps(run_case(preset, int(dims), mode, args.device, args.repeats)))
        return

    rows = []
    for preset, dims, mode in CASES:
        command = [sys.executable, __file__, "--case", f"{preset},{dims},{mode}", "--device", args.device,
                   "--repeats", str(args.repeats)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(f"{preset:>6} {rows[-1]['input']:>10} {mode:>17} done", file=sys.stderr)

    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    header = f"{'preset':>6} {'params M':>9} {'input':>10} {'mode':>17} {'median s':>9} {'min s':>8} {'peak MiB':>9}"
    print(f"CAT-Net, one 1-way 1-shot episode, batch 1, on {args.device} ({machine}), torch {torch.__version__}")
    print(header)
    for r in rows:
        print(f"{r['preset']:>6} {r['params_M']:>9} {r['input']:>10} {r['mode']:>17} {r['median_s']:>9} {r['min_s']:>8} {r['peak_MiB']:>9}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    payload = {"device": args.device, "machine": machine, "torch": torch.__version__, "repeats": args.repeats,
               "memory": "CUDA max_memory_allocated" if args.device == "cuda" else "growth of peak RSS during the pass",
               "rows": rows}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
