"""DeepCAMS pipeline: pairs, normalisation, baselines, orientation, downscaling, writing,
training smoke run, evaluation and the CLI, on tiny global grids built in code (9 degree
coarse 21 x 40 nodes, 3 degree fine 61 x 120)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from conftest import command_app
from typer.testing import CliRunner

from aprior.errors import ConfigError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field, open_pm25, write_eac4_pm25, write_geoscf_pm25
from aprior.models.deepcams import data as D

FINE_LAT = np.linspace(-90.0, 90.0, 61)
FINE_LON = np.arange(120) * 3.0 - 180.0
COARSE_LAT = np.linspace(90.0, -90.0, 21)  # EAC4 layout
COARSE_LON = np.arange(40) * 9.0
DAY0 = np.datetime64("2023-03-01T00", "h")


def _truth(lat, lon, hour):
    """A smooth background with a blob moving east 3 degrees an hour (ug m-3)."""
    lon0 = -60.0 + 3.0 * hour
    dlon = (lon - lon0 + 180.0) % 360.0 - 180.0
    return 5.0 + 2.0 * np.cos(np.deg2rad(lat)) + 30.0 * np.exp(-(dlon ** 2 + (lat - 20.0) ** 2) / (2 * 15.0 ** 2))


def _fine_frames(hours):
    return np.stack([_truth(FINE_LAT[:, None], FINE_LON[None, :], float(h)) for h in hours]).astype(np.float32)


def make_world(root: Path, n_days: int = 3, synthetic: bool = True) -> Path:
    """A tiny world: hourly 3 degree GEOS-CF-like files and 3-hourly 9 degree EAC4-like ones."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for d in range(n_days):
        times = DAY0 + np.arange(24 * d, 24 * d + 24).astype("timedelta64[h]")
        fine = _fine_frames(np.arange(24 * d, 24 * d + 24))
        day = str(times[0].astype("datetime64[D]"))
        p = write_geoscf_pm25(root / f"geoscf_{day}.nc", times, FINE_LAT, FINE_LON, fine)
        entries.append({"path": p.name, "kind": "pm25_geoscf", "date": day})
        three = np.arange(0, 24, 3)
        coarse = np.stack([_truth(COARSE_LAT[:, None], ((COARSE_LON + 180) % 360 - 180)[None, :], 24.0 * d + h)
                           for h in three]) * 1e-9
        p = write_eac4_pm25(root / f"eac4_{day}.nc", times[three], COARSE_LAT, COARSE_LON, coarse)
        entries.append({"path": p.name, "kind": "pm25_eac4", "date": day})
    if synthetic:
        (root / "manifest.json").write_text(json.dumps({
            "synthetic": True, "seed": 7, "period": {"start": "2023-03-01", "end": "?"},
            "files": entries}))
    return root


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is several times faster on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return make_world(tmp_path_factory.mktemp("dcworld"))


# -- pairs, split, normalisation, baselines -----------------------------------------------
def test_temporal_pairs_frames_and_t():
    hours = DAY0 + np.arange(10).astype("timedelta64[h]")
    p = D.temporal_pairs(hours, gap=3, stride=1)
    assert len(p) == 14  # windows starting 00..06, two targets each
    assert np.all(p.h1 - p.h0 == np.timedelta64(3, "h"))
    np.testing.assert_allclose(p.t[:2], [1 / 3, 2 / 3])
    assert np.all((p.ht - p.h0).astype(int) == np.round(p.t * 3).astype(int))
    p3 = D.temporal_pairs(hours, gap=3, stride=3)
    assert [str(h)[-2:] for h in np.unique(p3.h0)] == ["00", "03", "06"]
    gappy = np.delete(hours, 4)  # no 04 UTC: windows 01, 02, 03, 04 are incomplete
    assert [int(str(h)[-2:]) for h in np.unique(D.temporal_pairs(gappy, 3, 1).h0)] == [0, 5, 6]


def test_split_days_holds_out_the_last_days():
    days = DAY0.astype("datetime64[D]") + np.arange(6)
    s = D.split_days(days, val_days=1, test_days=1)
    assert len(s.train) == 4 and s.val == (days[4],) and s.test == (days[5],)
    with pytest.raises(ConfigError, match="leaves none"):
        D.split_days(days[:2], 1, 1)


def test_normalisation_round_trip_numpy_and_torch():
    c = np.array([0.0, 0.5, 2.0, 10.0, 85.0, 700.0])
    n = D.Normalisation.fit([c.reshape(2, 3)], scale=10.0)
    x = n.forward(c)
    assert abs(float(np.mean(np.log1p(c / 10.0))) - n.mean) < 1e-12 and n.std > 0
    np.testing.assert_allclose(n.inverse(x), c, rtol=1e-5, atol=1e-6)
    xt = n.forward(torch.tensor(c))
    torch.testing.assert_close(n.inverse(xt), torch.tensor(c), rtol=1e-9, atol=1e-9)
    assert float(n.inverse(np.array([-50.0]))[0]) == 0.0  # below the physical floor -> 0
    assert D.Normalisation.from_dict(n.to_dict()) == n
    with pytest.raises(ConfigError):
        D.Normalisation(scale=0.0)


def test_correct_baseline_is_exact_for_a_linear_in_time_field_and_the_swapped_one_is_not():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 10, (5, 6)), rng.uniform(-1, 1, (5, 6))
    g = lambda h: a + b * h  # noqa: E731
    for k in (1, 2):
        t = k / 3
        np.testing.assert_allclose(D.linear_interpolation(g(0), g(3), t), g(k), rtol=1e-12)
        assert np.abs(D.swapped_linear_interpolation(g(0), g(3), t) - g(k)).max() > 0.1
        np.testing.assert_allclose(D.swapped_linear_interpolation(g(0), g(3), t), g(3 - k), rtol=1e-12)


# -- orientation ----------------------------------------------------------------------------
def test_field_to_nodes_orientation_and_round_trip():
    lon = (COARSE_LON + 180.0) % 360.0 - 180.0
    order = np.argsort(lon)
    lat = COARSE_LAT[::-1]
    vals = (lat[:, None] * 1000 + lon[order][None, :])[None]  # value encodes (lat, lon)
    f = PM25Field(np.array([DAY0]), lat, lon[order], vals + 1e5)
    nodes = D.field_to_nodes(f)
    assert nodes.shape == (1, 21, 40)
    assert nodes[0, 0, 0] == pytest.approx(90 * 1000 + 0 + 1e5)  # north pole, lon 0
    assert nodes[0, 20, 1] == pytest.approx(-90 * 1000 + 9 + 1e5)  # south pole, lon 9
    assert nodes[0, 10, 39] == pytest.approx(0 + (-9) + 1e5)  # equator, lon 351 = -9
    back = D.nodes_to_field(nodes, f.times, "x")
    np.testing.assert_array_equal(back.lat, f.lat)
    np.testing.assert_array_equal(back.lon, f.lon)
    np.testing.assert_array_equal(back.values, f.values)
    bad = PM25Field(np.array([DAY0]), np.linspace(30, 60, 5), np.arange(8) * 1.0, np.ones((1, 5, 8)))
    with pytest.raises(ProfileFieldError, match="global"):
        D.field_to_nodes(bad)


# -- frame store and patches ------------------------------------------------------------------
def test_frame_store_and_seeded_crops(world):
    from aprior.models.deepcams.archive import FrameStore, open_pm25_data
    from aprior.models.deepcams.patches import SpatialPatches, TemporalPatches

    d = open_pm25_data(world)
    assert d.synthetic and d.description.startswith("SYNTHETIC") and len(d.eac4_files) == 3
    store = FrameStore(d.geoscf_files)
    assert store.hours.size == 72 and len(store.days) == 3
    f = store.fine(DAY0 + np.timedelta64(5, "h"))
    assert f.shape == (61, 120)
    np.testing.assert_allclose(f[0, 0], _truth(90.0, 0.0, 5.0), rtol=1e-5)  # north pole, lon 0
    np.testing.assert_allclose(f[30, 60], _truth(0.0, 180.0, 5.0), rtol=1e-5)
    assert store.coarse(DAY0).shape == (21, 40)
    norm = D.Normalisation()
    pairs = D.temporal_pairs(store.hours[:24], 3, 1)
    ds = TemporalPatches(store, pairs, norm, patch=8, n_samples=20, seed=3, augment=False)
    a, b = ds[5], ds[5]
    assert a["g0"].shape == (1, 8, 8) and a["t"].shape == ()
    torch.testing.assert_close(a["target"], b["target"])
    assert any(not torch.equal(ds[0]["g0"], ds[i]["g0"]) for i in range(1, 5))
    sp = SpatialPatches(store, store.hours[:24], norm, patch=6, n_samples=10, seed=0)
    item = sp[3]
    assert item["coarse"].shape == (1, 6, 6) and item["fine"].shape == (1, 18, 18)
    # registration: a coarse node is the area mean of the 3 x 3 fine nodes of its cell,
    # which (away from the poles, cos-lat weights nearly equal) is close to the block mean
    c = norm.inverse(item["coarse"][0].numpy())
    fine = norm.inverse(item["fine"][0].numpy()).reshape(6, 3, 6, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(c, fine, rtol=0.02)


def _lst(sin: torch.Tensor, cos: torch.Tensor) -> np.ndarray:
    return (np.arctan2(sin.numpy(), cos.numpy()) * 24.0 / (2 * np.pi)) % 24.0


def _dh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` in hours, folded into [-12, 12)."""
    return (a - b + 12.0) % 24.0 - 12.0


def test_temporal_crops_carry_local_solar_time(world):
    from aprior.models.deepcams.archive import FrameStore, open_pm25_data
    from aprior.models.deepcams.patches import TemporalPatches

    store = FrameStore(open_pm25_data(world).geoscf_files)
    pairs = D.temporal_pairs(store.hours[:24], 3, 1)
    for augment in (False, True):
        ds = TemporalPatches(store, pairs, D.Normalisation(), patch=8, n_samples=24, seed=1,
                             augment=augment)
        reversed_seen = 0
        for i in range(len(ds)):
            item = ds[i]
            sun, t = item["sun"], float(item["t"])
            assert sun.shape == (6, 8, 8)
            l0, l1, lt = (_lst(sun[2 * k], sun[2 * k + 1]) for k in range(3))
            assert np.allclose(l0, l0[:1], atol=1e-4)  # constant along latitude
            # 40 coarse columns: 9 degrees, 0.6 h of local time per column (flipped or not)
            assert np.allclose(np.abs(_dh(l0[:, 1:], l0[:, :-1])), 0.6, atol=1e-4)
            if np.allclose(_dh(l1, l0), 3.0, atol=1e-4):  # frame 1 is 3 h after frame 0
                assert np.allclose(_dh(lt, l0), 3.0 * t, atol=1e-4)
            else:  # time reversed: g0 <-> g1 and t -> 1 - t
                assert augment and np.allclose(_dh(l0, l1), 3.0, atol=1e-4)
                assert np.allclose(_dh(lt, l1), 3.0 * (1.0 - t), atol=1e-4)
                reversed_seen += 1
        assert reversed_seen > 0 if augment else reversed_seen == 0
    # an item's sun maps are those of its crop: column j is at longitude 9 j degrees
    hod = D.hour_of_day(pairs.h0[:1])[0]
    item = TemporalPatches(store, pairs, D.Normalisation(), patch=8, n_samples=1, seed=0)[0]
    l0 = _lst(item["sun"][0], item["sun"][1])[0]
    cols = np.round(((l0 - hod) % 24.0) * 15.0 / 9.0).astype(int) % 40
    assert np.array_equal(np.diff(cols) % 40, np.ones(7, int))


def test_temporal_model_input_crops_target_the_models_own_frame():
    # a model-input crop interpolates the model in time: its target is the model's frame at
    # the target hour, not the truth (the temporal stage does not correct the model)
    from aprior.models.deepcams.patches import TemporalPatches

    class Store:
        hours = DAY0 + np.arange(6).astype("timedelta64[h]")

        def frame(self, hour, grid):
            return np.full((12, 16), 1.0 + (hour - DAY0).astype(int), np.float32)

        def model(self, hour):
            return np.full((12, 16), 100.0 + (hour - DAY0).astype(int), np.float32)

        def has_model(self, hour):
            return True

    pairs = D.temporal_pairs(Store.hours, 3, 1)
    norm = D.Normalisation()
    for p, base in ((1.0, 100.0), (0.0, 1.0)):
        ds = TemporalPatches(Store(), pairs, norm, patch=8, n_samples=6, seed=0, model_input=p)
        for i in range(len(ds)):
            item = ds[i]
            g0, gt = (float(norm.inverse(item[k].numpy()).mean()) for k in ("g0", "target"))
            assert g0 >= base - 1e-3 and gt >= base - 1e-3 and gt < base + 10


# -- downscaling ------------------------------------------------------------------------------
def _tiny_stage(stage: str):
    from aprior.models.deepcams.downscale import stage_from_state
    from aprior.models.deepcams.training import build_network, model_config

    torch.manual_seed(0)
    cfg = model_config(stage, "tiny")
    net = build_network(stage, cfg)
    meta = {"model": f"deepcams-{stage}", "preset": "tiny", "config": cfg.to_dict(),
            "normalisation": D.Normalisation().to_dict(), "gap_hours": 3,
            "trained_on": "SYNTHETIC test"}
    return stage_from_state(stage, net.state_dict(), meta, "cpu", "tiny", "0" * 64)


def _eac4_field(hours):
    lat = COARSE_LAT[::-1]
    lon = np.sort((COARSE_LON + 180.0) % 360.0 - 180.0)
    vals = np.stack([_truth(lat[:, None], lon[None, :], float(h)) for h in hours])
    return PM25Field(DAY0 + np.asarray(hours).astype("timedelta64[h]"), lat, lon, vals, "eac4")


def test_downscale_day_shapes_hours_units_with_tiny_random_nets():
    from aprior.models.deepcams.downscale import downscale_day

    stages = (_tiny_stage("temporal"), _tiny_stage("spatial"))
    net = {"temporal": "network", "spatial": "network"}
    out = downscale_day("2023-03-01", _eac4_field([0, 3, 6]), stages=stages, **net)
    assert out.values.shape == (7, 61, 120)
    assert [str(t)[11:13] for t in out.times.astype("datetime64[h]")] == [f"{h:02d}" for h in range(7)]
    assert out.lat[0] == -90 and out.lat[-1] == 90 and out.lon[0] == -180 and out.lon[-1] == 177
    assert np.all(np.isfinite(out.values)) and out.values.min() >= 0
    late = downscale_day("2023-03-01", _eac4_field([18, 21, 24]), stages=stages, **net)
    assert [str(t)[11:13] for t in late.times] == ["18", "19", "20", "21", "22", "23"]  # next day's 00 fills 21-23
    with pytest.raises(ProfileFieldError, match="no frame"):
        downscale_day("2023-03-05", _eac4_field([0, 3]), stages=stages)
    with pytest.raises(ProfileFieldError, match="3-hourly"):
        downscale_day("2023-03-01", _eac4_field([0, 3, 9]), stages=stages)


def test_downscale_day_orientation_and_time_weights():
    """linear + bicubic (exact at the nodes): the output at every coarse node and hour is
    (1-t) G0 + t G1 at the same latitude and longitude."""
    from aprior.models.deepcams import downscale as DS

    eac4 = _eac4_field([0, 3])
    out = DS.downscale_day("2023-03-01", eac4, temporal="linear", spatial="bicubic")
    assert out.values.shape == (4, 61, 120) and out.source == "deepcams (linear + bicubic)"
    for h, w in ((0, 0.0), (1, 1 / 3), (2, 2 / 3), (3, 1.0)):
        expect = (1 - w) * eac4.values[0] + w * eac4.values[1]
        np.testing.assert_allclose(out.values[h, ::3, ::3], expect, rtol=1e-5)


def test_default_pipeline_is_network_plus_area_and_conserves_cell_means():
    from aprior.models.deepcams import downscale as DS
    from aprior.models.deepcams.grid import coarsen

    # the fastest chain that beats linear + area on every held-out case (docs/deepcams.md)
    assert (DS.DEFAULT_TEMPORAL, DS.DEFAULT_SPATIAL) == ("network", "area")
    pipe = DS.load_pipeline(device="cpu")
    assert pipe.temporal_stage is not None and pipe.spatial_stage is None  # area needs no weights
    assert pipe.temporal_stage.net.config.solar_time and pipe.synthetic
    eac4 = _eac4_field([0, 3])
    out = DS.downscale_day("2023-03-01", eac4, pipeline=pipe)
    nodes = torch.from_numpy(np.ascontiguousarray(out.values[:, ::-1, :]))
    back = coarsen(nodes).numpy()[:, ::-1, :]
    np.testing.assert_allclose(back[0], eac4.values[0], rtol=1e-4)
    np.testing.assert_allclose(back[-1], eac4.values[1], rtol=1e-4)
    with pytest.raises(ConfigError, match="temporal method"):
        DS.downscale_day("2023-03-01", eac4, temporal="cubic")


def test_write_downscaled_is_readable_and_atomic(tmp_path, monkeypatch):
    import xarray as xr

    from aprior.models.deepcams.downscale import write_downscaled

    vals = _fine_frames([0, 1])
    field = PM25Field(DAY0 + np.arange(2).astype("timedelta64[h]"), FINE_LAT, FINE_LON, vals, "deepcams")
    path = write_downscaled(tmp_path / "out.nc", field, {"date": "2023-03-01", "synthetic_note": "SYNTHETIC: x",
                                                          "source_files": ["a.nc", "b.nc"]})
    back = open_pm25(path)
    np.testing.assert_array_equal(back.values, vals)
    np.testing.assert_array_equal(back.times, field.times)
    assert back.lat[0] == -90 and back.lon[0] == -180
    with xr.open_dataset(path) as ds:
        assert ds["pm25"].attrs["units"] == "ug m-3" and ds.attrs["source_files"] == "a.nc, b.nc"
        assert ds.attrs["synthetic_note"].startswith("SYNTHETIC") and ds.attrs["Conventions"] == "CF-1.8"
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError):
        write_downscaled(path, field, {})
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["out.nc"]


# -- training, evaluation ----------------------------------------------------------------------
def test_train_stage_smoke_then_downscale_and_evaluate(world, tmp_path):
    from aprior.models.deepcams.data import DataSpec
    from aprior.models.deepcams.downscale import downscale_day, load_stage
    from aprior.models.deepcams.evaluate import (
        evaluate_deepcams,
        render_evaluation,
        write_evaluation,
    )
    from aprior.models.deepcams.training import train_stage
    from aprior.models.engine import TrainSettings

    spec = DataSpec(temporal_patch=8, spatial_patch=6, train_samples=8, val_samples=4)
    settings = TrainSettings(epochs=1, batch_size=2, micro_batch=2, max_batches=2, device="cpu")
    seen = []
    res = {s: train_stage(s, world, tmp_path / s, preset="tiny", settings=settings, spec=spec,
                          progress=seen.append, command=f"aprior train --stage {s}")
           for s in ("temporal", "spatial")}
    assert seen and res["temporal"].weights_path.is_file()
    t = load_stage("temporal", res["temporal"].weights_path, "cpu")
    assert t.metadata["stage"] == "temporal" and t.metadata["preset"] == "tiny"
    assert t.metadata["trained_on"].startswith("SYNTHETIC") and t.synthetic
    assert t.metadata["data"]["split"]["test"] == ["2023-03-03"] and t.metadata["temporal_grid"] == "coarse"
    assert set(t.metadata["normalisation"]) >= {"scale", "mean", "std"}
    assert t.metadata["training"]["command"] == "aprior train --stage temporal"
    assert t.metadata["training"]["budget"]["epochs_run"] == 1
    with pytest.raises(ConfigError, match="stage"):
        train_stage("both", world, tmp_path / "x", settings=settings)
    s = load_stage("spatial", res["spatial"].weights_path, "cpu")
    out = downscale_day("2023-03-03", _eac4_field([48, 51]), stages=(t, s), temporal="network",
                        spatial="network")
    assert out.values.shape == (4, 61, 120)
    result = evaluate_deepcams(world, res["temporal"].weights_path, res["spatial"].weights_path,
                               device="cpu", max_hours=7)
    assert result["dates"] == ["2023-03-03"] and not result["overlaps_training"]
    names = {tb["name"]: tb for tb in result["tables"]}
    assert set(names) == {"temporal", "spatial", "pipeline", "pipeline_kept", "pipeline_eac4",
                          "pipeline_eac4_kept"}
    temporal_rows = {r["method"]: r for r in names["temporal"]["rows"]}
    assert all(r["n_samples"] == 4 for r in temporal_rows.values())  # windows 00 and 03, t = 1/3, 2/3
    lin = [k for k in temporal_rows if k.startswith("linear")][0]
    swp = [k for k in temporal_rows if "SWAPPED" in k][0]
    assert temporal_rows[lin]["RMSE"] < temporal_rows[swp]["RMSE"]  # the blob moves: swapped is worse
    # hours 00-06: interpolated 01, 02, 04, 05 apart from the kept 00, 03, 06
    pipe = {r["method"]: r for r in names["pipeline"]["rows"]}
    kept = {r["method"]: r for r in names["pipeline_kept"]["rows"]}
    assert all(r["n_samples"] == 4 for r in pipe.values()) and all(r["n_samples"] == 3 for r in kept.values())
    assert set(pipe) == {"network + network", "network + area", "linear + network", "linear + bicubic",
                         "linear + area", "Eq. 9 SWAPPED + area"}
    assert pipe["linear + area"]["RMSE"] < pipe["Eq. 9 SWAPPED + area"]["RMSE"]
    assert kept["linear + area"]["RMSE"] == kept["network + area"]["RMSE"]  # no temporal step there
    row = pipe["linear + area"]
    assert row["PSNR"] > 0 and row["peak_ratio_max"] >= row["peak_ratio_mean"] > 0
    assert sum(b["n"] for b in row["bins"]) == 4 * 61 * 120
    text = render_evaluation(result)
    assert "SWAPPED" in text and "SYNTHETIC" in text and "INTERPOLATED hours only" in text
    assert "KEPT hours" in text and "by truth bin" in text
    csv_path = write_evaluation(result, tmp_path / "eval.csv")
    assert csv_path.read_text().splitlines()[0] == ("table,method,n_samples,R,RMSE,MAE,PSNR,"
                                                    "peak_ratio_mean,peak_ratio_max")
    assert json.loads(write_evaluation(result, tmp_path / "eval.json").read_text())["samples"]
    # a subset of the chains, the same scores
    two = evaluate_deepcams(world, res["temporal"].weights_path, res["spatial"].weights_path,
                            device="cpu", max_hours=7, tables=("pipeline",),
                            chains=["network + area", "linear + area"])
    sub = {r["method"]: r for r in two["tables"][0]["rows"]}
    assert set(sub) == {"network + area", "linear + area"}
    assert sub["network + area"]["RMSE"] == pytest.approx(pipe["network + area"]["RMSE"], rel=1e-9)
    with pytest.raises(ConfigError, match="unknown pipeline chain"):
        evaluate_deepcams(world, res["temporal"].weights_path, chains=["cubic + area"])


def test_train_stage_errors(tmp_path):
    from aprior.errors import InputFileError
    from aprior.models.deepcams.training import train_stage

    with pytest.raises(InputFileError, match="not a directory"):
        train_stage("temporal", tmp_path / "nowhere", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no GEOS-CF"):
        train_stage("spatial", tmp_path / "empty", tmp_path / "run")
    from aprior.models.deepcams.data import DataSpec

    with pytest.raises(ConfigError, match="4 x 4 crops"):  # checked before any data is read
        train_stage("temporal", tmp_path / "nowhere", tmp_path / "run", preset="tiny",
                    spec=DataSpec(temporal_patch=4))
    short = make_world(tmp_path / "short", n_days=2, synthetic=False)
    with pytest.raises(ConfigError, match="leaves none"):
        train_stage("temporal", short, tmp_path / "run")


def test_bundled_demo_weights_load_and_say_synthetic():
    from aprior.models.deepcams.downscale import load_stage

    for stage in ("temporal", "spatial"):
        st = load_stage(stage, None, "cpu")
        assert st.path == f"bundled:{stage}-demo.pt" and len(st.sha256) == 64
        assert st.metadata["preset"] == "small" and st.metadata["stage"] == stage
        assert st.synthetic and "SYNTHETIC" in st.metadata["trained_on"]
        assert st.metadata["data"]["split"]["test"] == ["2023-03-08"]
        assert st.metadata["data"]["spec"]["model_input"] == 0.5 and st.norm.max > 1000
    t = load_stage("temporal", None, "cpu").net.config
    assert t.solar_time and t.blend == "concentration" and t.loss_linear > 0


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from aprior.cli.downscale import register

    return command_app(register)


def test_cli_bad_input_is_one_line_and_exit_2(app, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["downscale", "--date", "2023-01-13", "--eac4", str(tmp_path / "missing.nc"),
                              "--out", str(tmp_path / "o.nc")])
    assert res.exit_code == 2 and "missing.nc" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["downscale", "--date", "13/01/2023", "--out", str(tmp_path / "o.nc")])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
