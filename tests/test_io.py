"""Atomic writes are byte-stable (the same object gives the same bytes) and make ordinary files."""
import os

import torch

from wmlib.io import atomic_path, save_json, save_torch


def test_same_checkpoint_gives_the_same_bytes_under_any_name(tmp_path):
    obj = {"model": torch.nn.Linear(3, 2).state_dict(), "step": 7}
    save_torch(obj, tmp_path / "a.pt")
    save_torch(obj, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_written_files_have_the_umask_mode_and_leave_no_temporary(tmp_path):
    umask = os.umask(0o022)
    try:
        save_json({"a": 1}, tmp_path / "m.json")
        save_torch({"a": 1}, tmp_path / "m.pt")
    finally:
        os.umask(umask)
    for name in ("m.json", "m.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(os.listdir(tmp_path)) == ["m.json", "m.pt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    save_json({"v": 1}, tmp_path / "m.json")
    try:
        with atomic_path(tmp_path / "m.json") as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "m.json").read_text() == '{\n  "v": 1\n}\n'
    assert os.listdir(tmp_path) == ["m.json"]
