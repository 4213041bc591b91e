"""Hand oracles for every model layout, end to end through reprocess on the test orbit.

A constant mixing ratio must give TM5 partial columns proportional to each layer's pressure
thickness, the AMF of the hand formula and the smoothed column of the hand sum; a field with
a horizontal step must give footprint-area-weighted values (the shapely oracle's weights).
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
from layouts import (
    constant,
    step,
    write_cams_global,
    write_cf_hybrid_bounds,
    write_geos_chem,
    write_lotos_euros,
    write_plain,
    write_wrfout,
)

from aprior import plugins
from aprior.a_priori.sources import open_profile_field
from aprior.constants import G0, M_AIR
from aprior.grids.grid import Grid
from aprior.retrieval.footprint_oracle import shapely_weights
from aprior.retrieval.reprocess import reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

REPL = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
X0 = 2e-9
PRESSURE_LAYOUTS = {
    "wrf-chem": write_wrfout,
    "geos-chem": write_geos_chem,
    "cams-global": write_cams_global,
    "lotos-euros": write_lotos_euros,
    "cf-netcdf": write_cf_hybrid_bounds,
}


def _read(path, group, name):
    with netCDF4.Dataset(path) as ds:
        v = ds[group][name]
        v.set_auto_mask(False)
        out = np.asarray(v[:], dtype=np.float64)
    return out[0] if out.ndim >= 3 and out.shape[0] == 1 else out


def _l2(path):
    g = {
        "ak": _read(path, "PRODUCT", "averaging_kernel"),
        "m": _read(path, "PRODUCT", "air_mass_factor_total"),
        "mt": _read(path, "PRODUCT", "air_mass_factor_troposphere"),
        "tp": _read(path, "PRODUCT", "tm5_tropopause_layer_index").astype(int),
        "ps": _read(path, "PRODUCT/SUPPORT_DATA/INPUT_DATA", "surface_pressure"),
        "a": _read(path, "PRODUCT", "tm5_constant_a"),
        "b": _read(path, "PRODUCT", "tm5_constant_b"),
    }
    p = np.concatenate([g["a"][:, 0], g["a"][-1:, 1]])[None, None, :] + \
        np.concatenate([g["b"][:, 0], g["b"][-1:, 1]])[None, None, :] * g["ps"][..., None]
    g["dp"] = p[..., :-1] - p[..., 1:]
    g["trop"] = np.arange(34)[None, None, :] <= g["tp"][..., None]
    return g


def _run(world, tmp_path, writer, vmr, name="field"):
    path = writer(tmp_path / f"{name}.nc", vmr)
    fld = open_profile_field(path)
    out = tmp_path / f"{name}_out.nc"
    reprocess_file(world.l2, out, fld, S5PNO2Sensor())
    return fld, out


@pytest.mark.parametrize("layout", sorted(PRESSURE_LAYOUTS))
def test_constant_mixing_ratio_hand_oracles(layout, world, tmp_path):
    path = PRESSURE_LAYOUTS[layout](tmp_path / "f.nc", constant(X0))
    assert plugins.find(plugins.PROFILE_SOURCES, path).name == layout
    fld = open_profile_field(path)
    out = tmp_path / "out.nc"
    reprocess_file(world.l2, out, fld, S5PNO2Sensor())
    g = _l2(world.l2)
    x = _read(out, REPL, "apriori_partial_columns")
    ok = x[..., 0] < 1e30
    assert ok.sum() > 1000
    # partial columns proportional to each TM5 layer's pressure thickness: x dp / (g M_air)
    expected = X0 * g["dp"] / (G0 * M_AIR)
    np.testing.assert_allclose(x[ok], expected[ok], rtol=2e-6)
    # the AMF of the hand formula, M' = sum m x / sum x over l <= l_tp
    m = g["ak"] * g["m"][..., None]
    hand = (np.where(g["trop"], m * expected, 0).sum(-1) / np.where(g["trop"], expected, 0).sum(-1))
    amf = _read(out, "PRODUCT", "air_mass_factor_troposphere_reprocessed")
    np.testing.assert_allclose(amf[ok], hand[ok], rtol=1e-4)
    # the model columns: the field's own and the one seen through the original kernel
    col = _read(out, REPL, "apriori_tropospheric_column")
    np.testing.assert_allclose(col[ok], np.where(g["trop"], expected, 0).sum(-1)[ok], rtol=1e-5)
    kernel = m / g["mt"][..., None]
    smoothed = _read(out, REPL, "apriori_tropospheric_column_smoothed")
    np.testing.assert_allclose(smoothed[ok], np.where(g["trop"], kernel * expected, 0).sum(-1)[ok], rtol=1e-5)
    with netCDF4.Dataset(out) as ds:
        v = ds[REPL]["apriori_tropospheric_column"]
        assert v.units == "mol m-2" and v.standard_name == "troposphere_mole_content_of_nitrogen_dioxide"
        assert "original tropospheric kernel" in ds[REPL]["apriori_tropospheric_column_smoothed"].comment


@pytest.mark.parametrize("layout", sorted(PRESSURE_LAYOUTS))
def test_horizontal_step_gives_footprint_area_weighted_values(layout, world, tmp_path):
    fld, out = _run(world, tmp_path, PRESSURE_LAYOUTS[layout], step(4.3, 1e-9, 5e-9))
    g = _l2(world.l2)
    x = _read(out, REPL, "apriori_partial_columns")
    with netCDF4.Dataset(world.l2) as ds:
        geo = ds["PRODUCT/SUPPORT_DATA/GEOLOCATIONS"]
        lon_b = np.asarray(geo["longitude_bounds"][0], np.float64).reshape(-1, 4)
        lat_b = np.asarray(geo["latitude_bounds"][0], np.float64).reshape(-1, 4)
    ok = (x[..., 0] < 1e30).ravel()
    centre = lon_b.mean(axis=1)
    idx = np.flatnonzero(ok & (np.abs(centre - 4.3) < 0.8))[::11]  # around the step
    grid: Grid = fld.grid
    w = shapely_weights(lon_b[idx], lat_b[idx], grid).matrix
    cells = fld.no2[0, 0].astype(np.float64).ravel()
    vmr = (w @ cells) / np.asarray(w.sum(axis=1)).ravel()
    assert vmr.min() < 1.5e-9 and vmr.max() > 4.5e-9 and np.any((vmr > 1.2e-9) & (vmr < 4.8e-9))
    got = x.reshape(-1, 34)[idx, 0] / (g["dp"].reshape(-1, 34)[idx, 0] / (G0 * M_AIR))
    np.testing.assert_allclose(got, vmr, rtol=1e-4)


def test_same_field_as_latlon_heights_laea_heights_and_hybrid_gives_same_amf(world, tmp_path):
    """One physical field (2 ppb everywhere in a standard atmosphere): as lat/lon + heights
    (ug m-3), as EPSG:3035 + heights (our CF layout) and on hybrid levels (mol mol-1)."""
    from aprior.a_priori.cf_field import write_cf_field
    from aprior.a_priori.field import ProfileField
    from aprior.grids.grid import LAEA_EUROPE

    ll, out_ll = _run(world, tmp_path, write_plain, constant(X0), "ll")
    laea_grid = Grid(LAEA_EUROPE, 3_700_000.0, 2_900_000.0, 10_000.0, 10_000.0, 52, 48)
    laea = ProfileField(np.broadcast_to(ll.no2[:, :, :1, :1], (1, ll.nz, 48, 52)).copy(), ll.heights, laea_grid,
                        source="laea")
    write_cf_field(tmp_path / "laea.nc", laea)
    out_laea = tmp_path / "laea_out.nc"
    reprocess_file(world.l2, out_laea, open_profile_field(tmp_path / "laea.nc"), S5PNO2Sensor())
    _, out_hyb = _run(world, tmp_path, write_geos_chem, constant(X0), "hyb")
    amfs = [_read(o, "PRODUCT", "air_mass_factor_troposphere_reprocessed") for o in (out_ll, out_laea, out_hyb)]
    ok = np.all([a < 1e30 for a in amfs], axis=0)
    assert ok.sum() > 1000
    for a in amfs[:2]:
        assert np.max(np.abs(a[ok] / amfs[2][ok] - 1)) < 0.01
