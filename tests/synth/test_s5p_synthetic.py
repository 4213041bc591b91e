"""Synthetic S5P L2 NO2 files: the real header, self-consistent retrieval, geometry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

from aprior.retrieval.s5p_reader import open_granule, read_block
from aprior.synth.s5p import l2 as syn

FILENAME = re.compile(
    r"^S5P_OFFL_L2__NO2____\d{8}T\d{6}_\d{8}T\d{6}_\d{5}_03_020600_\d{8}T\d{6}\.nc$"
)
PER_FILE = {
    "history",
    "tracking_id",
    "id",
    "time_reference",
    "time_reference_days_since_1950",
    "time_reference_julian_day",
    "time_reference_seconds_since_1970",
    "time_coverage_start",
    "time_coverage_end",
    "time_coverage_duration",
    "orbit",
    "date_created",
    "geospatial_lat_min",
    "geospatial_lat_max",
    "geospatial_lon_min",
    "geospatial_lon_max",
}


@pytest.fixture(scope="module")
def granule(tmp_path_factory) -> Path:
    return syn.make_test_granule(tmp_path_factory.mktemp("syn"))


def _walk(group: dict, path: str = ""):
    yield path, group
    for child in group["groups"]:
        yield from _walk(child, f"{path}/{child['name']}".lstrip("/"))


def _np_type(dtype: str):
    return str if dtype == "string" else np.dtype(dtype)


def test_schema_holds_the_whole_header():
    root = syn.load_schema()
    groups = list(_walk(root))
    n_vars = sum(len(g["vars"]) for _, g in groups)
    n_attrs = sum(len(g["attrs"]) + sum(len(v["attrs"]) for v in g["vars"]) for _, g in groups)
    assert (len(groups), n_vars, n_attrs) == (345, 154, 1864)  # counted in the CDL
    paths = {p for p, _ in groups}
    assert "METADATA/ISO_METADATA/gmd:language" in paths
    assert (
        "METADATA/ESA_METADATA/earth_explorer_header/variable_header/subsystem_information/subsystem#0"
        in paths
    )
    assert not any("\\" in p for p in paths)


def test_synthetic_file_carries_every_group_variable_and_attribute(granule):
    root = syn.load_schema()
    with netCDF4.Dataset(granule) as ds:
        ds.set_auto_maskandscale(False)
        for path, group in _walk(root):
            nc = ds[path] if path else ds
            assert set(nc.groups) == {c["name"] for c in group["groups"]}, path
            for dim, size in group["dims"].items():
                want = {"scanline": 60, "ground_pixel": 40}.get(dim, size)
                assert len(nc.dimensions[dim]) == want, (path, dim)
            assert set(nc.variables) == {v["name"] for v in group["vars"]}, path
            for name, dtype, value in group["attrs"]:
                got = nc.getncattr(name)
                if path == "" and name in PER_FILE:
                    continue
                if dtype not in ("char", "string"):
                    assert np.asarray(got).dtype == np.dtype(dtype), (path, name)
                    if name not in (
                        "gmd:westBoundLongitude",
                        "gmd:eastBoundLongitude",
                        "gmd:southBoundLatitude",
                        "gmd:northBoundLatitude",
                        "eop:orbitNumber",
                    ):
                        np.testing.assert_array_equal(
                            got, np.asarray(value, dtype=dtype), err_msg=f"{path}:{name}"
                        )
            for var in group["vars"]:
                v = nc.variables[var["name"]]
                where = f"{path}/{var['name']}"
                assert list(v.dimensions) == var["dims"], where
                assert v.dtype == _np_type(var["dtype"]), where
                assert set(v.ncattrs()) == {a[0] for a in var["attrs"]}, where
                for name, dtype, value in var["attrs"]:
                    got = v.getncattr(name)
                    if dtype == "string" or dtype == "char":
                        assert isinstance(got, str), where
                        if where != "PRODUCT/delta_time":  # its units name the day
                            assert got == value, (where, name)
                    else:
                        assert np.asarray(got).dtype == np.dtype(dtype), (where, name)
                        if name != "units":
                            np.testing.assert_array_equal(
                                got, np.asarray(value, dtype=dtype), err_msg=where
                            )


def test_values_hard_coded_from_the_cdl(granule):
    with netCDF4.Dataset(granule) as ds:
        qa = ds["PRODUCT/qa_value"]
        assert qa.dtype == np.uint8 and qa._FillValue == 255
        assert qa.scale_factor.dtype == np.float32 and qa.scale_factor == np.float32(0.01)
        tp = ds["PRODUCT/tm5_tropopause_layer_index"]
        assert tp.dtype == np.int32 and tp._FillValue == -2147483647
        assert ds["PRODUCT/averaging_kernel"].dimensions == (
            "time",
            "scanline",
            "ground_pixel",
            "layer",
        )
        assert ds["PRODUCT/nitrogendioxide_tropospheric_column"]._FillValue == np.float32(
            9.96921e36
        )
        assert ds[
            "PRODUCT/nitrogendioxide_tropospheric_column"
        ].multiplication_factor_to_convert_to_molecules_percm2 == np.float32(6.02214e19)
        assert ds["PRODUCT/time_utc"].dtype is str and ds["PRODUCT/time_utc"]._FillValue == ""
        flags = ds["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/processing_quality_flags"]
        assert flags.dtype == np.uint32 and flags._FillValue == 4294967295
        assert ds[
            "PRODUCT/SUPPORT_DATA/INPUT_DATA/instrument_configuration_version"
        ]._FillValue == np.int16(-32767)
        assert ds["PRODUCT/tm5_constant_a"].dimensions == ("layer", "vertices")
        assert ds["METADATA/ISO_METADATA/gmd:language"].codeListValue == "eng"
        assert ds["METADATA/GRANULE_DESCRIPTION"].ProductShortName == "L2__NO2___"
        assert ds.time_reference_seconds_since_1970.dtype == np.int64
    with h5py.File(granule) as f:  # text attributes stay NC_CHAR (fixed length), as in the product
        tid = h5py.h5a.open(f.id, b"creator_name").get_type()
        assert not tid.is_variable_str()
        assert "für" in f.attrs["creator_name"].decode()


def test_per_file_attributes_are_rewritten(granule):
    assert FILENAME.match(granule.name)
    with netCDF4.Dataset(granule) as ds:
        assert ds.id == granule.name[:-3]
        assert ds.orbit == 35442
        assert ds.time_reference == "2024-08-15T00:00:00Z"
        assert ds.time_coverage_start == "2024-08-15T12:45:00Z"
        assert ds["PRODUCT/delta_time"].units == "milliseconds since 2024-08-15 00:00:00"
        assert (
            ds["PRODUCT/time"][0]
            == (np.datetime64("2024-08-15") - np.datetime64("2010-01-01")).astype(int) * 86400
        )
        lat = ds["PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds"][:]
        assert ds.geospatial_lat_min == np.float32(
            lat.min()
        ) and ds.geospatial_lat_max == np.float32(lat.max())
        eop = ds["METADATA/EOP_METADATA/eop:metaDataProperty"]
        assert eop.getncattr("eop:identifier") == ds.id
        assert (
            "NRTI" not in ds["METADATA/ESA_METADATA/earth_explorer_header/fixed_header"].File_Class
        )


def test_unwritten_variables_read_as_fill_and_cost_no_disk(granule):
    with h5py.File(granule) as f:
        ozone = f["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/ozone_slant_column_density"]
        assert ozone.id.get_storage_size() == 0
        assert f["PRODUCT/averaging_kernel"].id.get_storage_size() > 0
        assert f["PRODUCT/averaging_kernel"].chunks == (1, 60, 40, 34)
        assert f["PRODUCT/averaging_kernel"].compression == "gzip"
    with netCDF4.Dataset(granule) as ds:
        assert np.ma.getmaskarray(
            ds["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/ozone_slant_column_density"][:]
        ).all()


def _small_inputs(s=6, p=5, seed=3):
    rng = np.random.default_rng(seed)
    geom = syn.synthetic_swath(
        s, p, start_time="2023-07-01T12:00:00", center_lon=10.0, start_lat=45.0, swath_km=35.0
    )
    a, b = syn.tm5_hybrid_coefficients()
    ps = 100000.0 + 1000.0 * rng.random((s, p))
    pmid = syn.layer_pressures(a, b, ps).mean(-1)
    air = syn.air_partial_columns(a, b, ps)
    n = s * p
    box = syn.box_amf_model(
        pmid.reshape(n, 34),
        ps.ravel(),
        sza=geom.sza.ravel(),
        vza=geom.vza.ravel(),
        albedo=np.full(n, 0.05),
        cloud_fraction=rng.uniform(0, 0.3, n),
        cloud_pressure=np.full(n, 80000.0),
    ).reshape(s, p, 34)
    depth = ps[..., None] - pmid
    truth = (2e-9 * rng.random((s, p, 1)) * np.exp(-depth / 9000.0) + 3e-11) * air
    prior = (1e-9 * np.exp(-depth / 15000.0) + 5e-11) * air
    tp = np.full((s, p), 17)
    return dict(
        geometry=geom,
        orbit=123,
        box_amf=box,
        apriori_tm5=prior,
        truth=truth,
        tropopause_index=tp,
        surface_pressure=ps,
        tm5_a=a,
        tm5_b=b,
        qa_value=np.full((s, p), 0.93),
    )


def test_reprocessing_with_the_truth_recovers_the_true_column(tmp_path):
    kw = _small_inputs()
    path = syn.write_synthetic_l2(tmp_path / "x.nc", **kw)
    info = open_granule(path)
    blk = read_block(info, 0, info.n_scanline)
    m = blk.averaging_kernel.astype(float) * blk.amf_total[..., None]
    np.testing.assert_allclose(m, kw["box_amf"], rtol=1e-5)
    trop = np.arange(34) <= blk.tropopause_index[..., None]
    x = kw["apriori_tm5"]
    np.testing.assert_allclose(blk.amf_trop, (m * x * trop).sum(-1) / (x * trop).sum(-1), rtol=1e-5)
    t = kw["truth"]
    amf_new = (m * t * trop).sum(-1) / (t * trop).sum(-1)
    col_new = blk.no2_trop * blk.amf_trop / amf_new
    np.testing.assert_allclose(col_new, (t * trop).sum(-1), rtol=2e-5)
    # the prior differs from the truth, so the operational column is not the true one
    assert np.all(np.abs(blk.no2_trop / (t * trop).sum(-1) - 1) > 1e-3)


def test_noise_perturbs_the_slant_column_reproducibly(tmp_path):
    kw = _small_inputs()
    a = syn.write_synthetic_l2(tmp_path / "a.nc", noise_rel=0.1, rng=np.random.default_rng(7), **kw)
    b = syn.write_synthetic_l2(tmp_path / "b.nc", noise_rel=0.1, rng=np.random.default_rng(7), **kw)
    c = syn.write_synthetic_l2(tmp_path / "c.nc", **kw)
    cols = [read_block(open_granule(p), 0, 6).no2_trop for p in (a, b, c)]
    np.testing.assert_array_equal(cols[0], cols[1])
    rel = cols[0] / cols[2] - 1
    assert 0.03 < np.std(rel) < 0.3


def test_invalid_pixels_are_written_as_fill(tmp_path):
    kw = _small_inputs()
    kw["truth"][1, 2] = np.nan
    kw["tropopause_index"][2, 3] = -1
    kw["qa_value"][0, 0] = np.nan
    path = syn.write_synthetic_l2(tmp_path / "x.nc", **kw)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        col = ds["PRODUCT/nitrogendioxide_tropospheric_column"][0]
        assert col[1, 2] == np.float32(9.96921e36) and col[2, 3] == np.float32(9.96921e36)
        assert ds["PRODUCT/tm5_tropopause_layer_index"][0, 2, 3] == -2147483647
        assert ds["PRODUCT/qa_value"][0, 0, 0] == 255 and ds["PRODUCT/qa_value"][0, 1, 1] == 93
        assert np.all(col[0] < 1e30)


def test_wrong_shapes_are_refused(tmp_path):
    kw = _small_inputs()
    kw["truth"] = kw["truth"][:, :, :30]
    with pytest.raises(ValueError, match="truth"):
        syn.write_synthetic_l2(tmp_path / "x.nc", **kw)
    assert list(tmp_path.iterdir()) == []


def test_extra_variables_are_written(tmp_path):
    kw = _small_inputs()
    alb = np.full((6, 5), 0.07)
    path = syn.write_synthetic_l2(
        tmp_path / "x.nc", extra={"PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_albedo": alb}, **kw
    )
    with netCDF4.Dataset(path) as ds:
        np.testing.assert_allclose(
            ds["PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_albedo"][0], alb, rtol=1e-6
        )


def _distance_km(lat1, lon1, lat2, lon2):
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(lon2 - lon1)
    return 6371.0 * np.arccos(
        np.clip(np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl), -1, 1)
    )


def test_swath_geometry_is_plausible():
    g = syn.synthetic_swath(
        12, 450, start_time="2024-06-01T11:30:00", center_lon=5.0, start_lat=48.0, heading_deg=-16.0
    )
    lb, ob = g.latitude_bounds, g.longitude_bounds
    # neighbours share corners: east side of one pixel = west side of the next, and so on
    np.testing.assert_array_equal(lb[:, :-1, 1], lb[:, 1:, 0])
    np.testing.assert_array_equal(ob[:, :-1, 2], ob[:, 1:, 3])
    np.testing.assert_array_equal(lb[:-1, :, 3], lb[1:, :, 0])
    # counter-clockwise from the south-west corner (positive signed area, corner 0 southern-western)
    x = (ob - g.longitude[..., None]) * np.cos(np.radians(g.latitude[..., None]))
    y = lb - g.latitude[..., None]
    area = 0.5 * np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, -1)
    assert np.all(area > 0)
    assert np.all(lb[..., 0] < lb[..., 3]) and np.all(x[..., 0] < x[..., 1])
    across = _distance_km(lb[..., 0], ob[..., 0], lb[..., 1], ob[..., 1])
    along = _distance_km(lb[..., 0], ob[..., 0], lb[..., 3], ob[..., 3])
    assert 3.2 < across[5, 225] < 3.8 and 12.0 < across[5, 0] < 17.0
    np.testing.assert_allclose(along[:, 225], 5.5, rtol=0.02)
    assert 60.0 < g.vza[5, 0] < 70.0 and g.vza[5, 225] < 0.5
    np.testing.assert_allclose(np.diff(g.time) / np.timedelta64(1, "s"), 0.84)
    assert 20.0 < g.sza[5, 225] < 40.0  # near noon in June at 48-49 N
    mid = g.longitude[6, 224:226].mean()
    assert abs(mid - 5.0) < 0.1
    assert g.satellite_latitude[-1] > g.satellite_latitude[0]  # ascending


def test_swath_geometry_validates_shapes():
    g = syn.synthetic_swath(
        3, 4, start_time="2024-06-01T11:30:00", center_lon=5.0, start_lat=48.0, swath_km=30
    )
    with pytest.raises(ValueError, match="latitude_bounds"):
        syn.SwathGeometry(
            g.latitude,
            g.longitude,
            g.latitude_bounds[..., :3],
            g.longitude_bounds,
            g.time,
            g.sza,
            g.vza,
        )


def test_box_amf_model_behaves():
    a, b = syn.tm5_hybrid_coefficients()
    ps = np.array([101325.0, 101325.0, 101325.0])
    pmid = syn.layer_pressures(a, b, ps).mean(-1)
    m = syn.box_amf_model(
        pmid,
        ps,
        sza=np.array([30.0] * 3),
        vza=np.zeros(3),
        albedo=np.array([0.03, 0.6, 0.03]),
        cloud_fraction=np.array([0.0, 0.0, 0.8]),
        cloud_pressure=np.full(3, 60000.0),
    )
    geo = 1 / np.cos(np.radians(30.0)) + 1.0
    assert 0.3 <= m[0, 0] / geo <= 0.6  # dark surface: low near-surface sensitivity
    assert np.all(np.diff(m[0]) >= 0) and m[0, -1] == pytest.approx(geo, rel=1e-3)
    assert m[1, 0] > 1.5 * m[0, 0]  # bright surface
    below = pmid[2] > 60000.0
    assert np.all(m[2, below] < 0.3 * m[0, below])  # screened below the cloud
    assert m[2, ~below][0] > geo  # enhanced just above it


def test_tm5_hybrid_coefficients():
    a, b = syn.tm5_hybrid_coefficients()
    assert a.shape == b.shape == (34, 2)
    assert b[0, 0] == 1.0 and a[0, 0] == 0.0 and a[33, 1] == 0.0 and b[33, 1] == 0.0
    np.testing.assert_array_equal(a[1:, 0], a[:-1, 1])
    np.testing.assert_array_equal(b[1:, 0], b[:-1, 1])
    p = a + b * 101325.0
    assert np.all(p[:, 0] > p[:, 1])
    pmid = p.mean(-1)
    assert 16 <= np.argmin(np.abs(pmid - 22000.0)) <= 19  # mid-latitude tropopause


def test_schema_json_is_what_the_tool_makes():
    tool = Path(__file__).resolve().parents[2] / "tools" / "cdl_to_schema.py"
    if not tool.exists():
        pytest.skip("tools/ not shipped")
    import importlib.util

    spec = importlib.util.spec_from_file_location("cdl_to_schema", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cdl = """netcdf x {
dimensions:
\tt = 2 ;
variables:
\tubyte q(t) ;
\t\tq:scale_factor = 0.01f ;
\t\tq:flag_values = 0UB, 1UB ;
\t\tq:_FillValue = 255UB ;
\tstring s(t) ;
\t\tstring s:_FillValue = "" ;

// global attributes:
\t\t:n = 1723680000LL ;
\t\t:d = 405. ;
\t\t:txt = "a \\"quoted\\" text" ;

group: gmd\\:x\\#1 {

  // group attributes:
  \t\t:gmd\\:code = "N/A" ;
  } // group gmd\\:x\\#1
}
"""
    root = json.loads(mod.dump_schema(mod.parse_cdl(cdl), "x.cdl"))["root"]
    assert root["dims"] == {"t": 2}
    q = root["vars"][0]
    assert q["dtype"] == "uint8" and ["_FillValue", "uint8", 255] in q["attrs"]
    assert ["scale_factor", "float32", 0.01] in q["attrs"] and [
        "flag_values",
        "uint8",
        [0, 1],
    ] in q["attrs"]
    assert root["vars"][1]["dtype"] == "string" and root["vars"][1]["attrs"] == [
        ["_FillValue", "string", ""]
    ]
    assert root["attrs"] == [
        ["n", "int64", 1723680000],
        ["d", "float64", 405.0],
        ["txt", "char", 'a "quoted" text'],
    ]
    assert root["groups"][0]["name"] == "gmd:x#1" and root["groups"][0]["attrs"] == [
        ["gmd:code", "char", "N/A"]
    ]
