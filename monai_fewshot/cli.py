"""The ``monai-fewshot`` command: thin wrappers over the CAT-Net and GRL restoration bundles and the library."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from monai_fewshot.bundle_runner import BUNDLES, DEBUG_ENV, bundle_values, child_environment, user_error
from monai_fewshot.registry import DATASETS, FEWSHOT_NETWORKS, model_family, read_dataset_spec, trained_networks

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]  # the checkout (benchmarks/, .venv-label); site-packages in a wheel install
#: evaluate --network: methods without weights (bundle overlays)
TRAINING_FREE = {"registration": "registration.json", "registration_intensity": "registration_intensity.json"}
#: segment --support: the seed slices' network; registration seeds gave the best whole-volume Dice on CHAOS
SEGMENT_NETWORK = "registration"


def _bundle_dir(args: argparse.Namespace, default: str = "catnet_fewshot") -> Path:
    bundle = Path(args.bundle) if args.bundle else BUNDLES / default
    if not (bundle / "configs" / "metadata.json").is_file():
        raise SystemExit(f"error: no bundle at {bundle} (expected configs/metadata.json); pass --bundle DIR.")
    return bundle


def _run_bundle(bundle: Path, configs: list[str], **overrides) -> int:
    """MONAI's ``bundle run`` in a child process (:mod:`monai_fewshot.bundle_runner`: failures in one line), so its
    logging and failures stay its own. Paths are passed absolute (``--output 2024`` stays a folder, not a number).
    The child runs in its own process group; SIGINT, SIGTERM and SIGHUP are forwarded to that whole group, as a
    terminal signals its foreground job, and the command waits for the child: stopping the command stops the run
    and the worker processes it started (data loaders, registration pools), and nothing is left behind. The
    child's allocator keeps freed memory (:data:`~monai_fewshot.bundle_runner.ALLOCATOR_TUNABLES`)."""
    files = [str(bundle / "configs" / c) for c in configs]
    command = [sys.executable, "-m", "monai_fewshot.bundle_runner", "run",
               "--config_file", files[0] if len(files) == 1 else repr(files),
               "--meta_file", str(bundle / "configs" / "metadata.json"),
               "--logging_file", str(bundle / "configs" / "logging.conf"), "--bundle_root", str(bundle)]
    for key, value in _absolute(overrides).items():
        if value is not None:
            command += [f"--{key}", repr(value) if isinstance(value, (list, tuple)) else str(value)]
    child = subprocess.Popen(command, process_group=0, env=child_environment())
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, _: _signal_group(child, signum)) for s in forwarded}
    try:
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - status if status < 0 else status  # killed by signal N: the shell's 128 + N


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to every process of ``child``'s process group (the child leads it), if any is left."""
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def _absolute(overrides: dict) -> dict:
    """Paths made absolute (``--output 2024`` stays a folder, not a number), other values as they are."""
    return {k: str(Path(v).expanduser().resolve()) if isinstance(v, Path) else v for k, v in overrides.items()}


def _resolve(bundle: Path, configs: list[str], overrides: dict, keys: list[str]) -> dict:
    """:func:`~monai_fewshot.bundle_runner.bundle_values`, its failure (e.g. a data folder without volumes) in one line."""
    try:
        return bundle_values(bundle, configs, overrides, keys)
    except Exception as error:  # noqa: BLE001 - shown as the bundle run shows it
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        raise SystemExit(f"error: {user_error(error)}") from error


def _dataset_overrides(args: argparse.Namespace) -> dict:
    data = Path(args.data).expanduser()
    if not data.is_dir():
        raise SystemExit(f"error: data folder {data} does not exist (expected image_N / label_N NIfTI files).")
    if args.classes:
        source = Path(args.classes).expanduser()
        read_dataset_spec(source)  # refused here, in one line, rather than inside the bundle
        return {"dataset_dir": data, "classes_file": source, "exclude_classes": _excluded(args)}
    return {"dataset_dir": data, "dataset": args.dataset, "exclude_classes": _excluded(args)}


def _excluded(args: argparse.Namespace) -> list[int] | None:
    """Setting 2's ``--exclude`` classes, sorted (None: Setting 1)."""
    return sorted(args.exclude) if args.exclude else None


def _guided(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "guided", False))


def _overlays(args: argparse.Namespace) -> list[str]:
    """Bundle overlay files after train.json (and evaluate.json): the training-free method's or the guided one's."""
    if args.network in TRAINING_FREE:
        return [TRAINING_FREE[args.network]]
    return ["registration_guided.json"] if _guided(args) else []


def _model_overrides(args: argparse.Namespace) -> dict:
    """What train and evaluate share for a trained network: the bundle's ``network_name``, ``backbone`` and, when
    given, ``ckpt_dir``. The bundle names the family's folders from them and the dataset's keys
    (:func:`~monai_fewshot.registry.model_family`)."""
    return {"network_name": args.network, "backbone": args.backbone, "ckpt_dir": args.ckpt_dir and Path(args.ckpt_dir)}


def _train_overrides(args: argparse.Namespace) -> dict:
    return _dataset_overrides(args) | _model_overrides(args) | {
        "fold": args.fold, "max_epochs": args.epochs, "episodes_per_epoch": args.episodes_per_epoch,
        "batch_size": args.batch_size, "num_workers": args.workers, "run_dir": args.run_dir and Path(args.run_dir),
        "pretrained_backbone": Path(args.init_backbone) if args.init_backbone else None,
    }


def _train(args: argparse.Namespace) -> int:
    bundle = _bundle_dir(args)
    if _guided(args) and args.init_backbone:
        raise SystemExit("error: --init-backbone is not available with --guided.")
    configs = ["train.json", *_overlays(args)]
    overrides = _absolute(_train_overrides(args))
    paths = _resolve(bundle, configs, overrides, ["ckpt_dir", "run_dir"])
    status = _run_bundle(bundle, configs, **overrides)
    if status == 0:
        best = Path(paths["ckpt_dir"]) / f"model_fold{args.fold}.pt"
        saved = f"the best validation model to {best}" if best.is_file() else "no best model (no validation ran)"
        print(f"wrote {saved} and the resumable checkpoints to {paths['run_dir']}")
    return status


def _evaluate_overrides(args: argparse.Namespace) -> dict:
    folds = sorted(set(args.folds or ()))
    common = _dataset_overrides(args) | {
        "eval_dir": args.output and Path(args.output), "eval_split": args.split, "eval_folds": folds or None,
        "eval_scored": "volume" if args.whole_volume or args.propagate else None, "eval_propagate": args.propagate or None,
        "registration_workers": args.workers, "registration_seeds": _registration_seeds(args),
    }
    if args.network in TRAINING_FREE:
        return common
    return common | _model_overrides(args)


def _registration_seeds(args: argparse.Namespace) -> list[int] | None:
    """``--registration-seeds N`` as the bundle's ``registration_seeds`` (0 .. N-1), where a prior is registered."""
    if args.registration_seeds is None:
        return None
    if not (_guided(args) or args.network == "registration_intensity"):
        raise SystemExit("error: --registration-seeds applies to --guided and --network registration_intensity, whose "
                         "prior is a registered mask.")
    if args.registration_seeds < 1:
        raise SystemExit(f"error: --registration-seeds must be >= 1, got {args.registration_seeds}.")
    return list(range(args.registration_seeds))


def _evaluate(args: argparse.Namespace) -> int:
    """The evaluation is written into a hidden staging folder beside ``eval_dir`` and moved in whole on
    success: a failed run leaves an earlier evaluation as it was, and an earlier one is replaced only with
    ``--overwrite``."""
    import shutil
    import tempfile

    bundle = _bundle_dir(args)
    configs = ["train.json", "evaluate.json", *_overlays(args)]
    overrides = _absolute(_evaluate_overrides(args))
    resolved = _resolve(bundle, configs, overrides, ["eval_dir", "checkpoint", "model_name"])
    if args.network not in TRAINING_FREE and args.folds:  # without --folds, the bundle takes every fold with a model
        absent = [resolved["checkpoint"].format(fold=f) for f in sorted(set(args.folds))]
        absent = [path for path in absent if not Path(path).is_file()]
        if absent:
            raise SystemExit(f"error: --folds {' '.join(map(str, sorted(set(args.folds))))}: no model at {', '.join(absent)}.")
    target = Path(resolved["eval_dir"]).resolve()
    if args.registration_seeds and args.registration_seeds > 1 and not args.output:  # beside the one-seed evaluation
        target = target.with_name(f"{target.name}_seeds{args.registration_seeds}")
    if target.exists() and any(target.iterdir()) and not args.overwrite:
        raise SystemExit(f"error: {target} holds an earlier evaluation: --overwrite replaces it, --output names another "
                         "folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # the folder a plain mkdir would make, not mkdtemp's private 0700
    try:
        status = _run_bundle(bundle, configs, **overrides | {"eval_dir": staging})
        if status == 0:
            earlier = target.with_name(staging.name[: -len(".partial")] + ".earlier")
            if target.exists():
                target.rename(earlier)
            staging.rename(target)
            shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name in dict.fromkeys(n for n in (resolved["model_name"], "registration", "floor") if n):
        table = target / f"{name}_dice.md"
        if status == 0 and table.is_file():
            print(table.read_text())
    if status == 0:
        print(f"wrote the Dice tables (CSV, Markdown){'' if args.propagate else ' and overlays'} to {target}")
    return status


def _compare(args: argparse.Namespace) -> int:
    from monai_fewshot.metrics import FewShotScoreTable, compare_tables
    from monai_fewshot.utils import write_text_atomic

    tables = {}
    for item in args.evaluations:
        name, separator, paths = item.rpartition("=")
        if not separator or not name:
            raise SystemExit(f"error: {item!r} is not NAME=CSV (e.g. CAT-Net=eval/chaos_test/catnet_dice.csv).")
        tables[name] = FewShotScoreTable.concatenate([FewShotScoreTable.from_csv(p) for p in paths.split(",")])
    text = compare_tables(tables, title=args.title)
    print(text)
    if args.output:
        write_text_atomic(args.output, text)
    return 0


def _segment(args: argparse.Namespace) -> int:
    painted, support = args.image or args.annotation, args.support or args.support_label or args.query
    if painted and support or not (painted or support):
        raise SystemExit("error: give either --image and --annotation (slices painted in that volume) or --support, "
                         "--support-label, --class-value and --query (a labelled support volume).")
    if painted:
        return _segment_painted(args)
    missing = [flag for flag, value in (("--support", args.support), ("--support-label", args.support_label),
               ("--class-value", args.class_value), ("--query", args.query)) if value is None]
    if missing:
        raise SystemExit(f"error: segmenting from a support volume needs {', '.join(missing)}.")
    bundle = _bundle_dir(args)
    if args.network is None:
        args.network = "catnet" if args.guided else SEGMENT_NETWORK
    overrides = {
        "support_image": Path(args.support).resolve(), "support_label": Path(args.support_label).resolve(),
        "class_value": args.class_value, "query_images": repr([str(Path(q).resolve()) for q in args.query]),
        "output_dir": Path(args.output).resolve(), "overwrite": args.overwrite,
    }
    if args.network in TRAINING_FREE:
        if args.checkpoint:
            raise SystemExit(f"error: --network {args.network} has no weights: leave out --checkpoint.")
        if args.guided:
            raise SystemExit(f"error: --network {args.network} is registration already: leave out --guided.")
        configs = ["inference.json", TRAINING_FREE[args.network]]
    else:
        configs = ["inference.json", *_overlays(args)]
        checkpoint = Path(args.checkpoint) if args.checkpoint else None
        if args.guided and checkpoint is None:  # the CHAOS fold-0 model of the network's guided family
            checkpoint = bundle / "models" / Path(*model_family("chaos", args.network, guided=True)) / "model_fold0.pt"
        if checkpoint is not None and not checkpoint.is_file():
            raise SystemExit(f"error: --checkpoint: no model at {checkpoint}.")
        overrides |= {"network_name": args.network, "checkpoint": checkpoint and checkpoint.resolve()}
    seeds = _registration_seeds(args)
    if seeds is not None:
        overrides["registration_seeds"] = seeds
    status = _run_bundle(bundle, configs, **overrides)
    if status == 0:
        from monai_fewshot.inferers import output_names

        print("wrote " + ", ".join(str(overrides["output_dir"] / n) for n in output_names([Path(q) for q in args.query])))
    return status


def _segment_painted(args: argparse.Namespace) -> int:
    """The painted-slice case in this process: propagation, mask and confidence JSON written atomically."""
    import numpy as np

    from monai_fewshot.inferers import segment_painted_volume

    if not (args.image and args.annotation):
        raise SystemExit("error: the painted-slice case needs both --image and --annotation.")
    start = time.perf_counter()
    mask, report, result = segment_painted_volume(
        args.image, args.annotation, args.output, args.label_value, overwrite=args.overwrite
    )
    filled = np.flatnonzero(result.mask.any((0, 1)))
    print(f"label {result.label_value}: painted slices {result.support_slices}, organ on slices {filled[0]}-{filled[-1]} "
          f"({int(result.mask.sum())} voxels) in {time.perf_counter() - start:.1f} s")
    if args.suggest:
        print("paint next: " + (f"slice {result.suggested_slice} (where the expected error is largest; the organ likely spans "
                                f"slices {result.likely_extent[0]}-{result.likely_extent[1]})" if result.suggested_slice is not None
                                else "nothing (every likely slice is painted)"))
    print(f"wrote {mask} and {report}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    """bundles/grl_restoration's inference.json: one degraded NIfTI in, the restored NIfTI out."""
    bundle = _bundle_dir(args, default="grl_restoration")
    source = Path(args.input).expanduser().resolve()
    if not source.is_file():
        raise SystemExit(f"error: input image {source} does not exist.")
    target = Path(args.output).expanduser().resolve()
    if target.exists() and not args.overwrite:
        raise SystemExit(f"error: {target} already exists; choose another --output or pass --overwrite.")
    overrides = {
        "input_image": source, "output_image": target, "task": args.task,
        "factor": args.factor, "noise": args.noise, "sigma": args.sigma,
        "checkpoint": Path(args.checkpoint).expanduser().resolve() if args.checkpoint else None,
        "amp": False if args.fp32 else None,
    }
    start = time.perf_counter()
    status = _run_bundle(bundle, ["inference.json"], **overrides)
    if status == 0:
        print(f"wrote {target} in {time.perf_counter() - start:.1f} s")
    return status


def _benchmark(args: argparse.Namespace) -> int:
    script = REPO / "benchmarks" / f"{args.name}.py"
    if not (REPO / "benchmarks").is_dir():
        raise SystemExit("error: the benchmarks ship with the repository, not the installed package: run them from a "
                         "checkout (python benchmarks/<name>.py).")
    if not script.is_file():
        available = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py"))
        raise SystemExit(f"error: no benchmark {args.name!r} in {REPO / 'benchmarks'}; available: {available}.")
    return subprocess.call([sys.executable, str(script), *args.extra])


def _demo(args: argparse.Namespace) -> int:
    """The main job, offline: one painted slice of each abdominal organ of the shipped example CT and MR -> the
    whole organ, beside copying the painted slice over the organ's true extent."""
    from monai_fewshot.inferers.painted_demo import painted_slice_demo

    output = Path(args.output).resolve()
    print("one painted (middle) slice per organ -> the whole organ; TotalSegmentator's example CT and MR (shipped, "
          "Apache-2.0; reference masks are that model's output)", flush=True)
    table, _ = painted_slice_demo(output, volumes=args.volumes, overwrite=args.overwrite)
    print("whole-volume Dice (%), every slice scored:\n" + table)
    print(f"wrote the table, CSV, JSON and one PNG overlay per organ to {output}")
    return 0


def _label_app(args: argparse.Namespace) -> int:
    """exec ``monailabel start_server`` of the label environment on the few-shot app (docs/monailabel.md)."""
    venv = Path(args.venv or os.environ.get("MONAI_FEWSHOT_LABEL_VENV") or REPO / ".venv-label")
    python = venv / "bin" / "python"
    if not (venv / "bin" / "monailabel").is_file():
        print(f"no MONAI Label environment at {venv}: build it with monai_fewshot/apps/setup_env.sh {venv}", file=sys.stderr)
        return 2
    command = [str(python), "-m", "monailabel.main", "start_server", "--app", str(Path(__file__).parent / "apps" / "fewshot_label")]
    command += ["--studies", args.studies, "--host", args.host, "--port", str(args.port), "--conf", "zoo_source", "github"]
    command += ["--conf", "checkpoint", args.checkpoint] if args.checkpoint else []
    command += ["--conf", "network", args.network]
    os.execv(command[0], command)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monai-fewshot",
        description="Few-shot medical image segmentation for MONAI (CAT-Net) and GRL restoration. Each command wraps "
        "the bundles/catnet_fewshot MONAI bundle (restore: bundles/grl_restoration) or the library; see README.md.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure, not one line")
    parser.add_argument("--bundle", help="bundle folder (default: the installed package's bundles/catnet_fewshot; "
                        "bundles/grl_restoration for restore)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="the main job, offline: paint one slice of each organ of the shipped example CT and MR, get the "
        "whole organ (Dice table beside the copy baseline, PNG overlays).",
        description="Each abdominal organ of TotalSegmentator's example CT and MR (shipped in the package) gets its "
        "middle slice painted; propagation segments the volume; whole-volume Dice beside copying the painted slice "
        "onto the organ's true extent.",
    )
    demo.add_argument("--volumes", nargs="+", choices=("ct", "mr"), default=["ct", "mr"], help="default: both")
    demo.add_argument("--output", default="fewshot_demo", help="folder for the tables and overlays (default "
                      "./fewshot_demo)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo's outputs")
    demo.set_defaults(run=_demo)

    def data_arguments(command: argparse.ArgumentParser, training_free: bool = False) -> None:
        command.add_argument("--data", required=True, help="folder of image_N.nii.gz / label_N.nii.gz volumes")
        which = command.add_mutually_exclusive_group()
        which.add_argument("--dataset", choices=sorted(DATASETS), default="chaos",
                           help="a registered class map: chaos (liver, kidneys, spleen), cmr (LV-MYO, LV-BP, RV) or "
                           "mni152 (grey, white matter: the demo's cohort); default chaos")
        which.add_argument("--classes", metavar="FILE", help="your own dataset's classes: a JSON or YAML file (or a MONAI "
                           'datalist) with "classes": {"1": "name", ...}, optional "setting2_groups" and "name" '
                           "(monai_fewshot.registry.read_dataset_spec)")
        command.add_argument("--ckpt-dir", help="folder of model_fold{F}.pt (default: the bundle's models/ for CAT-Net on "
                             "chaos, else models/<family>: e.g. models/alpnet, models/cmr, models/cloformer_xxs, "
                             "models/setting2_exclude2-3/alpnet)")
        choices = trained_networks() + (sorted(TRAINING_FREE) if training_free else [])
        command.add_argument("--network", choices=choices, default="catnet", help="a registered few-shot network "
                             "(monai_fewshot.registry; default catnet): " + "; ".join(
                                 f"{name}: {FEWSHOT_NETWORKS[name].description}" for name in choices))
        command.add_argument("--backbone", help="encoder name from monai_fewshot.networks.BACKBONES, e.g. cloformer_xxs "
                             "(default: the preset's resnet18); give the same one to evaluate")
        command.add_argument("--guided", action="store_true", help="registration-guided network: each support is "
                             "registered onto its query first and the warped mask's logit is added to the network's "
                             "(bundle overlay registration_guided.json; weights in models/<family>/registration_guided)")

    train = commands.add_parser("train", help="self-supervised (supervoxel) training of one fold's model.",
                                description="Train CAT-Net on supervoxel episodes of a fold's training volumes; "
                                "resumes from the last checkpoint in --run-dir; keeps the best validation model "
                                "as <ckpt-dir>/model_fold{F}.pt.")
    data_arguments(train)
    train.add_argument("--fold", type=int, default=0, help="fold whose test and validation volumes stay out (default 0)")
    train.add_argument("--epochs", type=int, help="epochs (bundle default 15)")
    train.add_argument("--episodes-per-epoch", type=int, help="batches per epoch (bundle default 100)")
    train.add_argument("--batch-size", type=int, help="episodes per batch (bundle default 2)")
    train.add_argument("--workers", type=int, help="data loader workers (bundle default 0)")
    train.add_argument("--run-dir", help="checkpoints and TensorBoard logs (default: bundle runs/<family>_fold{F}, "
                       "e.g. runs/fold0, runs/cmr_alpnet_fold0)")
    train.add_argument("--exclude", type=int, nargs="*", help="Setting 2: class values whose slices training never sees")
    train.add_argument("--init-backbone", help="start CAT-Net's encoder from the backbone.* weights of this file, e.g. "
                       "the same fold's trained baseline models/alpnet/model_fold{F}.pt")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="the 5-fold 1-shot protocol: Dice tables and PNG overlays.",
                                   description="Evaluate every fold that has a model_fold{F}.pt (trained without that "
                                   "fold's test volumes) and the copy-the-support-mask floor on the same folds.")
    data_arguments(evaluate, training_free=True)
    evaluate.add_argument("--workers", type=int, help="worker processes of the registration method, which every "
                          "evaluation scores beside the floor, and of --propagate's query volumes (bundle default 2)")
    evaluate.add_argument("--output", help="folder for *_dice.csv, *_dice.md and overlays (default: bundle "
                          "eval/<dataset>[_<family>]_<split>, e.g. eval/chaos_test, eval/cmr_alpnet_test)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation in the output "
                          "folder (default: refuse)")
    evaluate.add_argument("--split", choices=("test", "validation"), default="test", help="default test")
    evaluate.add_argument("--whole-volume", action="store_true", help="score every slice of each query volume (whole-"
                          "volume Dice: slices without the class must stay empty) instead of the protocol's labelled "
                          "slices; the default output folder gets _wholevolume")
    evaluate.add_argument("--propagate", action="store_true", help="segment each query volume as `segment --support` "
                          "does (the class located by 3D registration of the support volume, three seed slices "
                          "predicted by the network, propagated until the organ ends) and score every slice; the "
                          "default output folder gets _propagated")
    evaluate.add_argument("--folds", type=int, nargs="+", help="evaluate only these folds (default: every fold with a "
                          "model); the default output folder then ends in _fold<F>[-<F>...], so folds evaluated apart "
                          "keep their own CSVs for `compare NAME=CSV,CSV`")
    evaluate.add_argument("--exclude", type=int, nargs="*",
                          help="Setting 2: the class values the models were trained without; only those are scored")
    evaluate.add_argument("--registration-seeds", type=int, metavar="N", help="register each support N times (the "
                          "affine stage's sampling seeds 0 .. N-1) and average the warped masks into the prior: "
                          "--guided and --network registration_intensity (bundle default 1)")
    evaluate.set_defaults(run=_evaluate)

    compare = commands.add_parser(
        "compare", help="side-by-side Dice table of evaluations on the same episodes, with paired differences.",
        description="Read evaluate's <name>_dice.csv files, keep the (fold, class, volume) scores all of them hold, "
        "and print per-class protocol means per model, then each model minus the first: mean difference, 95% "
        "bootstrap interval over query volumes, wins and losses.",
    )
    compare.add_argument("evaluations", nargs="+", metavar="NAME=CSV[,CSV...]",
                         help="e.g. CAT-Net=eval/chaos_test/catnet_dice.csv floor=eval/chaos_test/floor_dice.csv; "
                         "several CSVs of one model (Setting 2's two test groups, folds evaluated apart) are joined")
    compare.add_argument("--title", default="Dice (%)", help="top-left cell of the table")
    compare.add_argument("--output", help="also write the Markdown table to this file (atomically)")
    compare.set_defaults(run=_compare)

    segment = commands.add_parser(
        "segment", help="segment an organ from slices painted in the same volume, or query volumes from a labelled "
        "support volume (NIfTI out).",
        description="Painted slices (--image, --annotation): the painted mask is carried slice by slice through the "
        "volume (registration, corrected by the painted organ's intensity) until the organ ends; writes the mask and "
        "<mask>_confidence.json (per-slice confidence, the slice to paint next). Support volume (--support, "
        "--support-label, --class-value, --query): the organ is located in each query by 3D registration of the support "
        "volume, the bundle's few-shot network predicts three slices inside it, and those are propagated until the organ "
        "ends (slices without it stay empty).",
    )
    segment.add_argument("--image", help="volume whose slice(s) you painted (NIfTI)")
    segment.add_argument("--annotation", help="label map with the organ painted on one or a few slices (NIfTI, the "
                         "image's grid)")
    segment.add_argument("--label-value", type=int, help="painted value to segment (default: the largest painted value)")
    segment.add_argument("--suggest", action="store_true", help="print the slice to paint next")
    segment.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    segment.add_argument("--support", help="support image (NIfTI)")
    segment.add_argument("--support-label", help="support label map (NIfTI)")
    segment.add_argument("--class-value", type=int, help="label value to segment")
    segment.add_argument("--query", nargs="+", help="query image(s) (NIfTI)")
    segment.add_argument("--output", required=True, help="mask to write (.nii.gz) with --image; folder for "
                         "<query>_seg.nii.gz with --query")
    segment.add_argument("--checkpoint", help="weights of --network (default: the bundle's models/model.pt; with --guided "
                         "models/registration_guided/model_fold0.pt, models/alpnet/registration_guided/... for alpnet)")
    seeders = trained_networks() + sorted(TRAINING_FREE)
    segment.add_argument("--network", choices=seeders, help="with --support: the network that predicts the seed slices "
                         f"(default {SEGMENT_NETWORK}, catnet with --guided; catnet: the bundle's shipped model)")
    segment.add_argument("--guided", action="store_true", help="with --support: seeds by the registration-guided "
                         "network (shipped weights trained on CHAOS)")
    segment.add_argument("--registration-seeds", type=int, metavar="N", help="with --support and --guided or --network "
                         "registration_intensity: register each support N times and average the warped masks (default 1)")
    segment.set_defaults(run=_segment)

    restore = commands.add_parser(
        "restore", help="denoise or through-plane super-resolve a 3D MRI volume with GRL (NIfTI in, NIfTI out).",
        description="Run bundles/grl_restoration's inference.json: the output has the input's grid (denoise) or "
        "--factor times as many slices (sr), the input's intensity range, and is written atomically.",
    )
    restore.add_argument("--input", required=True, help="degraded 3D volume (NIfTI)")
    restore.add_argument("--output", required=True, help="restored volume to write (.nii.gz)")
    restore.add_argument("--task", choices=("denoise", "sr"), default="denoise", help="default denoise")
    restore.add_argument("--factor", type=int, default=2, help="through-plane factor for --task sr (default 2)")
    restore.add_argument("--overwrite", action="store_true", help="replace an existing output")
    restore.add_argument("--noise", choices=("gaussian", "rician"), default="gaussian",
                         help="noise the model was trained on; picks models/<noise>_sigma<sigma>/grl.pt (default gaussian)")
    restore.add_argument("--sigma", type=float, default=0.05, help="its sigma (default 0.05)")
    restore.add_argument("--checkpoint", help="GRL weights (default: the bundle's model for the task)")
    restore.add_argument("--fp32", action="store_true",
                         help="compute in float32 everywhere (default: bfloat16 autocast where the device computes it "
                         "natively, e.g. a CPU with AVX512-BF16: about 1.5x faster, 0.01 dB lower PSNR)")
    restore.set_defaults(run=_restore)

    benchmark = commands.add_parser(
        "benchmark", help="run a benchmark of benchmarks/ (prints a table, writes JSON).",
        description="Run benchmarks/<name>.py of this checkout with the given arguments: it prints its table and writes "
        "it as JSON under benchmarks/results (figures are for the machine it ran on).",
    )
    benchmark.add_argument("name", help="e.g. catnet_speed, data_throughput")
    benchmark.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    benchmark.set_defaults(run=_benchmark)

    label = commands.add_parser(
        "label-app", help="serve the few-shot MONAI Label app (3D Slicer) on a study folder.",
        description="Start monailabel's server with the few-shot app from the label environment (offline).",
    )
    label.add_argument("--studies", required=True, help="folder of NIfTI volumes (the datastore)")
    label.add_argument("--network", choices=trained_networks(),
                       default="catnet", help="the registered network that serves support_image requests (default catnet)")
    label.add_argument("--checkpoint", help="that network's weights as training saves them (e.g. models/alpnet/"
                       "model_fold0.pt with --network alpnet); default: initial weights")
    label.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    label.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    label.add_argument("--venv", help="label environment (default $MONAI_FEWSHOT_LABEL_VENV or <repo>/.venv-label)")
    label.set_defaults(run=_label_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A bad input (a missing or unreadable file, a wrong value) ends in one line naming it;
    ``--debug`` shows the traceback, here and in the bundle's child process."""
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ[DEBUG_ENV] = "1"
    try:
        return args.run(args)
    except (OSError, ValueError, KeyError) as error:
        if args.debug:
            raise
        raise SystemExit(f"error: {error}") from None  # printed on stderr, exit status 1


if __name__ == "__main__":
    sys.exit(main())
