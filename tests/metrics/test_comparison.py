import pytest

from monai_fewshot.cli import main
from monai_fewshot.metrics import FewShotScoreTable, VolumeScore, compare_tables, paired_difference


def _table(scores):
    """scores: {(fold, class, volume): dice}."""
    return FewShotScoreTable([VolumeScore(f, c, v, d) for (f, c, v), d in scores.items()])


REFERENCE = {(0, "liver", "2"): 0.5, (0, "liver", "3"): 0.7, (0, "spleen", "2"): 0.4, (0, "spleen", "3"): 0.2,
             (1, "liver", "6"): 0.6, (1, "spleen", "6"): 0.3}


def test_csv_round_trip(tmp_path):
    table = _table(REFERENCE)
    (tmp_path / "catnet_dice.csv").write_text(table.to_csv())
    back = FewShotScoreTable.from_csv(tmp_path / "catnet_dice.csv")
    assert back.per_class() == pytest.approx(table.per_class()) and back.folds() == [0, 1]
    assert back.to_csv() == table.to_csv()


def test_csv_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv does not exist"):
        FewShotScoreTable.from_csv(tmp_path / "absent.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"other.csv lacks the columns \['class', 'dice', 'fold', 'volume'\]"):
        FewShotScoreTable.from_csv(tmp_path / "other.csv")


def test_a_constant_gain_is_the_difference_with_a_point_interval():
    better = _table({key: dice + 0.1 for key, dice in REFERENCE.items()})
    difference = paired_difference(better, _table(REFERENCE))
    assert difference.mean == pytest.approx(0.1)
    assert (difference.low, difference.high) == pytest.approx((0.1, 0.1))
    assert (difference.wins, difference.losses, difference.pairs) == (6, 0, 6)


def test_interval_spans_the_spread_of_mixed_differences():
    mixed = dict(REFERENCE)
    mixed[(0, "liver", "2")] += 0.3
    mixed[(0, "spleen", "3")] -= 0.1
    difference = paired_difference(_table(mixed), _table(REFERENCE))
    # liver: fold 0 +0.15, fold 1 0 -> 0.075; spleen: fold 0 -0.05, fold 1 0 -> -0.025; mean 0.025
    assert difference.mean == pytest.approx(0.025)
    assert difference.low < difference.mean < difference.high
    assert (difference.wins, difference.losses) == (1, 1)
    assert paired_difference(_table(mixed), _table(REFERENCE), seed=3).mean == difference.mean


def test_compare_keeps_only_the_scores_every_model_holds():
    fold0_only = _table({key: 1.0 for key in REFERENCE if key[0] == 0})
    text = compare_tables({"CAT-Net": _table(REFERENCE), "copy": fold0_only})
    lines = text.splitlines()
    assert lines[0] == "| Dice (%), fold 0 | liver | spleen | mean |"
    assert lines[2] == "| CAT-Net | 60.00 | 30.00 | 45.00 |"  # fold 0 only, fold 1 dropped
    assert lines[3] == "| copy | 100.00 | 100.00 | 100.00 |"
    assert "| copy | +55.00 | +55.00 .. +55.00 | 4 / 0 |" in text


def test_compare_without_shared_scores():
    other = _table({(3, "liver", "9"): 0.5})
    with pytest.raises(ValueError, match="share no"):
        compare_tables({"a": _table(REFERENCE), "b": other})


def test_compare_command_writes_the_table(tmp_path, capsys):
    (tmp_path / "a.csv").write_text(_table(REFERENCE).to_csv())
    (tmp_path / "b.csv").write_text(_table({k: d + 0.1 for k, d in REFERENCE.items()}).to_csv())
    assert main(["compare", f"CAT-Net={tmp_path / 'a.csv'}", f"baseline={tmp_path / 'b.csv'}",
                 "--output", str(tmp_path / "table.md")]) == 0
    written = (tmp_path / "table.md").read_text()
    assert written in capsys.readouterr().out and "| baseline | +10.00 | +10.00 .. +10.00 | 6 / 0 |" in written
    with pytest.raises(SystemExit, match="is not NAME=CSV"):
        main(["compare", str(tmp_path / "a.csv")])
    with pytest.raises(SystemExit, match="absent.csv does not exist"):
        main(["compare", f"x={tmp_path / 'absent.csv'}"])


def test_concatenate_joins_disjoint_evaluations_and_refuses_overlaps():
    liver = _table({k: d for k, d in REFERENCE.items() if k[1] == "liver"})
    spleen = _table({k: d for k, d in REFERENCE.items() if k[1] == "spleen"})
    joined = FewShotScoreTable.concatenate([liver, spleen])
    assert joined.per_class() == pytest.approx(_table(REFERENCE).per_class())
    assert len(joined.scores) == len(REFERENCE)
    with pytest.raises(ValueError, match="tables 0 and 1 both score fold 0, class 'liver', volume 2"):
        FewShotScoreTable.concatenate([liver, _table({(0, "liver", "2"): 0.1})])


def test_compare_command_joins_several_csvs_of_one_model(tmp_path, capsys):
    """Setting 2: each test group has its own model and CSV; the model's row joins them."""
    (tmp_path / "all.csv").write_text(_table(REFERENCE).to_csv())
    for organ in ("liver", "spleen"):
        part = {k: d + 0.1 for k, d in REFERENCE.items() if k[1] == organ}
        (tmp_path / f"{organ}.csv").write_text(_table(part).to_csv())
    assert main(["compare", f"floor={tmp_path / 'all.csv'}",
                 f"setting2={tmp_path / 'liver.csv'},{tmp_path / 'spleen.csv'}"]) == 0
    out = capsys.readouterr().out
    assert "| setting2 | 70.00 | 40.00 | 55.00 |" in out and "| setting2 | +10.00 | +10.00 .. +10.00 | 6 / 0 |" in out
    with pytest.raises(SystemExit, match="both score fold 0, class 'liver'"):
        main(["compare", f"floor={tmp_path / 'all.csv'}", f"x={tmp_path / 'all.csv'},{tmp_path / 'liver.csv'}"])
