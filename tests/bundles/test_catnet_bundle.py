"""The CAT-Net bundle, run for real with `python -m monai.bundle` on CHAOS volumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from tests.bundles.conftest import BUNDLE, bundle_command, run_bundle

TINY = {"working_size": "[64,64]", "batch_size": 2, "num_workers": 0}


def test_configs_parse_and_build_the_network():
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "evaluate.json")])
    parser.read_meta(str(BUNDLE / "configs" / "metadata.json"))
    assert parser.get_parsed_content("network_def").spatial_size == (128, 128)
    assert "evaluate" in parser.get() and parser["run"][0].startswith("$@evaluate::catnet")
    inference = ConfigParser()
    inference.read_config(str(BUNDLE / "configs" / "inference.json"))
    assert inference.get_parsed_content("network_def").packed_channels == 3


def test_the_fold_split_is_computed_once_and_every_split_reads_it():
    """n_val_queries is one key; the fold split is computed from it once (``folds``) and training episodes,
    validation episodes and the evaluator all read that split, so that changing it cannot let a validation
    volume into training."""
    from monai_fewshot.data import N_VAL_QUERIES

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "evaluate.json")])
    assert parser.get_parsed_content("n_val_queries") == N_VAL_QUERIES
    assert "n_val_queries=@n_val_queries" in parser["folds"]
    readers = ["train#dataset#folds", "validate#dataset#folds",
               *(f"evaluate#{name}#folds" for name in ("catnet", "registration", "floor"))]
    assert all(parser[key] == "@folds" for key in readers)
    assert "n_val_queries" not in json.dumps({key: parser[key] for key in ("train", "validate", "evaluate")})
    assert "len(@folds)" in parser["evaluated_folds"]


def test_the_overlays_choose_the_network_dataset_and_backbone():
    """alpnet.json, cmr.json and cloformer_xxs.json set top-level keys only; the bundle builds the registered network
    and names the family's folders from them, as the command's train/evaluate do."""
    from monai_fewshot.networks import ALPNet, CATNet

    configs = BUNDLE / "configs"
    expected = {
        (): (CATNet, "models", "chaos_test", 4, "resnet18"),
        ("alpnet.json",): (ALPNet, "models/alpnet", "chaos_alpnet_test", 4, "resnet18"),
        ("cmr.json",): (CATNet, "models/cmr", "cmr_test", 3, "resnet18"),
        ("cloformer_xxs.json",): (CATNet, "models/cloformer_xxs", "chaos_cloformer_xxs_test", 4, "cloformer_xxs"),
        ("cmr.json", "alpnet.json"): (ALPNet, "models/cmr/alpnet", "cmr_alpnet_test", 3, "resnet18"),
    }
    for overlays, (kind, models, evaluation, n_classes, backbone) in expected.items():
        parser = ConfigParser()
        parser.read_config([str(configs / name) for name in ("train.json", "evaluate.json", *overlays)])
        parser["bundle_root"] = "B"
        network = parser.get_parsed_content("network_def").network
        assert type(network) is kind and len(parser.get_parsed_content("classes")) == n_classes
        encoder = network.mife.backbone if kind is CATNet else network.backbone
        assert type(encoder).__name__.lower().startswith(backbone[:5]), (overlays, type(encoder).__name__)
        assert parser.get_parsed_content("ckpt_dir") == f"B/{models}"
        assert parser.get_parsed_content("eval_dir") == f"B/eval/{evaluation}"


def test_registration_overlays_parse():
    """registration_guided.json wraps the network in RegistrationGuided and widens the augmentation; registration.json
    scores the training-free method alone, on every fold, with no checkpoint; registration_intensity.json scores its
    intensity-corrected form beside it."""
    from monai_fewshot.registration import INTENSITY_WEIGHT, RegistrationGuided, SupportRegistration

    configs = BUNDLE / "configs"
    guided = ConfigParser()
    guided.read_config([str(configs / "train.json"), str(configs / "registration_guided.json")])
    network = guided.get_parsed_content("network_def")
    assert isinstance(network.network, RegistrationGuided) and network.network.prior_weight == 1.0
    assert network.network.intensity_weight == INTENSITY_WEIGHT
    assert guided.get_parsed_content("train#dataset#augmentation")["rotate_degrees"] == 15.0
    # the same overlay turns the inference bundle's seed network into the guided one (segment --guided)
    inference = ConfigParser()
    inference.read_config([str(configs / "inference.json"), str(configs / "registration_guided.json")])
    inference.update({"checkpoint": str(BUNDLE / "models" / "registration_guided" / "model_fold0.pt"), "registration_seeds": [0, 1]})
    seeder = inference.get_parsed_content("seed_network")
    assert isinstance(seeder.network, RegistrationGuided) and seeder.network.registration == {"seeds": [0, 1]}
    alone = ConfigParser()
    alone.read_config([str(configs / name) for name in ("train.json", "evaluate.json", "registration.json")])
    assert alone["score_model"] is False and alone["score_registration"] is True and alone["checkpoint"] is None
    corrected = ConfigParser()
    corrected.read_config([str(configs / name) for name in ("train.json", "evaluate.json", "registration_intensity.json")])
    method = corrected.get_parsed_content("network_def")
    assert isinstance(method, SupportRegistration) and method.intensity_weight == INTENSITY_WEIGHT > 0
    assert corrected["score_model"] is True and corrected["score_registration"] is True and corrected["checkpoint"] is None
    # one registration per support unless registration_seeds names more
    assert network.network.registration == {"seeds": [0]} and method.options["seeds"] == [0]
    corrected.update({"registration_seeds": [0, 1, 2]})
    corrected.parse()
    assert corrected.get_parsed_content("network_def").options["seeds"] == [0, 1, 2]
    assert corrected.get_parsed_content("seed_network").options["seeds"] == [0, 1, 2]  # segment --registration-seeds


def test_verify_metadata_with_the_local_schema(meta_schema):
    result = run_bundle("verify_metadata", filepath=meta_schema, timeout=300)
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_verify_net_in_out():
    result = run_bundle("verify_net_in_out", "inference.json", net_id="network_def", timeout=600)
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


@pytest.mark.slow
def test_train_is_killed_and_resumes_the_same_stream(small_chaos, supervoxel_cache, tmp_path):
    overrides = dict(TINY, dataset_dir=small_chaos, supervoxel_cache=supervoxel_cache, run_dir=tmp_path / "run",
                     ckpt_dir=tmp_path / "models", episodes_per_epoch=3, max_epochs=3, val_interval=3)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen(bundle_command("run", "train.json", **overrides), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    deadline = time.time() + 900
    while not list((tmp_path / "run").glob("checkpoint_*.pt")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    saved = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "run").glob("checkpoint_*.pt"))
    assert saved and saved[-1] % 3 == 0 and saved[-1] < 9, saved  # killed after the first epoch's checkpoint

    result = run_bundle("run", "train.json", **overrides)
    log = result.stdout + result.stderr
    assert f"checkpoint_{saved[-1]}.pt: iteration {saved[-1]}, epoch {saved[-1] // 3}" in log
    assert "Epoch: 3/3, Iter: 1/3" in log and f"Epoch: {saved[-1] // 3}/3, Iter: 1/3" not in log  # no epoch twice
    final = torch.load(tmp_path / "run" / "checkpoint_9.pt", weights_only=False)
    assert final["trainer"]["iteration"] == 9 and final["trainer"]["epoch_length"] == 3
    assert (tmp_path / "models" / "model_fold0.pt").is_file()  # validation ran and kept the best model
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob(".*"))


@pytest.mark.slow
def test_evaluate_writes_tables_and_overlays(small_chaos, tmp_path):
    from monai_fewshot.networks import ResizedFewShot, catnet_light

    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    torch.save(ResizedFewShot(catnet_light(2), (64, 64)).state_dict(), models / "model_fold1.pt")
    run_bundle("run", "train.json", "evaluate.json", **TINY, dataset_dir=small_chaos, ckpt_dir=models,
               eval_dir=tmp_path / "eval")
    files = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert "catnet_dice.csv" in files and "catnet_dice.md" in files and "floor_dice.md" in files
    assert "registration_dice.md" in files  # the training-free registration method beside the floor
    assert sum(name.endswith(".png") for name in files) == 4
    rows = (tmp_path / "eval" / "catnet_dice.csv").read_text().splitlines()
    assert rows[0] == "fold,class,volume,dice,hd95"
    assert {row.split(",")[0] for row in rows[1:]} == {"1"}  # only the fold that has a checkpoint
    assert len(rows) - 1 == 4 * 2  # 4 classes x 2 query volumes of fold 1
    assert "| fold 1 |" in (tmp_path / "eval" / "floor_dice.md").read_text()
    registration = (tmp_path / "eval" / "registration_dice.csv").read_text().splitlines()
    assert [row.split(",")[:3] for row in registration] == [row.split(",")[:3] for row in rows]  # the same episodes


@pytest.mark.slow
def test_inference_writes_masks_with_the_query_affine(chaos_dir, tmp_path):
    from monai_fewshot.networks import ResizedFewShot, catnet_light

    torch.manual_seed(0)
    torch.save(ResizedFewShot(catnet_light(2), (64, 64)).state_dict(), tmp_path / "model.pt")
    run_bundle("run", "inference.json", working_size="[64,64]", checkpoint=tmp_path / "model.pt",
               support_image=chaos_dir / "image_1.nii.gz", support_label=chaos_dir / "label_1.nii.gz", class_value=4,
               query_images=repr([str(chaos_dir / "image_2.nii.gz"), str(chaos_dir / "image_15.nii.gz")]),
               output_dir=tmp_path / "out")
    for subject in ("2", "15"):
        mask, query = nib.load(tmp_path / "out" / f"image_{subject}_seg.nii.gz"), nib.load(chaos_dir / f"image_{subject}.nii.gz")
        assert mask.shape == query.shape and np.array_equal(mask.affine, query.affine)
        assert mask.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}


@pytest.mark.slow
def test_inference_bad_inputs_leave_no_output(chaos_dir, tmp_path):
    from monai_fewshot.networks import ResizedFewShot, catnet_light

    torch.save(ResizedFewShot(catnet_light(2), (64, 64)).state_dict(), tmp_path / "model.pt")
    common = dict(working_size="[64,64]", support_image=chaos_dir / "image_1.nii.gz", support_label=chaos_dir / "label_1.nii.gz",
                  query_images=repr([str(chaos_dir / "image_2.nii.gz")]), output_dir=tmp_path / "out")
    absent = run_bundle("run", "inference.json", check=False, checkpoint=tmp_path / "model.pt", class_value=7, **common)
    assert absent.returncode != 0 and "label value 7 is absent from" in absent.stderr and "label_1.nii.gz" in absent.stderr
    torch.save(catnet_light(2, feature_size=64, num_heads=2).state_dict(), tmp_path / "other.pt")
    other = run_bundle("run", "inference.json", check=False, checkpoint=tmp_path / "other.pt", class_value=1, **common)
    assert other.returncode != 0 and "does not fit" in other.stderr and "other.pt" in other.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_missing_data_folder_is_a_clear_error(tmp_path):
    result = run_bundle("run", "train.json", check=False, **TINY, dataset_dir=tmp_path / "nowhere",
                        supervoxel_cache=tmp_path / "cache", run_dir=tmp_path / "run", ckpt_dir=tmp_path / "models")
    assert result.returncode != 0 and str(tmp_path / "nowhere") in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "models").exists()


@pytest.mark.slow
def test_ckpt_export_gives_the_same_masks(chaos_dir, tmp_path):
    from monai_fewshot.networks import ChannelPackedFewShot, ResizedFewShot, catnet_light

    torch.manual_seed(0)
    net = ChannelPackedFewShot(ResizedFewShot(catnet_light(2), (64, 64))).eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    run_bundle("ckpt_export", "inference.json", net_id="network_def", filepath=tmp_path / "model.ts",
               ckpt_file=tmp_path / "model.pt", working_size="[64,64]", use_trace=True, input_shape="[1,3,256,256]")
    exported = torch.jit.load(str(tmp_path / "model.ts"))
    image = nib.load(chaos_dir / "image_2.nii.gz").get_fdata().astype(np.float32)
    label = np.asarray(nib.load(chaos_dir / "label_2.nii.gz").dataobj) == 1
    z = int(np.argmax(label.sum((0, 1))))
    image = (image - image.mean()) / image.std()
    x = torch.from_numpy(np.stack([image[..., z], image[..., z - 1], label[..., z - 1].astype(np.float32)]))[None]
    with torch.no_grad():
        torch.testing.assert_close(exported(x) > 0, net(x) > 0)



@pytest.mark.slow
def test_multi_gpu_config_trains_with_torchrun_on_two_cpu_processes(small_chaos, supervoxel_cache, tmp_path):
    """multi_gpu_train.json through torchrun: 2 ranks (gloo on CPU, nccl on GPUs), each with its share."""
    command = bundle_command("run", "train.json", "multi_gpu_train.json", **TINY, dataset_dir=small_chaos,
                             supervoxel_cache=supervoxel_cache, run_dir=tmp_path / "run", ckpt_dir=tmp_path / "models",
                             episodes_per_epoch=4, max_epochs=1, val_interval=1)
    torchrun = [command[0], "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *command[1:]]  # free port
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(torchrun, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    final = torch.load(tmp_path / "run" / "checkpoint_2.pt", weights_only=False)  # 4 batches split over 2 ranks
    assert final["trainer"]["iteration"] == 2 and final["trainer"]["epoch_length"] == 2
    best = torch.load(tmp_path / "models" / "model_fold0.pt", weights_only=True)
    assert best and not any(key.startswith("module.") for key in best)  # saved unwrapped, loads into the net



@pytest.mark.slow
def test_a_registered_toy_network_trains_evaluates_and_is_served(small_chaos, tmp_path, capsys, monkeypatch):
    """Adding a network is one file and one registration (tests/toy_network.py, declared by an entry point as an
    installed plugin package declares it): the command then trains and evaluates it through the bundle, whose
    processes find it by name, and the MONAI Label app's loader (the bundle's inference.json through
    ConfigParser) serves its weights, with no other edit."""
    import sys
    from pathlib import Path

    from monai_fewshot.cli import main
    from monai_fewshot.registry import load_network_plugins
    from tests.test_registry import write_plugin

    repo = Path(__file__).resolve().parents[2]
    write_plugin(tmp_path / "site", "toy", "tests.toy_network")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), str(repo)]))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    load_network_plugins()
    models = tmp_path / "models"
    assert main(["train", "--network", "toy", "--data", str(small_chaos), "--fold", "1", "--epochs", "3",
                 "--episodes-per-epoch", "2", "--run-dir", str(tmp_path / "run"), "--ckpt-dir", str(models)]) == 0
    assert set(torch.load(models / "model_fold1.pt", weights_only=True)) == {"conv.weight", "conv.bias"}
    assert main(["evaluate", "--network", "toy", "--data", str(small_chaos), "--ckpt-dir", str(models), "--folds", "1",
                 "--exclude", "2", "--output", str(tmp_path / "eval")]) == 0
    assert "toy Dice (%)" in capsys.readouterr().out and (tmp_path / "eval" / "toy_dice.csv").is_file()
    venv = Path(os.environ.get("MONAI_FEWSHOT_LABEL_VENV") or repo / ".venv-label")
    subprocess.run(["bash", str(repo / "monai_fewshot" / "apps" / "setup_env.sh"), str(venv)], check=True, timeout=3600,
                   capture_output=True)
    serve = (
        "import sys, torch\n"
        "from monai_fewshot.apps.fewshot_label.infer import load_network\n"
        "network, description = load_network(sys.argv[1], 'toy')\n"
        "assert type(network.network).__name__ == 'ToyFewShot' and sys.argv[1] in description, description\n"
        "assert network(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 1, 32, 32), torch.ones(1, 1, 1, 32, 32)).shape == (1, 1, 32, 32)\n"
    )
    subprocess.run([str(venv / "bin" / "python"), "-c", serve, str(models / "model_fold1.pt")], check=True, cwd=tmp_path,
                   timeout=300)
    assert sys.modules["tests.toy_network"]


@pytest.mark.slow
def test_prototype_baseline_trains_and_evaluates_through_the_command(small_chaos, tmp_path, capsys):
    from monai_fewshot.cli import main

    models = tmp_path / "models"
    assert main(["train", "--network", "alpnet", "--data", str(small_chaos), "--fold", "1", "--epochs", "3",
                 "--episodes-per-epoch", "2", "--run-dir", str(tmp_path / "run"), "--ckpt-dir", str(models)]) == 0
    assert f"wrote the best validation model to {models / 'model_fold1.pt'}" in capsys.readouterr().out
    weights = torch.load(models / "model_fold1.pt", weights_only=True)
    assert "foreground.scale" not in weights and "reduce.conv.weight" in weights
    assert not any(key.startswith("cmat") for key in weights)  # the baseline, not CAT-Net
    assert main(["evaluate", "--network", "alpnet", "--data", str(small_chaos), "--ckpt-dir", str(models),
                 "--folds", "1", "--exclude", "2", "--output", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "alpnet Dice (%)" in printed and "registration Dice (%)" in printed
    rows = (tmp_path / "eval" / "alpnet_dice.csv").read_text().splitlines()
    assert len(rows) - 1 == 2 and (tmp_path / "eval" / "floor_dice.md").is_file()  # right kidney x 2 queries


@pytest.mark.slow
def test_registration_method_is_scored_through_the_command_without_weights(small_chaos, tmp_path, capsys):
    """`evaluate --network registration`: the bundle's registration.json overlay, no model, the floor beside it."""
    from monai_fewshot.cli import main

    output = tmp_path / "eval"
    assert main(["evaluate", "--network", "registration", "--data", str(small_chaos), "--folds", "1", "--exclude", "2",
                 "--workers", "2", "--output", str(output)]) == 0
    assert "registration Dice (%)" in capsys.readouterr().out
    registration = (output / "registration_dice.csv").read_text().splitlines()
    floor = (output / "floor_dice.csv").read_text().splitlines()
    assert len(registration) - 1 == len(floor) - 1 == 2  # right kidney x 2 query volumes of fold 1
    mean = lambda rows: sum(float(r.split(",")[3]) for r in rows[1:]) / (len(rows) - 1)  # noqa: E731
    assert mean(registration) > mean(floor)


@pytest.mark.slow
def test_intensity_corrected_registration_is_scored_beside_registration(small_chaos, tmp_path, capsys):
    """`evaluate --network registration_intensity`: no weights, scored on the same episodes as registration and floor."""
    from monai_fewshot.cli import main

    output = tmp_path / "eval"
    assert main(["evaluate", "--network", "registration_intensity", "--data", str(small_chaos), "--folds", "1",
                 "--exclude", "2", "--workers", "2", "--output", str(output)]) == 0
    assert "registration_intensity Dice (%)" in capsys.readouterr().out
    rows = {name: (output / f"{name}_dice.csv").read_text().splitlines() for name in ("registration_intensity", "registration", "floor")}
    assert [r.split(",")[:3] for r in rows["registration_intensity"]] == [r.split(",")[:3] for r in rows["registration"]]
    assert len(rows["floor"]) == len(rows["registration"]) == 3  # header + right kidney x 2 query volumes of fold 1


@pytest.mark.slow
def test_located_propagation_is_scored_through_the_command(small_chaos, tmp_path, capsys):
    """`evaluate --propagate`: each query volume segmented as `segment --support` does, every slice scored, the
    registration seeds well above the floor's (the support mask copied onto the seed slices)."""
    from monai_fewshot.cli import main

    output = tmp_path / "eval"
    assert main(["evaluate", "--network", "registration", "--propagate", "--data", str(small_chaos), "--folds", "1",
                 "--exclude", "2", "--workers", "2", "--output", str(output)]) == 0
    assert f"wrote the Dice tables (CSV, Markdown) to {output}" in capsys.readouterr().out
    registration = (output / "registration_dice.csv").read_text().splitlines()
    floor = (output / "floor_dice.csv").read_text().splitlines()
    assert len(registration) - 1 == len(floor) - 1 == 2  # right kidney x 2 query volumes of fold 1
    mean = lambda rows: sum(float(r.split(",")[3]) for r in rows[1:]) / (len(rows) - 1)  # noqa: E731
    assert mean(registration) > mean(floor) + 0.1  # 0.30 against 0.12 on this small fold


@pytest.mark.slow
@pytest.mark.parametrize(
    "overlays, data, evaluation, name",
    [(("alpnet.json",), "chaos_t2_mri", "chaos_alpnet_test_fold0", "alpnet"),
     (("cmr.json",), "cmr_mscmrseg_bssfp", "cmr_test_fold0", "catnet"),
     (("cmr.json", "registration_guided.json"), "cmr_mscmrseg_bssfp", "cmr_registration_guided_test_fold0", "catnet"),
     (("cloformer_xxs.json",), "chaos_t2_mri", "chaos_cloformer_xxs_test_fold0", "catnet")],
)
def test_plain_bundle_runs_of_the_overlays_reproduce_the_committed_fold0_tables(overlays, data, evaluation, name, tmp_path):
    """``python -m monai.bundle run`` with train.json, evaluate.json and the overlay files (overrides: the data
    folder, fold 0, the output folder, no registration scoring) scores the shipped fold-0 weights of that family
    as the committed table does, to 0.01 Dice per class."""
    from monai_fewshot.metrics import FewShotScoreTable
    from tests.conftest import require_shared

    run_bundle("run", "train.json", "evaluate.json", *overlays, eval_folds="[0]", score_registration=False,
               eval_dir=tmp_path, dataset_dir=require_shared(data))
    reproduced = FewShotScoreTable.from_csv(tmp_path / f"{name}_dice.csv").per_fold()[0]
    committed = FewShotScoreTable.from_csv(BUNDLE / "eval" / evaluation / f"{name}_dice.csv").per_fold()[0]
    assert reproduced.keys() == committed.keys()
    for organ, dice in committed.items():
        assert abs(100 * reproduced[organ] - 100 * dice) < 0.01, (organ, 100 * reproduced[organ], 100 * dice)
