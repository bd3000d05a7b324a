import pytest
import torch

from monai_fewshot.engines import latest_checkpoint, save_atomic


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full")


def test_save_atomic_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "models" / "model.pt"
    save_atomic({"weight": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic({"weight": _Unpicklable()}, path)
    assert torch.equal(torch.load(path)["weight"], torch.ones(2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary left behind


def test_latest_checkpoint_by_iteration(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    for step in (9, 120, 30):
        (tmp_path / f"checkpoint_{step}.pt").write_bytes(b"x")
    (tmp_path / "model.pt").write_bytes(b"x")
    assert latest_checkpoint(tmp_path).name == "checkpoint_120.pt"
