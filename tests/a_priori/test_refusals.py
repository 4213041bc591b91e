"""Inputs that would give a silently wrong answer are refused with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from layouts import constant, write_plain
from typer.testing import CliRunner

from aprior.a_priori.sources import open_profile_field
from aprior.errors import ProfileFieldError
from aprior.retrieval.reprocess import ReprocessConfig, reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

LAT, LON = np.arange(48.0, 54.0, 0.25), np.arange(1.0, 9.0, 0.25)


def _write(path, no2, heights, units="ug m-3", h_units="m", h_attrs=None, lat=LAT):
    xr.Dataset({"no2": (("height", "lat", "lon"), np.asarray(no2, np.float32), {"units": units})},
               coords={"height": ("height", np.asarray(heights, float), {"units": h_units, **(h_attrs or {})}),
                       "lat": lat, "lon": LON}).to_netcdf(path)
    return path


def _field(nz, value=10.0):
    return np.full((nz, LAT.size, LON.size), value)


def test_plain_xarray_file_works_without_options(tmp_path):
    fld = open_profile_field(write_plain(tmp_path / "plain.nc", constant()))
    assert fld.grid.crs == "EPSG:4326" and fld.nz == 10 and fld.quantity == "mass_concentration"


@pytest.mark.parametrize(("heights", "h_units", "words"), [
    ([0, 0.5, 1, 2, 5], "m", "are they in km"),
    ([0, 500, 300, 1000, 5000], "m", "not strictly increasing"),
    ([0, 500, 1000, 2000, 5000], "km", "above the atmosphere"),
])
def test_implausible_heights_refused(tmp_path, heights, h_units, words):
    path = _write(tmp_path / "f.nc", _field(5), heights, h_units=h_units)
    with pytest.raises(ProfileFieldError, match=words):
        open_profile_field(path)


def test_mixing_ratio_labelled_mass_concentration_refused(tmp_path):
    path = _write(tmp_path / "f.nc", _field(3, 3e-9), [0, 1000, 3000])
    with pytest.raises(ProfileFieldError, match="size of a mixing ratio"):
        open_profile_field(path)


def test_all_zero_field_refused(tmp_path):
    with pytest.raises(ProfileFieldError, match="zero everywhere"):
        open_profile_field(_write(tmp_path / "f.nc", _field(3, 0.0), [0, 1000, 3000]))


def test_unidentifiable_vertical_coordinate_refused(tmp_path):
    path = tmp_path / "f.nc"
    xr.Dataset({"no2": (("lev", "lat", "lon"), _field(3).astype(np.float32), {"units": "ug m-3"})},
               coords={"lev": ("lev", [1.0, 2.0, 3.0], {"long_name": "model level"}),
                       "lat": LAT, "lon": LON}).to_netcdf(path)
    with pytest.raises(ProfileFieldError, match="cannot identify the vertical coordinate"):
        open_profile_field(path)


def test_no_source_says_why(tmp_path):
    path = tmp_path / "co.nc"
    xr.Dataset({"co": (("lat", "lon"), np.ones((LAT.size, LON.size)))},
               coords={"lat": LAT, "lon": LON}).to_netcdf(path)
    with pytest.raises(ProfileFieldError, match="no profile source recognises this file: .*no NO2 variable.*co"):
        open_profile_field(path)


def test_single_level_refused_unless_allowed(world, tmp_path):
    fld = open_profile_field(_write(tmp_path / "f.nc", _field(1), [0.0]))
    with pytest.raises(ProfileFieldError, match="single level"):
        reprocess_file(world.l2, tmp_path / "out.nc", fld, S5PNO2Sensor())
    s = reprocess_file(world.l2, tmp_path / "out.nc", fld, S5PNO2Sensor(),
                       ReprocessConfig(allow_single_level=True))
    assert s.n_reprocessed > 1000


def test_single_level_cli_exit_2_and_option(world, tmp_path):
    from aprior.cli.main import app

    path = _write(tmp_path / "f.nc", _field(1), [0.0])
    runner = CliRunner()
    res = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(path), "-o", str(tmp_path / "o.nc"), "-q"])
    assert res.exit_code == 2 and "single level" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(path), "-o", str(tmp_path / "o.nc"),
                              "-q", "--allow-single-level", "-j", "1"])
    assert res.exit_code == 0, res.output


def test_field_zero_over_the_orbit_refused(world, tmp_path):
    lat = np.arange(30.0, 70.0, 0.25)
    no2 = np.full((3, lat.size, LON.size), 10.0)
    no2[:, (lat > 35) & (lat < 65)] = 0.0  # zero wherever the orbit looks
    fld = open_profile_field(_write(tmp_path / "f.nc", no2, [0, 1000, 3000], lat=lat))
    with pytest.raises(ProfileFieldError, match="zero or missing in all"):
        reprocess_file(world.l2, tmp_path / "out.nc", fld, S5PNO2Sensor())


def test_upper_field_extension_is_for_fields_on_heights(world, tmp_path):
    from layouts import write_geos_chem

    from aprior.errors import ConfigError
    from aprior.retrieval.vertical import VerticalConfig

    hybrid = open_profile_field(write_geos_chem(tmp_path / "g.nc", constant()))
    heights = open_profile_field(write_plain(tmp_path / "p.nc", constant()))
    cfg = ReprocessConfig(vertical=VerticalConfig(extension="upper_field"))
    with pytest.raises(ConfigError, match="fields on heights"):
        reprocess_file(world.l2, tmp_path / "o1.nc", hybrid, S5PNO2Sensor(), cfg, upper=heights)
    with pytest.raises(ConfigError, match="must be on heights"):
        reprocess_file(world.l2, tmp_path / "o2.nc", heights, S5PNO2Sensor(), cfg, upper=hybrid)
