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


# -- real layouts: int16 packing, tiny negatives, regional boxes, HH:30 stamps ---------------
def write_packed_like_grib_to_netcdf(path, values_kg, lat, lon, times, zero_residual=-3.4e-21):
    """An EAC4 file laid out like the real old-ADS sample (grib_to_netcdf 2.23): ``pm2p5``
    int16 with float64 scale_factor/add_offset, _FillValue and missing_value -32767, float32
    ``latitude`` north first and ``longitude`` -180.., int32 ``time`` in hours since 1900.
    Zeros unpack to ``zero_residual`` (the artefact real files carry)."""
    vmax = float(values_kg.max())
    scale = vmax / 65532.0
    offset = zero_residual + 32766.0 * scale  # packed -32766 unpacks to zero_residual
    packed = np.round((values_kg - offset) / scale).astype(np.int16)
    hours = ((np.asarray(times, "datetime64[h]") - np.datetime64("1900-01-01T00", "h"))
             .astype(np.int64).astype(np.int32))
    ds = xr.Dataset(
        {"pm2p5": (("time", "latitude", "longitude"), packed,
                   {"scale_factor": scale, "add_offset": offset, "_FillValue": np.int16(-32767),
                    "missing_value": np.int16(-32767), "units": "kg m**-3",
                    "long_name": "Particulate matter d < 2.5 um"})},
        coords={"time": ("time", hours, {"units": "hours since 1900-01-01 00:00:00.0",
                                         "long_name": "time", "calendar": "gregorian"}),
                "latitude": ("latitude", np.asarray(lat, np.float32), {"units": "degrees_north"}),
                "longitude": ("longitude", np.asarray(lon, np.float32), {"units": "degrees_east"})},
        attrs={"Conventions": "CF-1.6", "history": "grib_to_netcdf-2.23.0 (test)"})
    ds.to_netcdf(path)
    return path


def test_int16_packed_regional_file_with_tiny_negatives_is_read_and_clipped(tmp_path, caplog):
    lat = np.arange(60.0, 29.99, -0.75)  # north first, a regional box
    lon = np.arange(-10.0, 20.01, 0.75)
    vals = np.abs(_f(lat[None, :, None], lon[None, None, :], np.array([0.0, 3.0])[:, None, None])) * 1e-9
    vals[:, :3, :4] = 0.0  # clean air: stored as the packing's tiny negative
    path = write_packed_like_grib_to_netcdf(tmp_path / "eac4.nc", vals, lat, lon, T3[:2])
    with xr.open_dataset(path) as raw:
        assert raw["pm2p5"].values.min() < 0  # the artefact is in the file
    with caplog.at_level("INFO", logger="aprior.inputs.pm25"):
        f = read_eac4_pm25(path)
    assert f.values.min() == 0.0 and f.values.shape == (2, lat.size, lon.size)
    assert f.lat[0] == pytest.approx(30.0) and f.lon[0] == pytest.approx(-10.0)
    np.testing.assert_allclose(f.values[:, ::-1], vals * 1e9, atol=2e-3 * vals.max() * 1e9 / 1000 + 1e-3)
    assert any("24 value(s)" in r.getMessage() and "clipped to 0" in r.getMessage()
               for r in caplog.records)
    np.testing.assert_array_equal(f.times, T3[:2].astype("datetime64[ns]"))


def test_real_negatives_beyond_the_packing_tolerance_are_refused(tmp_path):
    lat, lon = np.arange(60.0, 29.99, -0.75), np.arange(-10.0, 20.01, 0.75)
    vals = np.full((1, lat.size, lon.size), 5e-9)
    vals[0, 0, 0] = 0.0  # stored as -1e-9 kg m-3 = -1 ug m-3: far beyond a packing artefact
    path = write_packed_like_grib_to_netcdf(tmp_path / "neg.nc", vals, lat, lon, T3[:1],
                                            zero_residual=-1e-9)
    with pytest.raises(InputFileError, match="negative values .* beyond the packing tolerance"):
        read_eac4_pm25(path)


def test_longitude_conventions_and_time_names_give_the_same_field(tmp_path):
    v = _eac4_values()[:2]
    a = read_eac4_pm25(write_eac4_pm25(tmp_path / "a.nc", T3[:2], EAC4_LAT, EAC4_LON, v, style="new"))
    lon180 = np.where(EAC4_LON >= 180, EAC4_LON - 360, EAC4_LON)
    order = np.argsort(lon180)
    b = read_eac4_pm25(write_eac4_pm25(tmp_path / "b.nc", T3[:2], EAC4_LAT[::-1], lon180[order],
                                       v[:, ::-1][:, :, order], style="old", packing="int16"))
    np.testing.assert_array_equal(a.lon, b.lon)
    np.testing.assert_array_equal(a.lat, b.lat)
    np.testing.assert_allclose(a.values, b.values, atol=1e-3 * float(v.max()) * 1e9)


def test_half_hour_stamps_are_labelled_explicitly_and_other_minutes_refused(caplog):
    from aprior.inputs.pm25 import hour_labels

    on = np.array(["2023-03-01T00:00", "2023-03-01T01:00"], dtype="datetime64[m]")
    np.testing.assert_array_equal(hour_labels(on), on.astype("datetime64[h]"))
    half = on + np.timedelta64(30, "m")
    with caplog.at_level("INFO", logger="aprior.inputs.pm25"):
        labels = hour_labels(half, "geoscf.nc")
    np.testing.assert_array_equal(labels, on.astype("datetime64[h]"))  # HH:30 mean -> HH
    assert any("HH:30" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputFileError, match="stamped at minutes"):
        hour_labels(on + np.timedelta64(15, "m"), "x.nc")
    with pytest.raises(InputFileError, match="must all be on the hour"):
        hour_labels(np.concatenate([on[:1], half[1:]]), "x.nc")
