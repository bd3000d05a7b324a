"""The evaluation protocol on the real CHAOS and CMR labels, checked against an independent computation."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest
import torch

from monai_fewshot.data import CHAOS_CLASSES, CMR_CLASSES, EpisodeProtocol, lineage_folds

# The lineage's fold positions (Q-Net / ADNet dataset_specifics.get_folds), written out by hand.
LINEAGE_FOLD_POSITIONS = {
    "chaos": [set(range(0, 5)), set(range(4, 9)), set(range(8, 13)), set(range(12, 17)), set(range(16, 20)) | {0}],
    "cmr": [set(range(0, 8)), set(range(7, 15)), set(range(14, 22)), set(range(21, 29)), set(range(28, 35)) | {0}],
}


def _independent(raw: dict[int, np.ndarray], name: str, classes):
    """(support id, query ids) per fold and scored slices per (fold, class), from the raw nibabel labels."""
    ids = sorted(raw)
    expected_folds, expected_counts = [], {}
    for f, positions in enumerate(LINEAGE_FOLD_POSITIONS[name]):
        members = [ids[p] for p in sorted(positions)]
        support, queries = members[0], members[1:]
        expected_folds.append((support, queries))
        for c in classes:
            expected_counts[(f, c)] = sum(int((raw[q] == c).any(axis=(0, 1)).sum()) for q in queries)
    return expected_folds, expected_counts


@pytest.mark.parametrize("name", ["chaos", "cmr"])
def test_scored_slices_per_class_and_fold(name, request):
    store = request.getfixturevalue(f"{name}_store")
    raw = request.getfixturevalue(f"{name}_raw")
    classes = CHAOS_CLASSES if name == "chaos" else CMR_CLASSES
    folds = lineage_folds(list(store))
    expected_folds, expected_counts = _independent(raw, name, classes)
    assert [(int(f.support), [int(q) for q in f.queries]) for f in folds] == expected_folds
    assert EpisodeProtocol(store, folds).scored_slice_counts() == expected_counts


def test_known_counts_chaos(chaos_store):
    counts = EpisodeProtocol(chaos_store, lineage_folds(list(chaos_store))).scored_slice_counts()
    assert [counts[(0, c)] for c in (1, 2, 3, 4)] == [97, 59, 60, 57]
    assert sum(counts.values()) == 1315


def test_chunks_and_support_slices(cmr_store, cmr_raw):
    protocol = EpisodeProtocol(cmr_store, lineage_folds(list(cmr_store)))
    seen = {}
    for episode in protocol.episodes():
        seen.setdefault((episode.fold, episode.class_id, episode.query), []).append(episode)
        support_z = np.flatnonzero((cmr_raw[int(episode.support)] == episode.class_id).any(axis=(0, 1)))
        assert episode.support_slice == support_z[support_z.size * (2 * episode.chunk + 1) // 6]
    for (fold, c, query), episodes in seen.items():
        scored = np.flatnonzero((cmr_raw[int(query)] == c).any(axis=(0, 1)))
        n = scored.size
        for episode in episodes:
            j = episode.chunk
            assert list(episode.query_slices) == scored[j * n // 3 : (j + 1) * n // 3].tolist()
        assert sorted(z for e in episodes for z in e.query_slices) == scored.tolist()


def test_gap_slice_scored_only_under_extent(chaos_store, chaos_raw):
    """CHAOS label_3's left kidney skips a slice: the lineage does not score it, 'extent' does."""
    folds = lineage_folds(list(chaos_store))
    labelled = EpisodeProtocol(chaos_store, folds).scored_slice_counts()
    extent = EpisodeProtocol(chaos_store, folds, scored="extent").scored_slice_counts()
    z = np.flatnonzero((chaos_raw[3] == 3).any(axis=(0, 1)))
    gaps = (z[-1] - z[0] + 1) - z.size
    assert gaps == 1 and "3" in folds[0].queries
    assert extent[(0, 3)] - labelled[(0, 3)] == gaps


def test_whole_volume_scoring_covers_every_slice_of_each_query(chaos_store):
    """scored='volume': every slice of every query volume, once per class, cut into thirds of the whole volume."""
    folds = lineage_folds(list(chaos_store))
    protocol = EpisodeProtocol(chaos_store, folds, scored="volume")
    counts = protocol.scored_slice_counts()
    for fold in folds:
        depth = sum(chaos_store[q].label.shape[-1] for q in fold.queries)
        assert all(counts[(fold.index, c)] == depth for c in (1, 2, 3, 4))
    episodes = [e for e in protocol.episodes() if e.fold == 0 and e.class_id == 4 and e.query == folds[0].queries[0]]
    depth = chaos_store[folds[0].queries[0]].label.shape[-1]
    bounds = np.linspace(0, depth, 4).astype(int)
    assert [e.query_slices for e in episodes] == [tuple(range(bounds[j], bounds[j + 1])) for j in range(3)]
    labelled = EpisodeProtocol(chaos_store, folds).scored_slice_counts()
    assert all(counts[key] > labelled[key] for key in labelled)  # CHAOS organs never span a whole volume
    with pytest.raises(ValueError, match="scored must be one of"):
        EpisodeProtocol(chaos_store, folds, scored="all").scored_slice_counts()


def test_array_split_chunking(cmr_store):
    folds = lineage_folds(list(cmr_store))[:1]
    lineage = list(EpisodeProtocol(cmr_store, folds, class_ids=[1]).episodes())
    split = list(EpisodeProtocol(cmr_store, folds, class_ids=[1], chunking="array_split").episodes())
    for a, b in zip(lineage, split):
        assert abs(len(a.query_slices) - len(b.query_slices)) <= 1
    assert any(len(a.query_slices) != len(b.query_slices) for a, b in zip(lineage, split))


class AllForeground(torch.nn.Module):
    """A predictor that marks every pixel of every query slice."""

    def forward(self, query, support, support_mask):
        return torch.full_like(query[:, :1], 10.0)


def test_evaluation_scores_only_the_scored_slices(chaos_dir, chaos_raw, tmp_path):
    """The shipped scoring path (evaluate_protocol: ProtocolSliceDataset -> EpisodicEvaluator -> ProtocolDice)
    against an independent count: predicting everything scores 2|T| / (|T| + scored slices x slice area)."""
    from monai_fewshot.engines import evaluate_protocol

    everything = evaluate_protocol(AllForeground(), chaos_dir, CHAOS_CLASSES, tmp_path, overlays=0, batch_size=32)
    assert len(everything.scores) == 5 * 4 * 4
    ids = {name: value for value, name in CHAOS_CLASSES.items()}
    for fold, name, query, dice, _ in (astuple(score) for score in everything.scores):
        c = ids[name]
        label = chaos_raw[int(query)]
        scored = (label == c).any(axis=(0, 1))
        truth = int((label == c).sum())
        predicted = int(scored.sum()) * label.shape[0] * label.shape[1]
        assert dice == pytest.approx(2 * truth / (truth + predicted))
    assert "liver" in everything.to_markdown() and "mean" in everything.to_markdown()


def test_3d_episodes_cover_the_2d_scored_slices(chaos_store):
    folds = lineage_folds(list(chaos_store))
    protocol = EpisodeProtocol(chaos_store, folds)
    episodes = list(protocol.episodes_3d())
    assert len(episodes) == 5 * 4 * 4
    by_volume = {}
    for episode in protocol.episodes():
        by_volume.setdefault((episode.fold, episode.class_id, episode.query), []).extend(episode.query_slices)
    for episode in episodes:  # the same voxels as the 2D protocol
        assert sorted(by_volume[(episode.fold, episode.class_id, episode.query)]) == list(episode.scored_slices)
        assert episode.support == folds[episode.fold].support


@pytest.mark.parametrize("n", [20, 35])
def test_validation_split_is_distinct(n):
    ids = [str(i) for i in range(1, n + 1)]
    for fold in lineage_folds(ids, n_val_queries=2):
        test = {fold.support, *fold.queries}
        validation = {fold.val_support, *fold.val_queries}
        assert len(validation) == 3
        assert not validation & test and not validation & set(fold.train) and not test & set(fold.train)
        assert test | validation | set(fold.train) == set(ids)
    for fold in lineage_folds(ids, n_val_queries=0):
        assert fold.val_support is None and len(fold.train) + len({fold.support, *fold.queries}) == n


def test_validation_protocol_uses_validation_volumes(cmr_store):
    folds = lineage_folds(list(cmr_store))
    for episode in EpisodeProtocol(cmr_store, folds, split="validation").episodes():
        fold = folds[episode.fold]
        assert episode.support == fold.val_support and episode.query in fold.val_queries


def test_protocol_errors(cmr_store):
    with pytest.raises(ValueError, match="non-numeric"):
        lineage_folds(["a", "b", "c", "d", "e"])
    with pytest.raises(ValueError, match="chunking"):
        EpisodeProtocol(cmr_store, lineage_folds(list(cmr_store)), chunking="thirds")


def test_protocol_slices_hold_the_episode_tensors(cmr_store, cmr_raw):
    """ProtocolSliceDataset, the one episode-to-tensor path: each item is a query slice with its chunk's support."""
    from monai_fewshot.data.protocol_dataset import ProtocolSliceDataset

    protocol = EpisodeProtocol(cmr_store, lineage_folds(list(cmr_store))[:1], class_ids=[2])
    dataset = ProtocolSliceDataset(protocol)
    episode = next(protocol.episodes())
    assert len(dataset) == sum(len(e.query_slices) for e in protocol.episodes())
    for index, z in enumerate(episode.query_slices):
        item = dataset[index]
        assert item["query"].shape == (1, 256, 256) and item["query_label"].shape == (1, 256, 256)
        assert item["support"].shape == (1, 1, 256, 256) and item["support_mask"].shape == (1, 1, 256, 256)
        assert (item["volume"], item["slice"], item["support_slice"]) == (episode.query, z, episode.support_slice)
        np.testing.assert_array_equal(item["support_mask"][0, 0].numpy(), cmr_raw[int(episode.support)][..., episode.support_slice] == 2)
        np.testing.assert_array_equal(item["query_label"][0].numpy(), cmr_raw[int(episode.query)][..., z] == 2)


def test_evaluator_path_gives_the_same_floor(chaos_dir, tmp_path):
    """Pasting the support slice's mask onto every query slice, through the shipped path: the floor, pinned to the digit."""
    from monai_fewshot.engines import evaluate_protocol
    from monai_fewshot.networks import SupportMaskCopy

    table = evaluate_protocol(SupportMaskCopy(), chaos_dir, CHAOS_CLASSES, tmp_path, overlays=0, batch_size=32)
    per_class = {name: round(100 * dice, 2) for name, dice in table.per_class().items()}
    assert per_class == {"liver": 57.02, "right kidney": 43.27, "left kidney": 45.17, "spleen": 26.93}
    assert round(100 * table.mean(), 2) == 43.10
    assert (tmp_path / "model_dice.md").read_text().count("| fold ") == 5


def test_evaluator_scores_only_a_setting2_group(chaos_dir, tmp_path):
    """Setting 2: a model trained without the kidneys is scored on the kidneys only, with the same per-class Dice."""
    from monai_fewshot.engines import evaluate_protocol
    from monai_fewshot.networks import SupportMaskCopy

    table = evaluate_protocol(SupportMaskCopy(), chaos_dir, CHAOS_CLASSES, tmp_path, fold_indices=[0], overlays=0,
                              batch_size=32, class_ids=(2, 3))
    every = evaluate_protocol(SupportMaskCopy(), chaos_dir, CHAOS_CLASSES, tmp_path / "all", fold_indices=[0], overlays=0,
                              batch_size=32)
    kidneys = table.per_class()
    assert sorted(kidneys) == ["left kidney", "right kidney"]
    assert kidneys == {name: dice for name, dice in every.per_class().items() if name in kidneys}
