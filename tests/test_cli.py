from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_fewshot.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "train", "evaluate", "segment", "restore", "benchmark"):
        assert command in out


def test_demo_paints_one_slice_per_organ_and_beats_the_copy_baseline(tmp_path, capsys):
    """The README's main job on the shipped example MR: whole-volume Dice per organ beside the copy baseline."""
    import json

    assert main(["demo", "--volumes", "mr", "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| mr | liver |" in out and "| **all** | **mean of 7** |" in out
    rows = json.loads((tmp_path / "out" / "whole_organ_dice.json").read_text())
    assert [r["organ"] for r in rows] == ["spleen", "right kidney", "left kidney", "gallbladder", "liver", "stomach", "pancreas"]
    assert all(r["propagation"] > r["copy_over_true_extent"] for r in rows)
    assert np.mean([r["propagation"] for r in rows]) > np.mean([r["copy_over_true_extent"] for r in rows]) + 0.1
    assert (tmp_path / "out" / "overlay_mr_left_kidney.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="whole_organ_dice.md already exists; .*--overwrite"):
        main(["demo", "--volumes", "mr", "--output", str(tmp_path / "out")])


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_missing_data_folder(command, tmp_path):
    with pytest.raises(SystemExit, match=f"data folder {tmp_path / 'absent'} does not exist"):
        main([command, "--data", str(tmp_path / "absent")])


def test_unknown_benchmark():
    with pytest.raises(SystemExit, match="no benchmark 'nope'.*catnet_speed"):
        main(["benchmark", "nope"])


def test_missing_bundle(tmp_path):
    with pytest.raises(SystemExit, match="no bundle at"):
        main(["--bundle", str(tmp_path), "evaluate", "--data", str(tmp_path)])


def test_segment_requires_its_inputs(tmp_path):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "--support", "a.nii.gz"])  # no --output
    with pytest.raises(SystemExit, match="needs --support-label, --class-value, --query"):
        main(["segment", "--support", "a.nii.gz", "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="either --image and --annotation .* or --support"):
        main(["segment", "--image", "a.nii.gz", "--support", "b.nii.gz", "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="needs both --image and --annotation"):
        main(["segment", "--image", "a.nii.gz", "--output", str(tmp_path / "m.nii.gz")])


def test_restore_needs_an_existing_input(tmp_path):
    with pytest.raises(SystemExit, match=f"input image {tmp_path / 'absent.nii.gz'} does not exist"):
        main(["restore", "--input", str(tmp_path / "absent.nii.gz"), "--output", str(tmp_path / "out.nii.gz")])
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.slow
def test_restore_runs_the_bundle_with_the_default_network(tmp_path, capfd):
    from monai_fewshot.networks import grl_tiny

    torch.manual_seed(0)
    net = grl_tiny(3, 1, window_size=(8, 8, 4), stripe_size=(16, 8, 4), stripe_axes=(0, 1),
                   anchor_window_down_factor=(4, 4, 1), patch_size=(2, 2, 1))  # the bundle's network_def
    torch.save(net.state_dict(), tmp_path / "grl.pt")
    affine = np.diag([1.25, 1.25, 7.7, 1.0])
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((24, 20, 6), np.float32), affine), tmp_path / "thick.nii.gz")
    assert main(["restore", "--input", str(tmp_path / "thick.nii.gz"), "--output", str(tmp_path / "fine.nii.gz"),
                 "--task", "sr", "--factor", "2", "--checkpoint", str(tmp_path / "grl.pt")]) == 0
    fine = nib.load(tmp_path / "fine.nii.gz")
    assert fine.shape == (24, 20, 12) and np.isclose(fine.affine[2, 2], 7.7 / 2)
    out, err = capfd.readouterr()
    assert "100%" in err  # the sliding-window progress bar
    assert f"wrote {tmp_path / 'fine.nii.gz'} in " in out
    with pytest.raises(SystemExit, match="fine.nii.gz already exists; .*--overwrite"):
        main(["restore", "--input", str(tmp_path / "thick.nii.gz"), "--output", str(tmp_path / "fine.nii.gz")])


def _resolved(command: str, options: list[str], tmp_path, keys: list[str]) -> dict:
    """What the bundle makes of the command's arguments (the bundle names the folders; the command passes names)."""
    from monai_fewshot.bundle_runner import BUNDLES, bundle_values
    from monai_fewshot.cli import _absolute, _evaluate_overrides, _overlays, _train_overrides

    args = build_parser().parse_args([command, "--data", str(tmp_path), *options])
    overrides = _train_overrides(args) if command == "train" else _evaluate_overrides(args)
    configs = ["train.json", *(["evaluate.json"] if command == "evaluate" else []), *_overlays(args)]
    return bundle_values(BUNDLES / "catnet_fewshot", configs, _absolute(overrides) | {"bundle_root": str(tmp_path)}, keys)


@pytest.mark.parametrize(
    "options, models, run",
    [
        ([], "models", "runs/fold1"),
        (["--network", "alpnet"], "models/alpnet", "runs/alpnet_fold1"),
        (["--backbone", "cloformer_xxs"], "models/cloformer_xxs", "runs/cloformer_xxs_fold1"),
        (["--dataset", "cmr"], "models/cmr", "runs/cmr_fold1"),
        (["--exclude", "3", "2", "--network", "alpnet"], "models/setting2_exclude2-3/alpnet",
         "runs/setting2_exclude2-3_alpnet_fold1"),
    ],
)
def test_model_families_keep_their_own_weights_and_runs(options, models, run, tmp_path):
    """Another dataset, network, backbone or Setting 2 never resumes or overwrites the default CAT-Net's files."""
    train = _resolved("train", ["--fold", "1", *options], tmp_path, ["ckpt_dir", "run_dir"])
    assert train == {"ckpt_dir": str(tmp_path / models), "run_dir": str(tmp_path / run)}
    evaluate = _resolved("evaluate", options, tmp_path, ["ckpt_dir", "eval_dir"])
    assert evaluate["ckpt_dir"] == str(tmp_path / models)
    assert Path(evaluate["eval_dir"]).parent == tmp_path / "eval" and evaluate["eval_dir"].endswith("_test")


def _eval_name(options, tmp_path):
    return Path(_resolved("evaluate", options, tmp_path, ["eval_dir"])["eval_dir"]).name


def test_evaluation_folders_differ_between_families(tmp_path):
    names = {
        _eval_name(options, tmp_path)
        for options in ([], ["--network", "alpnet"], ["--dataset", "cmr"], ["--split", "validation"], ["--exclude", "2", "3"])
    }
    assert names == {"chaos_test", "chaos_alpnet_test", "cmr_test", "chaos_validation", "chaos_setting2_exclude2-3_test"}


def test_the_registration_method_is_evaluated_without_weights_and_never_trained(tmp_path, capsys):
    from monai_fewshot.cli import _evaluate_overrides, _overlays

    options = ["--network", "registration", "--folds", "0", "--workers", "2"]
    args = build_parser().parse_args(["evaluate", "--data", str(tmp_path), *options])
    overrides = _evaluate_overrides(args)
    assert _overlays(args) == ["registration.json"] and overrides["registration_workers"] == 2
    assert "ckpt_dir" not in overrides and "network_name" not in overrides  # no weights: no fold refused for lack of a model
    resolved = _resolved("evaluate", options, tmp_path, ["eval_dir", "eval_folds", "score_model", "checkpoint"])
    assert resolved == {"eval_dir": str(tmp_path / "eval" / "chaos_registration_test_fold0"), "eval_folds": [0],
                        "score_model": False, "checkpoint": None}
    setting2 = _resolved("evaluate", [*options, "--exclude", "3", "2"], tmp_path, ["eval_classes"])
    assert setting2 == {"eval_classes": [2, 3]}  # Setting 2's group is scored, weights or not
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", str(tmp_path), "--network", "registration"])
    assert "invalid choice: 'registration'" in capsys.readouterr().err


def test_whole_volume_scoring_has_a_folder_of_its_own(tmp_path):
    options = ["--network", "registration", "--whole-volume"]
    assert _resolved("evaluate", options, tmp_path, ["eval_dir", "eval_scored"]) == {
        "eval_dir": str(tmp_path / "eval" / "chaos_registration_test_wholevolume"), "eval_scored": "volume"}
    plain = _resolved("evaluate", ["--network", "registration"], tmp_path, ["eval_scored"])
    assert plain["eval_scored"] == "labelled"  # the bundle's default: the protocol's labelled slices


def test_registration_guided_models_are_a_family_of_their_own(tmp_path):
    from monai_fewshot.networks import ALPNet
    from monai_fewshot.registration import RegistrationGuided

    options = ["--guided", "--network", "alpnet", "--fold", "2"]
    resolved = _resolved("train", options, tmp_path, ["ckpt_dir", "run_dir", "network_def"])
    assert resolved["ckpt_dir"] == str(tmp_path / "models" / "alpnet" / "registration_guided")
    assert resolved["run_dir"] == str(tmp_path / "runs" / "alpnet_registration_guided_fold2")
    guided = resolved["network_def"].network
    assert isinstance(guided, RegistrationGuided) and isinstance(guided.network, ALPNet)
    assert _eval_name(["--guided"], tmp_path) == "chaos_registration_guided_test"


def test_evaluating_chosen_folds_keeps_them_apart(tmp_path):
    """--folds: only those folds, into a folder of their own, and a clear error for a fold without a model."""
    models = tmp_path / "models"
    models.mkdir()
    for fold in (1, 3):
        (models / f"model_fold{fold}.pt").touch()
    options = ["--ckpt-dir", str(models), "--exclude", "1", "4", "--folds"]
    resolved = _resolved("evaluate", [*options, "3", "1"], tmp_path, ["eval_dir", "eval_folds"])
    assert resolved == {"eval_dir": str(tmp_path / "eval" / "chaos_setting2_exclude1-4_test_fold1-3"), "eval_folds": [1, 3]}
    with pytest.raises(SystemExit, match=f"--folds 1 2: no model at {models / 'model_fold2.pt'}"):
        main(["evaluate", "--data", str(tmp_path), *options, "1", "2"])
    assert not (tmp_path / "eval").exists()


def test_every_command_has_a_description_and_renders_its_help(capsys):
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in commands.items():
        assert command.description, f"{name} has no description"
        with pytest.raises(SystemExit):
            main([name, "--help"])
        out = capsys.readouterr().out
        assert "%%" not in out, f"{name} --help shows a doubled percent sign"


def test_located_propagation_is_scored_in_a_folder_of_its_own(tmp_path):
    """evaluate --propagate: whole volumes segmented as `segment --support` does, every slice scored."""
    options = ["--network", "registration", "--propagate", "--folds", "0"]
    assert _resolved("evaluate", options, tmp_path, ["eval_dir", "eval_scored", "eval_propagate"]) == {
        "eval_dir": str(tmp_path / "eval" / "chaos_registration_test_propagated_fold0"), "eval_scored": "volume",
        "eval_propagate": True}
    plain = _resolved("evaluate", ["--network", "registration"], tmp_path, ["eval_propagate"])
    assert plain["eval_propagate"] is False
