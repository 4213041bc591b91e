"""CAMS NO2 training targets on the 8 km grid and the layer ratios."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aprior.a_priori.field import ProfileField
from aprior.errors import ConfigError, ProfileFieldError
from aprior.grids.grid import Grid, lonlat_of, subdomain
from aprior.grids.levels import CAMS_LEVELS_M, DEFAULT_LEVELS_M
from aprior.models.dacno2.targets import (
    LayerMeans,
    LayerRatios,
    cams_targets,
    fit_layer_ratios,
    read_cams_targets,
    targets_on_grid,
)

LAT = np.arange(47.5, 50.51, 0.1)
LON = np.arange(0.5, 4.51, 0.1)
HEIGHTS = np.asarray(CAMS_LEVELS_M)


def _surface(lon, lat):
    return 10.0 + 2.0 * (lon - 2.0) + 1.5 * (lat - 49.0)


def _field(times=None, lat=LAT, lon=LON) -> ProfileField:
    """Linear in lon/lat, decaying with height, growing by hour: (t, 10, lat, lon)."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    prof = np.exp(-HEIGHTS / 1000.0)[:, None, None]
    nt = 1 if times is None else len(times)
    hour = np.zeros(nt) if times is None else \
        ((times - times.astype("datetime64[D]")) / np.timedelta64(1, "h")).astype(float)
    no2 = np.stack([(_surface(lo, la) + h)[None] * prof for h in hour]).astype(np.float32)
    grid = Grid("EPSG:4326", lon[0] - 0.05, lat[0] - 0.05, 0.1, 0.1, lon.size, lat.size)
    return ProfileField(no2, HEIGHTS.copy(), grid, times, source="test CAMS", path="cams.nc")


@pytest.fixture(scope="module")
def grid8():
    return subdomain("paris", 8000)


def _hours(day="2021-06-01", n=24):
    return np.datetime64(f"{day}T00", "ns") + np.arange(n) * np.timedelta64(1, "h")


def test_targets_on_grid_selects_levels_and_interpolates(grid8):
    out = targets_on_grid(_field(), grid8)
    assert out.no2.shape == (1, 8, grid8.ny, grid8.nx) and out.no2.dtype == np.float32
    assert out.grid == grid8 and out.heights.tolist() == list(DEFAULT_LEVELS_M)
    lon, lat = lonlat_of(grid8)
    k1000 = list(DEFAULT_LEVELS_M).index(1000.0)
    np.testing.assert_allclose(out.no2[0, k1000], _surface(lon, lat) * np.exp(-1.0), rtol=1e-5)


def test_daily_and_window_means(grid8):
    times = np.concatenate([_hours("2021-06-01"), _hours("2021-06-02")])
    daily = cams_targets(_field(times), grid8, mode="daily")
    lon, lat = lonlat_of(grid8)
    assert daily.no2.shape[0] == 2
    np.testing.assert_allclose(daily.no2[0, 0], _surface(lon, lat) + 11.5, rtol=1e-5)
    window = cams_targets(_field(times), grid8, mode="window")
    np.testing.assert_allclose(window.no2[1, 0], _surface(lon, lat) + 12.0, rtol=1e-5)
    assert window.times[0] == np.datetime64("2021-06-01T12:00", "ns")
    with pytest.raises(ValueError, match="mode"):
        cams_targets(_field(times), grid8, mode="weekly")


def test_targets_errors_name_the_file(grid8):
    with pytest.raises(ProfileFieldError, match="75 m are not in the field") as exc:
        targets_on_grid(_field(), grid8, levels=(0, 75))
    assert "cams.nc" in str(exc.value)
    small = _field(lat=np.arange(48.5, 49.01, 0.1))
    with pytest.raises(ProfileFieldError, match="does not cover"):
        targets_on_grid(small, grid8)
    interp = targets_on_grid(_field(), grid8, levels=(0, 75), interpolate_missing=True)
    assert interp.no2.shape[1] == 2


def test_read_cams_targets_from_a_cams_file(tmp_path, grid8):
    from aprior.a_priori.cams_eu import write_cams_eu

    times = _hours()
    f = _field(times)
    path = write_cams_eu(tmp_path / "cams.nc", times=times, levels=HEIGHTS, lat=LAT[::-1],
                         lon=LON, no2_conc=f.no2[:, :, ::-1])
    out = read_cams_targets(path, grid8, mode="daily")
    ref = cams_targets(f, grid8, mode="daily")
    np.testing.assert_allclose(out.no2, ref.no2, rtol=1e-5)


def test_layer_ratios_fit_apply_invert_and_json():
    rng = np.random.default_rng(0)
    prof = np.array([1.0, 0.9, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02])
    batches = [rng.uniform(5, 15, (3, 1, 4, 5)) * prof[None, :, None, None] for _ in range(4)]
    batches[0][0, 2, 0, 0] = np.nan  # ignored
    r = fit_layer_ratios(batches)
    assert r.ratios[0] == 1.0 and len(r.ratios) == 8
    np.testing.assert_allclose(r.ratios, prof, rtol=0.05)
    x = batches[1]
    scaled = r.apply(x, axis=1)
    # rescaled levels have comparable magnitudes
    assert scaled[:, -1].mean() / scaled[:, 0].mean() == pytest.approx(1.0, rel=0.1)
    np.testing.assert_allclose(r.invert(scaled, axis=1), x, rtol=1e-12)
    d = json.loads(json.dumps(r.to_dict()))
    assert LayerRatios.from_dict(d) == r
    with pytest.raises(ConfigError):
        LayerRatios.from_dict({"heights_m": [0, 50]})
    with pytest.raises(ValueError):
        LayerRatios((0.0, 50.0), (1.0, -2.0))
    with pytest.raises(ValueError, match="levels"):
        r.apply(np.zeros((3, 4, 4)))


def test_layer_means_streaming_equals_batch():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 10, (2, 8, 3, 3)), rng.uniform(0, 10, (5, 8, 3, 3))
    acc = LayerMeans()
    acc.update(a)
    acc.update(b)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(acc.means(), both.mean(axis=(0, 2, 3)), rtol=1e-12)
    with pytest.raises(ValueError, match="cannot form"):
        LayerMeans().ratios()
