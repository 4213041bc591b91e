"""``aprior compare --mode model``: the smoothed model column against the satellite's, and
coastlines and borders drawn offline on every map."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
from compare_files import base_granule, reprocessed_copy
from typer.testing import CliRunner

from aprior.compare import CompareConfig, coastlines, compare
from aprior.errors import InputFileError
from aprior.retrieval.reprocess import reprocess_file
from aprior.retrieval.s5p import S5PNO2Sensor

REPL = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
NA = 6.02214e19


@pytest.fixture(scope="module")
def reprocessed(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / world.l2.name
    reprocess_file(world.l2, out, world.field, S5PNO2Sensor())
    return out


def _read(path, group, name):
    with netCDF4.Dataset(path) as ds:
        v = ds[group][name]
        v.set_auto_mask(False)
        return np.asarray(v[0], np.float64)


def test_model_mode_compares_smoothed_model_with_satellite(reprocessed, tmp_path):
    cfg = CompareConfig(mode="model", regions=("domain", "northern"), qa_min=0.5)
    res = compare([reprocessed], tmp_path / "out", cfg)
    d = res.stats["differences"][0]
    assert d["key"] == "main_vs_tm5" and res.stats["settings"]["mode"] == "model"
    assert res.stats["sets"]["tm5"]["label"] == "satellite"
    assert "smoothed" in res.stats["sets"]["main"]["label"]
    # hand: mean over the selected pixels of (smoothed model column - operational column)
    y = _read(reprocessed, REPL, "apriori_tropospheric_column_smoothed")
    n = _read(reprocessed, "PRODUCT", "nitrogendioxide_tropospheric_column")
    lat = _read(reprocessed, "PRODUCT", "latitude")
    lon = _read(reprocessed, "PRODUCT", "longitude")
    from aprior.grids.regions import load_region

    ok = (y < 1e30) & (n < 1e30) & load_region("domain").contains(lon, lat)
    hand = np.mean(((y - n) * np.float32(NA))[ok].astype(np.float32).astype(np.float64))
    got = d["regions"]["domain"]["absolute"]
    assert got["n"] == ok.sum() > 1000
    assert got["mean"] == pytest.approx(hand, rel=1e-5)
    assert (tmp_path / "out" / "img" / "columns.png").is_file()
    assert "Eskes" in (tmp_path / "out" / "report.html").read_text()


def test_model_mode_refuses_files_without_model_columns(tmp_path):
    base = base_granule(tmp_path / "base")
    ones = np.ones((12, 10))
    old = reprocessed_copy(base, tmp_path / "old" / base.name, original=ones * 1e15,
                           reprocessed=ones * 1e15, qa=ones)
    with pytest.raises(InputFileError, match="apriori_tropospheric_column_smoothed"):
        compare([old], tmp_path / "out", CompareConfig(mode="model"))
    with pytest.raises(ValueError, match="mode"):
        CompareConfig(mode="models")


def test_cli_mode_model(reprocessed, tmp_path):
    from aprior.cli.main import app

    res = CliRunner().invoke(app, ["compare", str(reprocessed), "-o", str(tmp_path / "o"), "--mode",
                                   "model", "--qa", "0.5", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "stats.json").is_file()


def test_coastlines_and_borders_offline():
    bbox = (1.0, 49.0, 7.0, 53.0)  # Belgium and the North Sea coast
    coast = list(coastlines.polylines("gshhs", bbox, "i"))
    borders = list(coastlines.polylines("countries", bbox, "i"))
    assert len(coast) > 0 and len(borders) > 0
    pts = np.concatenate(coast)
    # the Belgian coast runs near (2.6 E, 51.1 N) to (3.4 E, 51.4 N)
    near = (np.abs(pts[:, 0] - 3.0) < 0.5) & (np.abs(pts[:, 1] - 51.25) < 0.25)
    assert near.any()
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert coastlines.draw(ax, bbox) == len(coast) + len(borders)
