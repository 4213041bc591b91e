"""EEA station reader/writer, selection, daily means, gridding and the train/eval split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aprior.errors import InputFileError
from aprior.grids.grid import LAEA_EUROPE, Grid, domain_grid
from aprior.inputs.eea import (
    StationData,
    daily_means,
    grid_stations,
    read_eea,
    select_stations,
    split_stations,
    window_means,
    write_eea,
)

TIMES = np.arange("2023-01-01T00", "2023-01-04T00", dtype="datetime64[h]")


def _meta() -> pd.DataFrame:
    return pd.DataFrame({
        "station_id": ["FR04001", "FR04002", "DE0001A", "BE0004R", "NL0005I"],
        "lon": [2.3500, 2.3501, 7.0, 4.4, 4.9],
        "lat": [48.8500, 48.8501, 51.0, 50.8, 52.3],
        "station_type": ["industrial", "background", "traffic", "background", "industrial"],
        "area": ["urban", "urban", "urban", "rural", "suburban"],
        "country": ["France", "France", "Germany", "Belgium", "Netherlands"],
        "altitude": [35.0, 36.0, 100.0, 50.0, 1.0],
    })


def _values(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.uniform(1.0, 60.0, size=(TIMES.size, 5))
    v[5:9, 0] = np.nan
    return v


@pytest.fixture(params=["parquet", "csv"])
def written(tmp_path, request):
    values = _values()
    files, meta_path = write_eea(tmp_path / "eea", meta=_meta(), times=TIMES, values=values,
                                 fmt=request.param)
    return files, meta_path, values


def test_round_trip_real_layout(written):
    files, meta_path, values = written
    assert len(files) == 5 and meta_path.name == "metadata.csv"
    table = pd.read_parquet(files[0]) if files[0].suffix == ".parquet" else pd.read_csv(files[0])
    assert list(table.columns) == ["Samplingpoint", "Pollutant", "Start", "End", "Value", "Unit",
                                   "AggType", "Validity", "Verification", "ResultTime",
                                   "DataCapture", "FkObservationLog"]
    assert table["Samplingpoint"].iloc[0] == "FR/SPO-FR04001_00008_100"
    meta_csv = pd.read_csv(meta_path)
    assert {"Air Quality Station EoI Code", "Sampling Point Id", "Air Quality Station Type",
            "Air Quality Station Area", "Longitude", "Latitude"} <= set(meta_csv.columns)

    data = read_eea(meta_path.parent, meta_path)  # the directory holds the metadata too
    order = [_meta()["station_id"].tolist().index(s) for s in data.station_ids]
    np.testing.assert_array_equal(data.times, TIMES.astype("datetime64[ns]"))
    np.testing.assert_allclose(data.values, values[:, order].astype(np.float32), equal_nan=True)
    assert data.meta.loc["FR04002", "type"] == "background"
    assert data.meta.loc["NL0005I", "area"] == "suburban"
    assert data.frame.shape == (TIMES.size, 5)


def test_invalid_and_wrong_unit_rows_become_nan(tmp_path):
    files, meta_path = write_eea(tmp_path, meta=_meta(), times=TIMES, values=_values())
    df = pd.read_parquet(files[1])
    df.loc[3, "Validity"] = -99
    df.loc[4, "Unit"] = "ppb"
    df.to_parquet(files[1])
    data = read_eea(files, meta_path)
    col = list(data.station_ids).index("FR04002")
    assert np.isnan(data.values[3, col]) and np.isnan(data.values[4, col])
    assert np.isfinite(data.values[2, col])


def test_zoned_and_offset_times(tmp_path):
    files, meta_path = write_eea(tmp_path, meta=_meta(), times=TIMES, values=_values())
    # Start is written in UTC+1: reading it as UTC shifts the axis by one hour
    shifted = read_eea(files, meta_path, utc_offset_hours=0.0)
    assert shifted.times[0] == np.datetime64("2023-01-01T01:00", "ns")
    df = pd.read_parquet(files[0])
    df["Start"] = df["Start"].dt.tz_localize("Etc/GMT-1")  # explicit +01:00
    df.to_parquet(files[0])
    data = read_eea(files[:1], meta_path)
    assert data.times[0] == np.datetime64("2023-01-01T00:00", "ns")


def test_multiple_sampling_points_of_a_station_are_averaged(tmp_path):
    meta = _meta().iloc[:1]
    files_a, meta_a = write_eea(tmp_path / "a", meta=meta, times=TIMES, values=np.full((TIMES.size, 1), 10.0))
    df = pd.read_parquet(files_a[0])
    df["Samplingpoint"] = "FR/SPO-FR04001_00008_200"
    df["Value"] = 20.0
    df.to_parquet(tmp_path / "a" / "second.parquet")
    m = pd.read_csv(meta_a)
    extra = m.copy()
    extra["Sampling Point Id"] = "SPO-FR04001_00008_200"
    pd.concat([m, extra]).to_csv(meta_a, index=False)
    data = read_eea(tmp_path / "a", meta_a)
    assert data.values.shape == (TIMES.size, 1)
    np.testing.assert_allclose(data.values, 15.0)


@pytest.mark.parametrize("case", ["missing_column", "wrong_units", "empty_meta", "meta_column",
                                  "no_match"])
def test_bad_inputs_name_the_file(tmp_path, case):
    files, meta_path = write_eea(tmp_path, meta=_meta(), times=TIMES, values=_values())
    bad = files[0]
    if case == "missing_column":
        pd.read_parquet(bad).drop(columns=["Validity"]).to_parquet(bad)
        match = "Validity"
    elif case == "wrong_units":
        df = pd.read_parquet(bad)
        df["Unit"] = "ppb"
        df.to_parquet(bad)
        match = "ppb"
    elif case == "empty_meta":
        meta_path.write_text("")
        bad, match = meta_path, "empty"
    elif case == "meta_column":
        pd.read_csv(meta_path).drop(columns=["Latitude"]).to_csv(meta_path, index=False)
        bad, match = meta_path, "Latitude"
    else:
        m = pd.read_csv(meta_path)
        m["Sampling Point Id"] = "SPO-OTHER"
        m.to_csv(meta_path, index=False)
        bad, match = meta_path, "none of the sampling points"
    with pytest.raises(InputFileError, match=match) as err:
        read_eea(files, meta_path)
    assert err.value.path == str(bad)


def _station_data(values: np.ndarray, times: np.ndarray, types, lons, lats) -> StationData:
    ids = [f"S{k}" for k in range(len(types))]
    meta = pd.DataFrame({"lon": lons, "lat": lats, "type": types, "area": "urban"},
                        index=pd.Index(ids, name="station_id"))
    return StationData(meta, times, values, "meta.csv")


def test_selection_20_percent_rule_and_traffic_excluded():
    times = np.arange("2022-01-01T00", "2022-01-11T00", dtype="datetime64[h]")  # 240 h
    v = np.full((times.size, 4), 5.0)
    v[48:, 1] = np.nan  # 48 / 240 = 20 %: kept
    v[47:, 2] = np.nan  # 47 / 240 < 20 %: dropped
    data = _station_data(v, times, ["background", "industrial", "background", "traffic"],
                         [4.0] * 4, [50.0] * 4)
    out = select_stations(data, year=2022)
    assert list(out.station_ids) == ["S0", "S1"]
    assert select_stations(data, year=2022, types=("traffic",)).station_ids.tolist() == ["S3"]


def test_selection_per_year_masks_short_years():
    times = np.arange("2021-12-31T00", "2022-01-02T00", dtype="datetime64[h]")  # 24 h per year
    v = np.full((times.size, 2), 7.0)
    v[:20, 1] = np.nan  # 2021: 4/24 valid (< 20 %), 2022: all valid
    data = _station_data(v, times, ["background", "industrial"], [4.0, 4.1], [50.0, 50.0])
    out = select_stations(data)
    assert out.station_ids.tolist() == ["S0", "S1"]
    assert np.all(np.isnan(out.values[:24, 1])) and np.all(out.values[24:, 1] == 7.0)


def test_daily_and_window_means():
    times = np.arange("2023-03-01T00", "2023-03-03T00", dtype="datetime64[h]")
    hour = (times.astype(np.int64) % 24).astype(float)
    v = np.stack([hour, hour], axis=1)
    v[times.astype(np.int64) % 24 == 12, 1] = np.nan
    data = _station_data(v, times, ["background", "background"], [4.0, 4.1], [50.0, 50.0])
    day = daily_means(data)
    np.testing.assert_array_equal(day.times, np.array(["2023-03-01", "2023-03-02"], dtype="datetime64[ns]"))
    np.testing.assert_allclose(day.values[:, 0], 11.5)
    np.testing.assert_allclose(day.values[:, 1], (276 - 12) / 23)
    win = window_means(data)  # hours 11, 12, 13
    np.testing.assert_allclose(win.values[:, 0], 12.0)
    np.testing.assert_allclose(win.values[:, 1], 12.0)  # (11 + 13) / 2
    assert np.all(np.isnan(daily_means(data, min_hours=24).values[:, 1]))


def test_grid_stations_averages_and_background_wins():
    grid = Grid(LAEA_EUROPE, 3_700_000.0, 2_800_000.0, 2000.0, 2000.0, 50, 50)
    from pyproj import Transformer

    inv = Transformer.from_crs(LAEA_EUROPE, "EPSG:4326", always_xy=True)
    lon_a, lat_a = inv.transform(3_700_000.0 + 2000 * 10.3, 2_800_000.0 + 2000 * 20.4)
    lon_b, lat_b = inv.transform(3_700_000.0 + 2000 * 10.8, 2_800_000.0 + 2000 * 20.9)  # same cell
    lon_c, lat_c = inv.transform(3_700_000.0 + 2000 * 30.5, 2_800_000.0 + 2000 * 5.5)
    times = np.arange("2023-01-01", "2023-01-03", dtype="datetime64[D]")
    v = np.array([[10.0, 20.0, 5.0, 1.0], [np.nan, 30.0, 6.0, 2.0]])
    data = _station_data(v, times, ["industrial", "background", "industrial", "background"],
                         [lon_a, lon_b, lon_c, 20.0], [lat_a, lat_b, lat_c, 60.0])
    g = grid_stations(data, grid)
    assert g.cells.tolist() == [5 * 50 + 30, 20 * 50 + 10]
    np.testing.assert_allclose(g.values, [[5.0, 15.0], [6.0, 30.0]])
    assert g.cell_type.tolist() == ["industrial", "background"]
    assert g.stations == (("S2",), ("S0", "S1"))
    dense = g.to_dense()
    assert dense.shape == (2, 50, 50) and dense[0, 20, 10] == 15.0
    assert np.isnan(dense).sum() == 2 * 2500 - 4
    outside = _station_data(v[:, :1], times, ["background"], [20.0], [60.0])
    with pytest.raises(InputFileError, match="inside the grid") as err:
        grid_stations(outside, grid)
    assert err.value.path == "meta.csv"


def test_split_is_reproducible_and_location_based():
    grid = domain_grid(2000)
    rng = np.random.default_rng(3)
    cells = np.sort(rng.choice(grid.size, size=800, replace=False))
    times = np.array(["2023-01-01"], dtype="datetime64[ns]")
    from aprior.inputs.stations import GriddedStations

    types = np.where(np.arange(800) % 3 == 0, "industrial", "background").astype(object)
    g = GriddedStations(grid, times, cells, np.zeros((1, 800), np.float32), types,
                        tuple((f"S{k}",) for k in range(800)))
    train, evl = split_stations(g, seed=0)
    again_train, again_eval = split_stations(g, seed=0)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(evl, again_eval)
    assert np.intersect1d(train, evl).size == 0 and train.size + evl.size == 800
    assert 0.18 < evl.size / 800 < 0.28
    assert not np.array_equal(split_stations(g, seed=1)[1], evl)
    # the same cell keeps its set when other cells come and go
    sub = g.select(cells[::2])
    assert np.all(np.isin(split_stations(sub, seed=0)[1], evl))
    # a user list decides for background cells
    listed = [f"S{k}" for k in range(800) if k % 3 == 1][:50]
    _, ev = split_stations(g, eval_stations=listed)
    bg_eval = ev[np.isin(ev, cells[np.arange(800) % 3 != 0])]
    assert sorted(bg_eval.tolist()) == sorted(cells[[int(s[1:]) for s in listed]].tolist())
