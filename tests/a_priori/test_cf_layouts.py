"""The generic CF reader and the named readers on the layouts the issue lists."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr
from layouts import constant, write_cams_global, write_geos_chem
from pyproj import CRS, Transformer

from aprior.a_priori.cams_global import ecmwf_levels, model_levels
from aprior.a_priori.sources import open_profile_field
from aprior.constants import M_AIR, M_NO2, N_A
from aprior.errors import ProfileFieldError
from aprior.retrieval.reprocess import reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

LAT, LON = np.arange(48.0, 54.0, 0.25), np.arange(1.0, 9.0, 0.25)


def test_ecmwf_tables():
    for n in (60, 137):
        a, b = ecmwf_levels()[n]
        assert a.size == b.size == n + 1 and a[0] == 0 and b[0] == 0 and b[-1] == 1
        assert np.all(np.diff(a + b * 101325.0) > 0)  # top to surface
    v = model_levels(np.arange(100, 138), None)  # a subset reaching the surface
    assert v.pressure.nz == 38 and v.pressure.b[0] == 1 and v.pressure.a[-1] > 0
    with pytest.raises(ProfileFieldError, match="contiguous"):
        model_levels(np.array([1, 5, 137]), None)
    with pytest.raises(ProfileFieldError, match="do not reach the surface"):
        model_levels(np.arange(1, 31), None)


def test_units_number_density_and_many_times(tmp_path):
    t = np.array(["2023-06-15T11:00", "2023-06-15T13:00", "2023-06-15T12:00"], "datetime64[ns]")
    n = np.full((3, 4, LAT.size, LON.size), 1e11)  # molec cm-3
    xr.Dataset({"no2": (("time", "height", "lat", "lon"), n, {"units": "molec cm-3"})},
               coords={"time": t, "height": ("height", [0.0, 0.5, 1.0, 3.0], {"units": "km"}),
                       "lat": LAT, "lon": LON}).to_netcdf(tmp_path / "f.nc")
    f = open_profile_field(tmp_path / "f.nc")
    assert f.quantity == "mass_concentration"
    np.testing.assert_allclose(f.no2, 1e11 * 1e6 / N_A * M_NO2 * 1e6, rtol=1e-6)  # ug m-3
    np.testing.assert_array_equal(f.heights, [0, 500, 1000, 3000])
    assert list(f.times) == sorted(t)


def test_mass_mixing_ratio_is_converted_exactly(tmp_path):
    path = write_cams_global(tmp_path / "c.nc", constant(2e-9))
    f = open_profile_field(path)
    assert f.quantity == "mole_fraction" and f.pressure.nz == 60
    np.testing.assert_allclose(f.no2, 2e-9, rtol=1e-6)  # kg kg-1 * M_air / M_NO2
    assert f.grid.y0 < f.grid.y0 + f.grid.dy  # latitudes put ascending
    assert M_AIR > 0


def test_cams_pressure_levels(tmp_path):
    p = np.array([1000, 925, 850, 700, 500, 300, 200, 100, 50, 10, 1.0])
    xr.Dataset({"no2": (("valid_time", "pressure_level", "latitude", "longitude"),
                        np.full((1, p.size, LAT.size, LON.size), 3e-9 * M_NO2 / 28.9644),
                        {"units": "kg kg**-1"})},
               coords={"valid_time": ("valid_time", [0], {"units": "hours since 2023-06-15 12:00"}),
                       "pressure_level": ("pressure_level", p, {"units": "hPa"}),
                       "latitude": LAT[::-1], "longitude": LON}).to_netcdf(tmp_path / "pl.nc")
    f = open_profile_field(tmp_path / "pl.nc")
    assert "CAMS global" in f.source and f.vertical_kind == "pressure levels"
    assert not f.pressure.terrain_following and f.pressure.a[0] > 100_000


def test_heights_above_sea_level_with_elevation(world, tmp_path):
    """Heights above sea level over 300 m terrain read as the same field 300 m lower."""
    h_asl = np.array([0, 300, 350, 550, 800, 1300, 2300, 3300, 5300.0])
    prof = np.array([99, 20, 20, 15, 10, 6, 3, 2, 1.0])  # ug m-3, level 0 under ground
    elev = np.full((LAT.size, LON.size), 300.0)
    xr.Dataset({"no2": (("height", "lat", "lon"), np.broadcast_to(prof[:, None, None], (9, LAT.size, LON.size)),
                        {"units": "ug m-3"}),
                "orog": (("lat", "lon"), elev, {"units": "m", "standard_name": "surface_altitude"})},
               coords={"height": ("height", h_asl, {"units": "m", "standard_name": "altitude", "positive": "up"}),
                       "lat": LAT, "lon": LON}).to_netcdf(tmp_path / "asl.nc")
    xr.Dataset({"no2": (("height", "lat", "lon"), np.broadcast_to(prof[1:, None, None], (8, LAT.size, LON.size)),
                        {"units": "ug m-3"})},
               coords={"height": ("height", h_asl[1:] - 300, {"units": "m"}),
                       "lat": LAT, "lon": LON}).to_netcdf(tmp_path / "agl.nc")
    f = open_profile_field(tmp_path / "asl.nc")
    assert f.vertical_kind == "heights above sea level"
    outs = []
    for name in ("asl", "agl"):
        out = tmp_path / f"{name}_out.nc"
        reprocess_file(world.l2, out, open_profile_field(tmp_path / f"{name}.nc"), S5PNO2Sensor())
        with netCDF4.Dataset(out) as ds:
            v = ds["PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT/apriori_partial_columns"]
            v.set_auto_mask(False)
            outs.append(np.asarray(v[0], np.float64))
    ok = outs[0][..., 0] < 1e30
    assert ok.sum() > 1000
    np.testing.assert_allclose(outs[0][ok], outs[1][ok], rtol=1e-5)


def test_heights_above_sea_level_need_an_elevation(tmp_path):
    xr.Dataset({"no2": (("height", "lat", "lon"), np.ones((3, LAT.size, LON.size)), {"units": "ug m-3"})},
               coords={"height": ("height", [100.0, 1000, 3000], {"units": "m", "standard_name": "altitude"}),
                       "lat": LAT, "lon": LON}).to_netcdf(tmp_path / "f.nc")
    with pytest.raises(ProfileFieldError, match="no surface elevation"):
        open_profile_field(tmp_path / "f.nc")


LCC = CRS.from_cf({"grid_mapping_name": "lambert_conformal_conic", "standard_parallel": [45.0, 55.0],
                   "longitude_of_central_meridian": 5.0, "latitude_of_projection_origin": 51.0})


def _lcc_dataset(two_d_only: bool) -> xr.Dataset:
    x = (np.arange(30) - 14.5) * 12_000.0
    y = (np.arange(28) - 13.5) * 12_000.0
    lon, lat = Transformer.from_crs(LCC, "EPSG:4326", always_xy=True).transform(*np.meshgrid(x, y))
    data = np.ones((5, y.size, x.size))
    data[:, :, 15:] = 2.0
    ds = xr.Dataset(
        {"no2": (("lev", "south_north", "west_east"), data,
                 {"units": "ppb", "grid_mapping": "lambert", "coordinates": "lat2d lon2d"}),
         "lambert": ((), 0, LCC.to_cf()),
         "lat2d": (("south_north", "west_east"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
         "lon2d": (("south_north", "west_east"), lon, {"units": "degrees_east", "standard_name": "longitude"})},
        coords={"lev": ("lev", [1000.0, 900, 800, 500, 200], {"units": "hPa", "standard_name": "air_pressure"})})
    if not two_d_only:
        ds = ds.assign_coords(west_east=("west_east", x / 1000, {"units": "km", "standard_name": "projection_x_coordinate"}),
                              south_north=("south_north", y / 1000, {"units": "km", "standard_name": "projection_y_coordinate"}))
    return ds


@pytest.mark.parametrize("two_d_only", [False, True])
def test_lambert_conformal_grid_mapping(tmp_path, two_d_only):
    _lcc_dataset(two_d_only).to_netcdf(tmp_path / "lcc.nc")
    f = open_profile_field(tmp_path / "lcc.nc")
    assert not f.grid.is_geographic and f.grid.shape == (28, 30)
    assert f.grid.dx == pytest.approx(12_000.0, rel=1e-6) and f.grid.x0 == pytest.approx(-15 * 12_000.0, abs=1.0)
    np.testing.assert_allclose(f.no2[0, 0, :, :15], 1e-9)
    np.testing.assert_allclose(f.no2[0, 0, :, 15:], 2e-9)


def test_curvilinear_without_projection_refused(tmp_path):
    ds = _lcc_dataset(True)
    del ds["no2"].attrs["grid_mapping"]
    ds = ds.drop_vars("lambert")
    ds.to_netcdf(tmp_path / "c.nc")
    with pytest.raises(ProfileFieldError, match="curvilinear"):
        open_profile_field(tmp_path / "c.nc")


def test_geos_chem_surface_pressure_used_when_present(tmp_path):
    f = open_profile_field(write_geos_chem(tmp_path / "g.nc", constant(), with_ps=True))
    np.testing.assert_allclose(f.pressure.surface_pressure, 100_000.0)
    g = open_profile_field(write_geos_chem(tmp_path / "g2.nc", constant()))
    assert g.pressure.surface_pressure is None


def test_packed_zeros_unpack_to_zero(tmp_path):
    """Old grib_to_netcdf files are int16-packed: a true 0 comes back as a tiny negative."""
    path = write_cams_global(tmp_path / "c.nc", constant(2e-9))
    with netCDF4.Dataset(path) as ds:
        mmr = np.asarray(ds["no2"][:], np.float64)
    mmr[..., :3] = 0.0
    scale, offset = 1.1e-13, 1.50004e-9
    packed = np.round((mmr - offset) / scale).astype(np.int16)
    out = tmp_path / "packed.nc"
    xr.open_dataset(path, decode_times=False).load().to_netcdf(out)
    with netCDF4.Dataset(out, "a") as ds:
        ds.renameVariable("no2", "no2_old")
        v = ds.createVariable("no2", "i2", ds["no2_old"].dimensions)
        v.set_auto_maskandscale(False)
        v.setncatts({"scale_factor": scale, "add_offset": offset, "units": "kg kg**-1"})
        v[:] = packed
        assert np.any(packed[..., :3] * scale + offset < 0)  # the zeros unpack negative
    f = open_profile_field(out)
    assert f.no2.min() == 0.0
    np.testing.assert_allclose(f.no2.max(), 2e-9, rtol=1e-3)


@pytest.mark.parametrize("form", ["ap_hpa_bounds", "a_p0_half_levels"])
def test_hybrid_formula_terms_forms(tmp_path, form):
    from layouts import A_HALF, B_HALF, HYBRID

    nz = A_HALF.size - 1
    data = {"no2": (("lev", "lat", "lon"), np.full((nz, LAT.size, LON.size), 2e-9), {"units": "mol mol-1"})}
    coords = {"lat": LAT, "lon": LON}
    if form == "ap_hpa_bounds":  # bounds variables carry no units: they inherit hPa from ap
        ap_b = np.stack([A_HALF[:-1], A_HALF[1:]], 1) / 100
        b_b = np.stack([B_HALF[:-1], B_HALF[1:]], 1)
        data |= {"ap": ("lev", ap_b.mean(1), {"bounds": "ap_bnds", "units": "hPa"}),
                 "b": ("lev", b_b.mean(1), {"bounds": "b_bnds"}),
                 "ap_bnds": (("lev", "nv"), ap_b), "b_bnds": (("lev", "nv"), b_b)}
        coords["lev"] = ("lev", np.arange(nz, dtype=float), {"standard_name": HYBRID,
                                                            "formula_terms": "ap: ap b: b ps: ps"})
    else:  # CESM style, top first: a dimensionless times p0, half levels on ilev
        data |= {"hyai": ("ilev", (A_HALF / 1e5)[::-1]), "hybi": ("ilev", B_HALF[::-1]),
                 "P0": ((), 1000.0, {"units": "hPa"})}
        coords["lev"] = ("lev", np.arange(nz, dtype=float), {"standard_name": HYBRID, "positive": "down",
                                                            "formula_terms": "a: hyam b: hybm p0: P0 ps: PS"})
        coords["ilev"] = ("ilev", np.arange(nz + 1, dtype=float), {
            "standard_name": HYBRID, "positive": "down", "formula_terms": "a: hyai b: hybi p0: P0 ps: PS"})
        data |= {"hyam": ("lev", np.zeros(nz)), "hybm": ("lev", np.zeros(nz))}
    xr.Dataset(data, coords=coords).to_netcdf(tmp_path / "h.nc")
    f = open_profile_field(tmp_path / "h.nc")
    np.testing.assert_allclose(f.pressure.a, A_HALF, atol=1e-6)
    np.testing.assert_allclose(f.pressure.b, B_HALF)


def test_wrf_times_grid_and_unsupported_projection(tmp_path):
    from layouts import write_wrfout

    path = write_wrfout(tmp_path / "wrfout_d01_2023-06-15_12:00:00", constant(3e-9))
    f = open_profile_field(path)
    assert f.times[0] == np.datetime64("2023-06-15T12:00:00")
    assert f.grid.dx == pytest.approx(15_000.0, rel=1e-5) and f.grid.shape == (34, 36)
    assert "Lambert Conic Conformal" in CRS.from_user_input(f.grid.crs).to_wkt()
    np.testing.assert_allclose(f.no2, 3e-9, rtol=1e-6)  # ppmv -> mol mol-1
    assert f.pressure.interfaces[0, 0].min() == pytest.approx(100_000.0)
    assert f.pressure.interfaces[0, -1].max() == pytest.approx(5_000.0)
    with netCDF4.Dataset(path, "a") as ds:
        ds.MAP_PROJ = 5
    with pytest.raises(ProfileFieldError, match="MAP_PROJ 5"):
        open_profile_field(path)
