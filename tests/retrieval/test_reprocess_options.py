"""The optional inputs of reprocess: temperature profiles, PM2.5 context, upper profiles."""

from __future__ import annotations

import netCDF4
import numpy as np
from typer.testing import CliRunner

from aprior.a_priori.cf_field import write_cf_field
from aprior.a_priori.field import ProfileField
from aprior.cli.main import app
from aprior.inputs.era5 import write_era5_pressure_levels
from aprior.inputs.pm25 import write_eac4_pm25
from aprior.inputs.temperature import read_era5_temperature
from aprior.retrieval.reprocess import reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

runner = CliRunner()
GRP = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
LEV_HPA = np.array([1000, 975, 950, 925, 900, 850, 700, 500, 300, 200, 100], dtype=float)


def _x(path):
    with netCDF4.Dataset(path) as ds:
        v = ds[GRP]["apriori_partial_columns"]
        return np.ma.filled(v[0], np.nan)


def _era5_t(path, offset_k: float):
    """Standard-atmosphere temperatures on pressure levels, shifted by ``offset_k``."""
    z = 44330.8 * (1 - (LEV_HPA / 1013.25) ** 0.190263)  # m, standard atmosphere
    t = np.maximum(288.15 - 0.0065 * z, 216.65) + offset_k
    lat = np.arange(56.0, 44.0 - 0.1, -0.25)
    lon = np.arange(-2.0, 12.0 + 0.1, 0.25)
    times = np.array(["2023-06-15T12:00", "2023-06-15T13:00"], dtype="datetime64[ns]")
    vals = np.broadcast_to(t[None, :, None, None], (2, LEV_HPA.size, lat.size, lon.size)).astype(np.float32)
    write_era5_pressure_levels(path, times=times, levels_hpa=LEV_HPA, lat=lat, lon=lon, fields={"t": vals})


def test_temperature_file_changes_layer_heights(world, tmp_path):
    default = tmp_path / "default.nc"
    reprocess_file(world.l2, default, world.field, S5PNO2Sensor())
    _era5_t(tmp_path / "t_std.nc", 0.0)
    _era5_t(tmp_path / "t_warm.nc", 30.0)
    std = tmp_path / "std.nc"
    warm = tmp_path / "warm.nc"
    reprocess_file(world.l2, std, world.field, S5PNO2Sensor(),
                   temperature=read_era5_temperature(tmp_path / "t_std.nc"))
    reprocess_file(world.l2, warm, world.field, S5PNO2Sensor(),
                   temperature=read_era5_temperature(tmp_path / "t_warm.nc"))
    x0, xs, xw = _x(default), _x(std), _x(warm)
    ok = np.isfinite(x0[..., 0])
    assert ok.sum() > 100
    # a standard atmosphere given as a file reproduces the default assumption closely
    np.testing.assert_allclose(xs[ok][:, :10], x0[ok][:, :10], rtol=0.02)
    # warmer air: thicker layers, so the surface layer holds more of the profile
    assert np.all(xw[ok][:, 0] > xs[ok][:, 0] * 1.05)


def test_pm25_context_sampled_at_pixels(world, tmp_path):
    lat = np.linspace(90, -90, 241)
    lon = np.arange(480) * 0.75
    times = np.array(["2023-06-15T12:00", "2023-06-15T15:00"], dtype="datetime64[ns]")
    val = np.full((2, 241, 480), 12e-9, dtype=np.float32)  # kg m-3 = 12 ug m-3
    val[1] = 15e-9
    write_eac4_pm25(tmp_path / "pm.nc", times, lat, lon, val)
    out = tmp_path / "out.nc"
    r = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(world.field_path), "-o", str(out),
                            "--pm25", str(tmp_path / "pm.nc"), "-q"])
    assert r.exit_code == 0, r.output
    with netCDF4.Dataset(out) as ds:
        v = ds[GRP]["pm25_context"]
        assert v.units in ("ug m-3", "µg m-3", "ug/m3")
        pm = np.ma.filled(v[0], np.nan)
        dt = np.asarray(ds["PRODUCT/delta_time"][0], dtype=np.int64)
    assert np.isfinite(pm).all()
    assert np.all((pm > 12.0) & (pm < 15.0))  # between the two times, linear in time
    assert np.all(np.diff(pm[:, 0]) * np.sign(np.diff(dt)) >= -1e-5)


def test_upper_profiles_extend_the_field(world, tmp_path):
    fld = world.field
    up_h = np.array([0, 5000, 8000, 10000, 14000.0])
    up = np.broadcast_to(np.array([1.0, 0.5, 2.0, 2.0, 0.1])[None, :, None, None],
                         (1, 5, fld.grid.ny, fld.grid.nx)).astype(np.float32)
    write_cf_field(tmp_path / "upper.nc", ProfileField(up.copy(), up_h, fld.grid, None, source="upper"))
    out_up = tmp_path / "up.nc"
    out_c = tmp_path / "c.nc"
    r = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(world.field_path), "-o", str(out_up),
                            "--upper-profiles", str(tmp_path / "upper.nc"), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(world.field_path), "-o", str(out_c), "-q"])
    assert r.exit_code == 0, r.output
    xu, xc = _x(out_up), _x(out_c)
    ok = np.isfinite(xc[..., 0])
    # below 5 km identical
    np.testing.assert_allclose(xu[ok][:, 0], xc[ok][:, 0], rtol=1e-9)
    # layer 16 (about 7.7-9 km) lies in the horizontally uniform upper field (~2 ug m-3): nearly
    # the same in every pixel, and far above the constant-VMR continuation of the 5 km level
    u16, c16 = xu[ok][:, 16], xc[ok][:, 16]
    assert np.ptp(u16) / np.median(u16) < 0.1
    assert np.median(u16) > 2 * np.median(c16)
    expected = 2e-6 / 46.0055 * 1363.0  # mol m-2: ~2 ug m-3 over a ~1.36 km thick layer
    assert abs(np.median(u16) / expected - 1) < 0.1


def test_extension_upper_field_without_file_is_an_error(world, tmp_path):
    out = tmp_path / "o.nc"
    r = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(world.field_path), "-o", str(out),
                            "--extension", "upper_field", "-q"])
    assert r.exit_code == 2
    assert "upper" in r.output and "Traceback" not in r.output
    assert not out.exists()
