import pytest

from monai_fewshot.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "train", "evaluate", "segment", "benchmark"):
        assert command in out


def test_demo_runs_offline_on_the_mni152_template(capsys):
    assert main(["demo", "--size", "64", "--checkpoint", "/nonexistent.pt"]) == 0
    out = capsys.readouterr().out
    assert "MNI152" in out and "CAT-Net light (untrained)" in out and "floor: copy the support mask" in out


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_missing_data_folder(command, tmp_path):
    with pytest.raises(SystemExit, match=f"data folder {tmp_path / 'absent'} does not exist"):
        main([command, "--data", str(tmp_path / "absent")])


def test_unknown_benchmark():
    with pytest.raises(SystemExit, match="no benchmark 'nope'.*catnet_speed"):
        main(["benchmark", "nope"])


def test_missing_bundle(tmp_path):
    with pytest.raises(SystemExit, match="no bundle at"):
        main(["--bundle", str(tmp_path), "evaluate", "--data", str(tmp_path)])


def test_segment_requires_its_inputs():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "--support", "a.nii.gz"])
