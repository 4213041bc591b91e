"""Reading S5P L2 NO2 files: decoding, blocks, and refusing bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

from aprior.errors import InputFileError
from aprior.retrieval import s5p_reader as rd
from aprior.retrieval.s5p import S5PNO2Sensor
from aprior.synth.s5p import l2 as syn

FIELDS = (
    "latitude",
    "longitude",
    "latitude_bounds",
    "longitude_bounds",
    "time",
    "qa_value",
    "no2_trop",
    "no2_trop_precision",
    "averaging_kernel",
    "amf_trop",
    "amf_total",
    "tropopause_index",
    "surface_pressure",
)


def _inputs(s=9, p=7, seed=1):
    rng = np.random.default_rng(seed)
    geom = syn.synthetic_swath(
        s, p, start_time="2023-03-05T11:59:59.5", center_lon=3.0, start_lat=50.0, swath_km=50.0
    )
    a, b = syn.tm5_hybrid_coefficients()
    ps = 99000.0 + 2000.0 * rng.random((s, p))
    air = syn.air_partial_columns(a, b, ps)
    box = np.broadcast_to(np.linspace(0.5, 2.5, 34), (s, p, 34)).copy()
    prior = 1e-9 * air * np.exp(-np.arange(34) / 5.0)
    truth = prior * (1.0 + rng.random((s, p, 1)))
    tp = rng.integers(15, 20, (s, p))
    qa = np.round(rng.random((s, p)), 2)
    truth[2, 3] = np.nan  # a failed retrieval: fill
    tp[4, 4] = -1
    qa[5, 1] = np.nan
    return dict(
        geometry=geom,
        orbit=4242,
        box_amf=box,
        apriori_tm5=prior,
        truth=truth,
        tropopause_index=tp,
        surface_pressure=ps,
        tm5_a=a,
        tm5_b=b,
        qa_value=qa,
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    kw = _inputs()
    path = syn.write_synthetic_l2(tmp_path_factory.mktemp("rd"), **kw)
    return path, kw


def test_open_reads_the_metadata(made):
    path, kw = made
    info = rd.open_granule(path)
    assert info.path == str(path)
    assert (info.product, info.processor_version) == ("L2__NO2___", "2.6.0")
    assert (info.n_scanline, info.n_ground_pixel) == (9, 7)
    np.testing.assert_allclose(info.tm5_a, kw["tm5_a"], rtol=1e-6)
    np.testing.assert_allclose(info.tm5_b, kw["tm5_b"], rtol=1e-6)
    assert info.tm5_a.dtype == np.float64
    assert info.time_reference == np.datetime64("2023-03-05T00:00:00", "ns")
    assert info.attrs["orbit"] == 4242 and info.attrs["id"] == path.name[:-3]


def test_round_trip_decodes_values_fill_and_time(made):
    path, kw = made
    info = rd.open_granule(path)
    blk = rd.read_block(info, 0, 9)
    g = kw["geometry"]
    np.testing.assert_allclose(blk.latitude, g.latitude.astype(np.float32))
    np.testing.assert_allclose(blk.longitude_bounds, g.longitude_bounds.astype(np.float32))
    assert blk.latitude.dtype == np.float32 and blk.averaging_kernel.shape == (9, 7, 34)
    # the scanline time (ms resolution in delta_time), crossing noon
    np.testing.assert_array_equal(
        blk.time, g.time.astype("datetime64[ms]").astype("datetime64[ns]")
    )
    assert blk.time.dtype == np.dtype("datetime64[ns]")
    # qa: 0.01 steps, fill -> NaN
    q = kw["qa_value"]
    assert np.isnan(blk.qa_value[5, 1])
    ok = np.isfinite(q)
    np.testing.assert_allclose(blk.qa_value[ok], q[ok], atol=1e-6)
    assert blk.qa_value.dtype == np.float32
    # fill pixels
    assert np.isnan(blk.no2_trop[2, 3]) and np.isnan(blk.averaging_kernel[2, 3]).all()
    assert np.isnan(blk.no2_trop[4, 4]) and blk.tropopause_index[4, 4] == -1
    tp = kw["tropopause_index"]
    assert blk.tropopause_index.dtype == np.int32
    np.testing.assert_array_equal(blk.tropopause_index[tp >= 0], tp[tp >= 0])
    np.testing.assert_allclose(blk.surface_pressure, kw["surface_pressure"], rtol=1e-7)
    assert np.isfinite(blk.no2_trop).sum() == 9 * 7 - 2


def test_blocks_equal_the_whole(made):
    path, _ = made
    info = rd.open_granule(path)
    whole = rd.read_block(info, 0, 9)
    parts = [rd.read_block(info, a, b) for a, b in ((0, 2), (2, 7), (7, 9))]
    for name in FIELDS:
        np.testing.assert_array_equal(
            np.concatenate([getattr(b, name) for b in parts]), getattr(whole, name), err_msg=name
        )
    assert (parts[1].start, parts[1].stop, parts[1].shape) == (2, 7, (5, 7))
    lat_b, lon_b = rd.read_bounds(info, 2, 7)
    assert lat_b.dtype == np.float64
    np.testing.assert_array_equal(lat_b, parts[1].latitude_bounds)
    with pytest.raises(ValueError):
        rd.read_block(info, 5, 12)


def test_blocks_inside_large_chunks_equal_direct_reads(tmp_path):
    kw = _inputs(s=40, p=5, seed=4)
    path = syn.write_synthetic_l2(tmp_path, **kw)
    info = rd.open_granule(path)
    whole = rd.read_block(info, 0, 40)
    rd.clear_cache()
    for a, b in ((0, 13), (13, 26), (26, 40), (5, 9)):
        part = rd.read_block(info, a, b)
        for name in FIELDS:
            np.testing.assert_array_equal(
                getattr(part, name), getattr(whole, name)[a:b], err_msg=name
            )
    part.no2_trop[:] = -1.0  # callers may modify what they get: the cache must not change
    np.testing.assert_array_equal(rd.read_block(info, 5, 9).no2_trop, whole.no2_trop[5:9])
    assert rd.block_rows(info, 256) == 240 and rd.block_rows(info, 10) == 40
    assert "_NCProperties" not in info.attrs


def test_delta_time_per_pixel_of_early_files(tmp_path, made):
    path, kw = made
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        old = f["PRODUCT/delta_time"]
        dt, attrs = old[...], dict(old.attrs)
        del f["PRODUCT/delta_time"]
        new = f["PRODUCT"].create_dataset("delta_time", data=np.repeat(dt[..., None], 7, axis=-1))
        new.attrs["units"] = attrs["units"]
        new.attrs["_FillValue"] = attrs["_FillValue"]
    info = rd.open_granule(copy)
    np.testing.assert_array_equal(
        rd.read_block(info, 0, 9).time, rd.read_block(rd.open_granule(path), 0, 9).time
    )


# -- bad inputs ---------------------------------------------------------------------------


def _expect_refused(path: Path, match: str) -> InputFileError:
    with pytest.raises(InputFileError, match=match) as err:
        rd.open_granule(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
    return err.value


def test_garbage_is_refused(tmp_path):
    bad = (
        tmp_path
        / "S5P_OFFL_L2__NO2____20230305T115959_20230305T120007_04242_03_020600_20230306T120007.nc"
    )
    bad.write_bytes(b"this is not a satellite file\n" * 50)
    _expect_refused(bad, "not a netCDF-4/HDF5 file")
    assert S5PNO2Sensor().identify(bad)  # named like one: claimed, so that open() can explain
    other = tmp_path / "notes.txt"
    other.write_bytes(b"hello")
    assert not rd.identify(other)
    assert not rd.identify(tmp_path) and not rd.identify(tmp_path / "missing.nc")
    _expect_refused(tmp_path / "missing.nc", "does not exist")


def test_netcdf3_is_refused(tmp_path):
    path = tmp_path / "classic.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("x", 2)
    _expect_refused(path, "netCDF-3")


def test_truncated_file_is_refused(tmp_path, made):
    path, _ = made
    cut = tmp_path / path.name
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    _expect_refused(cut, "truncated")
    assert rd.identify(cut)


def _co_product(src: Path, dst: Path, *, rename: bool, short_name: str | None) -> Path:
    shutil.copyfile(src, dst)
    with netCDF4.Dataset(dst, "a") as ds:
        if rename:
            ds["PRODUCT"].renameVariable(
                "nitrogendioxide_tropospheric_column", "carbonmonoxide_total_column"
            )
        if short_name is None:
            ds["METADATA/GRANULE_DESCRIPTION"].delncattr("ProductShortName")
        else:
            ds["METADATA/GRANULE_DESCRIPTION"].ProductShortName = short_name
    return dst


def test_other_products_are_refused(tmp_path, made):
    path, _ = made
    co = _co_product(
        path, tmp_path / "S5P_OFFL_L2__CO_____x.nc", rename=True, short_name="L2__CO____"
    )
    _expect_refused(co, "L2__CO____ product, not L2__NO2___")
    assert not rd.identify(co)
    o3 = _co_product(path, tmp_path / "o3.nc", rename=False, short_name="L2__O3____")
    _expect_refused(o3, "L2__O3____")
    anonymous = _co_product(path, tmp_path / "anon.nc", rename=True, short_name=None)
    _expect_refused(
        anonymous, "lacks the required variable PRODUCT/nitrogendioxide_tropospheric_column"
    )
    assert not rd.identify(anonymous)


def test_missing_variable_is_refused(tmp_path, made):
    path, _ = made
    copy = tmp_path / "nokernel.nc"
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        del f["PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_pressure"]
    _expect_refused(
        copy, "lacks the required variable PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_pressure"
    )


def test_inconsistent_dims_are_refused(tmp_path, made):
    path, _ = made
    copy = tmp_path / "layers.nc"
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        a = f["PRODUCT/tm5_constant_a"][...]
        del f["PRODUCT/tm5_constant_a"]
        f["PRODUCT"].create_dataset("tm5_constant_a", data=a[:33])
    _expect_refused(copy, "tm5_constant_a has shape")
    copy2 = tmp_path / "rows.nc"
    shutil.copyfile(path, copy2)
    with h5py.File(copy2, "r+") as f:
        q = f["PRODUCT/qa_value"][...]
        del f["PRODUCT/qa_value"]
        f["PRODUCT"].create_dataset("qa_value", data=q[:, :5])
    _expect_refused(copy2, "qa_value has shape")


def test_sensor_delegates(made):
    path, _ = made
    sensor = S5PNO2Sensor()
    assert sensor.name == "s5p-no2" and sensor.identify(path)
    info = sensor.open(path)
    assert sensor.read_block(info, 1, 3).shape == (2, 7)
