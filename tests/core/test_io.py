"""Atomic writes: complete or absent, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from aprior._io import atomic_path, check_output
from aprior.errors import AprioriError, OutputExistsError


def test_atomic_path_renames_on_success_with_umask_mode(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("data")
        assert not target.exists()
    assert target.read_text() == "data"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_check_output(tmp_path):
    inp = tmp_path / "in.nc"
    inp.write_bytes(b"x")
    with pytest.raises(AprioriError, match="overwrite an input"):
        check_output(inp, overwrite=True, inputs=(inp,))
    with pytest.raises(OutputExistsError):
        check_output(inp, overwrite=False)
    with pytest.raises(AprioriError, match="does not exist"):
        check_output(tmp_path / "nodir" / "o.nc", overwrite=False)
    assert check_output(tmp_path / "new.nc", overwrite=False) == tmp_path / "new.nc"
