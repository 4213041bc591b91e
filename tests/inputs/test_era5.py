"""ERA5 readers against CDS-like files written by our writers, good and malformed."""

from __future__ import annotations

import zipfile

import netCDF4
import numpy as np
import pytest
import xarray as xr

from aprior.errors import InputFileError
from aprior.grids.grid import lonlat_of, subdomain
from aprior.inputs.era5 import (
    DEFAULT_PRESSURE_LEVELS_HPA,
    LEXICON,
    PRESSURE_LEVEL_VARIABLES,
    SINGLE_LEVEL_VARIABLES,
    read_era5_pressure_levels,
    read_era5_single_levels,
    write_era5_pressure_levels,
    write_era5_single_levels,
)

DAY = "2021-03-04"
LAT = np.arange(51.5, 46.49, -0.25)  # descending, like ERA5
LON = np.arange(-1.0, 6.01, 0.25)
LEVELS_IN_FILE = (1000, 975, 950, 925, 900, 850, 700, 600, 500)


@pytest.fixture(scope="module")
def grid16():
    return subdomain("paris", 16000)


def _times(day=DAY, n=24, start=0):
    return np.datetime64(f"{day}T00") + (start + np.arange(n)) * np.timedelta64(1, "h")


def _value(name, lon, lat, hour, k=0):
    """A field linear in lon and lat, within the variable's plausible range."""
    lo, hi = LEXICON[name].valid_range
    frac = 0.4 + 0.01 * (lon - 2) + 0.01 * (lat - 49) + 0.002 * hour + 0.01 * k
    return lo + (hi - lo) * frac


def _single(times, lon=LON, names=SINGLE_LEVEL_VARIABLES):
    lon_true = np.where(lon > 180, lon - 360, lon)
    la, lo = np.meshgrid(LAT, lon_true, indexing="ij")
    hours = ((times - times.astype("datetime64[D]")) // np.timedelta64(1, "h")).astype(float)
    return {n: np.stack([_value(n, lo, la, h) for h in hours]) for n in names}


def _pressure(times, levels=LEVELS_IN_FILE, names=PRESSURE_LEVEL_VARIABLES):
    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    hours = ((times - times.astype("datetime64[D]")) // np.timedelta64(1, "h")).astype(float)
    return {n: np.stack([np.stack([_value(n, lo, la, h, k) for k in range(len(levels))])
                         for h in hours]) for n in names}


def _expected(name, grid, k=0):
    lon, lat = lonlat_of(grid)
    return np.stack([_value(name, lon, lat, h, k) for h in range(24)])


def _tolerance(name, style):
    lo, hi = LEXICON[name].valid_range
    return (hi - lo) * (1e-6 if style == "new" else 2e-4)  # float32 vs int16 packing


@pytest.mark.parametrize("style", ["new", "old"])
@pytest.mark.parametrize("lon360", [False, True])
def test_single_levels_round_trip(tmp_path, grid16, style, lon360):
    lon = np.where(LON < 0, LON + 360, LON) if lon360 else LON
    times = _times()
    path = write_era5_single_levels(tmp_path / "sl.nc", times=times, lat=LAT, lon=lon,
                                    fields=_single(times, lon), style=style)
    with xr.open_dataset(path) as raw:  # looks like the CDS format
        assert ("valid_time" if style == "new" else "time") in raw.dims
        assert raw["t2m"].attrs["units"] == "K" and raw["u10"].attrs["units"] == "m s**-1"
        if style == "new":
            assert "number" in raw.coords and "expver" in raw.coords
    ds = read_era5_single_levels(path, DAY, grid16)
    assert dict(ds.sizes) == {"time": 24, "y": grid16.ny, "x": grid16.nx}
    assert set(ds.data_vars) == set(SINGLE_LEVEL_VARIABLES)
    assert ds["t2m"].dtype == np.float32 and ds["ssrd"].attrs["units"] == "J m-2"
    assert ds.time.values[0] == np.datetime64(f"{DAY}T00") and ds.time.values[-1] == np.datetime64(f"{DAY}T23")
    for name in ("t2m", "sp", "tcc", "ssrd"):
        np.testing.assert_allclose(ds[name].values, _expected(name, grid16),
                                   atol=_tolerance(name, style) + 1e-6 * abs(LEXICON[name].valid_range[1]))


@pytest.mark.parametrize("style", ["new", "old"])
def test_pressure_levels_round_trip(tmp_path, grid16, style):
    times = _times()
    path = write_era5_pressure_levels(tmp_path / "pl.nc", times=times, levels_hpa=LEVELS_IN_FILE,
                                      lat=LAT, lon=LON, fields=_pressure(times), style=style)
    ds = read_era5_pressure_levels(path, DAY, grid16)
    assert dict(ds.sizes) == {"time": 24, "level": 8, "y": grid16.ny, "x": grid16.nx}
    assert ds.level.values.tolist() == list(DEFAULT_PRESSURE_LEVELS_HPA)
    k700 = LEVELS_IN_FILE.index(700)
    np.testing.assert_allclose(ds["z"].sel(level=700).values, _expected("z", grid16, k700),
                               atol=_tolerance("z", style) + 0.1)
    # a custom order of levels is honoured
    ds2 = read_era5_pressure_levels(path, DAY, grid16, variables=("t",), levels_hpa=(500, 1000))
    np.testing.assert_allclose(ds2["t"].values[:, 0], ds["t"].values[:, -1], rtol=1e-6)


def test_several_files_days_and_a_zip(tmp_path, grid16):
    # hours split over two files that also hold the neighbouring days; variables in a zip
    t1 = _times(DAY, n=14, start=-2)  # 22 h of the day before .. 11 h
    t2 = _times(DAY, n=14, start=12)  # 12 h .. 01 h of the next day
    inst = [n for n in SINGLE_LEVEL_VARIABLES if LEXICON[n].step_type == "instant"]
    acc = [n for n in SINGLE_LEVEL_VARIABLES if LEXICON[n].step_type == "accum"]
    a = write_era5_single_levels(tmp_path / "a.nc", times=t1, lat=LAT, lon=LON,
                                 fields=_single(t1, names=SINGLE_LEVEL_VARIABLES))
    b = write_era5_single_levels(tmp_path / "b.nc", times=t2, lat=LAT, lon=LON,
                                 fields=_single(t2, names=inst))
    c = write_era5_single_levels(tmp_path / "c.nc", times=t2, lat=LAT, lon=LON,
                                 fields=_single(t2, names=acc))
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(b, "data_stream-oper_stepType-instant.nc")
        zf.write(c, "data_stream-oper_stepType-accum.nc")
    ds = read_era5_single_levels([a, z], DAY, grid16)
    np.testing.assert_allclose(ds["tp"].values, _expected("tp", grid16), atol=1e-6)
    np.testing.assert_allclose(ds["t2m"].values, _expected("t2m", grid16), atol=1e-3)
    assert "b.zip!data_stream-oper_stepType-accum.nc" in ds.attrs["source_files"]


def test_old_style_expver_dimension_is_merged(tmp_path, grid16):
    times = _times()
    path = write_era5_single_levels(tmp_path / "x.nc", times=times, lat=LAT, lon=LON,
                                    fields=_single(times, names=("t2m",)))
    with xr.open_dataset(path) as raw:
        ds = raw.load()
    t2m = ds["t2m"].values
    first = np.where(np.arange(24)[:, None, None] < 20, t2m, np.nan)
    second = np.where(np.arange(24)[:, None, None] >= 20, t2m, np.nan)
    ds = ds.drop_vars("t2m").assign(t2m=(("valid_time", "expver_dim", "latitude", "longitude"),
                                          np.stack([first, second], axis=1), raw["t2m"].attrs))
    ds = ds.drop_vars("expver").rename({"expver_dim": "expver"}).assign_coords(expver=[1, 5])
    merged = tmp_path / "expver.nc"
    ds.to_netcdf(merged)
    out = read_era5_single_levels(merged, DAY, grid16, variables=("t2m",))
    np.testing.assert_allclose(out["t2m"].values, _expected("t2m", grid16), atol=1e-3)


# -- malformed files ---------------------------------------------------------------------


@pytest.fixture()
def good(tmp_path):
    times = _times()
    return write_era5_single_levels(tmp_path / "good.nc", times=times, lat=LAT, lon=LON,
                                    fields=_single(times))


def _edit(path, fn):
    with netCDF4.Dataset(path, "a") as nc:
        fn(nc)
    return path


def test_missing_variable_names_the_file(tmp_path, grid16):
    times = _times()
    path = write_era5_single_levels(tmp_path / "few.nc", times=times, lat=LAT, lon=LON,
                                    fields=_single(times, names=("t2m", "u10")))
    with pytest.raises(InputFileError, match="'blh'") as exc:
        read_era5_single_levels(path, DAY, grid16)
    assert "few.nc" in str(exc.value)


def test_wrong_units(good, grid16):
    _edit(good, lambda nc: setattr(nc["t2m"], "units", "degC"))
    with pytest.raises(InputFileError, match="'t2m' has units 'degC'") as exc:
        read_era5_single_levels(good, DAY, grid16)
    assert "good.nc" in str(exc.value)


def test_implausible_values_for_the_units(good, grid16):
    def to_hpa(nc):
        nc["sp"][:] = nc["sp"][:] / 100.0
    _edit(good, to_hpa)
    with pytest.raises(InputFileError, match="'sp' ranges .* check the units"):
        read_era5_single_levels(good, DAY, grid16)


def test_nans(good, grid16):
    def poke(nc):
        nc["blh"][5, 10, 12] = np.nan
    _edit(good, poke)
    with pytest.raises(InputFileError, match="'blh' has 1 missing") as exc:
        read_era5_single_levels(good, DAY, grid16)
    assert "good.nc" in str(exc.value)


def test_grid_not_covering_the_domain(tmp_path, grid16):
    times = _times()
    lon = np.arange(3.0, 6.01, 0.25)
    fields = {k: v[:, :, -lon.size:] for k, v in _single(times).items()}
    path = write_era5_single_levels(tmp_path / "east.nc", times=times, lat=LAT, lon=lon,
                                    fields=fields)
    with pytest.raises(InputFileError, match="does not cover the target grid") as exc:
        read_era5_single_levels(path, DAY, grid16)
    assert "east.nc" in str(exc.value)


def test_missing_hours(tmp_path, grid16):
    times = np.delete(_times(), [5, 6])
    path = write_era5_single_levels(tmp_path / "gaps.nc", times=times, lat=LAT, lon=LON,
                                    fields=_single(times))
    with pytest.raises(InputFileError, match="hours 05, 06 UTC of 2021-03-04") as exc:
        read_era5_single_levels(path, DAY, grid16)
    assert "gaps.nc" in str(exc.value)
    with pytest.raises(InputFileError, match="hours 00, 01"):
        read_era5_single_levels(path, "2021-03-05", grid16)


def test_missing_pressure_level_and_not_netcdf(tmp_path, grid16):
    times = _times()
    path = write_era5_pressure_levels(tmp_path / "pl.nc", times=times, levels_hpa=(1000, 850),
                                      lat=LAT, lon=LON, fields=_pressure(times, (1000, 850)))
    with pytest.raises(InputFileError, match="lacks pressure levels 975") as exc:
        read_era5_pressure_levels(path, DAY, grid16)
    assert "pl.nc" in str(exc.value)
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(InputFileError, match="cannot be read") as exc:
        read_era5_single_levels(junk, DAY, grid16)
    assert "junk.nc" in str(exc.value)
    with pytest.raises(InputFileError, match="does not exist"):
        read_era5_single_levels(tmp_path / "none.nc", DAY, grid16)


def test_writer_validates_and_is_atomic(tmp_path):
    times = _times(n=2)
    with pytest.raises(ValueError, match="shape"):
        write_era5_single_levels(tmp_path / "bad.nc", times=times, lat=LAT, lon=LON,
                                 fields={"t2m": np.zeros((3, 2, 2))})
    with pytest.raises(ValueError, match="unknown"):
        write_era5_single_levels(tmp_path / "bad.nc", times=times, lat=LAT, lon=LON,
                                 fields={"foo": np.zeros((2, LAT.size, LON.size))})
    assert list(tmp_path.iterdir()) == []
