import pytest
import torch

from monai_fewshot.engines import latest_checkpoint, save_atomic


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full")


def test_save_atomic_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "models" / "model.pt"
    save_atomic({"weight": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic({"weight": _Unpicklable()}, path)
    assert torch.equal(torch.load(path)["weight"], torch.ones(2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary left behind


def test_latest_checkpoint_by_iteration(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    for step in (9, 120, 30):
        (tmp_path / f"checkpoint_{step}.pt").write_bytes(b"x")
    (tmp_path / "model.pt").write_bytes(b"x")
    assert latest_checkpoint(tmp_path).name == "checkpoint_120.pt"


def test_catnet_encoder_from_a_trained_prototype_baseline(tmp_path):
    from monai_fewshot.engines import load_submodule_weights
    from monai_fewshot.networks import ALPNet, CATNet, ResizedFewShot, alpnet_light, catnet_light

    torch.manual_seed(0)
    baseline = ResizedFewShot(alpnet_light(2), (64, 64))
    torch.save({"network": baseline.state_dict()}, tmp_path / "alpnet.pt")
    catnet = catnet_light(2)
    load_submodule_weights(catnet.mife.backbone, tmp_path / "alpnet.pt", "backbone.")
    for (name, theirs), ours in zip(baseline.network.backbone.state_dict().items(), catnet.mife.backbone.state_dict().values()):
        assert torch.equal(theirs, ours), name
    with pytest.raises(ValueError, match=r"no weight named mife\.\*.*\['backbone', 'reduce'\]"):
        load_submodule_weights(catnet.mife.backbone, tmp_path / "alpnet.pt", "mife.")
    other = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2)
    with pytest.raises(ValueError, match="do not fit"):
        load_submodule_weights(other.mife.backbone, tmp_path / "alpnet.pt", "backbone.")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_submodule_weights(catnet.mife.backbone, tmp_path / "absent.pt", "backbone.")
    assert isinstance(baseline.network, ALPNet)
