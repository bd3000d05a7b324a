"""The GRL restoration bundle, run for real with `python -m monai.bundle` on (cropped) CHAOS volumes."""

from __future__ import annotations

import csv
import re

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.networks.nets.restormer import Restormer

from monai_fewshot.data import restoration_split
from monai_fewshot.networks import GRL
from tests.bundles.conftest import BUNDLES, run_bundle

GRL_BUNDLE = BUNDLES / "grl_restoration"
CONFIGS = GRL_BUNDLE / "configs"
TINY_GRL = {"spatial_dims": 3, "embed_dim": 8, "depths": [2], "window_size": [4, 4, 2], "stripe_size": [8, 4, 2],
            "stripe_axes": [0, 1], "anchor_window_down_factor": [2, 2, 1]}
TINY_RESTORMER = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "dim": 8, "num_blocks": [1, 1, 1, 1],
                  "heads": [1, 1, 1, 1], "num_refinement_blocks": 1}
TINY = {"network_def": repr({"_target_": "monai_fewshot.networks.nets.GRL", **TINY_GRL}),
        "restormer_def": repr({"_target_": "monai.networks.nets.restormer.Restormer", **TINY_RESTORMER}),
        "patch_size": "[32,32,16]", "patches_per_volume": 4, "batch_size": 1, "num_workers": 0}
CROPPED = ("1", "2", "3", "5", "8", "10", "13", "15")


def grl_run(*configs: str, check: bool = True, **overrides):
    return run_bundle("run", *configs, bundle=GRL_BUNDLE, check=check, timeout=900, **overrides)


@pytest.fixture(scope="module")
def chaos_crops(tmp_path_factory, chaos_dir):
    """Eight real CHAOS volumes, cropped to their central 64 x 64 in-plane (all slices, affine kept right by
    nibabel's slicer) in a temporary folder: 2 train, 2 validation and 4 test volumes under the default split."""
    folder = tmp_path_factory.mktemp("chaos_crops")
    for subject in CROPPED:
        image = nib.load(chaos_dir / f"image_{subject}.nii.gz")
        nib.save(image.slicer[96:160, 96:160, :], folder / f"image_{subject}.nii.gz")
    return folder


def test_configs_parse_and_build_the_networks():
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")])
    parser.read_meta(str(CONFIGS / "metadata.json"))
    grl = parser.get_parsed_content("network_def")
    assert isinstance(grl, GRL) and grl.spatial_dims == 3 and grl.task == "denoise"
    assert sum(p.numel() for p in grl.parameters()) == 1_306_337  # GRL-T in 3D, 2 x 2 x 1 patches
    assert grl.pad_multiple == (32, 32, 4)
    assert parser.get_parsed_content("setting") == "gaussian_sigma0.05"
    assert parser.get_parsed_content("checkpoint").endswith("models/gaussian_sigma0.05/grl.pt")
    assert isinstance(parser.get_parsed_content("restormer_def"), Restormer)

    sr = ConfigParser()
    sr.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "sr_x2.json")])
    assert sr.get_parsed_content("setting") == "sr_x2" and sr.get_parsed_content("degradation")["factor"] == 2
    restormer = ConfigParser()
    restormer.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "restormer.json")])
    assert isinstance(restormer.get_parsed_content("network_def"), Restormer)
    assert restormer.get_parsed_content("checkpoint").endswith("models/gaussian_sigma0.05/restormer.pt")

    budget = ConfigParser()
    budget.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "cpu_budget.json"), str(CONFIGS / "evaluate.json")])
    assert budget.get_parsed_content("patch_size") == [32, 32, 16] and budget.get_parsed_content("max_epochs") == 20
    assert budget.get_parsed_content("inferer").roi_size == [128, 128, 16]
    assert "centred crop [128, 128, -1]" in budget.get_parsed_content("title")
    assert parser.get_parsed_content("inferer").roi_size == [64, 64, 16]  # the full recipe: whole volumes, patch windows

    inference = ConfigParser()
    inference.read_config(str(CONFIGS / "inference.json"))
    assert inference.get_parsed_content("checkpoint").endswith("models/gaussian_sigma0.05/grl.pt")
    assert inference.get("network_def") == parser.get("network_def")  # the same network in both


def test_verify_metadata_with_the_local_schema(meta_schema):
    result = run_bundle("verify_metadata", bundle=GRL_BUNDLE, filepath=meta_schema, timeout=300)
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_verify_net_in_out():
    tiny = {"network_def#embed_dim": 8, "network_def#depths": "[1]"}  # the bundle's geometry, a small width
    result = run_bundle("verify_net_in_out", "inference.json", bundle=GRL_BUNDLE, net_id="network_def", timeout=300, **tiny)
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


def losses(log: str) -> list[float]:
    return [float(v) for v in re.findall(r"train_loss: ([0-9.]+)", log)]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["sr_x2.json"]])
def test_training_lowers_the_loss_and_writes_checkpoints(chaos_crops, tmp_path, extra):
    result = grl_run("train.json", *extra, **TINY, dataset_dir=chaos_crops, max_epochs=4, val_interval=2,
                     learning_rate=0.001, run_dir=tmp_path / "run", ckpt_dir=tmp_path / "models")
    log = result.stdout + result.stderr
    values = losses(log)
    assert len(values) == 2 * 4  # 2 training volumes, 1 volume (4 patches) per batch, 4 epochs
    assert np.mean(values[-2:]) < np.mean(values[:2]), values
    assert "val_psnr" in log
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint_*.pt")) == ["checkpoint_6.pt", "checkpoint_8.pt"]
    weights = torch.load(tmp_path / "models" / "grl.pt", weights_only=True)
    GRL(**TINY_GRL).load_state_dict(weights)  # the best validation model, loadable into the network


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    torch.save(GRL(**TINY_GRL).state_dict(), folder / "grl.pt")
    torch.save(Restormer(**TINY_RESTORMER).state_dict(), folder / "restormer.pt")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra,methods",
    [([], ["noisy input", "Gaussian filter", "GRL-T", "Restormer (MONAI, 3D)"]),
     (["sr_x2.json"], ["input (nearest)", "trilinear", "cubic B-spline", "GRL-T", "Restormer (MONAI, 3D)"])],
)
def test_evaluate_writes_the_table(chaos_crops, tiny_checkpoints, tmp_path, extra, methods):
    grl_run("train.json", *extra, "evaluate.json", **TINY, dataset_dir=chaos_crops, ckpt_dir=tiny_checkpoints,
            eval_dir=tmp_path / "eval")
    rows = list(csv.reader((tmp_path / "eval" / "psnr_ssim.csv").read_text().splitlines()))
    assert rows[0] == ["method", "volume", "psnr", "ssim"]
    assert list(dict.fromkeys(row[0] for row in rows[1:])) == methods
    assert sorted({row[1] for row in rows[1:]}, key=int) == restoration_split(CROPPED)["test"]  # the held-out volumes
    assert all(0 < float(row[3]) <= 1 and float(row[2]) > 5 for row in rows[1:])
    table = (tmp_path / "eval" / "psnr_ssim.md").read_text()
    assert "test volumes of chaos_crops" in table and all(f"| {m} |" in table for m in methods)


@pytest.mark.slow
def test_evaluate_without_restormer_weights_leaves_it_out(chaos_crops, tiny_checkpoints, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "grl.pt").symlink_to(tiny_checkpoints / "grl.pt")
    grl_run("train.json", "evaluate.json", **TINY, dataset_dir=chaos_crops, ckpt_dir=models, eval_dir=tmp_path / "eval")
    assert "Restormer" not in (tmp_path / "eval" / "psnr_ssim.md").read_text()


@pytest.mark.slow
def test_inference_writes_the_restored_volume_on_the_input_grid(chaos_crops, tiny_checkpoints, tmp_path):
    source = nib.load(chaos_crops / "image_2.nii.gz")
    rng = np.random.default_rng(0)
    noisy = source.get_fdata() + rng.normal(0, 30, source.shape)
    nib.save(nib.Nifti1Image(noisy.astype(np.float32), source.affine), tmp_path / "noisy.nii.gz")
    grl_run("inference.json", network_def=TINY["network_def"], patch_size="[32,32,8]",
            checkpoint=tiny_checkpoints / "grl.pt", input_image=tmp_path / "noisy.nii.gz",
            output_image=tmp_path / "out" / "restored.nii.gz")
    restored = nib.load(tmp_path / "out" / "restored.nii.gz")
    assert restored.shape == source.shape and np.allclose(restored.affine, source.affine)
    assert restored.get_data_dtype() == np.float32 and np.isfinite(restored.get_fdata()).all()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["restored.nii.gz"]  # no temporary file left


@pytest.mark.slow
def test_bad_inputs_are_clear_errors_and_leave_no_files(tmp_path, tiny_checkpoints):
    missing = grl_run("train.json", check=False, **TINY, dataset_dir=tmp_path / "nowhere", run_dir=tmp_path / "run",
                      ckpt_dir=tmp_path / "models")
    assert missing.returncode != 0 and f"dataset folder {tmp_path / 'nowhere'} does not exist" in missing.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "models").exists()

    nib.save(nib.Nifti1Image(np.zeros((64, 64), np.float32), np.eye(4)), tmp_path / "slice.nii.gz")
    flat = grl_run("inference.json", check=False, network_def=TINY["network_def"], checkpoint=tiny_checkpoints / "grl.pt",
                   input_image=tmp_path / "slice.nii.gz", output_image=tmp_path / "out" / "restored.nii.gz")
    assert flat.returncode != 0 and "slice.nii.gz has shape (64, 64): the restoration network takes a 3D volume" in flat.stderr
    absent = grl_run("inference.json", check=False, network_def=TINY["network_def"], checkpoint=tmp_path / "none.pt",
                     input_image=tmp_path / "slice.nii.gz", output_image=tmp_path / "out" / "restored.nii.gz")
    assert absent.returncode != 0 and f"checkpoint {tmp_path / 'none.pt'} does not exist" in absent.stderr
    assert not (tmp_path / "out").exists()
