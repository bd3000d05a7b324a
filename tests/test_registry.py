"""The few-shot network registry: every name the command and the app accept builds, a new network is one
registration, and the command's bundle overrides come from it."""

from __future__ import annotations

import pytest

from monai_fewshot.cli import _dataset_overrides, _model_overrides, build_parser
from monai_fewshot.networks import ALPNet, CATNet, SupportMaskCopy
from monai_fewshot.registration import SupportRegistration
from monai_fewshot.registry import (
    ENTRY_POINT_GROUP,
    FEWSHOT_NETWORKS,
    FewShotNetworkSpec,
    build_fewshot_network,
    evaluation_name,
    load_network_plugins,
    model_family,
    register_fewshot_network,
    trained_networks,
)


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


def write_plugin(site, name: str, value: str) -> None:
    """What ``pip install`` of a package declaring ``[project.entry-points."monai_fewshot.networks"] name = value``
    leaves in site-packages: a dist-info folder with its entry points."""
    info = site / f"{name}_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {value}\n")


def test_an_installed_plugin_registers_its_network(tmp_path, monkeypatch):
    """A package that declares a network under the entry-point group is registered by name, as a spec or by the
    import of its module; one that cannot be imported is refused in one line naming it."""
    (tmp_path / "plugin_spec.py").write_text(
        "from monai_fewshot.registry import FewShotNetworkSpec\n"
        "SPEC = FewShotNetworkSpec('tests.toy_network.toy_fewshot', description='a plugin network')\n"
    )
    write_plugin(tmp_path, "plugged", "plugin_spec:SPEC")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_network_plugins() == ["plugged"]
        assert type(build_fewshot_network("plugged")).__name__ == "ToyFewShot"
        assert "plugged" in trained_networks() and load_network_plugins() == []  # loaded once
    finally:
        FEWSHOT_NETWORKS.pop("plugged", None)
    write_plugin(tmp_path / "broken", "broken", "no_such_module_here:SPEC")
    monkeypatch.syspath_prepend(str(tmp_path / "broken"))
    with pytest.raises(ImportError, match="plugin 'broken' \\(no_such_module_here:SPEC\\) cannot be imported"):
        load_network_plugins()
    FEWSHOT_NETWORKS.pop("plugged", None)


def test_the_command_passes_names_and_the_bundle_names_the_folders(tmp_path):
    """cli.py passes the bundle's top-level keys only; the bundle derives the family's folders (models/, runs/,
    eval/) from them with model_family and evaluation_name."""
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--network", "alpnet", "--dataset", "cmr",
                                      "--exclude", "3", "2", "--backbone", "cloformer_xxs"])
    assert _model_overrides(args) == {"network_name": "alpnet", "backbone": "cloformer_xxs", "ckpt_dir": None}
    assert _dataset_overrides(args)["exclude_classes"] == [2, 3]
    family = model_family("cmr", "alpnet", "cloformer_xxs", [3, 2], guided=True)
    assert family == ["cmr", "setting2_exclude2-3", "alpnet", "cloformer_xxs", "registration_guided"]
    assert model_family("chaos", "catnet") == []
    assert evaluation_name("cmr", family, "test", "volume", [0]) == "cmr_setting2_exclude2-3_alpnet_cloformer_xxs_registration_guided_test_wholevolume_fold0"
    assert evaluation_name("chaos", [], "validation") == "chaos_validation"
    assert evaluation_name("chaos", ["registration"], "test", "volume", None, propagate=True) == "chaos_registration_test_propagated"


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


def test_the_command_passes_a_class_file_to_the_bundle_and_the_bundle_names_the_folders_after_it(tmp_path):
    import json

    from monai_fewshot.bundle_runner import BUNDLES, bundle_values
    from monai_fewshot.cli import _absolute, _dataset_overrides, _evaluate_overrides, _train_overrides

    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"name": "prostate", "classes": {"1": "peripheral zone"}}))
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--classes", str(classes)])
    assert _dataset_overrides(args) == {"dataset_dir": tmp_path, "classes_file": classes, "exclude_classes": None}
    bundle = BUNDLES / "catnet_fewshot"
    trained = bundle_values(bundle, ["train.json"], _absolute(_train_overrides(args)), ["classes", "ckpt_dir", "run_dir"])
    assert trained == {"classes": {1: "peripheral zone"}, "ckpt_dir": str(bundle / "models" / "prostate"),
                       "run_dir": str(bundle / "runs" / "prostate_fold0")}
    evaluate = build_parser().parse_args(["evaluate", "--data", str(tmp_path), "--classes", str(classes), "--folds", "1"])
    evaluated = bundle_values(bundle, ["train.json", "evaluate.json"], _absolute(_evaluate_overrides(evaluate)),
                              ["eval_dir"])
    assert evaluated == {"eval_dir": str(bundle / "eval" / "prostate_test_fold1")}
    chaos = build_parser().parse_args(["train", "--data", str(tmp_path)])
    assert _dataset_overrides(chaos) == {"dataset_dir": tmp_path, "dataset": "chaos", "exclude_classes": None}
