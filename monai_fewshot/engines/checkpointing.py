"""Atomic checkpoints and resuming from the latest one.

MONAI 1.6's ``CheckpointSaver`` writes with ``atomic=False``: a run killed while saving can leave a
truncated file. These handlers write through a temporary file in the same folder and ``os.replace``,
so a checkpoint on disk is always whole.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.engines import Evaluator

from monai_fewshot.utils import atomic_path

__all__ = [
    "BestModelSaver",
    "RandomStates",
    "ResumableCheckpointing",
    "latest_checkpoint",
    "load_network_weights",
    "load_submodule_weights",
    "save_atomic",
]

logger = logging.getLogger(__name__)
_STEP = re.compile(r"checkpoint_(\d+)\.pt$")
_LEFTOVER = re.compile(r"^(tmp\w+|\..+\.tmp.*)$")  # temporary files of an interrupted atomic write (ignite's, ours)


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` through a temporary file and ``os.replace``: the file is whole or absent."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def _network_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict saved at ``path`` (a bare one, or the ``"network"`` entry of a training checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a torch file, or a pickle that needs arbitrary code: name the file
        reason = (str(error).strip() or "empty or truncated").splitlines()[0]
        raise ValueError(f"checkpoint {path} cannot be loaded as weights ({type(error).__name__}: {reason}).") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict.")
    return state.get("network", state)


def _first_mismatch(error: RuntimeError) -> str:
    lines = str(error).splitlines()
    return lines[1 if len(lines) > 1 else 0].strip()


def load_network_weights(network: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load weights saved by training (a state dict, or a checkpoint holding one under ``"network"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a weights file (truncated, foreign, or a pickle of code), or the weights belong
            to another architecture or configuration.
    """
    state = _network_state(path)
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"checkpoint {path} does not fit {type(network).__name__} (another architecture or configuration): "
            f"{_first_mismatch(error)}"
        ) from error
    return network


def load_submodule_weights(module: torch.nn.Module, path: str | os.PathLike, prefix: str) -> torch.nn.Module:
    """Initialise ``module`` from the entries of a saved network whose names start with ``prefix``.

    E.g. CAT-Net's encoder from a trained prototype baseline: ``load_submodule_weights(catnet.mife.backbone,
    "models/alpnet/model_fold0.pt", "backbone.")``. Every weight of ``module`` must be found.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no entry starts with ``prefix``, or the entries do not fit ``module``.
    """
    state = _network_state(path)
    chosen = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    if not chosen:
        raise ValueError(f"checkpoint {path} has no weight named {prefix}*; its names start with {sorted({k.split('.')[0] for k in state})}.")
    try:
        module.load_state_dict(chosen)
    except RuntimeError as error:
        raise ValueError(f"the {prefix}* weights of {path} do not fit {type(module).__name__}: {_first_mismatch(error)}") from error
    return module


def _checkpoints(directory: Path) -> list[Path]:
    """The ``checkpoint_<iteration>.pt`` files of ``directory``, newest (highest iteration) first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _STEP.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The ``checkpoint_<iteration>.pt`` with the highest iteration in ``directory``, or None."""
    found = _checkpoints(Path(directory))
    return found[0] if found else None


class RandomStates:
    """The global random generators (Python, NumPy, torch CPU and CUDA) as a checkpoint entry, so that a resumed run
    draws what the uninterrupted run would have drawn (dropout, random augmentation). Every value is a tensor or a
    plain Python value, so the checkpoint loads with ``torch.load(..., weights_only=True)``."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        state = {
            "python": [version, list(internal), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class ResumableCheckpointing:
    """Save ``save_dict`` every ``save_interval`` epochs; at start, resume from the latest checkpoint.

    Put the trainer itself in ``save_dict`` (with network, optimizer and lr scheduler) so that a resumed
    run continues at the saved epoch and iteration, and with it the episode stream. The global random
    generators are saved beside them (:class:`RandomStates`), so the resumed run's losses equal the
    uninterrupted run's. The run's own ``max_epochs`` decides where it stops, so a finished run started again
    with a larger ``max_epochs`` trains on from its last checkpoint. An evaluator in ``save_dict`` keeps its
    best metric, so a ``BestModelSaver`` after a resume only writes a model better than every one before it.
    Entries that an older checkpoint lacks start afresh, with a warning.

    Checkpoints load with ``weights_only=True``: a file that would run code when unpickled is refused. A
    checkpoint that cannot be read (truncated, refused) is skipped with a warning and the next older one is
    used. Only the newest ``n_saved`` checkpoints are kept, those of earlier runs in the folder included, and
    temporary files of an interrupted write are removed when the run starts.

    Args:
        save_dir: folder of ``checkpoint_<iteration>.pt`` files.
        save_dict: objects with ``state_dict``/``load_state_dict``, e.g. ``{"network": net, "trainer": trainer}``.
        save_interval: epochs between checkpoints. Defaults to 1.
        n_saved: checkpoints kept. Defaults to 2.
        resume: load the latest checkpoint of ``save_dir`` when the run starts. Defaults to True.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: dict[str, Any],
        save_interval: int = 1,
        n_saved: int = 2,
        resume: bool = True,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.save_dict = {**save_dict, "random_states": RandomStates()}
        self.save_interval = save_interval
        self.n_saved = n_saved
        self.resume = resume
        self.resumed_from: Path | None = None
        self.checkpoint = Checkpoint(
            self.save_dict,
            DiskSaver(str(self.save_dir), require_empty=False, atomic=True, create_dir=True),
            filename_prefix="",
            n_saved=n_saved,
            global_step_transform=lambda engine, _: engine.state.iteration,
        )
        for value in save_dict.values():
            if isinstance(value, Evaluator):
                value.state_dict_user_keys.extend(key for key in ("best_metric", "best_metric_epoch") if key not in value.state_dict_user_keys)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.remove_leftovers)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.checkpoint)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.prune)
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_latest)

    def remove_leftovers(self, engine: Engine | None = None) -> None:
        """Delete the temporary files an interrupted checkpoint write left in ``save_dir``."""
        if self.save_dir.is_dir():
            for path in self.save_dir.iterdir():
                if path.is_file() and _LEFTOVER.match(path.name):
                    logger.warning(f"removing {path}, left by an interrupted checkpoint write")
                    path.unlink()

    def prune(self, engine: Engine | None = None) -> None:
        """Keep the newest ``n_saved`` checkpoints of ``save_dir``, earlier runs' included."""
        for path in _checkpoints(self.save_dir)[self.n_saved :]:
            path.unlink(missing_ok=True)

    def load_latest(self, engine: Engine | None = None) -> None:
        state = path = None
        for candidate in _checkpoints(self.save_dir):
            try:
                state = torch.load(candidate, map_location="cpu", weights_only=True)
                path = candidate
                break
            except Exception as error:  # noqa: BLE001 - truncated, corrupt or refused: try the one before
                logger.warning(f"checkpoint {candidate} cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0]}); trying the one before it")
        if path is None:
            if _checkpoints(self.save_dir):
                raise RuntimeError(f"no checkpoint in {self.save_dir} can be loaded (see the warnings); move them away to start afresh.")
            return
        present = {name: value for name, value in self.save_dict.items() if name in state}
        if len(present) < len(self.save_dict):
            logger.warning(f"checkpoint {path} holds no {sorted(set(self.save_dict) - set(present))}: they start afresh.")
        max_epochs = engine.state.max_epochs if engine is not None else None
        Checkpoint.load_objects(present, state)
        self.resumed_from = path
        if engine is not None:
            if max_epochs is not None:
                engine.state.max_epochs = max_epochs  # the trainer's state brought back the finished run's max_epochs
            logger.info(f"resumed from {path}: iteration {engine.state.iteration}, epoch {engine.state.epoch} of {max_epochs}")


class BestModelSaver:
    """Write the network's weights to ``path`` whenever the evaluator's key metric reaches a new best.

    Attach to a MONAI evaluator (which tracks ``best_metric`` and ``best_metric_epoch``). A
    ``DistributedDataParallel`` network is saved unwrapped, so the file loads into the plain network.

    Args:
        network: the network whose ``state_dict`` is saved.
        path: file to write, e.g. ``models/model.pt``.
    """

    def __init__(self, network: torch.nn.Module, path: str | os.PathLike) -> None:
        self.network = network
        self.path = Path(path)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch == engine.state.epoch:
            network = getattr(self.network, "module", self.network)  # unwrap DistributedDataParallel
            save_atomic(network.state_dict(), self.path)
