"""DeepCAMS on real-format input: regional EAC4 boxes, int16 packing, half-globe bands, bad
input refused with one line and nothing left behind, out-of-range warnings and tail caps.
Tiny grids built in code (regional boxes at 0.75 degree, a 9 degree global grid)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
import typer
from conftest import command_app
from typer.testing import CliRunner

from aprior.errors import ConfigError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field, open_pm25, write_eac4_pm25
from aprior.models.deepcams import guard, region
from aprior.models.deepcams.downscale import downscale_day
from aprior.models.deepcams.grid import coarsen

DAY = np.datetime64("2023-03-01T00", "h")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _box(lat0=30.0, lat1=45.0, lon0=-10.0, lon1=14.0, hours=(0, 3, 6), step=0.75):
    lat = np.arange(lat0, lat1 + 1e-6, step)
    lon = np.arange(lon0, lon1 + 1e-6, step)
    vals = np.stack([5.0 + 0.2 * lat[:, None] + 3.0 * np.sin(np.deg2rad(4 * lon))[None, :] + h
                     for h in hours])
    vals[:, 5, 7] += 200.0  # a plume cell
    return PM25Field(DAY + np.asarray(hours).astype("timedelta64[h]"), lat, lon, vals, "eac4")


def test_regional_box_gives_the_box_at_three_times_the_resolution_without_wrapping():
    f = _box()
    out = downscale_day("2023-03-01", f, temporal="linear", spatial="bicubic", expected_step=0.75)
    assert out.values.shape == (7, 3 * (f.lat.size - 1) + 1, 3 * (f.lon.size - 1) + 1)
    assert out.lat[0] == pytest.approx(30.0) and out.lat[-1] == pytest.approx(45.0)
    assert out.lon[0] == pytest.approx(-10.0) and out.lon[-1] == pytest.approx(14.0)
    np.testing.assert_allclose(out.values[0, ::3, ::3], f.values[0], rtol=1e-5)  # exact at nodes
    # no periodic padding: a change at the west edge does not reach the east edge
    g = PM25Field(f.times, f.lat, f.lon, f.values.copy(), "eac4")
    g.values[:, :, 0] += 50.0
    out2 = downscale_day("2023-03-01", g, temporal="linear", spatial="bicubic")
    np.testing.assert_array_equal(out2.values[..., -6:], out.values[..., -6:])


def test_regional_area_conserving_keeps_interior_cell_means():
    f = _box(hours=(0, 3))
    out = downscale_day("2023-03-01", f, device="cpu")  # the default: network + area
    fine = torch.from_numpy(np.ascontiguousarray(out.values[:, ::-1, :]))
    grid = region.grid_of(f)
    ext = region.extend(fine.numpy(), grid)  # mirror back to the extended grid
    ext = np.concatenate([ext, ext[..., 1:3]], axis=-1)[..., : 3 * grid.work_width]
    back = coarsen(torch.from_numpy(np.ascontiguousarray(ext)), 3, grid.lat).numpy()
    expect = region.to_nodes(f)
    np.testing.assert_allclose(back[0, 1:-1, 1:f.lon.size - 1], expect[0, 1:-1, 1:-1], rtol=1e-3)


def test_half_globe_band_with_full_longitudes_is_periodic():
    lat = np.arange(0.0, 90.0 + 1e-6, 0.75)
    lon = np.arange(480) * 0.75 - 180.0
    vals = np.broadcast_to(5.0 + np.cos(np.deg2rad(lon))[None, None, :], (2, lat.size, 480)).copy()
    f = PM25Field(DAY + np.array([0, 3]).astype("timedelta64[h]"), lat, lon, vals, "eac4")
    grid = region.grid_of(f)
    assert grid.periodic and grid.lat_pad == "reflect"
    out = downscale_day("2023-03-01", f, temporal="linear", spatial="bicubic")
    assert out.values.shape == (4, 3 * 120 + 1, 1440)
    # periodic: the seam at the dateline is as smooth as anywhere
    row = out.values[0, 100]
    assert abs(row[0] - row[-1]) < 2 * np.max(np.abs(np.diff(row)))


@pytest.mark.parametrize("case", ["step", "irregular", "small"])
def test_grids_that_are_not_regular_0p75_are_refused(case):
    if case == "step":
        f, match = _box(step=1.0), "1 degree step"
    elif case == "irregular":
        f0 = _box()
        lon = f0.lon.copy()
        lon[-1] += 0.3
        f, match = PM25Field(f0.times, f0.lat, lon, f0.values, "eac4"), "not on a regular"
    else:
        lat, lon = np.arange(30.0, 31.6, 0.75), np.arange(-10.0, -8.4, 0.75)
        f = PM25Field(DAY + np.array([0, 3]).astype("timedelta64[h]"), lat, lon,
                      np.ones((2, 3, 3)), "eac4")
        match = "smaller than"
    with pytest.raises(ProfileFieldError, match=match):
        downscale_day("2023-03-01", f, expected_step=0.75)


# -- guard ------------------------------------------------------------------------------------
def _tiny_stage(stage: str, scale_out: float = 0.0):
    from aprior.models.deepcams.data import Normalisation
    from aprior.models.deepcams.stages import stage_from_state
    from aprior.models.deepcams.training import build_network, model_config

    torch.manual_seed(0)
    cfg = model_config(stage, "tiny")
    net = build_network(stage, cfg)
    meta = {"model": f"deepcams-{stage}", "preset": "tiny", "config": cfg.to_dict(),
            "normalisation": Normalisation(mean=0.36, std=0.15, max=400.0).to_dict(),
            "gap_hours": 3, "trained_on": "SYNTHETIC test"}
    return stage_from_state(stage, net.state_dict(), meta, "cpu", "tiny", "0" * 64)


def test_bushfire_input_warns_once_and_the_networks_never_amplify_beyond_the_baseline(caplog):
    f = _box(hours=(0, 3))
    f.values[:, 8, 12] = 3657.0  # a bushfire cell, far beyond the training maximum (400)
    st = (_tiny_stage("temporal"), _tiny_stage("spatial"))
    with caplog.at_level(logging.WARNING, logger="aprior.models.deepcams.downscale"):
        out = downscale_day("2023-03-01", f, stages=st, temporal="network", spatial="network")
    warns = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warns) == 1 and "3657 ug m-3" in warns[0] and "standard deviations" in warns[0]
    assert "training maximum 400" in warns[0] and "spatial weights' range is exceeded too" in warns[0]
    base = downscale_day("2023-03-01", f, temporal="linear", spatial="area")
    assert out.values.max() <= base.values.max() * (1 + 1e-6)
    assert guard.peak_ratio(out.values, f.values) <= guard.peak_ratio(base.values, f.values) + 1e-6


def test_limit_temporal_caps_at_the_local_envelope_of_both_frames():
    g0 = np.zeros((1, 12, 16), np.float32)
    g1 = np.zeros((1, 12, 16), np.float32)
    g0[0, 6, 3], g1[0, 6, 5] = 10.0, 20.0
    pred = np.full((1, 2, 12, 16), 50.0, np.float32)
    capped, n = guard.limit_temporal(pred, g0, g1, [1 / 3, 2 / 3], radius=2)
    assert capped.max() == 20.0 and n == capped.size
    assert capped[0, 0, 0, 12] == 0.0  # far from both peaks: nothing supports a value


def test_in_range_input_does_not_warn():
    st = _tiny_stage("spatial")  # training maximum 400 ug m-3
    assert guard.out_of_range(st, np.full((3, 3), 390.0)) is None
    assert "standard deviations" in guard.out_of_range(st, np.full((3, 3), 3657.0))
    from aprior.models.deepcams.data import Normalisation

    old = st.__class__(st.stage, st.net, Normalisation(mean=0.36, std=0.15), st.metadata, st.path, "")
    assert guard.out_of_range(old, np.full((3, 3), 20.0)) is None  # no maximum recorded: z-score
    assert "37 standard deviations" in guard.out_of_range(old, np.full((3, 3), 3657.0))


# -- the CLI on real-format files ------------------------------------------------------------
@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from aprior.cli.downscale import register

    return command_app(register)


def _regional_file(tmp_path, name="eac4.nc", units="kg m**-3", step=0.75, var="pm2p5"):
    import xarray as xr

    f = _box(hours=tuple(range(0, 24, 3)), step=step)
    path = write_eac4_pm25(tmp_path / name, f.times, f.lat[::-1], f.lon, f.values[:, ::-1] * 1e-9,
                           style="old", packing="int16")
    if units != "kg m**-3" or var != "pm2p5":
        ds = xr.load_dataset(path).rename({"pm2p5": var})
        ds[var].attrs["units"] = units
        os.remove(path)
        ds.to_netcdf(path)
    return path


def test_cli_downscales_a_packed_regional_file(app, tmp_path):
    src = _regional_file(tmp_path)
    out = tmp_path / "pm25.nc"
    res = CliRunner().invoke(app, ["downscale", "--date", "2023-03-01", "--eac4", str(src), "--out",
                                   str(out), "--threads", "1"])
    assert res.exit_code == 0, res.output
    back = open_pm25(out)
    assert back.values.shape == (22, 3 * 20 + 1, 3 * 32 + 1)  # 00-21 UTC, the box at 0.25 degree
    assert back.lon[0] == pytest.approx(-10.0) and back.lat[-1] == pytest.approx(45.0)
    assert "network + area" in res.output


@pytest.mark.parametrize("case,match", [("var", "no PM2.5 variable"), ("units", "units"),
                                        ("date", "no frame on 2023-05-01"), ("step", "0.75 degree")])
def test_cli_bad_input_one_line_exit_2_nothing_left(app, tmp_path, case, match):
    kw = {"var": {"var": "pm10"}, "units": {"units": "ppb"}, "date": {}, "step": {"step": 1.0}}[case]
    src = _regional_file(tmp_path, **kw)
    date = "2023-05-01" if case == "date" else "2023-03-01"
    before = sorted(os.listdir(tmp_path))
    res = CliRunner().invoke(app, ["downscale", "--date", date, "--eac4", str(src), "--out",
                                   str(tmp_path / "o.nc")])
    assert res.exit_code == 2 and match in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_unknown_method_is_refused(app, tmp_path):
    res = CliRunner().invoke(app, ["downscale", "--date", "2023-03-01", "--temporal", "cubic",
                                   "--out", str(tmp_path / "o.nc")])
    assert res.exit_code == 2 and "temporal method" in res.output
    with pytest.raises(ConfigError):
        from aprior.models.deepcams.downscale import check_methods

        check_methods("linear", "nearest")


def test_fetch_eac4_area_is_what_downscale_accepts():
    """`aprior fetch eac4` asks for a box on the 0.75 degree grid, at least 4 nodes a side; a
    file laid out as the ADS returns it for that box (north first) downscales to the box."""
    import datetime as dt

    from aprior.inputs.fetch import build_requests, eac4_area

    req = build_requests("eac4", dt.date(2023, 3, 1), dt.date(2023, 3, 1), [2.3, 48.8, 2.4, 48.9])
    n, w, s, e = req[0].request["area"]
    assert [n, w, s, e] == eac4_area([2.3, 48.8, 2.4, 48.9])
    for v in (n, w, s, e):
        assert v / 0.75 == pytest.approx(round(v / 0.75))
    assert n - s >= 2.25 and e - w >= 2.25
    lat, lon = np.arange(s, n + 1e-6, 0.75), np.arange(w, e + 1e-6, 0.75)
    vals = np.ones((2, lat.size, lon.size)) * 7.0
    f = PM25Field(DAY + np.array([0, 3]).astype("timedelta64[h]"), lat, lon, vals, "eac4")
    out = downscale_day("2023-03-01", f, expected_step=0.75, temporal="linear", spatial="area")
    assert out.lat[0] == pytest.approx(s) and out.lon[-1] == pytest.approx(e)
    np.testing.assert_allclose(out.values, 7.0, rtol=1e-5)  # a uniform field stays uniform
    net = downscale_day("2023-03-01", f, expected_step=0.75, device="cpu")  # the default
    assert net.values.shape == out.values.shape
    np.testing.assert_allclose(net.values, 7.0, rtol=0.01)  # the network adds at most a diurnal touch


def test_generate_pm25_reports_progress_and_writes_the_default_pipeline(tmp_path):
    import xarray as xr

    from aprior.models.dacno2.generate import generate_pm25

    src = _regional_file(tmp_path)
    events = []
    out = generate_pm25("2023-03-01", [src], tmp_path / "pm.nc", progress=events.append)
    steps = {e["step"] for e in events}
    assert steps == {"temporal", "spatial"}
    last = [e for e in events if e["step"] == "spatial"][-1]
    assert last["done"] == last["total"] == 22
    with xr.open_dataset(out) as ds:
        assert ds.attrs["temporal_method"] == "network" and ds.attrs["spatial_method"] == "area"
        # the temporal network's weights are recorded, and that they are SYNTHETIC; no spatial ones
        assert ds.attrs["deepcams_temporal_weights"] == "bundled:temporal-demo.pt"
        assert "SYNTHETIC" in ds.attrs["deepcams_temporal_trained_on"]
        assert "SYNTHETIC" in ds.attrs["synthetic_note"]
        assert "deepcams_spatial_weights" not in ds.attrs


def test_cli_warns_once_on_a_bushfire_cell_with_the_networks(app, tmp_path):
    import xarray as xr

    src = _regional_file(tmp_path)
    ds = xr.load_dataset(src)
    vals = ds["pm2p5"].values.copy()
    vals[:, 8, 12] = 3657e-9
    ds["pm2p5"].values = vals
    ds["pm2p5"].encoding = {}  # write as float: the old packing cannot hold the fire
    os.remove(src)
    ds.to_netcdf(src)
    res = CliRunner().invoke(app, ["downscale", "--date", "2023-03-01", "--eac4", str(src), "--out",
                                   str(tmp_path / "fire.nc"), "--temporal", "network", "--spatial",
                                   "network", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.count("WARNING") == 1 and "3657" in res.output and "standard" in res.output
    out = open_pm25(tmp_path / "fire.nc")
    base = downscale_day("2023-03-01", region_field(src))
    assert out.values.max() <= base.values.max() * (1 + 1e-5)


def region_field(path):
    from aprior.inputs.pm25 import read_eac4_pm25

    return read_eac4_pm25(path)


def test_regional_network_interpolation_uses_the_boxs_local_time():
    # the bundled temporal network takes local solar time from the box's longitudes (and the
    # UTC hour): the same values 90 degrees further east (6 h later in local time) give
    # other interpolated hours, the same kept hours
    f = _box(hours=(0, 3))
    east = PM25Field(f.times, f.lat, f.lon + 90.0, f.values.copy(), "eac4")
    kw = {"temporal": "network", "spatial": "bicubic", "device": "cpu"}
    a, b = downscale_day("2023-03-01", f, **kw), downscale_day("2023-03-01", east, **kw)
    np.testing.assert_allclose(a.values[[0, 3]], b.values[[0, 3]], rtol=1e-6)
    assert np.abs(a.values[1:3] - b.values[1:3]).max() > 1e-3
    lin = downscale_day("2023-03-01", f, temporal="linear", spatial="bicubic")
    assert np.abs(a.values[1:3] - lin.values[1:3]).max() > 1e-3  # the network is not linear
