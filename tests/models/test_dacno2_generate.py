"""DACNO2 generation: the bundled demo, the CF output that reprocess reads, merging."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch

from aprior.a_priori.cf_field import read_cf_field
from aprior.errors import InputFileError, OutputExistsError
from aprior.grids.tiling import PatchTiling
from aprior.models.checkpoint import load_weights, save_weights, weights_hash
from aprior.models.dacno2.generate import (
    day_range,
    field_name,
    generate_day,
    generate_days,
    write_profile,
)
from aprior.models.dacno2.predict import (
    bundled_weights,
    default_world,
    load_trained,
    merge_field,
)
from aprior.models.dacno2.targets import LayerRatios

WORLD = Path(__file__).resolve().parents[2] / "fixtures" / "world"
DAY = "2023-01-13"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def demo():
    """The demo day with the bundled weights and world (no arguments at all)."""
    return generate_day(DAY, device="cpu")


def test_demo_uses_the_bundled_world_and_weights(demo):
    assert default_world().resolve() == WORLD.resolve()
    _, meta = load_weights(bundled_weights())
    assert meta["model"] == "dacno2" and meta["phase"] == 3
    assert meta["trained_on"].startswith("SYNTHETIC")
    assert bundled_weights().stat().st_size < 4_000_000
    import json

    grid = json.loads((WORLD / "manifest.json").read_text())["grid_2km"]
    g = demo.grid
    assert (g.crs, g.x0, g.y0, g.nx, g.ny) == (grid["crs"], grid["x0"], grid["y0"], grid["nx"], grid["ny"])
    assert demo.no2.shape == (1, 8, grid["ny"], grid["nx"]) and demo.no2.dtype == np.float32
    assert np.isfinite(demo.no2).all() and (demo.no2 >= 0).all()
    surface = demo.no2[0, 0]
    assert 1.0 < surface.mean() < 100.0 and surface.std() > 0
    assert demo.no2[0, -1].mean() < surface.mean()  # the profile decreases upwards
    a = demo.attrs
    assert a["weights_sha256"] == weights_hash(bundled_weights())
    assert a["model"] == "DACNO2-S5P" and a["date"] == DAY and "11:00-13:00 UTC" in a["time_window"]
    assert "SYNTHETIC" in a["comment"] and a["synthetic"] == "true"


def test_time_stamp_follows_the_synthetic_truth_convention(demo):
    truth = read_cf_field(WORLD / "truth" / "no2_s5p" / "truth_no2_s5p_20230113.nc")
    assert demo.times.tolist() == truth.times.tolist()
    assert str(demo.times[0]).startswith("2023-01-13T12:00")
    assert demo.heights.tolist() == [h for h in truth.heights.tolist() if h in demo.heights]


def test_written_field_is_what_reprocess_reads(demo, tmp_path):
    path = write_profile(tmp_path / "demo.nc", demo, {"extra": "kept"})
    back = read_cf_field(path)
    np.testing.assert_array_equal(back.no2, demo.no2)
    assert back.grid == demo.grid and back.times.tolist() == demo.times.tolist()
    np.testing.assert_array_equal(back.heights, demo.heights)
    assert back.attrs["weights_sha256"] == demo.attrs["weights_sha256"]
    assert back.attrs["extra"] == "kept" and "SYNTHETIC" in back.attrs["comment"]
    with netCDF4.Dataset(path) as ds:
        assert ds["no2"].units == "ug m-3" and ds["height"].units == "m"
        assert ds["no2"].dimensions == ("time", "height", "y", "x")


def test_generate_days_writes_one_file_per_day_and_refuses_to_overwrite(tmp_path):
    trained = load_trained(None, "cpu")
    days = [dt.date(2023, 1, 13), dt.date(2023, 4, 13)]  # two orbit days of the bundled world
    paths = generate_days(days, tmp_path / "out", weights=trained)
    assert [p.name for p in paths] == [field_name(d) for d in days]
    assert str(read_cf_field(paths[1]).times[0]).startswith("2023-04-13T12:00")
    with pytest.raises(OutputExistsError):
        generate_days(days[:1], tmp_path / "out", weights=trained)
    with pytest.raises(InputFileError, match="2023-01-14"):  # the world has every 90th day only
        generate_days(day_range(DAY, days=2), tmp_path / "more", weights=trained)
    assert not (tmp_path / "more" / field_name(days[0])).exists()


def test_bad_weights_are_refused(tmp_path):
    state, meta = load_weights(bundled_weights())
    save_weights(tmp_path / "other.pt", state, {**meta, "model": "deepcams-temporal"})
    with pytest.raises(InputFileError, match="not DACNO2"):
        load_trained(tmp_path / "other.pt", "cpu")
    bad = dict(meta)
    bad.pop("stats")
    save_weights(tmp_path / "nostats.pt", state, bad)
    with pytest.raises(InputFileError, match="without stats"):
        load_trained(tmp_path / "nostats.pt", "cpu")
    (tmp_path / "run").mkdir()
    with pytest.raises(InputFileError, match="without weights.pt"):
        load_trained(tmp_path / "run", "cpu")
    (tmp_path / "pickle.pt").write_bytes(b"not a zip")
    with pytest.raises(InputFileError):
        load_trained(tmp_path / "pickle.pt", "cpu")


def test_merge_restores_the_layer_ratios_with_the_hann_merge():
    tiling = PatchTiling(64, (40, 40))
    shape = (104, 120)
    patches = tiling.patches(shape)
    ratios = LayerRatios((0.0, 500.0, 2000.0), (1.0, 0.5, 0.1))
    raw = np.ones((len(patches), 3, 64, 64), np.float32)
    out = merge_field(raw, tiling, shape, ratios)
    assert out.shape == (3, *shape)
    np.testing.assert_allclose(out[:, 50, 60], [1.0, 0.5, 0.1], rtol=1e-6)
    np.testing.assert_allclose(out.reshape(3, -1).std(axis=1), 0, atol=1e-6)
