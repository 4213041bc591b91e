"""``aprior synth-pm25`` output handling: whole or absent, and --overwrite replaces only a
PM2.5 world (coarse 3 degree grid, so it runs in seconds)."""

from __future__ import annotations

import pytest

from aprior.errors import OutputExistsError
from aprior.synth.pm25_files import write_pm25_world

QUICK = {"seed": 3, "start": "2023-03-01", "days": 1, "spinup_hours": 6, "fine_step": 3.0}


def test_an_interrupted_pm25_world_leaves_nothing(tmp_path):
    def stop(done, total):
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_pm25_world(tmp_path / "w", progress=stop, **QUICK)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_pm25_world_and_nothing_else(tmp_path):
    root = tmp_path / "w"
    manifest = write_pm25_world(root, **QUICK)
    assert manifest == root / "manifest.json" and manifest.is_file()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_pm25_world(root, **QUICK)
    write_pm25_world(root, overwrite=True, **{**QUICK, "seed": 4})
    assert '"seed": 4' in manifest.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["w"]  # no staging directory left
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="no synthetic PM2.5 world"):
        write_pm25_world(other, overwrite=True, **QUICK)
    assert (other / "notes.txt").read_text() == "keep"
