"""memomentum.base.atomic: the one atomic writer every layer uses."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from memomentum.base.atomic import atomic_file, is_temp_file
from memomentum.noise.files import write_labels


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def cut_halfway():
        with atomic_file(path) as f:
            f.write("half of the new")
            raise RuntimeError("cut")

    with pytest.raises(RuntimeError):
        cut_halfway()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_the_temporary_file_is_beside_the_target_and_named_as_a_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    with atomic_file(path, "wb") as f:
        seen = list(tmp_path.iterdir())
        f.write(b"\x00\x01")
    assert len(seen) == 1 and is_temp_file(seen[0]) and seen[0].name.startswith(".out.bin.")
    assert path.read_bytes() == b"\x00\x01" and not is_temp_file(path)


def test_the_data_layer_writes_through_it_with_file_and_folder_fsync(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_labels(tmp_path / "labels.npy", np.array([0, 1, 2]))
    assert synced == [False, True]  # the file, then its folder after the rename
    assert np.load(tmp_path / "labels.npy").tolist() == [0, 1, 2]


def test_atomic_writes_fsync_the_file_and_the_directory(tmp_path, monkeypatch):
    import torch

    from memomentum.runner import outputs

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    outputs.write_json(tmp_path / "a.json", {"x": 1})
    outputs.write_torch(tmp_path / "b.pt", {"x": torch.ones(3)})
    assert synced == [False, True, False, True]  # file, then directory after the rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
