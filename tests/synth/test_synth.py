"""The synthetic world: files, formats, determinism and physical sanity."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from aprior.errors import ConfigError, InputFileError, OutputExistsError
from aprior.grids.grid import LAEA_EUROPE, Grid, grid_family
from aprior.inputs.world import open_world
from aprior.synth import SynthConfig, generate_world
from aprior.synth.chemistry import Chemistry
from aprior.synth.emissions import day_factors, flights, holidays
from aprior.synth.meteo import Meteo, era5_axes
from aprior.synth.observations import Stations, measure
from aprior.synth.settlements import settlements
from aprior.synth.static_world import fine_static, static_2km

BOX = (4.3, 50.6, 5.3, 51.3)  # about 100 km around Brussels-Mechelen-Leuven
TINY = dict(region=BOX, margin_km=32, start="2023-01-13", end="2023-01-14")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "world"
    generate_world(out, SynthConfig(**TINY, pm25_hours=4))
    return open_world(out)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """Same seed, without the optional S5P and PM2.5 parts."""
    out = tmp_path_factory.mktemp("synth") / "twin"
    generate_world(out, SynthConfig(**TINY, pm25_hours=0, s5p=False))
    return open_world(out)


# -- the files ----------------------------------------------------------------------
def test_manifest_says_synthetic_and_lists_every_file(world):
    m = world.manifest
    assert m["synthetic"] is True and "SYNTHETIC" in m["warning"]
    assert m["seed"] == 0 and m["config"]["region"] == list(BOX)
    on_disk = {p.relative_to(world.root).as_posix() for p in world.root.rglob("*") if p.is_file()}
    listed = {e["path"] for e in m["files"]}
    assert on_disk - {"manifest.json"} == listed
    assert not any(Path(p).name.startswith(".") for p in on_disk)  # no temporary files left
    assert all(e["truth"] == e["path"].startswith("truth/") for e in m["files"])
    readme = (world.root / "truth" / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "real-world skill" in readme
    for kind in ("era5_single_levels", "era5_pressure_levels", "cams_eu_no2", "eea_values",
                 "population", "corine", "night_light", "elevation", "roads", "cams_glob_ant",
                 "flights", "pm25_geoscf", "pm25_eac4", "s5p_l2_no2", "truth_no2_daily",
                 "truth_no2_s5p", "truth_s5p_orbit", "truth_stations", "truth_static_2km"):
        assert world.files(kind), kind
    assert len(world.files("s5p_l2_no2")) == 2


def test_open_world_refuses_a_directory_without_manifest(tmp_path):
    with pytest.raises(InputFileError, match="no manifest"):
        open_world(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"files": []}))
    with pytest.raises(InputFileError, match="not the manifest"):
        open_world(tmp_path)


def test_every_file_reads_back_with_the_toolkit_readers(world):
    from aprior.a_priori.cams_eu import read_cams_eu
    from aprior.a_priori.cf_field import read_cf_field
    from aprior.inputs.eea import read_eea
    from aprior.inputs.era5 import read_era5_pressure_levels, read_era5_single_levels
    from aprior.inputs.pm25 import read_eac4_pm25, read_geoscf_pm25
    from aprior.inputs.static import StaticPaths, load_static_layers
    from aprior.inputs.temporal import read_flights

    _, _, g16 = grid_family(world.grid)
    day = "2023-01-13"
    sl = read_era5_single_levels(world.dated("era5_single_levels")[day], day, g16)
    assert sl["t2m"].shape == (24, *g16.shape) and 250 < float(sl["t2m"].mean()) < 300
    pl = read_era5_pressure_levels(world.dated("era5_pressure_levels")[day], day, g16)
    assert pl["z"].shape == (24, 8, *g16.shape)
    cams = read_cams_eu(world.dated("cams_eu_no2")[day])
    assert cams.no2.shape[:2] == (24, 10) and cams.grid.dx == pytest.approx(0.1)
    truth = read_cf_field(world.dated("truth_no2_daily")[day])
    assert truth.grid == world.grid and truth.no2.shape == (1, 10, *world.grid.shape)
    stations = read_eea(world.files("eea_values"), world.eea_metadata)
    assert stations.values.shape == (48, len(stations.station_ids)) and len(stations.station_ids) > 3
    static = load_static_layers(StaticPaths(
        emissions=world.file("cams_glob_ant"), roads=world.file("roads"),
        population=world.file("population"), nightlight=world.file("night_light"),
        elevation=world.file("elevation"), landcover=world.file("corine"),
        population_is_density=True), world.grid)
    assert static.population.max() > 1000 and static.roads.max() > 0 and static.emissions.max() > 0
    assert static.landcover[0].sum() > 0  # artificial surfaces exist
    assert read_flights(world.file("flights")).gt(1000).all()
    fine = read_geoscf_pm25(world.files("pm25_geoscf")[0])
    coarse = read_eac4_pm25(world.files("pm25_eac4")[0])
    assert fine.values.shape == (4, 721, 1440) and coarse.values.shape == (2, 241, 480)


def test_s5p_files_carry_the_variables_of_the_real_header(world):
    import importlib.resources

    from aprior.retrieval import s5p_names as names
    from aprior.retrieval.s5p_reader import open_granule, read_block

    schema = json.loads(importlib.resources.files("aprior.synth.s5p").joinpath(
        "s5p_no2_header.json").read_text())

    def find(path):
        node = schema["root"]
        *groups, var = path.split("/")
        for g in groups:
            node = next(x for x in node["groups"] if x["name"] == g)
        return next(x for x in node["vars"] if x["name"] == var)

    l2 = world.files("s5p_l2_no2")[0]
    assert l2.name.startswith("S5P_OFFL_L2__NO2____")
    with netCDF4.Dataset(l2) as ds:
        for key in names.READ_VARIABLES:
            path = names.NAMES[key].path
            ref, var = find(path), ds[path]
            assert list(var.dimensions) == ref["dims"], path
            assert var.dtype == np.dtype(ref["dtype"]), path
            fill = dict((a[0], a[2]) for a in ref["attrs"]).get("_FillValue")
            if fill is not None:
                assert var.getncattr("_FillValue") == pytest.approx(fill), path
        assert ds["PRODUCT"].dimensions["ground_pixel"].size == 450
    info = open_granule(l2)
    block = read_block(info, 0, info.n_scanline)
    assert np.isfinite(block.no2_trop).any() and np.isnan(block.no2_trop).any()


def test_reprocessing_with_the_truth_recovers_the_true_column(world, tmp_path):
    from aprior.a_priori.cf_field import read_cf_field
    from aprior.retrieval import s5p_names as names
    from aprior.retrieval.reprocess import ReprocessConfig, reprocess_file
    from aprior.retrieval.s5p import S5PNO2Sensor

    day = "2023-01-13"
    l2, field = world.dated("s5p_l2_no2")[day], read_cf_field(world.dated("truth_no2_s5p")[day])
    out = tmp_path / l2.name
    reprocess_file(l2, out, field, S5PNO2Sensor(), ReprocessConfig(min_coverage=0.999))
    with netCDF4.Dataset(out) as ds:
        new = np.ma.filled(ds["PRODUCT"][names.reprocessed_name("no2_trop")][0].astype(float), np.nan)
        old = np.ma.filled(ds["PRODUCT"]["nitrogendioxide_tropospheric_column"][0].astype(float), np.nan)
    with xr.open_dataset(world.dated("truth_s5p_orbit")[day]) as t:
        true = t["true_tropospheric_column"].values
    ok = np.isfinite(new) & np.isfinite(true)
    assert ok.sum() > 100
    np.testing.assert_allclose(new[ok], true[ok], rtol=1e-4)
    # the TM5-like a-priori is too deep: the operational columns are biased low
    assert np.median(old[ok] / true[ok]) < 0.9


# -- determinism ----------------------------------------------------------------------
def _key_arrays(w) -> dict[str, np.ndarray]:
    from aprior.a_priori.cams_eu import read_cams_eu
    from aprior.a_priori.cf_field import read_cf_field
    from aprior.inputs.eea import read_eea

    day = "2023-01-14"
    with netCDF4.Dataset(w.dated("era5_single_levels")[day]) as ds:
        t2m = ds["t2m"][:].filled(np.nan)
    return {"truth": read_cf_field(w.dated("truth_no2_daily")[day]).no2,
            "cams": read_cams_eu(w.dated("cams_eu_no2")[day]).no2, "t2m": t2m,
            "eea": read_eea(w.files("eea_values"), w.eea_metadata).values,
            "roads": np.frombuffer(w.file("roads").read_bytes(), np.uint8),
            "population": np.frombuffer(w.file("population").read_bytes(), np.uint8)}


def test_same_seed_same_world_whatever_optional_parts(world, twin):
    a, b = _key_arrays(world), _key_arrays(twin)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_another_seed_gives_another_world(world, tmp_path):
    out = tmp_path / "other"
    generate_world(out, SynthConfig(**{**TINY, "end": "2023-01-14"}, seed=1, pm25_hours=0, s5p=False))
    a, b = _key_arrays(world), _key_arrays(open_world(out))
    for k in ("truth", "cams", "t2m", "roads"):
        assert a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]), k


# -- output handling -----------------------------------------------------------------
def test_existing_output_is_refused_and_overwrite_replaces_only_a_world(tmp_path):
    cfg = SynthConfig(region=BOX, margin_km=32, start="2023-03-01", end="2023-03-01",
                      pm25_hours=0, s5p=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "precious.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        generate_world(junk, cfg)
    with pytest.raises(OutputExistsError, match="no synthetic world"):
        generate_world(junk, cfg, overwrite=True)
    assert (junk / "precious.txt").read_text() == "keep me"
    out = tmp_path / "w"
    generate_world(out, cfg)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate_world(out, cfg)
    generate_world(out, SynthConfig(**{**cfg.to_dict(), "start": "2023-03-02", "end": "2023-03-02"}),
                   overwrite=True)
    w = open_world(out)
    assert sorted(w.dated("cams_eu_no2")) == ["2023-03-02"]
    assert not list((out / "cams_eu").glob("*20230301*"))


def test_station_series_are_written_a_year_at_a_time(tmp_path):
    from aprior.inputs.eea import read_eea

    out = tmp_path / "newyear"
    generate_world(out, SynthConfig(region=BOX, margin_km=32, start="2022-12-31", end="2023-01-01",
                                    pm25_hours=0, s5p=False))
    w = open_world(out)
    assert sorted(w.dated("eea_metadata")) == ["2022", "2023"]
    assert sorted(w.dated("truth_stations")) == ["2022", "2023"]
    data = read_eea(w.files("eea_values"), w.eea_metadata)
    assert data.times.size == 48 and np.isfinite(data.values).mean() > 0.5


def test_config_validation():
    with pytest.raises(ConfigError):
        SynthConfig(start="2023-01-05", end="2023-01-01")
    with pytest.raises(ConfigError):
        SynthConfig(start="yesterday")
    with pytest.raises(ConfigError):
        SynthConfig(levels_m=(0.0, 10.0))
    with pytest.raises(ConfigError):
        SynthConfig(margin_km=10)
    assert SynthConfig().days == [dt.date(2023, 1, 13), dt.date(2023, 1, 14)]


# -- physics ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    """The static world, meteorology and chemistry of a 96 km box, in memory."""
    from aprior.grids.grid import subdomain

    region = subdomain(BOX)
    m = 32_000
    chem_grid = Grid(LAEA_EUROPE, region.x0 - m, region.y0 - m, 2000.0, 2000.0,
                     region.nx + 32, region.ny + 32)
    fine_grid = Grid(LAEA_EUROPE, chem_grid.x0, chem_grid.y0, 1000.0, 1000.0,
                     chem_grid.nx * 2, chem_grid.ny * 2)
    fine = fine_static(0, fine_grid, settlements(0))
    static = static_2km(fine, chem_grid)
    lat, lon = era5_axes((3.5, 50.0, 6.2, 51.9), 0.0)
    heights = np.array([0.0, 50, 100, 250, 500, 750, 1000, 2000, 3000, 5000])
    meteo = Meteo(0, lat, lon, (1000, 975, 950, 925, 900, 850, 700, 500))
    chem = Chemistry(static, lat, lon, meteo.levels, heights)
    return static, meteo, chem, heights


def _daily(chem, meteo, day, met_day=None, state=None, spin=True):
    """Daily mean truth of ``day`` (with the meteorology of ``met_day``), after a spin-up day."""
    era5 = meteo.day(met_day or day)
    if state is None:
        state = chem.initial_state(day, era5)
        if spin:
            for _ in chem.run_day(day, era5, state):
                pass
    hours = [h.no2 for h in chem.run_day(day, era5, copy.deepcopy(state))]
    return np.mean(hours, axis=0), state


def test_truth_is_higher_in_cities_and_mixed_in_the_boundary_layer(small):
    static, meteo, chem, heights = small
    no2, _ = _daily(chem, meteo, dt.date(2023, 1, 13))
    sfc = no2[0]
    city, rural = static.population > 3000, (static.population < 150) & (static.land > 0.9)
    assert city.any() and rural.any()
    assert sfc[city].mean() > 2.0 * sfc[rural].mean()
    k1000, k5000 = list(heights).index(1000.0), list(heights).index(5000.0)
    assert np.mean(no2[0] > no2[k1000]) > 0.95 and np.mean(no2[k1000] > no2[k5000]) > 0.95
    assert no2[k5000].max() < 0.5 and no2[0].min() > 0.5


def test_truth_is_higher_in_winter_on_weekdays_and_before_the_last_year(small):
    static, meteo, chem, _ = small
    winter, _ = _daily(chem, meteo, dt.date(2022, 1, 19))
    summer, _ = _daily(chem, meteo, dt.date(2022, 7, 20))
    assert winter[0].mean() > 1.5 * summer[0].mean()
    # same weather and starting state, only the calendar differs
    met = dt.date(2023, 1, 18)
    state = chem.initial_state(met, meteo.day(met))
    wed, _ = _daily(chem, meteo, dt.date(2023, 1, 18), met, state)
    sun, _ = _daily(chem, meteo, dt.date(2023, 1, 22), met, state)
    assert sun[0].mean() < 0.95 * wed[0].mean()
    early, _ = _daily(chem, meteo, dt.date(2022, 1, 19), met, state)  # also a Wednesday
    assert wed[0].mean() < 0.95 * early[0].mean()
    assert dt.date(2023, 1, 1) in holidays(2023)
    years = [np.mean([day_factors(dt.date(y, m, 15))["traffic"] for m in range(1, 13)])
             for y in range(2019, 2024)]
    assert years[-1] == min(years) and years[1] < years[0]  # 2020 (COVID) below 2019


def test_stations_measure_the_truth_with_noise_gaps_and_sparse_stations():
    import pandas as pd

    n = 40
    st = Stations(meta=pd.DataFrame({"station_id": [f"BESYN{k:04d}" for k in range(n)]}),
                  j=np.zeros(n, int), i=np.zeros(n, int), repr_factor=np.ones(n),
                  kerb=np.where(np.arange(n) < 5, 20.0, 0.0), moly=np.ones(n),
                  sparse=np.arange(n) >= 36)
    truth = np.full((24, n), 20.0)
    val = measure(0, st, dt.date(2023, 1, 16), truth, np.full((24, n), 2.0))
    cov = np.isfinite(val).mean(axis=0)
    assert np.all(cov[36:] < 0.2) and np.median(cov[:36]) > 0.8
    assert np.nanmean(val[:, :5]) > np.nanmean(val[:, 5:36]) + 5.0  # kerbside increment
    assert 18.0 < np.nanmean(val[:, 5:36]) < 22.0 and np.nanstd(val[:, 5:36]) > 0.5
    again = measure(0, st, dt.date(2023, 1, 16), truth, np.full((24, n), 2.0))
    np.testing.assert_array_equal(val, again)


def test_station_network_is_mostly_urban_and_suburban(world):
    import pandas as pd

    meta = pd.read_csv(world.eea_metadata)
    area = meta["Air Quality Station Area"]
    assert (area != "rural").mean() > 0.5
    assert set(meta["Air Quality Station Type"]) <= {"background", "traffic", "industrial"}


def test_meteorology_has_days_and_nights_and_a_standard_vertical(small):
    _, meteo, _, _ = small
    d = meteo.day(dt.date(2022, 7, 20))
    s = d.single
    assert s["ssrd"][2].max() == 0.0 and s["ssrd"][12].min() > 1e5  # J m-2 in the hour
    land = meteo.land > 0.9
    assert s["blh"][13][land].mean() > 2.0 * s["blh"][2][land].mean()
    assert np.all(np.diff(d.pressure["z"], axis=1) > 0)  # geopotential grows upwards
    assert d.pressure["t"][:, -1].mean() < d.pressure["t"][:, 0].mean() - 20.0
    assert np.all((s["tcc"] >= 0) & (s["tcc"] <= 1)) and np.all(s["tp"] >= 0)
    assert np.all(s["d2m"] <= s["t2m"])


def test_geography_does_not_depend_on_the_grid():
    s = settlements(0)
    a = Grid(LAEA_EUROPE, 3_904_000.0, 3_056_000.0, 1000.0, 1000.0, 40, 30)
    b = Grid(LAEA_EUROPE, 3_924_000.0, 3_066_000.0, 1000.0, 1000.0, 40, 30)
    fa, fb = fine_static(0, a, s), fine_static(0, b, s)
    for name in ("elevation", "population", "clc"):
        np.testing.assert_allclose(getattr(fa, name)[10:, 20:], getattr(fb, name)[:20, :20],
                                   rtol=1e-9, err_msg=name)


def test_pm25_advects_east_in_mid_latitudes_and_coarsens_consistently(world):
    from aprior.inputs.pm25 import read_eac4_pm25, read_geoscf_pm25
    from aprior.synth.aerosol import GlobalPM25

    model = GlobalPM25(0)
    state = model.initial(460_000.0)
    band = slice(int((40 + 90) / 0.25), int((55 + 90) / 0.25))
    start = state[band].copy()
    for k in range(6):
        state = model.step(state, 460_000.0 + k + 1)
    corr = [np.corrcoef(np.roll(start, s, axis=1).ravel(), state[band].ravel())[0, 1] for s in range(-8, 9)]
    assert int(np.argmax(corr)) - 8 > 0  # the pattern moved east
    fine = read_geoscf_pm25(world.files("pm25_geoscf")[0])
    coarse = read_eac4_pm25(world.files("pm25_eac4")[0])
    j, i = 558, 738  # 49.5 N, 4.5 E: a node of both grids
    assert fine.lat[j] == 49.5 and fine.lon[i] == 4.5
    block = fine.values[0, j - 1:j + 2, i - 1:i + 2].mean()
    cj, ci = np.flatnonzero(coarse.lat == 49.5)[0], np.flatnonzero(coarse.lon == 4.5)[0]
    assert coarse.values[0, cj, ci] == pytest.approx(block, rel=0.02)
    up = np.repeat(np.repeat(coarse.values[0], 3, axis=0), 3, axis=1)[:721, :1440]
    assert np.std(fine.values[0][1:-1, 1:-1]) > np.std(up[1:-1, 1:-1]) * 1.01  # fine detail


def test_flight_counts_follow_weekdays_and_covid():
    days = [dt.date(2019, 4, 10), dt.date(2020, 4, 15), dt.date(2023, 4, 12)]
    f = flights(0, days)
    assert set(f) >= {"FR", "DE", "BE", "NL", "GB"}
    assert f["FR"][1] < 0.3 * f["FR"][0] and f["FR"][2] > 0.8 * f["FR"][0]
    np.testing.assert_array_equal(f["DE"], flights(0, days)["DE"])


def test_an_interrupted_world_leaves_nothing_and_old_partial_worlds_are_replaced(tmp_path, monkeypatch):
    from aprior.synth import manifest as manifest_mod
    from aprior.synth import world as world_mod

    cfg = SynthConfig(region=BOX, margin_km=32, start="2023-03-01", end="2023-03-01",
                      pm25_hours=0, s5p=False)
    out = tmp_path / "w"

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(world_mod, "write_eea", boom)
    with pytest.raises(RuntimeError):
        generate_world(out, cfg)
    # nothing of the interrupted run is left: no world, no staging directory
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(InputFileError):
        open_world(out)
    monkeypatch.undo()
    generate_world(out, cfg)
    assert not (out / manifest_mod.PARTIAL_MARKER).exists() and open_world(out).manifest["synthetic"]
    # an unfinished world of an older aprior (marker file) is replaced with --overwrite
    (out / manifest_mod.PARTIAL_MARKER).write_text("old")
    (out / "manifest.json").unlink()
    generate_world(out, cfg, overwrite=True)
    assert not (out / manifest_mod.PARTIAL_MARKER).exists() and open_world(out).manifest["synthetic"]


def test_day_step_makes_every_nth_day_with_its_own_spinup(tmp_path):
    cfg = SynthConfig(**{**TINY, "start": "2023-01-10", "end": "2023-01-16"}, day_step=3,
                      pm25_hours=0, s5p=False)
    assert cfg.days == [dt.date(2023, 1, 10), dt.date(2023, 1, 13), dt.date(2023, 1, 16)]
    generate_world(tmp_path / "w", cfg)
    world = open_world(tmp_path / "w")
    assert sorted(world.dated("cams_eu_no2")) == ["2023-01-10", "2023-01-13", "2023-01-16"]
    with pytest.raises(ConfigError, match="day_step"):
        SynthConfig(day_step=0)


def test_eac4_hours_extends_the_coarse_field_only():
    cfg = SynthConfig(**TINY, pm25_hours=4, eac4_hours=30)
    assert (cfg.n_pm25_hours, cfg.n_eac4_hours) == (4, 30)
    assert SynthConfig(**TINY, pm25_hours=7).n_eac4_hours == 7  # default: as the hourly field
    assert SynthConfig(**TINY, pm25_hours=7, eac4_hours=None).n_eac4_hours == 48
    with pytest.raises(ConfigError, match="eac4_hours"):
        SynthConfig(eac4_hours=-1)
