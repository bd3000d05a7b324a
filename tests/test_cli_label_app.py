from pathlib import Path

import pytest

from monai_fewshot import cli

APP = Path(cli.__file__).parent / "apps" / "fewshot_label"


def test_label_app_execs_monailabel_of_the_label_environment(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "monailabel").touch()
    calls = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append((path, argv)))
    argv = ["label-app", "--studies", "/data/studies", "--checkpoint", "model.pt", "--port", "8123", "--venv", str(tmp_path)]
    assert cli.main(argv) == 0
    path, command = calls[0]
    assert path == str(tmp_path / "bin" / "python")
    assert command[1:] == [
        "-m", "monailabel.main", "start_server", "--app", str(APP), "--studies", "/data/studies",
        "--host", "127.0.0.1", "--port", "8123", "--conf", "zoo_source", "github", "--conf", "checkpoint", "model.pt",
        "--conf", "network", "catnet",
    ]
    assert (APP / "main.py").is_file()


def test_label_app_without_environment_says_how_to_build_it(tmp_path, capsys):
    assert cli.main(["label-app", "--studies", "x", "--venv", str(tmp_path / "none")]) == 2
    assert "setup_env.sh" in capsys.readouterr().err


def test_label_app_needs_studies():
    with pytest.raises(SystemExit):
        cli.main(["label-app"])
