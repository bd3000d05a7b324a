"""Time and peak memory of 3D GRL-T against MONAI's SwinUNETR and Restormer as the volume grows.

One forward (no grad, eval mode) and one forward+backward (train mode, loss = mean of the output) per
(model, size), batch 1, one input channel. Every case runs in a fresh subprocess, which:

1. builds the model and the input, then records ``ru_maxrss`` (the process's peak resident memory so far);
2. runs the pass once (warm-up: first-call costs such as cached position-bias geometry and kernel set-up)
   and records ``ru_maxrss`` again: the difference is the pass's peak memory on top of model and input;
3. times ``--repeats`` further passes and keeps the fastest of all, the first included (``--repeats 0``:
   the first pass alone, which on a busy machine is the one to afford);
4. counts the pass's multiply-accumulates once more under torch's ``FlopCounterMode`` (MACs = FLOPs / 2;
   the CPU flash-attention kernel, which torch's table lacks, is counted like the other attention kernels),
   so the table gives MACs per second beside the time: how efficiently each model does its work.

Every case runs in the environment the ``monai-fewshot`` command starts its bundle processes in
(``monai_fewshot.bundle_runner.child_environment``: glibc's malloc told to keep freed memory, so fresh tensors
need no zeroed pages from the kernel, unless ``GLIBC_TUNABLES`` is set already), for every model alike; ``--allocator system`` measures glibc's defaults instead. Without
them a 64^3 GRL-T forward spends a third of its time in the kernel, zeroing pages. Memory kept for reuse
counts in the peak, so the peaks are upper bounds.

On CPU each case's address space is capped at ``--memory-limit-gib`` (``RLIMIT_AS``), so a case that
needs more fails with an allocation error, recorded as skipped, instead of swapping the shared machine.

On CUDA the peak is ``torch.cuda.max_memory_allocated`` over the warm-up pass instead. ``ru_maxrss`` counts
everything the process touched (allocator caches included), so it is an upper bound on what the pass
needed, comparable between models measured the same way.

Usage::

    python benchmarks/grl_scaling.py                      # sizes 32 48 64, all models, both passes
    python benchmarks/grl_scaling.py --sizes 32 64 --passes forward --threads 2

Prints a table and writes ``benchmarks/results/grl_scaling.json`` (or ``--out``), with the growth ratio
of time and memory from the smallest size to each larger one (8 for 32^3 -> 64^3, 27 for 32^3 -> 96^3
means linear in the number of voxels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula, sdpa_flop_count

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("grl_tiny", "grl_tiny_ckpt", "grl_tiny_voxel", "swin_unetr", "restormer")
PASSES = ("forward", "forward_backward")


CPU_FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
if CPU_FLASH not in flop_registry:

    @register_flop_formula(CPU_FLASH)
    def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)


def build(name: str) -> tuple[nn.Module, int, int]:
    """The model, the size multiple its input needs (1: any) and its smallest valid size."""
    sys.path.insert(0, str(ROOT))
    if name.startswith("grl_tiny"):
        from monai_fewshot.networks import grl_tiny

        # the 3D preset: tokens of 2^3 voxels, padded internally to multiples of 32 voxels; "_ckpt": gradient
        # checkpointing per layer; "_voxel": the former 3D default, a token per voxel (stripes 32 x 16 x 16 voxels)
        if name == "grl_tiny_voxel":
            return grl_tiny(spatial_dims=3, in_channels=1, patch_size=1, stripe_size=(32, 16, 16)), 1, 1
        return grl_tiny(spatial_dims=3, in_channels=1, use_checkpoint=name.endswith("_ckpt")), 1, 1
    if name == "swin_unetr":
        from monai.networks.nets import SwinUNETR

        # feature_size=12 is the smallest SwinUNETR (a multiple of 12); its 1/32 bottleneck is instance-normalised,
        # which needs more than one voxel: 64^3 and up
        return SwinUNETR(in_channels=1, out_channels=1, feature_size=12, spatial_dims=3), 32, 64
    if name == "restormer":
        from monai.networks.nets.restormer import Restormer

        net = Restormer(
            spatial_dims=3, in_channels=1, out_channels=1, dim=8, num_blocks=(2, 2, 4, 4), heads=(1, 2, 4, 8),
            num_refinement_blocks=2,
        )
        return net, 8, 8
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}.")


def run_case(name: str, size: int, mode: str, repeats: int, device: str, threads: int, limit_gib: float) -> dict:
    """Measure one (model, size, pass) in this process; see the module docstring."""
    if device == "cpu":
        limit = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, multiple, minimum = build(name)
    params = sum(p.numel() for p in net.parameters())
    if size % multiple or size < minimum:
        reason = f"needs a multiple of {multiple}, at least {minimum}"
        return {"model": name, "size": size, "pass": mode, "params": params, "skipped": reason}
    if mode == "forward" and name.endswith("_ckpt"):
        return {"model": name, "size": size, "pass": mode, "params": params, "skipped": "checkpointing acts on training"}
    net = net.to(device).train(mode == "forward_backward")
    x = torch.randn(1, 1, size, size, size, device=device)

    def one_pass() -> None:
        if mode == "forward":
            with torch.no_grad():
                net(x)
        else:
            net.zero_grad(set_to_none=True)
            net(x).mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        one_pass()
        first = time.perf_counter() - start
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        one_pass()
        first = time.perf_counter() - start
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # ru_maxrss is KiB on Linux
    times = [first]
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - start)
    row = {"model": name, "size": size, "pass": mode, "params": params, "seconds": min(times), "peak_mib": peak_mib,
           "allocator": os.environ.get("GLIBC_TUNABLES", "glibc defaults")}
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            one_pass()
    except (MemoryError, RuntimeError) as error:  # the counter keeps checkpointed activations: 64^3 overflows the cap
        return {**row, "gmacs": None, "macs_skipped": str(error).splitlines()[0][:120]}
    macs = counter.get_total_flops() / 2
    return {**row, "gmacs": macs / 1e9, "gmacs_per_second": macs / 1e9 / min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64], help="cube edge lengths")
    parser.add_argument("--train-sizes", type=int, nargs="+", help="sizes for forward_backward (default: --sizes)")
    parser.add_argument("--train-models", nargs="+", choices=MODELS, help="models for forward_backward (default: --models)")
    parser.add_argument("--memory-limit-gib", type=float, default=12.0, help="address-space cap per CPU case")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--passes", nargs="+", default=list(PASSES), choices=PASSES)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed passes after the first; the fastest of all counts (0: the first pass only)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--allocator", choices=("product", "system"), default="product",
                        help="glibc malloc settings of the cases: the command's bundle processes' (default) or glibc's defaults")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grl_scaling.json")
    parser.add_argument("--case", nargs=3, metavar=("MODEL", "SIZE", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:  # child process: one measurement, printed as JSON
        name, size, mode = args.case
        print(json.dumps(run_case(name, int(size), mode, args.repeats, args.device, args.threads, args.memory_limit_gib)))
        return

    rows: list[dict] = []
    sizes = {"forward": args.sizes, "forward_backward": args.train_sizes or args.sizes}
    models = {"forward": args.models, "forward_backward": args.train_models or args.models}
    if args.allocator == "product":  # the environment the command starts its bundle processes in
        sys.path.insert(0, str(ROOT))
        from monai_fewshot.bundle_runner import child_environment

        environment = child_environment()
    else:
        environment = {key: value for key, value in os.environ.items() if key != "GLIBC_TUNABLES"}
    machine = {"device": args.device, "threads": args.threads, "memory_limit_gib": args.memory_limit_gib,
               "allocator": environment.get("GLIBC_TUNABLES", "glibc defaults"),
               "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(),
               "platform": platform.platform(), "torch": torch.__version__}
    for mode in args.passes:
        for name in models[mode]:
            for size in sizes[mode]:
                command = [sys.executable, __file__, "--case", name, str(size), mode, "--repeats", str(args.repeats),
                           "--threads", str(args.threads), "--device", args.device,
                           "--memory-limit-gib", str(args.memory_limit_gib)]
                done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
                if done.returncode:
                    reason = done.stderr.strip().splitlines()[-1][:160]
                    row = {"model": name, "size": size, "pass": mode, "skipped": reason}
                else:
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(_format(row), flush=True)
                _save(args.out, machine, rows, [], complete=False)  # partial results survive an interrupted run

    growth = [g for mode in args.passes for large in sorted(sizes[mode])[1:] for g in _growth(rows, mode, min(sizes[mode]), large)]
    for g in growth:
        print(f"growth {g['model']:<11} {g['pass']:<16} {g['from']}^3 -> {g['to']}^3: time x{g['time_ratio']:.2f}, "
              f"memory x{g['memory_ratio']:.2f} (voxels x{(g['to'] / g['from']) ** 3:.2f})")
    machine["load_average_at_end"] = os.getloadavg()
    _save(args.out, machine, rows, growth, complete=True)
    print(f"wrote {args.out}")


def _save(path: Path, machine: dict, rows: list[dict], growth: list[dict], complete: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine, "complete": complete, "rows": rows, "growth": growth}
    path.write_text(json.dumps(result, indent=2) + "\n")


def _format(row: dict) -> str:
    head = f"{row['model']:<11} {row['pass']:<16} {row['size']:>3}^3"
    if "skipped" in row:
        return f"{head}  skipped: {row['skipped']}"
    macs = "MACs not counted" if row["gmacs"] is None else f"{row['gmacs']:8.1f} GMACs  {row['gmacs_per_second']:6.2f} GMAC/s"
    return f"{head}  params {row['params'] / 1e6:5.2f} M  time {row['seconds']:8.2f} s  peak {row['peak_mib']:8.0f} MiB  {macs}"


def _growth(rows: list[dict], mode: str, small: int, large: int) -> list[dict]:
    """Time and memory ratio between two sizes, per model, for one pass."""
    measured = {(r["model"], r["pass"], r["size"]): r for r in rows if "skipped" not in r}
    out = []
    for model, pass_, size in measured:
        if pass_ != mode or size != small or (model, mode, large) not in measured or small == large:
            continue
        a, b = measured[(model, mode, small)], measured[(model, mode, large)]
        out.append({"model": model, "pass": mode, "from": small, "to": large,
                    "time_ratio": b["seconds"] / a["seconds"], "memory_ratio": b["peak_mib"] / max(a["peak_mib"], 1e-9)})
    return out


if __name__ == "__main__":
    main()
