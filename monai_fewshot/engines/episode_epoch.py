"""Keep an episode dataset's epoch in step with the trainer's, so a resumed run replays the same stream."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["EpisodeEpochSetter"]


class EpisodeEpochSetter:
    """At every epoch start, serve epoch ``trainer.state.epoch - 1`` of ``dataset``'s episodes.

    Episode ``i`` of epoch ``e`` depends on (seed, e, i) alone, so after a resume from a checkpoint taken at
    the end of epoch ``e`` the run continues with exactly the episodes of epoch ``e + 1``. The data loader
    must have ``len(loader) == epoch_length`` (the default), so that ignite builds each epoch's iterator (and
    hands the dataset to its workers) after this handler has run.

    Args:
        dataset: anything with ``set_epoch(epoch)``, e.g. :class:`~monai_fewshot.data.EpisodeDataset`.
    """

    def __init__(self, dataset) -> None:
        if not hasattr(dataset, "set_epoch"):
            raise ValueError(f"dataset {type(dataset).__name__} has no set_epoch(epoch).")
        self.dataset = dataset

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        self.dataset.set_epoch(engine.state.epoch - 1)
