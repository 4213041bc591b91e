"""The reprocessed copy: original content untouched, added variables laid out like their originals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

from aprior.errors import AprioriError, InputFileError
from aprior.retrieval.granule import ReprocessedBlock
from aprior.retrieval.protocols import Sensor
from aprior.retrieval.s5p import S5PNO2Sensor
from aprior.retrieval.s5p_reader import open_granule
from aprior.retrieval.s5p_writer import S5PReprocessedWriter
from aprior.synth.s5p import l2 as syn

PRODUCT = "PRODUCT"
REPL = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
ADDED = {
    "nitrogendioxide_tropospheric_column_reprocessed": "nitrogendioxide_tropospheric_column",
    "nitrogendioxide_tropospheric_column_precision_reprocessed": "nitrogendioxide_tropospheric_column_precision",
    "air_mass_factor_troposphere_reprocessed": "air_mass_factor_troposphere",
    "averaging_kernel_troposphere_reprocessed": "averaging_kernel",
}
FILL = np.float32(9.96921e36)


@pytest.fixture(scope="module")
def l2(tmp_path_factory) -> Path:
    return syn.make_test_granule(tmp_path_factory.mktemp("wr"), n_scanline=30, n_ground_pixel=12)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _block(start: int, stop: int, p: int, *, pm25: bool = True) -> ReprocessedBlock:
    s = stop - start
    rows = np.arange(start, stop, dtype=float)[:, None] + np.zeros((1, p))
    col = 1e-5 * (1 + rows)
    col[0, 0] = np.nan  # a pixel that was not reprocessed
    kernel = np.broadcast_to((rows / 100.0)[..., None], (s, p, 34)).copy()
    return ReprocessedBlock(
        start=start,
        stop=stop,
        no2_trop=col,
        no2_trop_precision=0.3 * col,
        amf_trop=1.0 + rows / 50.0,
        averaging_kernel_trop=kernel,
        apriori_partial_columns=kernel * 1e-6,
        coverage_fraction=np.full((s, p), 0.5),
        pm25_context=np.full((s, p), 12.5) if pm25 else None,
    )


def _write(info, dst, blocks, **kw):
    kw.setdefault("scanlines", None)
    kw.setdefault("history", "2026-01-01T00:00:00Z aprior test")
    kw.setdefault("apriori_source", "DACNO2 test field")
    with S5PReprocessedWriter(info, dst, **kw) as w:
        for a, b in blocks:
            w.write_block(_block(a, b, info.n_ground_pixel))


def _walk(group, path=""):
    yield path, group
    for name, child in group.groups.items():
        yield from _walk(child, f"{path}/{name}".lstrip("/"))


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and bool(np.all(a == b))


def _size(group, dim: str) -> int:
    while dim not in group.dimensions:
        group = group.parent
    return len(group.dimensions[dim])


def _compare(src: Path, out: Path, rows: tuple[int, int] | None) -> None:
    """Every group, dim, variable (data, dtype, chunks, filters) and attribute of src is in out."""
    with netCDF4.Dataset(src) as s, netCDF4.Dataset(out) as o:
        s.set_auto_maskandscale(False)
        o.set_auto_maskandscale(False)
        for path, sg in _walk(s):
            og = o[path] if path else o
            assert set(sg.groups) <= set(og.groups), path
            for name in sg.ncattrs():
                if path == "" and name == "history":
                    continue
                assert _same(sg.getncattr(name), og.getncattr(name)), (path, name)
            for name, dim in sg.dimensions.items():
                want = rows[1] - rows[0] if rows and name == "scanline" else len(dim)
                assert len(og.dimensions[name]) == want, (path, name)
            for name, sv in sg.variables.items():
                ov = og.variables[name]
                where = f"{path}/{name}"
                assert ov.dimensions == sv.dimensions and ov.dtype == sv.dtype, where
                assert set(ov.ncattrs()) == set(sv.ncattrs()), where
                for att in sv.ncattrs():
                    assert _same(sv.getncattr(att), ov.getncattr(att)), (where, att)
                assert ov.filters()["zlib"] == sv.filters()["zlib"], where
                assert ov.filters()["complevel"] == sv.filters()["complevel"], where
                assert ov.filters()["shuffle"] == sv.filters()["shuffle"], where
                chunks = sv.chunking()
                if rows and chunks != "contiguous":
                    chunks = [
                        min(c, _size(og, d)) for c, d in zip(chunks, sv.dimensions, strict=True)
                    ]
                assert ov.chunking() == chunks, where
                data = sv[...]
                if rows and "scanline" in sv.dimensions:
                    ax = sv.dimensions.index("scanline")
                    data = np.take(data, np.arange(*rows), axis=ax)
                assert _same(data, ov[...]), where


def test_uncropped_copy_keeps_everything_and_adds_the_variables(l2, tmp_path):
    before = _sha(l2)
    info = open_granule(l2)
    out = tmp_path / "out.nc"
    _write(info, out, [(0, 7), (7, 8), (8, 23), (23, 30)], with_pm25=True)
    assert _sha(l2) == before
    _compare(l2, out, None)
    with netCDF4.Dataset(l2) as s, netCDF4.Dataset(out) as o:
        assert o.history == s.history + "\n2026-01-01T00:00:00Z aprior test"
        for new, orig in ADDED.items():
            nv, ov = o[PRODUCT][new], s[PRODUCT][orig]
            assert nv.dimensions == ov.dimensions and nv.dtype == ov.dtype == np.float32, new
            assert nv.chunking() == ov.chunking() and nv.filters() == ov.filters(), new
            assert nv._FillValue == ov._FillValue == FILL
            assert nv.units == ov.units and nv.apriori_source == "DACNO2 test field"
            assert "reprocessed" in nv.long_name
            assert nv.coordinates == ov.coordinates
        col = o[PRODUCT]["nitrogendioxide_tropospheric_column_reprocessed"]
        assert col.multiplication_factor_to_convert_to_molecules_percm2 == np.float32(6.02214e19)
        grp = o[REPL]
        assert set(grp.variables) == {
            "apriori_partial_columns",
            "apriori_coverage_fraction",
            "apriori_tropospheric_column",
            "apriori_tropospheric_column_smoothed",
            "pm25_context",
        }
        apc = grp["apriori_partial_columns"]
        assert (
            apc.dimensions == ("time", "scanline", "ground_pixel", "layer")
            and apc.units == "mol m-2"
        )
        assert apc._FillValue == FILL and apc.dtype == np.float32
        assert grp["apriori_coverage_fraction"].units == "1"
        assert grp["pm25_context"].units == "ug m-3"
        o.set_auto_maskandscale(False)
        got = o[PRODUCT]["nitrogendioxide_tropospheric_column_reprocessed"][0]
        rows = np.arange(30)[:, None] + np.zeros((1, 12))
        want = (1e-5 * (1 + rows)).astype(np.float32)
        for start in (0, 7, 8, 23):  # the first pixel of each block was NaN -> fill
            want[start, 0] = FILL
        np.testing.assert_array_equal(got, want)
        ak = o[PRODUCT]["averaging_kernel_troposphere_reprocessed"][0]
        np.testing.assert_allclose(ak[:, 3, 10], np.arange(30) / 100.0, rtol=1e-6)
        np.testing.assert_array_equal(grp["pm25_context"][0], np.float32(12.5))


def test_cropped_copy_slices_everything_consistently(l2, tmp_path):
    before = _sha(l2)
    info = open_granule(l2)
    out = tmp_path / "crop.nc"
    _write(
        info, out, [(0, 10), (10, 20), (20, 30)], scanlines=(8, 21)
    )  # blocks overlap the crop edges
    assert _sha(l2) == before
    _compare(l2, out, (8, 21))
    with netCDF4.Dataset(out) as o:
        np.testing.assert_array_equal(o["PRODUCT/scanline"][:], np.arange(8, 21))
        assert "pm25_context" not in o[REPL].variables
        col = o[PRODUCT]["nitrogendioxide_tropospheric_column_reprocessed"]
        assert col.shape == (1, 13, 12)
        assert o[PRODUCT]["averaging_kernel_troposphere_reprocessed"].shape == (1, 13, 12, 34)
        assert col.chunking() == [1, 13, 12]
        np.testing.assert_allclose(col[0, :, 5], 1e-5 * (1 + np.arange(8, 21)), rtol=1e-6)
        assert np.ma.is_masked(col[0, 2, 0])  # input row 10 started a block: NaN -> fill
    info_out = open_granule(out)
    assert (info_out.n_scanline, info_out.n_ground_pixel) == (13, 12)
    assert info_out.attrs["history"].endswith("\n2026-01-01T00:00:00Z aprior test")
    with h5py.File(out) as f:  # text attributes stay NC_CHAR in the rebuilt file
        assert not h5py.h5a.open(f.id, b"creator_name").get_type().is_variable_str()


def test_out_of_order_blocks_are_written_correctly(l2, tmp_path):
    info = open_granule(l2)
    out = tmp_path / "shuffled.nc"
    _write(info, out, [(20, 30), (0, 5), (5, 20)])
    with netCDF4.Dataset(out) as o:
        col = o[PRODUCT]["nitrogendioxide_tropospheric_column_reprocessed"][0]
        np.testing.assert_allclose(col[:, 4], 1e-5 * (1 + np.arange(30)), rtol=1e-6)


def test_no_output_is_left_on_an_exception(l2, tmp_path):
    before = _sha(l2)
    info = open_granule(l2)
    out = tmp_path / "fail.nc"
    with (
        pytest.raises(RuntimeError, match="boom"),
        S5PReprocessedWriter(info, out, scanlines=(3, 9), history="h", apriori_source="s") as w,
    ):
        w.write_block(_block(0, 10, 12))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(ValueError),
        S5PReprocessedWriter(info, out, scanlines=None, history="h", apriori_source="s") as w,
    ):
        w.write_block(_block(0, 40, 12))  # outside the file
    assert list(tmp_path.iterdir()) == []
    assert _sha(l2) == before


def test_bad_requests_are_refused(l2, tmp_path):
    info = open_granule(l2)
    with pytest.raises(AprioriError, match="overwrite the input"):
        S5PReprocessedWriter(info, l2, scanlines=None, history="h", apriori_source="s")
    with pytest.raises(AprioriError, match="outside"):
        S5PReprocessedWriter(
            info, tmp_path / "x.nc", scanlines=(10, 99), history="h", apriori_source="s"
        )
    with pytest.raises(AprioriError, match="cannot be written"):
        _write(info, tmp_path / "missing_dir" / "x.nc", [(0, 30)])
    once = tmp_path / "once.nc"
    _write(info, once, [(0, 30)])
    with pytest.raises(InputFileError, match="already holds reprocessed"):
        _write(open_granule(once), tmp_path / "twice.nc", [(0, 30)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["once.nc"]


def test_sensor_plugin_writes_through_the_protocol(l2, tmp_path):
    sensor = S5PNO2Sensor()
    assert isinstance(sensor, Sensor)
    info = sensor.open(l2)
    out = tmp_path / "p.nc"
    with sensor.writer(info, out, scanlines=None, history="h", apriori_source="s") as w:
        w.write_block(_block(0, 30, 12, pm25=False))
    assert out.exists()
