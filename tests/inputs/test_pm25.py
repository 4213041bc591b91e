"""EAC4 and GEOS-CF PM2.5 readers, writers and the point sampler."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from aprior.errors import InputFileError
from aprior.inputs.pm25 import (
    PM25Field,
    concat_pm25,
    read_eac4_pm25,
    read_geoscf_pm25,
    sample_pm25,
    write_eac4_pm25,
    write_geoscf_pm25,
)

EAC4_LAT = np.linspace(90.0, -90.0, 241)
EAC4_LON = np.arange(480) * 0.75
T3 = np.arange("2020-01-01T00", "2020-01-02T00", 3, dtype="datetime64[h]")


def _f(lat, lon, hours):
    """A smooth, periodic test field in ug m-3."""
    return 10.0 + 3.0 * np.cos(np.deg2rad(lon)) + 0.05 * lat + 0.2 * hours


def _eac4_values():
    h = (T3 - T3[0]).astype(float)
    return np.stack([_f(EAC4_LAT[:, None], EAC4_LON[None, :], hh) for hh in h]) * 1e-9


@pytest.mark.parametrize("style", ["new", "old"])
def test_eac4_round_trip_and_units(tmp_path, style):
    path = write_eac4_pm25(tmp_path / "eac4.nc", T3, EAC4_LAT, EAC4_LON, _eac4_values(), style)
    with xr.open_dataset(path) as ds:
        assert ("valid_time" if style == "new" else "time") in ds.dims
        assert ds["pm2p5"].attrs["units"] == "kg m**-3"
    f = read_eac4_pm25(path)
    assert f.values.shape == (8, 241, 480) and f.values.dtype == np.float32
    assert f.lat[0] == -90.0 and f.lat[-1] == 90.0
    assert f.lon[0] == -180.0 and f.lon[-1] == 179.25
    j, i = 100, int(np.searchsorted(f.lon, 10.5))
    assert f.values[2, j, i] == pytest.approx(_f(f.lat[j], f.lon[i], 6.0), rel=1e-5)  # x 1e9


def test_geoscf_round_trip(tmp_path):
    lat = np.linspace(-90.0, 90.0, 721)
    lon = np.arange(1440) * 0.25 - 180.0
    t = T3[:2]
    vals = np.stack([_f(lat[:, None], lon[None, :], 0.0)] * 2)
    f = read_geoscf_pm25(write_geoscf_pm25(tmp_path / "cf.nc4", t, lat, lon, vals))
    assert f.values.shape == (2, 721, 1440) and f.source == "geos-cf"
    np.testing.assert_allclose(f.values, vals, rtol=1e-6)


@pytest.mark.parametrize("case", ["variable", "units", "nan", "negative", "extra_dim"])
def test_pm25_refuses(tmp_path, case):
    path = write_eac4_pm25(tmp_path / "eac4.nc", T3[:2], EAC4_LAT, EAC4_LON, _eac4_values()[:2])
    ds = xr.load_dataset(path)
    if case == "variable":
        ds = ds.rename({"pm2p5": "pm10"})
        match = "no PM2.5 variable"
    elif case == "units":
        ds["pm2p5"].attrs["units"] = "ppb"
        match = "units"
    elif case == "nan":
        ds["pm2p5"][0, 5, 5] = np.nan
        match = "missing"
    elif case == "negative":
        ds["pm2p5"][0, 5, 5] = -1e-9
        match = "negative"
    else:
        ds = ds.expand_dims(level=[1, 2], axis=1)
        match = "extra dimension"
    ds.to_netcdf(path)
    with pytest.raises(InputFileError, match=match) as err:
        read_eac4_pm25(path)
    assert err.value.path == str(path)


def _field():
    lat = np.linspace(-90.0, 90.0, 241)
    lon = np.arange(480) * 0.75 - 180.0
    h = np.array([0.0, 3.0])
    vals = np.stack([_f(lat[:, None], lon[None, :], hh) for hh in h])
    return PM25Field(T3[:2], lat, lon, vals, "test")


def test_sample_periodic_longitude_and_time_interpolation():
    f = _field()
    lon = np.array([179.9, -179.9, 539.9, 10.0, 0.0])
    lat = np.array([45.0, 45.0, 45.0, -30.0, 90.0])
    t = np.array(["2020-01-01T01:30", "2020-01-01T00", "2020-01-01T03", "2020-01-01T02", "2020-01-01T00"],
                 dtype="datetime64[m]")
    out = sample_pm25(f, lon, lat, t)
    hours = np.array([1.5, 0.0, 3.0, 2.0, 0.0])
    expect = _f(lat, lon, hours)
    # across the dateline the cosine is interpolated linearly over 0.75 degree: tiny error
    np.testing.assert_allclose(out, expect, rtol=2e-4)
    # the two sides of the dateline interpolate between the same columns
    a = sample_pm25(f, np.array([179.7, -180.3]), np.array([10.0, 10.0]),
                    np.array(["2020-01-01T01"] * 2, dtype="datetime64[h]"))
    assert a[0] == pytest.approx(a[1], rel=1e-12)


def test_sample_nan_outside_time_and_region():
    f = _field()
    out = sample_pm25(f, np.array([0.0, 0.0]), np.array([10.0, 10.0]),
                      np.array(["2019-12-31T23", "2020-01-01T04"], dtype="datetime64[h]"))
    assert np.all(np.isnan(out))
    regional = PM25Field(f.times, f.lat[100:140], f.lon[200:260], f.values[:, 100:140, 200:260])
    inside = (regional.lon[5], regional.lat[5])
    r = sample_pm25(regional, np.array([inside[0], 100.0]), np.array([inside[1], inside[1]]),
                    np.array(["2020-01-01T00"] * 2, dtype="datetime64[h]"))
    assert np.isfinite(r[0]) and np.isnan(r[1])


def test_concat_along_time():
    f = _field()
    a = PM25Field(f.times[1:], f.lat, f.lon, f.values[1:])
    b = PM25Field(f.times[:1], f.lat, f.lon, f.values[:1])
    j = concat_pm25([a, b])
    np.testing.assert_array_equal(j.times, f.times)
    np.testing.assert_array_equal(j.values, f.values.astype(np.float32))
