import os

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


def _training_run(run_dir, max_epochs, with_evaluator=True, dropout=False, losses=None):
    """A real MONAI trainer (3 iterations an epoch) validated every epoch, checkpointed by ResumableCheckpointing;
    with ``dropout`` the network draws from torch's global generator; ``losses`` collects {iteration: loss}."""
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.handlers import PeakSignalToNoiseRatio, ValidationHandler, from_engine

    from monai_fewshot.engines import ResumableCheckpointing

    torch.manual_seed(0)
    network = torch.nn.Conv3d(1, 1, 3, padding=1)
    if dropout:
        network = torch.nn.Sequential(network, torch.nn.Dropout(0.5))
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
    if losses is not None:
        from ignite.engine import Events

        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.update({e.state.iteration: float(e.state.output[0]["loss"])}))
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


def test_resume_draws_the_same_random_numbers_as_the_uninterrupted_run(tmp_path):
    """With dropout, every loss after the resume equals the uninterrupted run's at the same iteration."""
    straight = {}
    trainer, _, _ = _training_run(tmp_path / "straight", max_epochs=4, dropout=True, losses=straight)
    trainer.run()
    interrupted = {}
    trainer, _, _ = _training_run(tmp_path / "interrupted", max_epochs=2, dropout=True, losses=interrupted)
    trainer.run()
    torch.rand(100)  # whatever the process draws between the two runs
    trainer, _, _ = _training_run(tmp_path / "interrupted", max_epochs=4, dropout=True, losses=interrupted)
    trainer.run()
    assert sorted(interrupted) == list(range(1, 13))
    assert [interrupted[i] for i in range(7, 13)] == [straight[i] for i in range(7, 13)]


def test_a_truncated_latest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    trainer, _, _ = _training_run(tmp_path, max_epochs=2)
    trainer.run()
    latest = tmp_path / "checkpoint_6.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    (tmp_path / "tmpab12cd34").write_bytes(b"half a checkpoint")  # an interrupted write
    trainer, _, _ = _training_run(tmp_path, max_epochs=3)
    with caplog.at_level("WARNING", logger="monai_fewshot.engines.checkpointing"):
        trainer.run()
    assert "checkpoint_6.pt cannot be loaded" in caplog.text and "tmpab12cd34" in caplog.text
    assert (trainer.state.iteration, trainer.state.epoch) == (9, 3)  # resumed at iteration 3, trained epochs 2 and 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_6.pt", "checkpoint_9.pt"]  # newest 2, rewritten


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, caplog):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    tmp_path.mkdir(exist_ok=True)
    torch.save({"trainer": Payload()}, tmp_path / "checkpoint_999.pt")
    trainer, _, _ = _training_run(tmp_path, max_epochs=1)
    with caplog.at_level("WARNING", logger="monai_fewshot.engines.checkpointing"):
        with pytest.raises(RuntimeError, match="no checkpoint in .* can be loaded"):
            trainer.run()
    assert not (tmp_path / "pwned").exists()
    assert "checkpoint_999.pt cannot be loaded (UnpicklingError" in caplog.text


@pytest.mark.parametrize("content", [b"", b"\x80\x04junk" + bytes(64), b"not a checkpoint at all"])
def test_weights_that_cannot_be_loaded_name_the_file(tmp_path, content):
    from monai_fewshot.engines import load_network_weights

    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"checkpoint {path} cannot be loaded as weights"):
        load_network_weights(torch.nn.Linear(2, 2), path)
    torch.save([torch.ones(1)], path)
    with pytest.raises(ValueError, match=f"checkpoint {path} holds a list, not a state dict"):
        load_network_weights(torch.nn.Linear(2, 2), path)
