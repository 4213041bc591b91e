"""DACNO2 training data: catalog, day inputs, the prepared cache and the patch dataset.

A tiny synthetic world (56 x 56 cells of 2 km, six days across 2022/2023) is generated
once per session; everything else reads it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aprior.errors import ConfigError, InputFileError, OutputExistsError
from aprior.grids.grid import grid_family
from aprior.inputs.eea import read_eea
from aprior.inputs.stations import grid_stations, select_stations, window_means
from aprior.models.dacno2.catalog import CONFIG_NAME, file_dates, open_catalog
from aprior.models.dacno2.dataset import Normaliser, PatchDataset, build_inputs, patch_windows
from aprior.models.dacno2.prepare import DataSpec, Prepared, met3d_names, prepare, split_days
from aprior.models.dacno2.targets import read_cams_targets
from aprior.synth.config import SynthConfig
from aprior.synth.world import generate_world

REGION = "4.0,50.2,5.2,51.0"
DAYS = [dt.date(2022, 12, 28) + dt.timedelta(days=k) for k in range(6)]
SPEC = DataSpec(patch=64)  # one patch, reaching 8 cells beyond the 56-cell grid


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dacno2_world") / "world"
    generate_world(root, SynthConfig(region=REGION, start=DAYS[0], end=DAYS[-1], pm25_hours=0,
                                     s5p=False))
    return root


@pytest.fixture(scope="session")
def catalog(tiny_world):
    return open_catalog(tiny_world)


@pytest.fixture(scope="session")
def prepared(catalog, tmp_path_factory) -> Prepared:
    return prepare(catalog, SPEC, tmp_path_factory.mktemp("dacno2_cache") / "cache")


# -- catalog ------------------------------------------------------------------------------
def test_catalog_of_a_synthetic_world(catalog, tiny_world):
    assert catalog.synthetic and catalog.seed == 0
    assert catalog.grid.shape == (56, 56)
    assert catalog.dates() == DAYS and catalog.years == [2022, 2023]
    values, meta = catalog.eea_for(2022)
    assert meta.parent.name == "2022" and all(v.parent.name == "2022" for v in values)
    (path,) = catalog.files_for("era5_pressure", "2023-01-01")
    assert path.is_file() and "20230101" in path.name


def test_missing_date_names_the_date_and_the_kind(catalog, tmp_path):
    with pytest.raises(InputFileError, match=r"no ERA5 pressure-level file for 2023-01-15.*"
                                             r"cover 2022-12-28\.\.2023-01-02") as err:
        catalog.files_for("era5_pressure", dt.date(2023, 1, 15))
    assert err.value.path == str(catalog.root)
    with pytest.raises(InputFileError, match="2023-01-15"):
        prepare(catalog, SPEC, tmp_path / "c", dates=[DAYS[0], dt.date(2023, 1, 15)])
    assert not (tmp_path / "c").exists()


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def _real_layout(world: Path, root: Path, drop: str | None = None) -> None:
    """The world's files in a 'real data' layout with an aprior-data.toml."""
    for sub, kind in (("era5/single", "era5_sl"), ("era5/pressure", "era5_pl"), ("cams_eu", "cams")):
        for f in sorted((world / sub).glob("*.nc")):
            if drop is None or drop not in f.name or kind != "era5_pl":
                _link(f, root / kind / f.name)
    for year in (2022, 2023):
        for f in (world / "eea" / str(year)).iterdir():
            _link(f, root / "eea" / f"y{year}" / f.name)
    for f in (world / "static").iterdir():
        _link(f, root / "static" / f.name)
    _link(world / "flights" / "flights.csv", root / "traffic.csv")
    (root / CONFIG_NAME).write_text(f"""
region = [{REGION}]
[files]
era5_single = "era5_sl/*.nc"
era5_pressure = "era5_pl/*.nc"
cams_eu = ["cams/*.nc"]
eea_values = "eea/y{{year}}/*.parquet"
eea_metadata = "eea/y{{year}}/metadata.csv"
cams_glob_ant = "static/cams_glob_ant*.nc"
roads = "static/roads.geojson"
population = "static/population_1km.tif"
night_light = "static/nightlight*.tif"
elevation = "static/elevation*.tif"
corine = "static/corine*.tif"
flights = "traffic.csv"
[static]
population_is_density = true
""")


def test_catalog_of_a_real_data_directory(tiny_world, catalog, tmp_path):
    _real_layout(tiny_world, tmp_path / "data", drop="20221230")
    real = open_catalog(tmp_path / "data")
    assert not real.synthetic and real.grid == catalog.grid
    assert real.dates("era5_single") == DAYS
    assert real.dates() == [d for d in DAYS if d != dt.date(2022, 12, 30)]
    assert sorted(real.eea_values) == [2022, 2023] and len(real.eea_values[2023]) == len(
        catalog.eea_values[2023])
    with pytest.raises(InputFileError, match="no ERA5 pressure-level file for 2022-12-30"):
        real.check_dates(DAYS)
    (tmp_path / "data" / CONFIG_NAME).write_text('[files]\nera5_single = "x/*.nc"\n')
    with pytest.raises(ConfigError, match="lacks the input kind"):
        open_catalog(tmp_path / "data")
    with pytest.raises(InputFileError, match="neither a synthetic world"):
        open_catalog(tmp_path)


def test_file_dates_from_names_and_fetch_requests(tmp_path):
    assert file_dates(Path("cams.eaq.vra.ENSa.no2.l0.2021-02.nc"))[-1] == dt.date(2021, 2, 28)
    assert file_dates(Path("era5_pl_20230115.nc")) == [dt.date(2023, 1, 15)]
    assert len(file_dates(Path("eea_2020.parquet"))) == 366
    assert file_dates(Path("no_date_here.nc")) == []
    f = tmp_path / "0123abcd20230115.nc"
    f.write_bytes(b"")
    f.with_suffix(".json").write_text(json.dumps({"request": {
        "year": ["2022"], "month": ["03"], "day": ["01", "02"]}}))
    assert file_dates(f) == [dt.date(2022, 3, 1), dt.date(2022, 3, 2)]


# -- split and spec ---------------------------------------------------------------------------
def test_split_holds_out_the_test_year_and_splits_days(prepared):
    assert prepared.test_dates == DAYS[4:]
    assert sorted(prepared.train_dates + prepared.val_dates) == DAYS[:4]
    assert len(prepared.val_dates) == 1 and not set(prepared.val_dates) & set(prepared.train_dates)
    assert all(d.year == 2022 for d in prepared.train_dates + prepared.val_dates)
    again = split_days(DAYS, SPEC)
    assert list(again.val) == prepared.val_dates  # seeded
    one_year = split_days(DAYS[4:], SPEC)
    assert one_year.test == () and len(one_year.train) + len(one_year.val) == 2
    with pytest.raises(ConfigError, match="no day of the training years"):
        split_days(DAYS[4:], DataSpec(test_year=2023))


def test_data_spec_validates_and_scales_the_stride():
    assert DataSpec().tiling().stride == (168, 160)
    assert DataSpec(patch=64).tiling().stride == (40, 40)
    assert DataSpec.from_dict(DataSpec(stride=(16, 24), patch=32).to_dict()).stride == (16, 24)
    with pytest.raises(ConfigError):
        DataSpec(variant="hourly")
    with pytest.raises(ConfigError):
        DataSpec(train_years=(2022,), test_year=2022)
    with pytest.raises(ConfigError):
        DataSpec(patch=60)



def test_excluded_dates_are_neither_prepared_nor_split(catalog, tmp_path):
    spec = DataSpec(patch=64, exclude_dates=("2023-01-01", dt.date(2022, 12, 29)))
    assert spec.exclude_dates == (dt.date(2022, 12, 29), dt.date(2023, 1, 1))  # dates, sorted
    again = DataSpec.from_dict(spec.to_dict())
    assert again == spec and spec.to_dict()["exclude_dates"] == ["2022-12-29", "2023-01-01"]
    assert "exclude_dates" not in SPEC.to_dict()  # older caches' identity is unchanged
    prep = prepare(catalog, spec, tmp_path / "c")
    kept = [d for d in DAYS if d not in spec.exclude_dates]
    assert prep.dates == kept
    assert sorted(prep.train_dates + prep.val_dates + prep.test_dates) == kept
    assert sorted(p.name for p in (prep.root / "days").iterdir()) == [f"{d}.npz" for d in kept]
    with pytest.raises(ConfigError, match="not a date"):
        DataSpec(exclude_dates=("2023-13-45",))

# -- the cache ---------------------------------------------------------------------------
def test_prepare_writes_the_cache_and_reuses_it(prepared, catalog):
    root = prepared.root
    assert sorted(p.name for p in (root / "days").iterdir()) == [f"{d}.npz" for d in DAYS]
    meta = json.loads((root / "meta.json").read_text())
    assert meta["synthetic"] and "SYNTHETIC" in meta["warning"]
    assert meta["split"]["unit"] == "day" and meta["stations"]["means"] == "11-13 UTC"
    stamp = (root / "meta.json").stat().st_mtime_ns
    again = prepare(catalog, SPEC, root)
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    assert again.stats == prepared.stats and again.ratios == prepared.ratios
    day = prepared.day(DAYS[0])
    assert day.met2d.dtype == np.float32 and day.met3d.shape == (24, 6, 8, 7, 7)
    assert day.cams.shape == (8, 14, 14) and day.stations.shape == prepared.station_cells.shape
    assert prepared.static().geo.shape == (6, 56, 56)


def test_prepare_refuses_other_settings_unless_overwrite(prepared, catalog, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(prepared.root, copy)
    daily = DataSpec(patch=64, variant="daily")
    with pytest.raises(OutputExistsError, match=r"other settings \(variant\)"):
        prepare(catalog, daily, copy)
    with pytest.raises(OutputExistsError, match="other dates"):
        prepare(catalog, SPEC, copy, dates=DAYS[:5])
    redone = prepare(catalog, daily, copy, dates=DAYS[:5], overwrite=True)
    assert redone.spec.variant == "daily" and len(list((copy / "days").iterdir())) == 5
    assert not np.allclose(redone.day(DAYS[0]).cams, prepared.day(DAYS[0]).cams)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="holds no prepared"):
        prepare(catalog, SPEC, tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_an_interrupted_prepare_resumes(prepared, catalog, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_two(what, done, total):
        if done == 2:
            raise Stop

    root = tmp_path / "cache"
    with pytest.raises(Stop):
        prepare(catalog, SPEC, root, progress=stop_after_two)
    assert not (root / "meta.json").exists()
    first = (root / "days" / f"{DAYS[0]}.npz").stat().st_mtime_ns
    done = prepare(catalog, SPEC, root)
    assert (root / "days" / f"{DAYS[0]}.npz").stat().st_mtime_ns == first
    assert done.stats == prepared.stats and done.ratios == prepared.ratios


# -- the dataset ----------------------------------------------------------------------------
def test_items_match_the_contract(prepared):
    ds = PatchDataset(prepared, prepared.train_dates)
    assert len(ds) == len(prepared.train_dates) * len(prepared.patches) == len(ds.dates)
    item = ds[len(ds) - 1]
    p, z = 64, 8
    shapes = {"met2d": (24, 9, p // 8, p // 8), "met3d": (24, 6, 8, p // 8, p // 8),
              "emis": (4, p, p), "geo": (6, p, p), "temporal": (3,), "cams": (z, p // 4, p // 4),
              "cams_mask": (z, p // 4, p // 4), "stations": (p, p), "station_mask": (p, p),
              "day": (), "patch": ()}
    assert set(item) == set(shapes)
    for key, shape in shapes.items():
        assert tuple(item[key].shape) == shape, key
        want = torch.bool if key.endswith("mask") else (
            torch.int64 if key in ("day", "patch") else torch.float32)
        assert item[key].dtype == want, key
        assert torch.isfinite(item[key].float()).all(), key
    assert int(item["day"]) == prepared.train_dates[-1].toordinal()
    # the patch reaches 8 cells (2 CAMS cells) beyond the grid: inputs edge-padded, masks off
    assert not item["cams_mask"][:, :, -2:].any() and not item["cams_mask"][:, -2:, :].any()
    assert item["cams_mask"][:, :-2, :-2].all()
    assert torch.equal(item["emis"][:, :56, 56:], item["emis"][:, :56, 55:56].expand(-1, -1, 8))
    assert torch.equal(item["met2d"][..., :7, 7], item["met2d"][..., :7, 6])


def test_normalised_inputs_have_zero_mean_unit_std_over_the_training_days(prepared):
    norm = Normaliser(prepared.stats, prepared.spec.pressure_levels_hpa)
    days = [prepared.day(d) for d in prepared.train_dates]
    m2 = np.stack([norm.met2d(d.met2d) for d in days]).astype(np.float64)
    m3 = np.stack([norm.met3d(d.met3d) for d in days]).astype(np.float64)
    fl = np.array([norm.temporal(d.temporal)[2] for d in days], dtype=np.float64)
    per_m2 = np.moveaxis(m2, 2, 0).reshape(9, -1)
    per_m3 = np.moveaxis(m3, (2, 3), (0, 1)).reshape(6 * 8, -1)
    st = prepared.static()
    emis, geo = norm.emis(st.emis).reshape(4, -1), norm.geo(st.geo)
    for rows in (per_m2, per_m3, emis, geo[:1].reshape(1, -1)):
        np.testing.assert_allclose(rows.mean(axis=1), 0.0, atol=2e-3)
        std = rows.std(axis=1)
        np.testing.assert_allclose(std[std > 0.5], 1.0, atol=2e-3)  # constant fields give 0
    assert (per_m3.std(axis=1) > 0.5).sum() >= 40
    assert abs(fl.mean()) < 1e-4 and abs(fl.std() - 1.0) < 1e-3
    np.testing.assert_array_equal(geo[1:], st.geo[1:])  # land cover is not normalised
    assert len(prepared.stats.names) == 9 + 48 + 4 + 2
    assert met3d_names([1000.0])[-1] == "z@1000"


def test_log_inputs_are_emission_channels_in_channel_order():
    spec = DataSpec(patch=64, log_inputs=["population", "emissions"])
    assert spec.log_inputs == ("emissions", "population")
    assert DataSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["log_inputs"] == ["emissions", "population"]
    assert "log_inputs" not in SPEC.to_dict()  # older caches' and weights' identity unchanged
    for bad in (["ozone"], "emissions"):
        with pytest.raises(ConfigError, match="log_inputs must list emission channels"):
            DataSpec(log_inputs=bad)


@pytest.fixture(scope="module")
def prepared_log(catalog, tmp_path_factory) -> Prepared:
    spec = DataSpec(patch=64, log_inputs=("emissions", "population"))
    return prepare(catalog, spec, tmp_path_factory.mktemp("dacno2_cache_log") / "cache")


def test_log_inputs_resolve_clean_air_and_keep_the_rest(prepared_log, prepared, catalog):
    st = prepared_log.static()
    lin = Normaliser(prepared.stats, prepared.spec.pressure_levels_hpa).emis(st.emis)
    spec = prepared_log.spec
    log_ = Normaliser(prepared_log.stats, spec.pressure_levels_hpa, spec.log_inputs).emis(st.emis)
    for c in (0, 2):  # emissions, population: z-scores of the log-scaled layer, same order
        z = log_[c].astype(np.float64).ravel()
        assert abs(z.mean()) < 2e-3 and abs(z.std() - 1.0) < 2e-3
        raw = st.emis[c].ravel()
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(z[order]) >= -1e-5)  # monotonic in the raw value
        low = raw <= np.median(raw)  # the cleaner half of the cells is spread wider
        assert z[low].std() > 2 * lin[c].ravel()[low].std()
        assert z.max() < lin[c].max()  # the tail is bounded
    np.testing.assert_array_equal(log_[[1, 3]], lin[[1, 3]])  # roads, night light as before
    assert "log1p:emissions" in prepared_log.stats.names
    assert "log1p:roads" not in prepared_log.stats.names
    a, b = prepared.day(DAYS[1]), prepared_log.day(DAYS[1])  # the prepared files are the same
    np.testing.assert_array_equal(a.met3d, b.met3d)
    np.testing.assert_array_equal(a.cams, b.cams)
    day = prepared_log.val_dates[0]  # generation normalises as training did
    built = build_inputs(catalog, day, spec, prepared_log.grid, prepared_log.stats)
    assert torch.equal(built[0]["emis"], PatchDataset(prepared_log, [day])[0]["emis"])
    with pytest.raises(ConfigError, match="lack log1p:emissions"):
        Normaliser(prepared.stats, spec.pressure_levels_hpa, spec.log_inputs)


def test_cams_target_times_ratio_is_the_cams_target(prepared, catalog):
    day = prepared.test_dates[0]
    ds = PatchDataset(prepared, [day], stations="none")
    item = ds[0]
    ref = read_cams_targets(catalog.files_for("cams_eu", day)[0], grid_family(prepared.grid)[1],
                            prepared.spec.levels_m, mode="window")
    ratios = np.asarray(prepared.ratios.ratios, dtype=np.float32)[:, None, None]
    back = item["cams"].numpy() * ratios
    mask = item["cams_mask"].numpy()
    assert mask[:, :14, :14].all()
    np.testing.assert_allclose(back[:, :14, :14], ref.no2[0], rtol=1e-5, atol=1e-6)
    assert prepared.ratios.ratios[0] == 1.0 and prepared.ratios.ratios[-1] < 0.5


def _station_reference(world: Path, year: int, grid):
    files = sorted((world / "eea" / str(year)).glob("*.parquet"))
    data = read_eea(files, world / "eea" / str(year) / "metadata.csv")
    return grid_stations(window_means(select_stations(data, year=year)), grid)


def test_station_mask_cells_hold_the_gridded_station_values(prepared, tiny_world):
    ref = _station_reference(tiny_world, 2022, prepared.grid)
    ds = PatchDataset(prepared, prepared.train_dates + prepared.val_dates, stations="all")
    n_seen = 0
    for i in range(len(ds)):
        item = ds[i]
        date = dt.date.fromordinal(int(item["day"]))
        t = np.flatnonzero(ref.times.astype("datetime64[D]") == np.datetime64(date))[0]
        dense = ref.to_dense()[t]
        mask = item["station_mask"].numpy()[:56, :56]
        np.testing.assert_array_equal(mask, np.isfinite(dense))
        np.testing.assert_allclose(item["stations"].numpy()[:56, :56][mask], dense[mask], rtol=1e-6)
        assert not item["station_mask"][56:].any() and not item["station_mask"][:, 56:].any()
        n_seen += int(mask.sum())
    assert n_seen > 0


def test_eval_cells_never_appear_in_training_items(prepared):
    assert prepared.eval_cells.size and prepared.train_cells.size
    assert not set(prepared.eval_cells) & set(prepared.train_cells)
    for which, allowed in (("train", prepared.train_cells), ("eval", prepared.eval_cells),
                           ("none", [])):
        ds = PatchDataset(prepared, prepared.dates, stations=which)
        seen = set()
        for i in range(len(ds)):
            m = ds[i]["station_mask"].numpy()[:56, :56]
            seen |= set(np.flatnonzero(m.ravel()).tolist())
        assert seen <= set(np.asarray(allowed).tolist()), which
        assert bool(seen) == (which != "none")


def test_build_inputs_equals_the_dataset_inputs(prepared, catalog):
    day = prepared.val_dates[0]
    built = build_inputs(catalog, day, prepared.spec, prepared.grid, prepared.stats)
    assert len(built) == len(prepared.patches) == len(patch_windows(prepared))
    item = PatchDataset(prepared, [day])[0]
    assert set(built[0]) == {"met2d", "met3d", "emis", "geo", "temporal", "patch"}
    for key in built[0]:
        assert torch.equal(built[0][key], item[key]), key
    small = DataSpec(patch=32)
    tiles = build_inputs(catalog, day, small, prepared.grid, prepared.stats)
    assert len(tiles) == len(patch_windows(small.tiling(), prepared.grid)) == 6
    assert [int(t["patch"]) for t in tiles] == list(range(6))
    with pytest.raises(ValueError, match="needs the grid"):
        patch_windows(small.tiling())
