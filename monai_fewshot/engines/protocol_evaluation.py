"""The 5-fold protocol as a MONAI evaluation run: per-fold checkpoints, one score table, CSV, Markdown, PNGs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from ignite.handlers import ProgressBar
from torch.utils.data import DataLoader

from monai_fewshot.data.builders import dataset_folds, protocol_slices
from monai_fewshot.data.layout import VolumeStore, read_folder
from monai_fewshot.data.protocol import EpisodeProtocol, Fold
from monai_fewshot.engines.checkpointing import load_network_weights
from monai_fewshot.engines.episodic import EpisodicEvaluator
from monai_fewshot.engines.propagation_evaluation import propagation_scores
from monai_fewshot.metrics import FewShotScoreTable, volume_scores
from monai_fewshot.networks.utils import final_logits
from monai_fewshot.utils import write_text_atomic
from monai_fewshot.visualize import save_episode_overlay

__all__ = ["evaluate_protocol"]

logger = logging.getLogger(__name__)


def _save_overlays(network, dataset, output_dir: Path, device, count: int) -> None:
    """One PNG per class: the middle scored slice of the first query volume of the first fold."""
    chosen: dict[int, list[int]] = {}
    for index, (episode, _) in enumerate(dataset.items):
        if episode.class_id not in chosen or dataset.items[chosen[episode.class_id][0]][0].query == episode.query:
            chosen.setdefault(episode.class_id, []).append(index)
    network.eval()
    for class_id, indices in list(chosen.items())[:count]:
        item = dataset[indices[len(indices) // 2]]
        with torch.no_grad():
            output = network(item["query"][None].to(device), item["support"][None].to(device), item["support_mask"][None].to(device))
        logits = final_logits(output)
        truth, prediction = item["query_label"], (logits[0] > 0).float().cpu()
        dice, _ = volume_scores(prediction, truth)
        title = (
            f"{item['class_name']}: support vol {item['support_volume']} z{item['support_slice']} -> "
            f"query vol {item['volume']} z{item['slice']} (fold {item['fold']}), slice Dice {dice:.2f}"
        )
        name = f"overlay_fold{item['fold']}_{item['class_name'].replace(' ', '_')}.png"
        save_episode_overlay(output_dir / name, item["support"][0], item["support_mask"][0], item["query"], prediction, truth, title)


def evaluate_protocol(
    network: torch.nn.Module,
    dataset_dir: str | Path,
    classes: Mapping[int, str],
    output_dir: str | Path,
    fold_indices: Sequence[int] | None = None,
    checkpoint: str | None = None,
    split: str = "test",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    num_workers: int = 0,
    overlays: int = 4,
    name: str = "model",
    class_ids: Sequence[int] | None = None,
    scored: str = "labelled",
    folds: Sequence[Fold] | None = None,
    propagate: bool = False,
    workers: int = 1,
) -> FewShotScoreTable:
    """Evaluate ``network`` under the protocol, fold by fold, each fold with its own weights.

    Writes ``<name>_dice.csv`` (every query volume's Dice), ``<name>_dice.md`` (fold x class table with the
    means) and up to ``overlays`` PNGs (one per class) into ``output_dir``, each atomically.

    With ``propagate``, each query volume is segmented as ``monai-fewshot segment --support`` does (the class
    located by 3D registration of the fold's support volume, three seed slices predicted by ``network``, then
    propagated until the organ ends; :func:`~monai_fewshot.engines.propagation_scores`) and every slice is scored.

    Args:
        network: the few-shot network (``network(query, support, support_mask)``).
        dataset_dir: folder of ``image_N``/``label_N`` NIfTI.
        classes: the dataset's class map.
        output_dir: where tables and overlays go.
        fold_indices: folds to evaluate; None evaluates every fold whose checkpoint exists (all folds without
            ``checkpoint``).
        checkpoint: path pattern with ``{fold}`` (e.g. ``models/model_fold{fold}.pt``) of weights trained
            without that fold's test volumes; None evaluates the network as it is (a training-free baseline).
        split: ``"test"`` or ``"validation"``.
        device: evaluation device.
        batch_size, num_workers: of the slice data loader.
        overlays: PNGs to write (one per class, first fold).
        name: prefix of the written files.
        class_ids: the classes to score (Setting 2: the group the model was trained without); None scores all.
        scored: the query slices scored: ``"labelled"`` (the protocol's, default), ``"extent"`` or ``"volume"``
            (every slice: whole-volume Dice, empty slices included).
        folds: the dataset's fold split, as in training (the bundle's ``folds``); None:
            :func:`~monai_fewshot.data.builders.dataset_folds` of ``dataset_dir``.
        propagate: segment whole query volumes by located propagation (needs ``scored="volume"``; no overlays).
        workers: with ``propagate``, query volumes segmented at once in worker processes (CPU only).
    """
    if propagate and scored != "volume":
        raise ValueError(f"propagate segments whole volumes, so every slice is scored: scored must be 'volume', got {scored!r}.")
    device = torch.device(device)
    output_dir = Path(output_dir)
    folds = dataset_folds(dataset_dir) if folds is None else list(folds)
    n_folds = len(folds)
    if fold_indices is None:
        fold_indices = [f for f in range(n_folds) if checkpoint is None or Path(checkpoint.format(fold=f)).is_file()]
    if not fold_indices:
        raise FileNotFoundError(f"no fold to evaluate: no checkpoint matches {checkpoint!r} for folds 0..{n_folds - 1}.")
    table = FewShotScoreTable()
    network = network.to(device)
    store = VolumeStore(read_folder(dataset_dir), classes) if propagate else None
    for position, fold in enumerate(fold_indices):
        if checkpoint is not None:
            load_network_weights(network, checkpoint.format(fold=fold))
        if propagate:
            protocol = EpisodeProtocol(store, [folds[fold]], class_ids=class_ids, split=split, scored=scored)
            scores = FewShotScoreTable(propagation_scores(network.eval(), protocol, device, workers, f"{name}, fold {fold}"))
            table.scores.extend(scores.scores)
            logger.info(f"fold {fold}: mean whole-volume Dice of located propagation {100 * scores.mean():.2f}")
            continue
        dataset = protocol_slices(dataset_dir, classes, fold, split=split, class_ids=class_ids, scored=scored, folds=folds)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        evaluator = EpisodicEvaluator(device, loader, network)
        ProgressBar(persist=True, desc=f"{name}, fold {fold}").attach(evaluator)
        evaluator.run()
        table.scores.extend(evaluator.state.fewshot_scores.scores)
        logger.info(f"fold {fold}: mean Dice {100 * evaluator.state.fewshot_scores.mean():.2f}")
        if position == 0 and overlays > 0:
            _save_overlays(network, dataset, output_dir, device, overlays)
    write_text_atomic(output_dir / f"{name}_dice.csv", table.to_csv())
    write_text_atomic(output_dir / f"{name}_dice.md", table.to_markdown(f"{name} Dice (%)"))
    return table
