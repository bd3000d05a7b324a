"""The few-shot network registry: every name the command and the app accept builds, a new network is one
registration, and the command's bundle overrides come from it."""

from __future__ import annotations

import pytest

from monai_fewshot.cli import _model_overrides, build_parser
from monai_fewshot.networks import ALPNet, CATNet, SupportMaskCopy
from monai_fewshot.registration import SupportRegistration
from monai_fewshot.registry import FEWSHOT_NETWORKS, FewShotNetworkSpec, build_fewshot_network, register_fewshot_network


def test_the_registered_networks_build():
    assert isinstance(build_fewshot_network("catnet", spatial_dims=2), CATNet)
    assert isinstance(build_fewshot_network("alpnet", spatial_dims=2), ALPNet)
    assert isinstance(build_fewshot_network("registration"), SupportRegistration)
    assert isinstance(build_fewshot_network("floor"), SupportMaskCopy)
    assert {n for n, s in FEWSHOT_NETWORKS.items() if s.trained} == {"catnet", "alpnet"}
    assert FEWSHOT_NETWORKS["catnet"].working_size == (128, 128) and FEWSHOT_NETWORKS["floor"].working_size is None


def test_unknown_and_twice_registered_names():
    with pytest.raises(ValueError, match="unknown few-shot network 'nope'; registered: .*catnet"):
        build_fewshot_network("nope")
    with pytest.raises(ValueError, match="'catnet' is already registered"):
        register_fewshot_network("catnet", FewShotNetworkSpec("torch.nn.Identity"))


def test_a_registered_network_is_a_choice_of_the_command_and_its_target_reaches_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setitem(FEWSHOT_NETWORKS, "toy", FewShotNetworkSpec("tests.toy_network.toy_fewshot", description="toy"))
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--network", "toy"])
    assert _model_overrides(args, tmp_path)["network_def#network#_target_"] == "tests.toy_network.toy_fewshot"
    guided = build_parser().parse_args(["evaluate", "--data", str(tmp_path), "--network", "alpnet", "--guided"])
    assert _model_overrides(guided, tmp_path)["network_def#network#network#_target_"] == FEWSHOT_NETWORKS["alpnet"].target


def test_registered_datasets_hold_the_class_maps_and_setting2_groups():
    from monai_fewshot.data import CHAOS_CLASSES, CHAOS_SETTING2_TEST_CLASSES
    from monai_fewshot.registry import DATASETS

    assert DATASETS["chaos"].classes is CHAOS_CLASSES and DATASETS["chaos"].setting2_groups == CHAOS_SETTING2_TEST_CLASSES
    assert set(DATASETS) == {"chaos", "cmr", "mni152"}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_users_own_dataset_from_a_class_file(tmp_path, suffix):
    import json

    import yaml

    from monai_fewshot.registry import read_dataset_spec

    content = {"name": "prostate", "classes": {"2": "transition zone", "1": "peripheral zone"},
               "setting2_groups": {"all": [1, 2]}, "training": [{"image": "image_1.nii.gz"}]}
    path = tmp_path / f"prostate_classes{suffix}"
    path.write_text(json.dumps(content) if suffix == ".json" else yaml.safe_dump(content))
    spec = read_dataset_spec(path)
    assert spec.name == "prostate" and spec.classes == {1: "peripheral zone", 2: "transition zone"}
    assert spec.setting2_groups == {"all": (1, 2)}
    del content["name"]
    path.write_text(json.dumps(content) if suffix == ".json" else yaml.safe_dump(content))
    assert read_dataset_spec(path).name == "prostate_classes"


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"training": []}', 'needs a "classes" mapping'),
        ('{"classes": {"0": "background"}}', "is not a positive label value with a name"),
        ('{"classes": {"1": "liver"}, "setting2_groups": {"g": [1, 5]}}', r"group 'g' names \[5\], not in \[1\]"),
        ("{not json", "cannot be read: JSONDecodeError"),
    ],
)
def test_a_bad_class_file_is_named(tmp_path, text, message):
    from monai_fewshot.registry import read_dataset_spec

    path = tmp_path / "classes.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"class file {path}.*{message}"):
        read_dataset_spec(path)
    with pytest.raises(FileNotFoundError, match="absent.json does not exist"):
        read_dataset_spec(tmp_path / "absent.json")


def test_the_command_passes_a_class_file_to_the_bundle_and_names_the_folders_after_it(tmp_path):
    import json

    import monai_fewshot.registry  # noqa: F401 - the bundle's expression names it
    from monai_fewshot.cli import _dataset_overrides, _evaluate_overrides, _train_overrides

    (tmp_path / "classes.json").write_text(json.dumps({"name": "prostate", "classes": {"1": "peripheral zone"}}))
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--classes", str(tmp_path / "classes.json")])
    expression = _dataset_overrides(args)["classes"]
    assert eval(expression[1:]) == {1: "peripheral zone"}  # what the bundle evaluates ("$...")
    assert _train_overrides(args, tmp_path)["ckpt_dir"] == tmp_path / "models" / "prostate"
    evaluate = build_parser().parse_args(["evaluate", "--data", str(tmp_path), "--classes", str(tmp_path / "classes.json")])
    assert _evaluate_overrides(evaluate, tmp_path)["eval_dir"].name == "prostate_test"
    chaos = build_parser().parse_args(["train", "--data", str(tmp_path)])
    assert eval(_dataset_overrides(chaos)["classes"][1:]) == {1: "liver", 2: "right kidney", 3: "left kidney", 4: "spleen"}
