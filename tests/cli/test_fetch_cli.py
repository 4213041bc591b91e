"""``aprior fetch``: request building, cache keys, downloads through a fake cdsapi."""

from __future__ import annotations

import datetime as dt
import json
import sys
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aprior.cli.fetch import register
from aprior.grids.grid import DOMAIN_BBOX, domain_grid, lonlat_of
from aprior.inputs import fetch as fl


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.callback()
    def _root() -> None:
        """test app"""

    return a


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for var in ("CDSAPI_URL", "CDSAPI_KEY", "ADSAPI_URL", "ADSAPI_KEY", "CDSAPI_RC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class FakeClient:
    calls: list = []
    fail: bool = False

    def __init__(self, url=None, key=None, **kw):
        self.url, self.key = url, key

    def retrieve(self, name, request, target):
        FakeClient.calls.append((name, request, self.url))
        if FakeClient.fail:
            raise ConnectionError("Max retries exceeded\nwith url: https://ads")
        Path(target).write_bytes(b"CDF\x01 fake")


@pytest.fixture
def fake_cdsapi(monkeypatch, no_credentials):
    mod = types.ModuleType("cdsapi")
    mod.Client = FakeClient
    monkeypatch.setitem(sys.modules, "cdsapi", mod)
    FakeClient.calls, FakeClient.fail = [], False
    monkeypatch.setenv("ADSAPI_URL", "https://ads.example/api")
    monkeypatch.setenv("ADSAPI_KEY", "secret")
    monkeypatch.setenv("CDSAPI_URL", "https://cds.example/api")
    monkeypatch.setenv("CDSAPI_KEY", "secret2")
    return FakeClient


def test_dry_run_prints_requests(app, tmp_path, no_credentials):
    res = CliRunner().invoke(app, ["fetch", "era5", "--start", "2023-01-30", "--end", "2023-02-02",
                                   "--cache", str(tmp_path), "--dry-run"])
    assert res.exit_code == 0, res.output
    reqs = json.loads(res.stdout)
    assert [r["dataset"] for r in reqs] == [
        "reanalysis-era5-single-levels", "reanalysis-era5-pressure-levels"] * 2
    jan = reqs[0]["request"]
    assert jan["day"] == ["30", "31"] and jan["month"] == ["01"] and len(jan["time"]) == 24
    assert jan["data_format"] == "netcdf" and "2m_temperature" in jan["variable"]
    assert "pressure_level" in reqs[1]["request"]
    n, w, s, e = jan["area"]
    lon, lat = lonlat_of(domain_grid(16000))  # the area covers the whole domain grid
    assert w <= lon.min() and e >= lon.max() and s <= lat.min() and n >= lat.max()
    assert reqs[0]["target"].startswith(str(tmp_path / "reanalysis-era5-single-levels"))
    assert not any(tmp_path.iterdir())


def test_dry_run_cams_and_eac4(app, tmp_path):
    r = CliRunner()
    cams = json.loads(r.invoke(app, ["fetch", "cams", "--start", "2021-03-05", "--end", "2021-04-01",
                                     "--dry-run", "--cache", str(tmp_path)]).stdout)
    assert len(cams) == 2 and cams[0]["dataset"] == "cams-europe-air-quality-reanalyses"
    assert cams[0]["request"]["level"] == ["0", "50", "100", "250", "500", "750", "1000", "2000",
                                           "3000", "5000"]
    assert cams[0]["request"]["variable"] == ["nitrogen_dioxide"]
    assert cams[0]["target"].endswith(".zip")
    ana = json.loads(r.invoke(app, ["fetch", "cams", "--start", "2021-03-05", "--end", "2021-03-06",
                                    "--cams-product", "analysis", "--dry-run"]).stdout)
    assert [q["request"]["date"] for q in ana] == [["2021-03-05/2021-03-05"], ["2021-03-06/2021-03-06"]]
    eac4 = json.loads(r.invoke(app, ["fetch", "eac4", "--start", "2020-01-01", "--end", "2020-01-31",
                                     "--region", "2,48,4,50", "--dry-run"]).stdout)
    assert len(eac4) == 1 and eac4[0]["request"]["variable"] == ["particulate_matter_2.5um"]
    assert eac4[0]["request"]["time"][:2] == ["00:00", "03:00"]
    n, w, s, e = eac4[0]["request"]["area"]
    assert w <= 2 - 0.5 and e >= 4.5 and s <= 47.5 and n >= 50.5 and e - w < 5


def test_cache_key_is_stable():
    a = fl.FetchRequest("ads", "cams-global-reanalysis-eac4", {"b": [1, 2], "a": "x"})
    b = fl.FetchRequest("ads", "cams-global-reanalysis-eac4", {"a": "x", "b": [1, 2]})
    c = fl.FetchRequest("ads", "cams-global-reanalysis-eac4", {"a": "x", "b": [2, 1]})
    assert a.key == b.key != c.key
    assert fl.canonical_json(a.request) == '{"a":"x","b":[1,2]}'
    # pinned: changing the key scheme would orphan every existing cache
    assert a.key == "bf4062c259b744869ec672984211937589d26a1c0200301e0b32dce4722f1d05"
    reqs1 = fl.build_requests("eac4", dt.date(2020, 1, 1), dt.date(2020, 2, 3), DOMAIN_BBOX)
    reqs2 = fl.build_requests("eac4", dt.date(2020, 1, 1), dt.date(2020, 2, 3), DOMAIN_BBOX)
    assert [q.key for q in reqs1] == [q.key for q in reqs2] and len({q.key for q in reqs1}) == 2


def test_clear_error_without_cdsapi(app, tmp_path, monkeypatch, no_credentials):
    monkeypatch.setitem(sys.modules, "cdsapi", None)  # import fails
    res = CliRunner().invoke(app, ["fetch", "eac4", "--start", "2020-01-01", "--end", "2020-01-01",
                                   "--cache", str(tmp_path)])
    assert res.exit_code == 2
    assert "pip install 'aprior[fetch]'" in res.output
    assert "Traceback" not in res.output


def test_clear_error_without_credentials(app, tmp_path, fake_cdsapi, monkeypatch):
    for var in ("ADSAPI_URL", "ADSAPI_KEY", "CDSAPI_URL", "CDSAPI_KEY"):
        monkeypatch.delenv(var)
    res = CliRunner().invoke(app, ["fetch", "eac4", "--start", "2020-01-01", "--end", "2020-01-01",
                                   "--cache", str(tmp_path)])
    assert res.exit_code == 2 and "no ADS credentials" in res.output
    home = Path(fl.Path.home())
    home.mkdir(parents=True)
    (home / ".adsapirc").write_text("url: https://ads.rc/api\nkey: abc\n")
    assert fl.credentials("ads") == ("https://ads.rc/api", "abc")


def test_download_atomic_then_cached(app, tmp_path, fake_cdsapi):
    args = ["fetch", "era5", "--start", "2023-01-31", "--end", "2023-02-01", "--cache", str(tmp_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    files = [Path(p) for p in res.stdout.split()]
    assert len(files) == 4 and all(f.read_bytes() == b"CDF\x01 fake" for f in files)
    side = json.loads(files[0].with_suffix(".json").read_text())
    assert side["dataset"] == "reanalysis-era5-single-levels"
    assert all(url == "https://cds.example/api" for _, _, url in fake_cdsapi.calls)
    assert not list(tmp_path.rglob("*.part"))
    fake_cdsapi.calls.clear()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and fake_cdsapi.calls == []
    assert [Path(p) for p in again.stdout.split()] == files


def test_network_failure_is_one_line_and_leaves_nothing(app, tmp_path, fake_cdsapi):
    fake_cdsapi.fail = True
    res = CliRunner().invoke(app, ["fetch", "eac4", "--start", "2020-01-01", "--end", "2020-01-01",
                                   "--cache", str(tmp_path)])
    assert res.exit_code == 2
    err = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "retrieving cams-global-reanalysis-eac4 failed" in err[0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("args,match", [
    (["--start", "2020-02-01", "--end", "2020-01-01"], "before the start"),
    (["--start", "2020-13-01", "--end", "2020-01-01"], "YYYY-MM-DD"),
    (["--start", "2020-01-01", "--end", "2020-01-01", "--region", "nowhere"], "unknown region"),
])
def test_bad_options(app, args, match):
    res = CliRunner().invoke(app, ["fetch", "eac4", *args, "--dry-run"])
    assert res.exit_code == 2 and match in res.output
