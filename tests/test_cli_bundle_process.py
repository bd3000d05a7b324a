"""The command's bundle child process: one-line errors (--debug: the traceback), absolute paths, signals
forwarded so that no run is left behind, and evaluations that replace an earlier one whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.cli import REPO, main
from monai_fewshot.data.example_volumes import example_volume

CATNET = REPO / "bundles" / "catnet_fewshot"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monai_fewshot.cli", *args]


def _support_pair(folder: Path, organ: int = 5) -> tuple[Path, Path]:
    """The shipped example MR and its liver (value 5) as a support volume."""
    image, label = example_volume("mr")
    labels = nib.load(str(label))
    target = folder / "liver.nii.gz"
    nib.save(nib.Nifti1Image((np.asanyarray(labels.dataobj) == organ).astype(np.uint8), labels.affine), str(target))
    return image, target


def _fake_bundle(folder: Path, configs: dict[str, dict]) -> Path:
    """A bundle folder with the real metadata and logging, and the given configs."""
    (folder / "configs").mkdir(parents=True)
    for name in ("metadata.json", "logging.conf"):
        shutil.copy(CATNET / "configs" / name, folder / "configs" / name)
    for name, config in configs.items():
        (folder / "configs" / name).write_text(json.dumps(config))
    return folder


def test_a_bundle_failure_is_one_line_naming_the_input(tmp_path):
    image, liver = _support_pair(tmp_path)
    args = ["segment", "--support", str(image), "--support-label", str(liver), "--class-value", "7", "--query",
            str(image), "--output", str(tmp_path / "out")]
    plain = subprocess.run(_command(*args), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr and "ConfigExpression" not in plain.stderr
    last = plain.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "liver.nii.gz" in last and "7" in last, plain.stderr
    debug = subprocess.run(_command("--debug", *args), capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "liver.nii.gz" in debug.stderr
    assert not (tmp_path / "out").exists()


def test_a_relative_numeric_output_is_a_folder(tmp_path, monkeypatch):
    """``--output 2024`` once reached the bundle as the number 2024 (TypeError); now it is ./2024."""
    image, liver = _support_pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["segment", "--support", str(image), "--support-label", str(liver), "--class-value", "1",
                 "--query", str(image), "--output", "2024"]) == 0
    mask = np.asanyarray(nib.load(str(tmp_path / "2024" / "example_mr_sm_seg.nii.gz")).dataobj)
    truth = np.asanyarray(nib.load(str(liver)).dataobj) > 0
    assert 2 * (mask.astype(bool) & truth).sum() / (mask.sum() + truth.sum()) > 0.3


def test_segment_from_a_support_volume_seeds_with_the_named_network(tmp_path):
    """The default seeds come from the registration method (no weights; a checkpoint is refused), ``--network
    catnet`` from the shipped model (the example's liver spans every slice: the stop rule is tested on CHAOS in
    tests/inferers/test_support_propagation.py)."""
    image, liver = _support_pair(tmp_path)
    truth = np.asanyarray(nib.load(str(liver)).dataobj) > 0
    common = ["segment", "--support", str(image), "--support-label", str(liver), "--class-value", "1", "--query", str(image)]
    with pytest.raises(SystemExit, match="--network registration has no weights"):
        main([*common, "--output", str(tmp_path / "x"), "--checkpoint", "model.pt"])
    for network in ("registration", "catnet"):
        assert main([*common, "--network", network, "--output", str(tmp_path / network)]) == 0
        mask = np.asanyarray(nib.load(str(tmp_path / network / "example_mr_sm_seg.nii.gz")).dataobj) > 0
        assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.5, network


def test_segment_from_a_support_volume_with_the_guided_network(tmp_path):
    """``--guided`` seeds with the shipped registration-guided model (its prior averaged over
    ``--registration-seeds`` registrations); what does not fit it is refused before the bundle starts."""
    image, liver = _support_pair(tmp_path)
    truth = np.asanyarray(nib.load(str(liver)).dataobj) > 0
    common = ["segment", "--support", str(image), "--support-label", str(liver), "--class-value", "1", "--query", str(image)]
    with pytest.raises(SystemExit, match="is registration already"):
        main([*common, "--network", "registration", "--guided", "--output", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="--registration-seeds applies to --guided"):
        main([*common, "--network", "catnet", "--registration-seeds", "2", "--output", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="--checkpoint: no model at"):
        main([*common, "--guided", "--network", "catnet", "--checkpoint", str(tmp_path / "none.pt"), "--output", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    assert main([*common, "--guided", "--registration-seeds", "2", "--output", str(tmp_path / "g")]) == 0  # catnet
    mask = np.asanyarray(nib.load(str(tmp_path / "g" / "example_mr_sm_seg.nii.gz")).dataobj) > 0
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.5


def test_sigterm_stops_the_bundle_child(tmp_path):
    """SIGTERM to ``monai-fewshot`` reaches the bundle run it started: nothing is left running."""
    pid_file = tmp_path / "child.pid"
    bundle = _fake_bundle(tmp_path / "bundle", {"inference.json": {
        "imports": ["$import os", "$import time"],
        "run": [f"$open({str(pid_file)!r}, 'w').write(str(os.getpid()))", "$time.sleep(300)"],
    }, "registration.json": {}})  # segment's default seeds: the registration overlay
    parent = subprocess.Popen(_command("--bundle", str(bundle), "segment", "--support", "s.nii.gz", "--support-label",
                                       "l.nii.gz", "--class-value", "1", "--query", "q.nii.gz", "--output", str(tmp_path)))
    deadline = time.monotonic() + 120
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from Linux's /proc")
def test_sigterm_stops_the_worker_processes_of_the_bundle_child(tmp_path):
    """An evaluation's registration workers end with it: they were left sleeping when only the child was signalled."""
    pid_file = tmp_path / "child.pid"
    bundle = _fake_bundle(tmp_path / "bundle", {"inference.json": {
        "imports": ["$import os", "$import time", "$from monai_fewshot.registration.parallel import process_pool"],
        "run": [f"$open({str(pid_file)!r}, 'w').write(str(os.getpid()))",
                "$process_pool(2).submit(time.sleep, 300)", "$time.sleep(300)"],
    }, "registration.json": {}})
    parent = subprocess.Popen(_command("--bundle", str(bundle), "segment", "--support", "s.nii.gz", "--support-label",
                                       "l.nii.gz", "--class-value", "1", "--query", "q.nii.gz", "--output", str(tmp_path)))
    deadline = time.monotonic() + 120
    while not (pid_file.is_file() and pid_file.read_text() and _children(int(pid_file.read_text()))):
        assert time.monotonic() < deadline, "the bundle child started no worker process"
        time.sleep(0.2)
    child = int(pid_file.read_text())
    workers = _children(child)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in left:  # a failing run cleans up after itself
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes left running"


def _evaluation_bundle(folder: Path, fail: bool) -> Path:
    write = "$open(@eval_dir + '/registration_dice.md', 'w').write('new table')"
    return _fake_bundle(folder, {
        "train.json": {"eval_dir": "unset"},
        "evaluate.json": {"run": ["$1 / 0" if fail else write]},
        "registration.json": {},
    })


def test_evaluate_replaces_an_earlier_evaluation_whole_or_not_at_all(tmp_path):
    output = tmp_path / "eval"
    output.mkdir()
    (output / "registration_dice.md").write_text("old table")
    (output / "registration_dice.csv").write_text("old scores")
    args = ["evaluate", "--network", "registration", "--data", str(tmp_path), "--output", str(output)]
    with pytest.raises(SystemExit, match="holds an earlier evaluation: --overwrite"):
        main(["--bundle", str(_evaluation_bundle(tmp_path / "ok", fail=False)), *args])
    assert main(["--bundle", str(_evaluation_bundle(tmp_path / "bad", fail=True)), *args, "--overwrite"]) == 1
    assert sorted(p.name for p in output.iterdir()) == ["registration_dice.csv", "registration_dice.md"]
    assert (output / "registration_dice.md").read_text() == "old table"
    assert main(["--bundle", str(tmp_path / "ok"), *args, "--overwrite"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["registration_dice.md"]
    assert (output / "registration_dice.md").read_text() == "new table"
    reference = tmp_path / "made_by_mkdir"
    reference.mkdir()
    assert output.stat().st_mode == reference.stat().st_mode  # not the staging folder's private 0700
    reference.rmdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "eval", "ok"]  # no staging folder left


def test_registration_seeds_reach_the_bundle_and_name_their_own_evaluation(tmp_path):
    """``--registration-seeds 3`` is the bundle's ``registration_seeds`` [0, 1, 2]; the default folder gets
    ``_seeds3`` so that the one-seed evaluation stays; a network without a registered prior refuses it."""
    bundle = _fake_bundle(tmp_path / "bundle", {
        "train.json": {"eval_dir": str(tmp_path / "eval" / "chaos_registration_intensity_test"), "registration_seeds": [0]},
        "evaluate.json": {"run": ["$open(@eval_dir + '/seeds.txt', 'w').write(str(@registration_seeds))"]},
        "registration_intensity.json": {},
    })
    args = ["--bundle", str(bundle), "evaluate", "--data", str(tmp_path)]
    assert main([*args, "--network", "registration_intensity", "--registration-seeds", "3"]) == 0
    assert (tmp_path / "eval" / "chaos_registration_intensity_test_seeds3" / "seeds.txt").read_text() == "[0, 1, 2]"
    assert main([*args, "--network", "registration_intensity"]) == 0
    assert (tmp_path / "eval" / "chaos_registration_intensity_test" / "seeds.txt").read_text() == "[0]"
    with pytest.raises(SystemExit, match="--registration-seeds applies to --guided"):
        main([*args, "--network", "catnet", "--registration-seeds", "3"])
    with pytest.raises(SystemExit, match="--registration-seeds must be >= 1"):
        main([*args, "--network", "registration_intensity", "--registration-seeds", "0"])


def test_bundle_processes_keep_freed_memory_unless_the_user_set_the_allocator(monkeypatch):
    from monai_fewshot.bundle_runner import ALLOCATOR_TUNABLES, child_environment

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setenv("SOME_USER_SETTING", "kept")
    env = child_environment()
    assert env["GLIBC_TUNABLES"] == ALLOCATOR_TUNABLES == "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
    assert env["SOME_USER_SETTING"] == "kept"
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert child_environment()["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    # a child started with it runs (glibc accepts the tunables) and sees them
    env = {**child_environment(), "GLIBC_TUNABLES": ALLOCATOR_TUNABLES}
    script = "import os; print(os.environ['GLIBC_TUNABLES'])"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ALLOCATOR_TUNABLES
