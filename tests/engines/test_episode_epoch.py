import pytest
from ignite.engine import Engine, Events
from torch.utils.data import DataLoader, Dataset

from monai_fewshot.engines import EpisodeEpochSetter


class EpochIndexDataset(Dataset):
    """Item i of epoch e is (e, i): what an episode dataset's stream depends on."""

    def __init__(self, length=3):
        self.length, self.epoch = length, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return (self.epoch, index)


def _served(max_epochs, start_epoch=0):
    dataset = EpochIndexDataset()
    seen = []
    engine = Engine(lambda engine, batch: seen.append((int(batch[0]), int(batch[1]))))
    EpisodeEpochSetter(dataset).attach(engine)
    if start_epoch:  # a resumed run: the trainer state comes back from a checkpoint at an epoch boundary
        engine.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", start_epoch))
        engine.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "iteration", start_epoch * 3))
    engine.run(DataLoader(dataset, batch_size=1), max_epochs=max_epochs)
    return seen


def test_each_epoch_serves_its_own_episodes_and_a_resume_continues_the_stream():
    straight = _served(3)
    assert straight == [(e, i) for e in range(3) for i in range(3)]
    assert _served(3, start_epoch=1) == straight[3:]


def test_needs_set_epoch():
    with pytest.raises(ValueError, match="has no set_epoch"):
        EpisodeEpochSetter(object())
