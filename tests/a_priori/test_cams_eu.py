"""The CAMS European NO2 reader/writer, its source plugin and the daily reductions."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from aprior import plugins
from aprior.a_priori.cams_eu import (
    CamsEuropeSource,
    daily_mean,
    read_cams_eu,
    window_mean,
    write_cams_eu,
)
from aprior.a_priori.cf_field import CFProfileSource, write_cf_field
from aprior.a_priori.field import ProfileField
from aprior.errors import InputFileError, ProfileFieldError
from aprior.grids.grid import Grid

LEVELS = np.array([0.0, 50.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 5000.0])
#: The real CAMS Europe domain's longitudes as 0-360: 335.05 ... 359.95, 0.05 ... 44.95.
LON_360 = np.round(np.arange(335.05, 404.96, 0.1) % 360.0, 2)
LAT_DESC = np.round(np.arange(71.95, 29.99, -0.1), 2)[:6]  # 71.95 ... 71.45, descending
T0 = np.datetime64("2021-02-12T00:00", "ns")
HOURS = T0 + np.arange(3) * np.timedelta64(1, "h")


def _data(nt: int, nlat: int = 6, nlon: int = 700) -> np.ndarray:
    """(t, k, lat, lon) values that encode their own indices, all >= 0."""
    t, k, j, i = np.meshgrid(np.arange(nt), np.arange(len(LEVELS)), np.arange(nlat),
                             np.arange(nlon), indexing="ij")
    return (t * 1e4 + k * 1e3 + j * 1e2 + i * 0.1).astype(np.float32)


def _write(path: Path, **kw) -> Path:
    args = {"times": HOURS, "levels": LEVELS, "lat": LAT_DESC, "lon": LON_360,
            "no2_conc": _data(3)} | kw
    return write_cams_eu(path, **args)


def _expected(data: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``data`` on ascending latitudes and longitudes in -180..180."""
    order = np.argsort((lon + 180.0) % 360.0 - 180.0)
    return data[:, :, ::-1][..., order]


# -- round trips -----------------------------------------------------------------------
def test_0_360_domain_reads_as_contiguous_ascending_grid(tmp_path):
    data = _data(3)
    f = read_cams_eu(_write(tmp_path / "c.nc", no2_conc=data))
    assert f.grid == Grid("EPSG:4326", -25.0, 71.4, 0.1, 0.1, 700, 6)
    np.testing.assert_allclose(f.grid.x[[0, -1]], [-24.95, 44.95])
    np.testing.assert_allclose(f.grid.y[[0, -1]], [71.45, 71.95])
    np.testing.assert_array_equal(f.no2, _expected(data, LON_360))
    np.testing.assert_array_equal(f.heights, LEVELS)
    np.testing.assert_array_equal(f.times, HOURS)
    assert "ANALYSIS" in f.source and f.attrs["institution"] == "Data produced by Meteo France"


@pytest.mark.parametrize("convention", ["0-360", "-180..180"])
def test_both_longitude_conventions_round_trip(tmp_path, convention):
    lon = np.round(np.arange(-4.95, 9.0, 0.1), 2)
    data = _data(3, nlon=lon.size)
    path = _write(tmp_path / "c.nc", lon=lon, no2_conc=data, lon_convention=convention)
    with netCDF4.Dataset(path) as ds:
        stored = ds["longitude"][:]
        assert (stored.min() >= 0) if convention == "0-360" else (stored.min() < 0)
        assert ds["no2_conc"].units == "µg/m3" and ds["no2_conc"].species == "Nitrogen Dioxide"
        assert ds["time"].long_name == "ANALYSIS time from 20210212" and ds["time"].units == "hours"
        assert ds.title == "NO2 Air Pollutant ANALYSIS at 10 levels"
    f = read_cams_eu(path)
    assert f.grid == Grid("EPSG:4326", -5.0, 71.4, 0.1, 0.1, lon.size, 6)
    np.testing.assert_array_equal(f.no2, _expected(data, lon))


def test_longitudes_stored_out_of_order_are_rolled(tmp_path):
    lon = np.concatenate([LON_360[250:], LON_360[:250]])  # 0.05 ... 44.95, 335.05 ... 359.95
    data = _data(1)
    f = read_cams_eu(_write(tmp_path / "c.nc", lon=lon, no2_conc=data, times=HOURS[:1]))
    assert f.grid.x0 == -25.0
    np.testing.assert_array_equal(f.no2, _expected(data, lon))


def test_file_without_time_is_static(tmp_path):
    f = read_cams_eu(_write(tmp_path / "c.nc", times=None, no2_conc=_data(1)))
    assert f.times is None and f.no2.shape == (1, 10, 6, 700)


def test_forecast_start_from_global_attribute(tmp_path):
    path = _write(tmp_path / "c.nc", kind="FORECAST")
    with netCDF4.Dataset(path, "a") as ds:
        assert ds.FORECAST == "Europe, 20210212+[0H_2H]"
        ds["time"].long_name = "time"  # the date only in the FORECAST attribute now
        ds.FORECAST = "Europe, 20210301+[0H_96H]"
    f = read_cams_eu(path)
    np.testing.assert_array_equal(f.times - f.times[0], HOURS - HOURS[0])
    assert f.times[0] == np.datetime64("2021-03-01T00:00", "ns")


def test_absolute_cf_time_and_other_names(tmp_path):
    """A newer-style file: lat/lon/valid_time names, CF absolute time, mg m-3."""
    path = tmp_path / "new.nc"
    data = _data(2, nlat=3, nlon=4)
    with netCDF4.Dataset(path, "w") as ds:
        for name, n in (("valid_time", 2), ("level", 10), ("lat", 3), ("lon", 4)):
            ds.createDimension(name, n)
        t = ds.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t[:] = "hours since 1970-01-01", [450000, 450001]
        ds.createVariable("level", "f4", ("level",))[:] = LEVELS / 1000.0
        ds["level"].units = "km"
        ds.createVariable("lat", "f8", ("lat",))[:] = [45.05, 45.15, 45.25]
        ds.createVariable("lon", "f8", ("lon",))[:] = [1.05, 1.15, 1.25, 1.35]
        v = ds.createVariable("no2_conc", "f4", ("valid_time", "level", "lat", "lon"))
        v.units, v[:] = "mg m-3", data
    f = read_cams_eu(path)
    np.testing.assert_allclose(f.no2, 1000.0 * data, rtol=1e-6)
    np.testing.assert_allclose(f.heights, LEVELS, rtol=1e-6)
    assert f.times[0] == np.datetime64("2021-05-03T00:00", "ns")


# -- bad input ---------------------------------------------------------------------------
def _retouch(path: Path, what: str) -> None:
    with netCDF4.Dataset(path, "a") as ds:
        v = ds["no2_conc"]
        if what == "nan":
            v[0, 0, 0, :5] = np.nan
        elif what == "negative":
            v[1, 2, 3, 4] = -1.0
        elif what in ("furlongs", "ppb", "mg m-3"):
            v.units = what
        elif what == "rename":
            ds.renameVariable("no2_conc", "o3_conc")
        elif what == "level":
            ds.renameVariable("level", "lvl")
        elif what == "no-date":
            ds["time"].long_name = "time"
            ds.delncattr("ANALYSIS")


@pytest.mark.parametrize(
    ("what", "match"),
    [("nan", "contains 5 NaN"), ("negative", "1 negative"), ("furlongs", "unknown units"),
     ("ppb", "mixing ratio"), ("rename", "no variable 'no2_conc'"),
     ("level", "coordinate variable 'level' is missing"), ("no-date", "start date")],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, what, match):
    path = _write(tmp_path / "bad.nc", lon=LON_360[:8], no2_conc=_data(3, nlon=8))
    _retouch(path, what)
    with pytest.raises(ProfileFieldError, match=match) as info:
        read_cams_eu(path)
    assert info.value.path == str(path)


def test_mg_file_is_1000_times_larger(tmp_path):
    kw = {"lon": LON_360[:8], "no2_conc": _data(3, nlon=8)}
    ug = read_cams_eu(_write(tmp_path / "ug.nc", **kw))
    path = _write(tmp_path / "mg.nc", **kw)
    _retouch(path, "mg m-3")
    np.testing.assert_allclose(read_cams_eu(path).no2, 1000.0 * ug.no2, rtol=1e-6)


def test_garbage_file_is_an_input_error(tmp_path):
    junk = tmp_path / "cams.nc"
    junk.write_text("<html>ADS error page</html>")
    with pytest.raises(InputFileError) as info:
        read_cams_eu(junk)
    assert info.value.path == str(junk)


# -- reductions ----------------------------------------------------------------------------
def _hourly(days: int = 2) -> ProfileField:
    """Hourly field whose value is the hour of day plus 100 x the day index."""
    times = T0 + np.arange(24 * days) * np.timedelta64(1, "h")
    hours = np.arange(24 * days, dtype=np.float32)
    values = (hours % 24) + 100 * (hours // 24)
    no2 = np.broadcast_to(values[:, None, None, None], (24 * days, 2, 3, 4)).copy()
    return ProfileField(no2, LEVELS[:2], Grid("EPSG:4326", 0, 40, 0.1, 0.1, 4, 3), times)


def test_window_mean_uses_hours_11_to_13_inclusive():
    out = window_mean(_hourly())
    np.testing.assert_array_equal(
        out.times, np.array(["2021-02-12T12:00", "2021-02-13T12:00"], "datetime64[ns]"))
    np.testing.assert_allclose(out.no2[:, 0, 0, 0], [12.0, 112.0])  # (11 + 12 + 13) / 3
    assert out.no2.shape == (2, 2, 3, 4) and "11-13" in out.attrs["time_reduction"]


def test_window_mean_skips_days_with_too_few_values():
    f = _hourly()
    keep = ~((f.times >= T0 + np.timedelta64(36, "h")) & (f.times <= T0 + np.timedelta64(37, "h")))
    sparse = ProfileField(f.no2[keep], f.heights, f.grid, f.times[keep])  # day 2 lacks 12, 13 h
    out = window_mean(sparse, min_count=3)
    assert len(out.times) == 1 and out.no2[0, 0, 0, 0] == pytest.approx(12.0)
    np.testing.assert_allclose(window_mean(sparse).no2[:, 0, 0, 0], [12.0, 111.0])


def test_daily_mean_is_stamped_at_day_start():
    out = daily_mean(_hourly())
    np.testing.assert_array_equal(out.times, np.array(["2021-02-12", "2021-02-13"], "datetime64[ns]"))
    np.testing.assert_allclose(out.no2[:, 1, 2, 3], [11.5, 111.5])


def test_reductions_need_times():
    static = ProfileField(np.ones((1, 2, 3, 4), np.float32), LEVELS[:2],
                          Grid("EPSG:4326", 0, 40, 0.1, 0.1, 4, 3))
    with pytest.raises(ProfileFieldError, match="no time axis"):
        daily_mean(static)
    with pytest.raises(ProfileFieldError, match="no time axis"):
        window_mean(static)


# -- the plugin ----------------------------------------------------------------------------
def test_identify_each_source_on_its_own_files(tmp_path):
    cams = _write(tmp_path / "c.nc", lon=LON_360[:8], no2_conc=_data(3, nlon=8))
    f = read_cams_eu(cams)
    cf = write_cf_field(tmp_path / "f.nc", f)
    assert CamsEuropeSource().identify(cams) and not CamsEuropeSource().identify(cf)
    assert CFProfileSource().identify(cf) and not CFProfileSource().identify(cams)
    assert plugins.find(plugins.PROFILE_SOURCES, cams).name == "cams-eu"
    np.testing.assert_array_equal(CFProfileSource().open(cf).no2, f.no2)
