"""The ``monai-fewshot`` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from monai_fewshot.data.demo import DEMO_CLASSES, load_mni152_demo
    from monai_fewshot.networks import catnet_light
    from monai_fewshot.networks.utils import resize_to

    torch.manual_seed(args.seed)
    volume = load_mni152_demo()
    class_id = {name.split()[0]: key for key, name in DEMO_CLASSES.items()}[args.tissue]
    image, label = volume["image"].as_tensor(), (volume["label"].as_tensor() == class_id).float()
    depth = image.shape[-1]
    support_z, query_z = depth // 2, depth // 2 + args.gap
    size = (args.size, args.size)
    query = resize_to(image[None, ..., query_z], size)
    support = resize_to(image[None, ..., support_z], size)[:, None]
    support_mask = (resize_to(label[None, ..., support_z], size, mode="nearest"))[:, None]
    truth = resize_to(label[None, ..., query_z], size, mode="nearest")

    net = catnet_light(spatial_dims=2).eval()
    start = time.perf_counter()
    with torch.no_grad():
        prediction = net(query, support, support_mask).logits > 0
    elapsed = time.perf_counter() - start
    intersection = (prediction & (truth > 0)).sum().item()
    dice = 2 * intersection / max(prediction.sum().item() + truth.sum().item(), 1)
    print(f"1-shot CAT-Net (light, untrained weights) on the MNI152 template, {DEMO_CLASSES[class_id]}")
    print(f"{'support slice':>14} {'query slice':>12} {'size':>9} {'mask voxels':>12} {'truth voxels':>13} {'Dice':>6} {'seconds':>8}")
    print(
        f"{support_z:>14} {query_z:>12} {args.size:>4}x{args.size:<4} {int(prediction.sum()):>12} "
        f"{int(truth.sum()):>13} {dice:>6.3f} {elapsed:>8.2f}"
    )
    return 0


def _label_app(args: argparse.Namespace) -> int:
    """exec ``monailabel start_server`` of the label environment on the few-shot app (docs/monailabel.md)."""
    repo = Path(__file__).resolve().parents[1]
    venv = Path(args.venv or os.environ.get("MONAI_FEWSHOT_LABEL_VENV") or repo / ".venv-label")
    python = venv / "bin" / "python"
    if not (venv / "bin" / "monailabel").is_file():
        print(f"no MONAI Label environment at {venv}: build it with monai_fewshot/apps/setup_env.sh {venv}", file=sys.stderr)
        return 2
    command = [str(python), "-m", "monailabel.main", "start_server", "--app", str(Path(__file__).parent / "apps" / "fewshot_label")]
    command += ["--studies", args.studies, "--host", args.host, "--port", str(args.port), "--conf", "zoo_source", "github"]
    command += ["--conf", "checkpoint", args.checkpoint] if args.checkpoint else []
    os.execv(command[0], command)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-fewshot", description="Few-shot medical image segmentation for MONAI.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="1-shot CAT-Net pass on the MNI152 template that ships with nilearn (offline).",
        description="Segment one axial slice of the MNI152 template from a labelled slice nearby.",
    )
    demo.add_argument("--tissue", choices=("grey", "white"), default="white", help="class to segment (default white)")
    demo.add_argument("--gap", type=int, default=4, help="slices between support and query (default 4)")
    demo.add_argument("--size", type=int, default=128, help="in-plane size the slices are resized to (default 128)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the network initialisation (default 0)")
    demo.set_defaults(run=_demo)
    label = commands.add_parser(
        "label-app", help="serve the few-shot MONAI Label app (3D Slicer) on a study folder.",
        description="Start monailabel's server with the few-shot app from the label environment (offline).",
    )
    label.add_argument("--studies", required=True, help="folder of NIfTI volumes (the datastore)")
    label.add_argument("--checkpoint", help="state_dict of catnet_light(spatial_dims=2); default: initial weights")
    label.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    label.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    label.add_argument("--venv", help="label environment (default $MONAI_FEWSHOT_LABEL_VENV or <repo>/.venv-label)")
    label.set_defaults(run=_label_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
