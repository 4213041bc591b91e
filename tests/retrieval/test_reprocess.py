"""End-to-end tests of the reprocess engine on synthetic files built from a known field."""

from __future__ import annotations

import hashlib

import netCDF4
import numpy as np
import pytest
from conftest import build_world, make_field

from aprior.a_priori.field import ProfileField
from aprior.errors import OutputExistsError, ProfileFieldError
from aprior.retrieval.reprocess import ReprocessConfig, reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

FILL = 9.96921e36


def _read(path, name, group="PRODUCT"):
    with netCDF4.Dataset(path) as ds:
        v = ds[group][name]
        v.set_auto_mask(False)
        return np.asarray(v[:])


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_truth_field_recovers_truth_column(world, tmp_path):
    """The file's columns were made from the field as truth: reprocessing with it gives the truth."""
    before = _sha(world.l2)
    out = tmp_path / "out.nc"
    summary = reprocess_file(world.l2, out, world.field, S5PNO2Sensor())
    assert _sha(world.l2) == before
    col = _read(out, "nitrogendioxide_tropospheric_column_reprocessed")[0]
    ok = col < 1e30
    assert ok.sum() > 1000
    assert summary.n_reprocessed == ok.sum()
    truth = world.truth_column
    np.testing.assert_allclose(col[ok], truth[ok], rtol=2e-4)
    # pixels without a (nearly) full footprint in the field are fill
    assert np.all(~ok[~np.isfinite(truth)])
    # the original column differs from the truth: the TM5-like prior was wrong
    orig = _read(out, "nitrogendioxide_tropospheric_column")[0]
    assert np.median(np.abs(orig[ok] / truth[ok] - 1)) > 0.05


def test_partial_columns_and_coverage_written(world, tmp_path):
    out = tmp_path / "out.nc"
    reprocess_file(world.l2, out, world.field, S5PNO2Sensor())
    grp = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
    x = _read(out, "apriori_partial_columns", grp)[0]
    cov = _read(out, "apriori_coverage_fraction", grp)[0]
    col = _read(out, "nitrogendioxide_tropospheric_column_reprocessed")[0]
    assert x.shape[-1] == 34
    full = (cov >= 0.95) & (col < 1e30)
    assert np.all(x[full] >= 0) and np.all(x[full] < 1e30)
    assert np.all((cov[cov < 1e30] >= 0) & (cov[cov < 1e30] <= 1 + 1e-9))
    # kernel is zero above the tropopause layer, positive at and below it
    ak = _read(out, "averaging_kernel_troposphere_reprocessed")[0]
    tp = world.tropopause
    j, i = np.argwhere(full)[0]
    assert np.all(ak[j, i, tp[j, i] + 1:] == 0)
    assert np.all(ak[j, i, : tp[j, i] + 1] > 0)


def test_min_coverage_controls_fill(world, tmp_path):
    strict = tmp_path / "strict.nc"
    loose = tmp_path / "loose.nc"
    reprocess_file(world.l2, strict, world.field, S5PNO2Sensor(), ReprocessConfig(min_coverage=1.0))
    reprocess_file(world.l2, loose, world.field, S5PNO2Sensor(), ReprocessConfig(min_coverage=0.2))
    n_strict = (_read(strict, "nitrogendioxide_tropospheric_column_reprocessed") < 1e30).sum()
    n_loose = (_read(loose, "nitrogendioxide_tropospheric_column_reprocessed") < 1e30).sum()
    assert n_loose > n_strict > 0


def test_crop_keeps_only_scanlines_touching_the_field(world, tmp_path):
    out = tmp_path / "crop.nc"
    reprocess_file(world.l2, out, world.field, S5PNO2Sensor(), ReprocessConfig(crop=True))
    with netCDF4.Dataset(world.l2) as a, netCDF4.Dataset(out) as b:
        n_in = a["PRODUCT"].dimensions["scanline"].size
        n_out = b["PRODUCT"].dimensions["scanline"].size
        assert 0 < n_out < n_in
        cov = b["PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT/apriori_coverage_fraction"][0]
        assert np.ma.filled(cov, 0).max(axis=1).min() > 0  # every kept scanline touches it


def test_time_axis_interpolates_to_observation_time(tmp_path):
    """A field at 12:00 and 13:00 with values growing 30 % per step: a pixel at 12:20
    sees 1/3 of the way; its partial columns scale accordingly."""
    t = np.array(["2023-06-15T12:00", "2023-06-15T13:00"], dtype="datetime64[ns]")
    fld_t = make_field(0, times=t)
    w = build_world(tmp_path, field=make_field(0), name="static")
    out0 = tmp_path / "static.nc"
    out1 = tmp_path / "timed.nc"
    reprocess_file(w.l2, out0, w.field, S5PNO2Sensor())
    reprocess_file(w.l2, out1, fld_t, S5PNO2Sensor())
    grp = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
    x0 = _read(out0, "apriori_partial_columns", grp)[0]
    x1 = _read(out1, "apriori_partial_columns", grp)[0]
    with netCDF4.Dataset(w.l2) as ds:
        dt = np.asarray(ds["PRODUCT/delta_time"][0], dtype=np.int64)
        ref = np.datetime64(ds.time_reference.replace("Z", ""), "ns")
    tobs = ref + dt.astype("timedelta64[ms]")
    frac = ((tobs - t[0]) / (t[1] - t[0])).astype(np.float64).clip(0, 1)
    ok = x0[..., 0] < 1e30
    ratio = x1[..., 0][ok] / x0[..., 0][ok]
    expect = np.broadcast_to((1 + 0.3 * frac)[:, None], ok.shape)[ok]
    np.testing.assert_allclose(ratio, expect, rtol=1e-5)


def test_no_overlap_is_an_error_and_leaves_no_output(world, tmp_path):
    far = make_field(0)
    g = far.grid
    moved = type(g)(g.crs, g.x0 - 1_500_000.0, g.y0, g.dx, g.dy, g.nx, g.ny)
    far = ProfileField(far.no2, far.heights, moved, None, source="far away")
    out = tmp_path / "none.nc"
    with pytest.raises(ProfileFieldError, match="does not overlap"):
        reprocess_file(world.l2, out, far, S5PNO2Sensor())
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_refused_without_overwrite(world, tmp_path):
    out = tmp_path / "out.nc"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        reprocess_file(world.l2, out, world.field, S5PNO2Sensor())
    assert out.read_bytes() == b"keep me"
    reprocess_file(world.l2, out, world.field, S5PNO2Sensor(), ReprocessConfig(overwrite=True))
    assert out.read_bytes()[:4] == b"\x89HDF"


def test_history_gains_one_line(world, tmp_path):
    out = tmp_path / "out.nc"
    reprocess_file(world.l2, out, world.field, S5PNO2Sensor(), command="aprior reprocess x")
    with netCDF4.Dataset(world.l2) as a, netCDF4.Dataset(out) as b:
        assert b.history.startswith(a.history)
        added = b.history[len(a.history):].strip().splitlines()
        assert len(added) == 1 and "aprior" in added[0] and "aprior reprocess x" in added[0]
        src = b["PRODUCT/nitrogendioxide_tropospheric_column_reprocessed"].apriori_source
        assert "test field" in src


def test_field_of_another_day_is_refused(world, tmp_path):
    """A field valid on 13 June must not be silently clamped onto an orbit of 15 June."""
    t = np.array(["2023-06-13T11:00", "2023-06-13T12:00", "2023-06-13T13:00"], dtype="datetime64[ns]")
    other_day = make_field(0, times=t)
    out = tmp_path / "o.nc"
    with pytest.raises(ProfileFieldError, match="covers"):
        reprocess_file(world.l2, out, other_day, S5PNO2Sensor())
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # a single-time field (an 11-13 UTC mean stamped 12:00) serves the same day
    mean = make_field(0, times=np.array(["2023-06-15T12:00"], dtype="datetime64[ns]"))
    reprocess_file(world.l2, out, mean, S5PNO2Sensor())
    assert out.exists()
