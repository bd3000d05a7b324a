"""Located propagation scored on the protocol's folds: the whole volumes `segment --support` delivers."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest

from monai_fewshot.data import CHAOS_CLASSES, EpisodeProtocol, VolumeStore, lineage_folds, read_folder
from monai_fewshot.engines import evaluate_protocol, propagation_scores
from monai_fewshot.inferers import segment_from_support_volume
from monai_fewshot.metrics import FewShotScoreTable, volume_dice
from monai_fewshot.networks import SupportMaskCopy

EVAL = Path(__file__).resolve().parents[2] / "bundles" / "catnet_fewshot" / "eval"


def test_propagation_scores_every_slice_only(tmp_path):
    with pytest.raises(ValueError, match="scored must be 'volume'"):
        evaluate_protocol(SupportMaskCopy(), tmp_path, CHAOS_CLASSES, tmp_path, propagate=True)


@pytest.mark.slow
def test_each_query_volume_is_scored_as_segment_from_support_volume_gives_it(chaos_dir):
    """Fold 0, right kidney: one score per query volume, in the protocol's order, each the whole-volume Dice of
    segment_from_support_volume from the fold's support volume, as the committed evaluation has them; worker
    processes give the same scores."""
    store = VolumeStore(read_folder(chaos_dir), CHAOS_CLASSES)
    fold = lineage_folds(list(store))[0]
    protocol = EpisodeProtocol(store, [fold], class_ids=[2], scored="volume")
    scores = propagation_scores(SupportMaskCopy(), protocol)
    assert [(s.fold, s.class_name, s.volume) for s in scores] == [(0, "right kidney", q) for q in fold.queries]
    support, query = store[fold.support], store[fold.queries[0]]
    direct = segment_from_support_volume(
        SupportMaskCopy(), query.image, support.image, support.label == 2,
        nib.affines.voxel_sizes(query.affine), nib.affines.voxel_sizes(support.affine),
    )
    assert scores[0].dice == volume_dice(direct.mask > 0, query.label == 2)
    committed = FewShotScoreTable.from_csv(EVAL / "chaos_registration_test_propagated" / "floor_dice.csv").scores
    committed = {s.volume: s.dice for s in committed if s.fold == 0 and s.class_name == "right kidney"}
    assert committed == pytest.approx({s.volume: s.dice for s in scores}, abs=1e-6)
    assert [s.dice for s in propagation_scores(SupportMaskCopy(), protocol, workers=2)] == [s.dice for s in scores]
