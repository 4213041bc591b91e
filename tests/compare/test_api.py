"""``aprior compare`` end to end on small files with hand-computed statistics."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import xarray as xr
from compare_files import P, S, base_granule, pixel_centres, reprocessed_copy, truth_file

from aprior.compare import CompareConfig, compare
from aprior.errors import AprioriError, InputFileError, OutputExistsError

PICKED = [(2, 1), (5, 3), (7, 8), (9, 5), (11, 9)]  # the pixels that pass
REL = np.array([0.0, 10.0, 20.0, 30.0, 40.0])  # their relative differences (%)
TM5 = 2e15
TRUE = 2.2e15


def _fields():
    original = np.full((S, P), TM5)
    reprocessed = np.full((S, P), 3e15)
    qa = np.full((S, P), 0.5)
    for (j, i), r in zip(PICKED, REL, strict=True):
        reprocessed[j, i] = TM5 * (1 + r / 100)
        qa[j, i] = 1.0
    qa[5, 3] = 0.75  # exactly at the threshold: kept
    qa[0, 0] = 0.74  # just below: dropped
    qa[4, 4] = 1.0
    reprocessed[4, 4] = np.nan  # fill: dropped
    return original, reprocessed, qa


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    base = base_granule(root / "base")
    original, reprocessed, qa = _fields()
    main = reprocessed_copy(base, root / "main" / base.name, original=original,
                            reprocessed=reprocessed, qa=qa, source="DACNO2 test (d.nc)")
    other = reprocessed_copy(base, root / "cams" / base.name, original=original,
                             reprocessed=original * 1.1, qa=qa, source="CAMS test (c.nc)")
    truth = truth_file(root / "truth" / (base.stem + "_truth.nc"), base, np.full((S, P), TRUE))
    return {"root": root, "base": base, "main": main, "cams": other, "truth": truth}


@pytest.fixture(scope="module")
def result(files):
    box = "3.9,50.0,4.5,51.0"
    cfg = CompareConfig(regions=("domain", "northern", "paris", "alps", box), resolution=0.05,
                        command="aprior compare main --against cams")
    before = {k: hashlib.sha256(files[k].read_bytes()).hexdigest() for k in ("main", "cams")}
    res = compare([files["main"]], files["root"] / "out", cfg, against=[files["cams"]],
                  truth=[files["truth"].parent])
    after = {k: hashlib.sha256(files[k].read_bytes()).hexdigest() for k in ("main", "cams")}
    assert before == after  # inputs untouched
    return res


def _diff(res, key):
    return next(d for d in res.stats["differences"] if d["key"] == key)


def test_hand_computed_statistics_against_tm5(result):
    d = _diff(result, "main_vs_tm5")["regions"]["domain"]
    rel, ab = d["relative"], d["absolute"]
    assert rel["n"] == 5 and ab["n"] == 5
    assert rel["mean"] == pytest.approx(20.0, abs=1e-4)
    assert rel["median"] == pytest.approx(20.0, abs=1e-4)
    assert rel["p05"] == pytest.approx(2.0, abs=1e-4)  # h = 0.2 between 0 and 10
    assert rel["p95"] == pytest.approx(38.0, abs=1e-4)  # h = 3.8 between 30 and 40
    assert ab["mean"] == pytest.approx(4e14, rel=1e-5)
    assert ab["p05"] == pytest.approx(4e13, rel=1e-4)
    assert ab["p95"] == pytest.approx(7.6e14, rel=1e-5)
    assert d["mean_reference"] == pytest.approx(TM5, rel=1e-6)
    assert d["relative_difference_of_means"] == pytest.approx(20.0, abs=1e-4)
    assert result.stats["inputs"]["pixels_selected"] == 5


def test_two_sets_against_each_other(result):
    d = _diff(result, "main_vs_against")
    assert result.stats["differences"][0]["key"] == "main_vs_against"  # the main pair first
    rel = d["regions"]["domain"]["relative"]
    expected = 100 * ((1 + REL / 100) / 1.1 - 1)
    assert rel["mean"] == pytest.approx(expected.mean(), abs=1e-4)
    assert rel["median"] == pytest.approx(np.median(expected), abs=1e-4)
    a = _diff(result, "against_vs_tm5")["regions"]["domain"]["relative"]
    assert a["median"] == pytest.approx(10.0, abs=1e-4)
    assert result.stats["sets"]["main"]["label"] == "DACNO2 test"
    assert result.stats["sets"]["against"]["label"] == "CAMS test"


def test_truth_statistics(result):
    t = result.stats["truth"]["sets"]
    assert t["tm5"]["domain"]["bias"] == pytest.approx(TM5 - TRUE, rel=1e-5)
    assert t["tm5"]["domain"]["rmse"] == pytest.approx(abs(TM5 - TRUE), rel=1e-5)
    main = TM5 * (1 + REL / 100)
    assert t["main"]["domain"]["bias"] == pytest.approx(np.mean(main - TRUE), rel=1e-5)
    assert t["main"]["domain"]["rmse"] == pytest.approx(np.sqrt(np.mean((main - TRUE) ** 2)),
                                                        rel=1e-5)
    assert t["main"]["domain"]["median_ratio"] == pytest.approx(2.4 / 2.2, rel=1e-6)
    lines = result.summary_lines()
    assert len(lines) == 3 and "truth" in lines[2] and "DACNO2 test" in lines[2]


def test_region_selection(result, files):
    regions = _diff(result, "main_vs_tm5")["regions"]
    lon, lat = pixel_centres(files["main"])
    in_box = [(3.9 <= lon[j, i] <= 4.5) and (50.0 <= lat[j, i] <= 51.0) for j, i in PICKED]
    assert 0 < sum(in_box) < 5  # the box splits the picked pixels
    box = regions["3.9,50.0,4.5,51.0"]["relative"]
    assert box["n"] == sum(in_box)
    assert box["mean"] == pytest.approx(REL[in_box].mean(), abs=1e-4)
    assert regions["northern"]["relative"]["n"] == 5  # the swath lies in 50.2-50.8N, 3.9-5.1E
    assert regions["paris"]["relative"]["n"] == 0 and math.isnan(regions["alps"]["relative"]["mean"])


def test_geojson_region(files, tmp_path):
    lon, lat = pixel_centres(files["main"])
    j, i = PICKED[2]
    c = (float(lon[j, i]), float(lat[j, i]))
    tri = [[c[0] - 0.02, c[1] - 0.02], [c[0] + 0.03, c[1] - 0.01], [c[0], c[1] + 0.03],
           [c[0] - 0.02, c[1] - 0.02]]
    path = tmp_path / "spot.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {"name": "spot"},
                                "geometry": {"type": "Polygon", "coordinates": [tri]}}))
    res = compare([files["main"]], tmp_path / "out", CompareConfig(regions=("domain", str(path))))
    spot = res.stats["differences"][0]["regions"]["spot"]["relative"]
    assert spot["n"] == 1 and spot["mean"] == pytest.approx(REL[2], abs=1e-4)
    assert res.stats["regions"]["spot"]["polygon"] is True


def test_outputs_written(result):
    out = result.out_dir
    for name in ("report.html", "stats.json", "stats.csv", "maps.nc"):
        assert (out / name).is_file()
    js = json.loads((out / "stats.json").read_text())
    assert js["differences"][0]["regions"]["paris"]["relative"]["mean"] is None  # NaN -> null
    csv = (out / "stats.csv").read_text().splitlines()
    assert csv[0].startswith("kind,subject,reference,region")
    assert any(r.startswith("relative_difference,DACNO2 test,TM5,domain,%,5,") for r in csv)
    with xr.open_dataset(out / "maps.nc") as ds:
        assert ds["lat"].attrs["units"] == "degrees_north" and "lon_bnds" in ds
        m, t = ds["column_main"].values, ds["column_tm5"].values
        ok = np.isfinite(m)
        assert ok.sum() >= 5
        np.testing.assert_allclose(t[ok], TM5, rtol=1e-5)
        rel = ds["relative_difference_main_vs_tm5"].values[ok]
        assert np.all((rel > -1e-3) & (rel < 40.001))
    assert not any(p.name.startswith(".") for p in out.parent.iterdir() if p.name != "out")


def test_reprocess_output_end_to_end(world, tmp_path):
    """Real ``reprocess_file`` output: the per-pixel median ratio matches the file's arrays."""
    import netCDF4

    from aprior.retrieval.reprocess import reprocess_file
    from aprior.retrieval.s5p import S5PNO2Sensor

    rep = tmp_path / "rep" / world.l2.name
    rep.parent.mkdir()
    reprocess_file(world.l2, rep, world.field, S5PNO2Sensor())
    res = compare([rep], tmp_path / "out", CompareConfig(regions=("domain",)))
    with netCDF4.Dataset(rep) as ds:
        new = np.ma.filled(ds["PRODUCT/nitrogendioxide_tropospheric_column_reprocessed"][0], np.nan)
        old = np.ma.filled(ds["PRODUCT/nitrogendioxide_tropospheric_column"][0], np.nan)
    ok = np.isfinite(new) & np.isfinite(old)
    rel = 100 * (new[ok].astype(float) - old[ok]) / old[ok]
    got = res.stats["differences"][0]["regions"]["domain"]["relative"]
    assert got["n"] == ok.sum()
    assert got["median"] == pytest.approx(np.median(rel), rel=1e-5)
    assert res.stats["synthetic"] is True


def test_not_reprocessed_input_leaves_nothing(files, tmp_path):
    with pytest.raises(InputFileError, match="not a reprocessed file") as err:
        compare([files["main"], files["base"]], tmp_path / "out")
    assert err.value.path == str(files["base"])
    assert list(tmp_path.iterdir()) == []


def test_mismatched_against_sets(files, tmp_path):
    original, reprocessed, qa = _fields()
    odd = reprocessed_copy(files["base"], tmp_path / "odd" / "odd.nc", original=original,
                           reprocessed=reprocessed, qa=qa, orbit=99999)
    with pytest.raises(InputFileError, match="orbit") as err:
        compare([files["main"]], tmp_path / "out", against=[odd])
    assert err.value.path == str(files["main"])
    moved = reprocessed_copy(files["base"], tmp_path / "moved" / "m.nc", original=original,
                             reprocessed=reprocessed, qa=qa, shift_lat=0.01)
    with pytest.raises(InputFileError, match="latitudes differ") as err:
        compare([files["main"]], tmp_path / "out", against=[moved])
    assert err.value.path == str(moved)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_existing_output_and_overwrite(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(OutputExistsError):
        compare([files["main"]], out, CompareConfig(regions=("domain",)))
    res = compare([files["main"]], out, CompareConfig(regions=("domain",), overwrite=True))
    assert not (out / "old.txt").exists() and res.report.is_file()
    with pytest.raises(AprioriError, match="no pixel"):
        compare([files["main"]], tmp_path / "none", CompareConfig(regions=("paris",)))
    assert not (tmp_path / "none").exists()


def test_named_regions_hold_the_papers_places():
    """The documented boxes: northern = Netherlands, Belgium, Ruhr; Paris; the Alps."""
    from aprior.compare import load_regions

    regions = dict(load_regions(("northern", "paris", "alps", "northern", "3,50,4,51")))
    assert list(regions) == ["northern", "paris", "alps", "3,50,4,51"]  # duplicate dropped
    places = {"northern": [(4.90, 52.37), (4.48, 51.92), (4.35, 50.85), (4.40, 51.22),
                           (5.57, 50.63), (6.76, 51.43), (7.01, 51.46), (7.47, 51.51)],
              "paris": [(2.35, 48.86), (2.13, 48.80), (2.44, 48.92)],
              "alps": [(5.72, 45.19), (6.87, 45.92), (6.14, 46.20), (7.45, 46.95)]}
    for name, pts in places.items():
        lon, lat = np.array(pts).T
        assert regions[name].contains(lon, lat).all(), name
    assert not regions["northern"].contains(np.array([2.35]), np.array([48.86]))[0]
    assert not regions["paris"].contains(np.array([4.35]), np.array([50.85]))[0]


def test_an_orbit_given_twice_is_refused(files, tmp_path):
    twin = tmp_path / "twin" / files["main"].name
    twin.parent.mkdir()
    twin.write_bytes(files["main"].read_bytes())
    with pytest.raises(InputFileError, match="one input file per orbit") as err:
        compare([files["main"], twin], tmp_path / "out")
    assert err.value.path == str(twin)
