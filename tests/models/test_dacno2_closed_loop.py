"""The closed loop (``aprior evaluate --closed-loop``) on a tiny world with S5P orbits."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
import torch
from conftest import dacno2_tiny_world
from typer.testing import CliRunner

from aprior.errors import InputFileError
from aprior.models.dacno2.closed_loop import (
    MIN_DAYS_INTERVAL,
    closed_loop,
    differences,
    held_out,
    score_table,
    trained_days,
    world_orbits,
)
from aprior.models.dacno2.metrics import coarsened
from aprior.models.dacno2.table import render_closed_loop, write_closed_loop

FAST = {"epochs": 1, "max_batches": 1, "micro_batch": 1, "batch_size": 1, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def s5p_world(tmp_path_factory):
    from aprior.synth import SynthConfig, generate_world

    root = tmp_path_factory.mktemp("cl") / "world"
    cfg = SynthConfig(region=(4.3, 50.6, 5.3, 51.3), start=dt.date(2022, 12, 30),
                      end=dt.date(2023, 1, 2), pm25_hours=0, s5p=True, margin_km=32,
                      spinup_hours=3, static_resolution_m=1000)
    generate_world(root, cfg)
    return root


@pytest.fixture(scope="module")
def phase1(s5p_world, tmp_path_factory):
    from aprior.models.dacno2.training import train_phase

    run = tmp_path_factory.mktemp("cl-runs") / "p1"
    train_phase(1, s5p_world, run, preset="tiny", overrides=FAST,
                cache_dir=tmp_path_factory.getbasetemp() / "cl-cache")
    return run


def test_coarsened_keeps_block_means():
    a = np.arange(2 * 7 * 5, dtype=np.float32).reshape(1, 2, 7, 5)
    c = coarsened(a, 3)
    assert c.shape == a.shape
    assert np.allclose(c[0, 1, :3, :3], a[0, 1, :3, :3].mean())
    assert np.allclose(c[0, 0, 6, 3:], a[0, 0, 6, 3:].mean())  # the partial corner block


def test_score_table_terciles_and_scores():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    rows, edges = score_table({"x": 1.1 * t, "t": t}, t)
    get = {(r["apriori"], r["subset"]): r for r in rows}
    assert get[("x", "all")]["bias_pct"] == pytest.approx(10.0)
    assert get[("x", "polluted")]["mare_pct"] == pytest.approx(10.0)
    assert get[("t", "all")]["rmse"] == 0.0
    assert get[("x", "clean")]["n"] == 2 and edges[0] < edges[1]


def _two_priors(n_days: int, shift: float, noise: float, seed: int = 1):
    """Pixels of ``n_days`` days: a reference with relative error 0.10 and an a-priori whose
    error is the reference's plus ``shift`` plus a day-level error of sd ``noise``."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(n_days), 200)
    t = rng.uniform(1.0, 10.0, day.size)
    per_day = shift + noise * rng.standard_normal(n_days)
    return {"ref": t * 1.10, "x": t * (1.10 + per_day[day])}, t, day


def test_differences_are_paired_mare_gaps_with_day_block_intervals():
    cols, t, day = _two_priors(25, shift=-0.02, noise=0.005)
    rows, edges = score_table(cols, t)
    get = {(r["apriori"], r["subset"]): r for r in rows}
    d = {r["subset"]: r for r in differences(cols, t, day, edges, reference="ref")}
    assert set(d) == {"all", "clean", "middle", "polluted"}
    assert d["all"]["mare_diff"] == pytest.approx(get[("x", "all")]["mare_pct"]
                                                  - get[("ref", "all")]["mare_pct"])
    assert d["all"]["mare_diff"] == pytest.approx(-2.0, abs=0.5)
    # a clear gain: the interval excludes zero, every day agrees, the sign test is small
    assert d["all"]["ci_low"] < d["all"]["mare_diff"] < d["all"]["ci_high"] < 0
    assert d["all"]["days_better"] == d["all"]["n_days"] == 25 and d["all"]["sign_p"] < 1e-6


def test_differences_interval_spans_zero_when_days_disagree():
    """No gain on average but a large error from day to day: the interval covers zero and is
    wide, though 200 pixels a day would make a pixel-level interval look narrow."""
    cols, t, day = _two_priors(30, shift=0.0, noise=0.03)
    _, edges = score_table(cols, t)
    d = {r["subset"]: r for r in differences(cols, t, day, edges, reference="ref")}["all"]
    assert d["ci_low"] < 0 < d["ci_high"] and d["ci_high"] - d["ci_low"] > 1.0
    assert 0 < d["days_better"] < d["n_days"] and d["sign_p"] > 0.05
    # the interval is reproducible (seeded) and depends on the days, not on pixel order
    again = {r["subset"]: r for r in differences(cols, t, day, edges, reference="ref")}["all"]
    assert (again["ci_low"], again["ci_high"]) == (d["ci_low"], d["ci_high"])


def test_station_differences_resample_days_of_pooled_pairs():
    """A model with half the reference's error at the stations, on 30 days: every score is
    better on (nearly) every day, and each interval lies on the better side."""
    from aprior.models.dacno2.metrics import PairStats, station_differences

    rng = np.random.default_rng(3)
    per_day: dict[str, list[PairStats]] = {"ref": [], "model": []}
    for _ in range(30):
        obs = rng.uniform(5.0, 40.0, 23)
        noise = rng.normal(0.0, 4.0, 23)
        per_day["ref"].append(PairStats().add(obs + noise + 2.0, obs))
        per_day["model"].append(PairStats().add(obs + 0.5 * noise + 1.0, obs))
    rows = {r["score"]: r for r in station_differences(per_day, "ref")}
    pooled = {m: PairStats() for m in per_day}
    for m, days in per_day.items():
        for d in days:
            pooled[m].merge(d)
    assert rows["rmse"]["diff"] == pytest.approx(pooled["model"].scores()["rmse"]
                                                 - pooled["ref"].scores()["rmse"])
    assert rows["rmse"]["ci_low"] < rows["rmse"]["diff"] < rows["rmse"]["ci_high"] < 0
    assert rows["abs_bias"]["ci_high"] < 0 < rows["r2"]["ci_low"]
    assert rows["rmse"]["days_better"] >= 28 and rows["rmse"]["sign_p"] < 1e-6
    assert station_differences(per_day, "missing") == []


def test_day_scores_are_each_days_own_mare():
    from aprior.models.dacno2.closed_loop import day_scores

    cols, t, day = _two_priors(3, shift=0.0, noise=0.02)
    rows = {(r["day"], r["apriori"]): r for r in day_scores(cols, t, day + 738000)}
    first = dt.date.fromordinal(738000).isoformat()
    m = day == 0
    assert rows[(first, "x")]["mare_pct"] == pytest.approx(100 * np.mean(np.abs(cols["x"][m] - t[m]) / t[m]))
    assert rows[(first, "ref")]["mare_pct"] == pytest.approx(10.0) and rows[(first, "x")]["n"] == 200


def test_differences_without_the_reference_are_empty():
    cols, t, day = _two_priors(3, shift=0.0, noise=0.01)
    _, edges = score_table(cols, t)
    assert differences(cols, t, day, edges, reference="CAMS-like") == []


def test_closed_loop_closes_and_ranks(s5p_world, phase1, tmp_path):
    result = closed_loop(s5p_world, {"phase1": phase1}, device="cpu")
    get = {(r["apriori"], r["subset"]): r for r in result["rows"]}
    names = {r["apriori"] for r in result["rows"]}
    assert {"TM5", "CAMS-like", "DACNO2 phase 1", "truth 10 km", "truth 32 km", "truth 96 km",
            "truth 2 km"} <= names
    assert result["n_pixels"] > 50
    # held out: only the test year's days (phase 1 trained and validated on 2022)
    assert result["days"] and all(d.startswith("2023") for d in result["days"])
    # the truth itself as a-priori gives back the true column: the loop is closed
    assert get[("truth 2 km", "all")]["mare_pct"] < 0.1
    # the operational TM5-like column is biased low, most where it is polluted
    assert get[("TM5", "all")]["bias_pct"] < -5
    assert get[("TM5", "polluted")]["bias_pct"] < get[("TM5", "clean")]["bias_pct"]
    assert get[("truth 10 km", "all")]["mare_pct"] <= get[("truth 96 km", "all")]["mare_pct"]
    shape = {s["apriori"]: s for s in result["shape"]}
    assert shape["truth 2 km"]["share_corr_truth"] == pytest.approx(1.0)
    # spatial detail: the truth has all of its own, the 32 km truth none below 32 km,
    # the 10 km truth some but less
    assert shape["truth 2 km"]["detail_corr_truth"] == pytest.approx(1.0)
    assert shape["truth 2 km"]["detail_std_ratio"] == pytest.approx(1.0)
    assert shape["truth 32 km"]["detail_std_ratio"] == pytest.approx(0.0, abs=1e-4)
    assert math.isnan(shape["truth 32 km"]["detail_corr_truth"])
    assert 0.0 < shape["truth 10 km"]["detail_std_ratio"] < 1.0
    assert shape["truth 10 km"]["detail_corr_truth"] > 0.5
    assert shape["truth 96 km"]["column_corr_truth"] < shape["truth 10 km"]["column_corr_truth"] <= 1.0
    assert shape["truth 2 km"]["share_diff_clean"] == pytest.approx(0.0, abs=1e-6)
    assert shape["truth 2 km"]["share_diff_polluted"] == pytest.approx(0.0, abs=1e-6)
    assert shape["truth 2 km"]["top_diff_clean"] == pytest.approx(0.0, abs=1e-4)
    assert np.isfinite(shape["DACNO2 phase 1"]["top_diff_polluted"])
    # smoothing carries polluted air into clean cells: there the coarse share is too high
    assert shape["truth 96 km"]["share_diff_clean"] > shape["truth 96 km"]["share_diff_polluted"]
    # ... and its top/mean deficit in clean cells is a column too high there, not a top too low
    t96 = shape["truth 96 km"]
    assert t96["top_diff_clean"] < 0 < t96["column_diff_clean"]
    assert abs(t96["top_level_diff_clean"]) < t96["column_diff_clean"]
    assert (1 + t96["top_diff_clean"] / 100) == pytest.approx(
        (1 + t96["top_level_diff_clean"] / 100) / (1 + t96["column_diff_clean"] / 100), rel=0.05)
    assert shape["truth 2 km"]["column_diff_clean"] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < shape["DACNO2 phase 1"]["share_0_500m"] < 1.0
    paths = write_closed_loop(result, tmp_path)
    assert {p.name for p in paths} == {"closed_loop.csv", "closed_loop_shape.csv", "closed_loop.json",
                                        "closed_loop.txt", "closed_loop.png",
                                        "closed_loop_differences.csv", "closed_loop_days.csv"}
    by_day = [r for r in result["by_day"] if r["apriori"] == "truth 2 km"]
    assert [r["day"] for r in by_day] == sorted(r["day"] for r in by_day)
    assert {r["day"] for r in by_day} <= set(result["days"]) and all(r["mare_pct"] < 0.1 for r in by_day)
    assert sum(r["n"] for r in by_day) == result["n_pixels"]
    diffs = {(d["apriori"], d["subset"]): d for d in result["differences"]}
    assert ("CAMS-like", "all") not in diffs and ("TM5", "all") in diffs
    # the truth itself is closer than CAMS-like on every day of the loop; this tiny world has
    # too few days for an interval
    t2 = diffs[("truth 2 km", "all")]
    assert t2["mare_diff"] < 0 and t2["days_better"] == t2["n_days"]
    assert 1 <= t2["n_days"] <= len(result["days"])
    assert t2["n_days"] < MIN_DAYS_INTERVAL and math.isnan(t2["ci_low"])
    assert t2["mare_diff"] == pytest.approx(get[("truth 2 km", "all")]["mare_pct"]
                                            - get[("CAMS-like", "all")]["mare_pct"])
    assert "too few for an interval" in render_closed_loop(result)
    assert json.loads((tmp_path / "closed_loop.json").read_text())["n_pixels"] == result["n_pixels"]
    assert "DACNO2 phase 1" in render_closed_loop(result)
    assert "column clean %" in render_closed_loop(result)


def test_trained_days_include_every_phase_of_the_lineage():
    meta = {"days": {"train": ["2023-01-05"], "val": ["2023-01-08"]},
            "lineage": [{"phase": 1, "days": {"train": ["2022-01-01"], "val": ["2022-01-04"]}},
                        {"phase": 3, "days": {"train": ["2023-01-05"], "val": []}}]}
    assert trained_days(meta) == {dt.date(2023, 1, 5), dt.date(2023, 1, 8), dt.date(2022, 1, 1),
                                  dt.date(2022, 1, 4)}
    assert trained_days({}) == set()


def test_orbits_only_on_training_days_are_refused(s5p_world):
    orbits = world_orbits(s5p_world)
    with pytest.raises(InputFileError, match="only on days the weights trained"):
        held_out(orbits, {o.day for o in orbits}, s5p_world)


def test_world_without_orbits_is_one_clear_line(tmp_path_factory):
    from aprior.cli.main import app

    world = dacno2_tiny_world(tmp_path_factory)
    res = CliRunner().invoke(app, ["evaluate", "--closed-loop", "--data", str(world), "--out",
                                   str(tmp_path_factory.mktemp("o") / "x")])
    assert res.exit_code == 2
    assert "holds no S5P orbit" in res.output and "Traceback" not in res.output


def test_daily_mean_field_serves_the_orbit_of_its_day(s5p_world, tmp_path):
    """The daily truth (stamped 00:00) reprocesses the early-afternoon orbit of its day."""
    from aprior.a_priori.cf_field import read_cf_field
    from aprior.inputs.world import open_world
    from aprior.plugins import SENSORS, find
    from aprior.retrieval.reprocess import reprocess_file

    world = open_world(s5p_world)
    orbit = world_orbits(s5p_world)[-1]
    daily = read_cf_field(world.dated("truth_no2_daily")[orbit.day.isoformat()])
    assert daily.times[0] == np.datetime64(orbit.day.isoformat(), "ns")
    summary = reprocess_file(orbit.l2, tmp_path / "o.nc", daily, find(SENSORS, orbit.l2, None))
    assert summary.n_reprocessed > 0
