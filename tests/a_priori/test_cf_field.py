"""The CF profile-field reader/writer, the ``cf`` source and the unit parser."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from aprior import plugins
from aprior.a_priori.cams_eu import CamsEuropeSource, write_cams_eu
from aprior.a_priori.cf_field import CFProfileSource, read_cf_field, write_cf_field
from aprior.a_priori.field import ProfileField
from aprior.errors import InputFileError, ProfileFieldError
from aprior.grids.grid import Grid, domain_grid
from aprior.units import concentration_factor, decode_time, encode_time

HEIGHTS = np.array([0.0, 50.0, 250.0])
TIMES = np.array(["2021-06-01T11:00", "2021-06-01T12:00"], dtype="datetime64[ns]")


@pytest.fixture
def field() -> ProfileField:
    rng = np.random.default_rng(3)
    no2 = (rng.random((2, 3, 4, 5)) * 40).astype(np.float32)
    return ProfileField(no2, HEIGHTS, domain_grid(16000).window(2, 3, 5, 4), TIMES,
                        source="unit test", attrs={"model": "DACNO2", "seed": 3})


def _handmade(path: Path, *, data: np.ndarray | None = None, units: str | None = "ug m-3",
              y_desc: bool = False, grid_mapping: bool = True, xy_units: str = "m",
              height_units: str = "m", var: str = "no2") -> Path:
    """A CF field written by hand with netCDF4, as another tool might write it."""
    g = domain_grid(16000).window(0, 0, 5, 4)
    no2 = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) if data is None else data
    y = g.y[::-1] if y_desc else g.y
    with netCDF4.Dataset(path, "w") as ds:
        for name, n in (("height", 3), ("y", 4), ("x", 5)):
            ds.createDimension(name, n)
        h = ds.createVariable("height", "f8", ("height",))
        h.units = height_units
        h[:] = HEIGHTS / (1000.0 if height_units == "km" else 1.0)
        for name, values in (("y", y), ("x", g.x)):
            v = ds.createVariable(name, "f8", (name,))
            v.units = xy_units
            v[:] = values
        crs = ds.createVariable("crs", "i4")
        crs.crs_wkt = g.pyproj_crs.to_wkt()
        v = ds.createVariable(var, "f4", ("height", "y", "x"))
        if units is not None:
            v.units = units
        if grid_mapping:
            v.grid_mapping = "crs"
        v[:] = no2
    return path


# -- round trips -------------------------------------------------------------------
def test_round_trip_gives_back_values_grid_heights_times(tmp_path, field):
    path = write_cf_field(tmp_path / "f.nc", field, attrs={"run": "r1"})
    back = read_cf_field(path)
    np.testing.assert_array_equal(back.no2, field.no2)
    assert back.no2.dtype == np.float32
    assert back.grid == field.grid
    np.testing.assert_array_equal(back.heights, field.heights)
    np.testing.assert_array_equal(back.times, field.times)
    assert back.source == "unit test"
    assert back.attrs["run"] == "r1" and back.attrs["model"] == "DACNO2"
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back.path == str(path)


def test_written_layout_is_cf(tmp_path, field):
    path = write_cf_field(tmp_path / "f.nc", field)
    with netCDF4.Dataset(path) as ds:
        v = ds["no2"]
        assert v.dimensions == ("time", "height", "y", "x")
        assert v.dtype == np.float32 and v.units == "ug m-3" and v.grid_mapping == "crs"
        assert v.standard_name == "mass_concentration_of_nitrogen_dioxide_in_air"
        assert v.chunking() == [1, 1, 4, 5] and v.filters()["zlib"]
        assert ds["crs"].grid_mapping_name == "lambert_azimuthal_equal_area"
        assert "3035" in ds["crs"].crs_wkt and ds["crs"].spatial_ref
        assert ds["height"].positive == "up" and ds["height"].axis == "Z"
        assert ds["x"].standard_name == "projection_x_coordinate"
    assert not [p for p in tmp_path.iterdir() if p.name != "f.nc"]  # no temporary left


def test_static_field_has_no_time_dimension(tmp_path, field):
    static = ProfileField(field.no2[:1], HEIGHTS, field.grid)
    path = write_cf_field(tmp_path / "s.nc", static, compress=False)
    with netCDF4.Dataset(path) as ds:
        assert ds["no2"].dimensions == ("height", "y", "x")
    back = read_cf_field(path)
    assert back.times is None and back.no2.shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(back.no2, static.no2)


def test_geographic_grid_round_trips(tmp_path, field):
    grid = Grid("EPSG:4326", -5.0, 42.0, 0.1, 0.1, 5, 4)
    geo = ProfileField(field.no2, HEIGHTS, grid, TIMES)
    back = read_cf_field(write_cf_field(tmp_path / "g.nc", geo))
    assert back.grid == grid


def test_descending_y_is_flipped_to_ascending(tmp_path):
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    back = read_cf_field(_handmade(tmp_path / "d.nc", data=data, y_desc=True))
    assert back.grid == domain_grid(16000).window(0, 0, 5, 4)
    np.testing.assert_array_equal(back.no2[0], data[:, ::-1])
    assert back.times is None and back.source == "d.nc"


def test_mg_per_m3_and_km_heights_are_converted(tmp_path):
    ug = read_cf_field(_handmade(tmp_path / "ug.nc"))
    mg = read_cf_field(_handmade(tmp_path / "mg.nc", units="mg m-3", height_units="km"))
    np.testing.assert_allclose(mg.no2, 1000.0 * ug.no2, rtol=1e-6)
    np.testing.assert_allclose(mg.heights, HEIGHTS)


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data": np.full((3, 4, 5), np.nan, np.float32)}, "contains 60 NaN"),
        ({"data": -np.ones((3, 4, 5), np.float32)}, "negative"),
        ({"units": "furlongs"}, "unknown units"),
        ({"units": "ppb"}, "mixing ratio.*air density"),
        ({"units": None}, "no units"),
        ({"var": "o3"}, "no variable 'no2'"),
        ({"grid_mapping": False}, "no grid_mapping"),
        ({"grid_mapping": False, "xy_units": "degrees_east"}, "in degrees"),
        ({"height_units": "hPa"}, "height has units"),
    ],
)
def test_bad_fields_are_refused_naming_the_file(tmp_path, kwargs, match):
    path = _handmade(tmp_path / "bad.nc", **kwargs)
    with pytest.raises(ProfileFieldError, match=match) as info:
        read_cf_field(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_wrong_dims_are_listed(tmp_path):
    path = tmp_path / "dims.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", 2)
        ds.createDimension("lon", 3)
        ds.createVariable("no2", "f4", ("lat", "lon"))[:] = 1.0
    with pytest.raises(ProfileFieldError, match=r"dims \('lat', 'lon'\)"):
        read_cf_field(path)


def test_garbage_and_missing_files_are_input_errors(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_text("this is not netCDF\n")
    with pytest.raises(InputFileError) as info:
        read_cf_field(junk)
    assert info.value.path == str(junk)
    with pytest.raises(InputFileError, match="not found"):
        read_cf_field(tmp_path / "absent.nc")


# -- the plugin ------------------------------------------------------------------------
def test_identify_is_true_on_own_files_only(tmp_path, field):
    cf = write_cf_field(tmp_path / "f.nc", field)
    cams = write_cams_eu(tmp_path / "c.nc", times=None, levels=HEIGHTS,
                         lat=np.array([42.15, 42.05]), lon=np.array([0.05, 0.15]),
                         no2_conc=np.ones((1, 3, 2, 2), np.float32))
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"\x00garbage")
    src = CFProfileSource()
    assert src.identify(cf) and src.identify(_handmade(tmp_path / "h.nc"))
    assert not src.identify(cams) and not src.identify(junk)
    assert not src.identify(tmp_path / "absent.nc")
    assert not CamsEuropeSource().identify(cf)
    assert plugins.find(plugins.PROFILE_SOURCES, cf).name == "cf"
    np.testing.assert_array_equal(plugins.load(plugins.PROFILE_SOURCES, "cf").open(cf).no2, field.no2)


# -- units ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("units", "factor"),
    [("ug m-3", 1.0), ("µg m-3", 1.0), ("μg/m3", 1.0), ("ug/m3", 1.0), ("µg/m3", 1.0),
     ("microgram m-3", 1.0), ("micrograms per cubic meter", 1.0), ("ug m^-3", 1.0),
     ("mg m-3", 1e3), ("g m-3", 1e6), ("kg m-3", 1e9), ("kg m**-3", 1e9), ("ng m-3", 1e-3),
     ("1e-9 kg m-3", 1.0)],
)
def test_concentration_factor(units, factor):
    assert concentration_factor(units) == pytest.approx(factor)


@pytest.mark.parametrize("units", ["ppb", "ppbv", "mol mol-1", "1e-9", "nmol mol-1", "kg kg-1"])
def test_mixing_ratios_are_refused(units):
    with pytest.raises(ProfileFieldError, match="air density"):
        concentration_factor(units, path="x.nc")


def test_cf_time_decoding_and_encoding():
    t = decode_time(np.array([0, 1.5, 24]), "hours since 2021-02-12 00:00:00 UTC")
    np.testing.assert_array_equal(
        t, np.array(["2021-02-12T00:00", "2021-02-12T01:30", "2021-02-13T00:00"], "datetime64[ns]"))
    values, units = encode_time(t)
    np.testing.assert_array_equal(decode_time(values, units), t)
    with pytest.raises(ProfileFieldError, match="calendar"):
        decode_time(np.array([0]), "days since 2000-01-01", "360_day")
    with pytest.raises(ProfileFieldError, match="not CF time units"):
        decode_time(np.array([0]), "hours")
