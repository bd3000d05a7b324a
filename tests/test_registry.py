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
