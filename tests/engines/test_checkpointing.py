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


def _training_run(run_dir, max_epochs, with_evaluator=True):
    """A real MONAI trainer (3 iterations an epoch) validated every epoch, checkpointed by ResumableCheckpointing."""
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.handlers import PeakSignalToNoiseRatio, ValidationHandler, from_engine

    from monai_fewshot.engines import ResumableCheckpointing

    torch.manual_seed(0)
    network = torch.nn.Conv3d(1, 1, 3, padding=1)
    data = [{"image": torch.rand(1, 1, 8, 8, 8), "label": torch.rand(1, 1, 8, 8, 8)} for _ in range(3)]
    optimizer = torch.optim.Adam(network.parameters(), 1e-2)
    psnr = PeakSignalToNoiseRatio(max_val=1.0, output_transform=from_engine(["pred", "label"]))
    evaluator = SupervisedEvaluator(torch.device("cpu"), data[:1], network, key_val_metric={"val_psnr": psnr})
    trainer = SupervisedTrainer(
        torch.device("cpu"), max_epochs, data, network, optimizer, torch.nn.L1Loss(), train_handlers=[ValidationHandler(1, evaluator)]
    )
    save_dict = {"network": network, "optimizer": optimizer, "trainer": trainer}
    if with_evaluator:
        save_dict["evaluator"] = evaluator
    ResumableCheckpointing(run_dir, save_dict).attach(trainer)
    return trainer, evaluator, network


def test_a_finished_run_with_a_larger_max_epochs_trains_on_from_its_last_checkpoint(tmp_path):
    trainer, _, _ = _training_run(tmp_path, max_epochs=2)
    trainer.run()
    assert latest_checkpoint(tmp_path).name == "checkpoint_6.pt"
    weights = torch.load(tmp_path / "checkpoint_6.pt")["network"].values()

    trainer, _, network = _training_run(tmp_path, max_epochs=2)  # same budget: nothing left to do
    trainer.run()
    assert (trainer.state.iteration, trainer.state.epoch) == (6, 2)
    assert all(torch.equal(a, b) for a, b in zip(weights, network.parameters()))

    trainer, _, network = _training_run(tmp_path, max_epochs=4)  # a larger budget continues at epoch 3
    trainer.run()
    assert (trainer.state.iteration, trainer.state.epoch, trainer.state.max_epochs) == (12, 4, 4)
    assert latest_checkpoint(tmp_path).name == "checkpoint_12.pt"
    assert not all(torch.equal(a, b) for a, b in zip(weights, network.parameters()))


def test_a_resumed_evaluator_keeps_its_best_metric(tmp_path, caplog):
    trainer, evaluator, _ = _training_run(tmp_path / "new", max_epochs=3)
    trainer.run()
    best = (evaluator.state.best_metric, evaluator.state.best_metric_epoch)
    assert best[1] > 0

    trainer, evaluator, _ = _training_run(tmp_path / "new", max_epochs=3)
    trainer.run()
    assert (evaluator.state.best_metric, evaluator.state.best_metric_epoch) == best  # not -1: a BestModelSaver compares to it

    old, _, _ = _training_run(tmp_path / "old", max_epochs=1, with_evaluator=False)  # a checkpoint written without it
    old.run()
    trainer, evaluator, _ = _training_run(tmp_path / "old", max_epochs=1)
    with caplog.at_level("WARNING", logger="monai_fewshot.engines.checkpointing"):
        trainer.run()
    assert "holds no ['evaluator']: they start afresh" in caplog.text
    assert evaluator.state.best_metric_epoch == -1
