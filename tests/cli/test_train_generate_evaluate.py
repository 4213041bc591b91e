"""``aprior train``, ``generate`` and ``evaluate`` through typer's CliRunner (tiny preset)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import typer
from conftest import command_app
from conftest import dacno2_tiny_world as tiny_world
from typer.testing import CliRunner

from aprior.a_priori.cf_field import read_cf_field
from aprior.cli import evaluate, generate, train
from aprior.models.checkpoint import load_checkpoint, load_weights

FAST = ["--device", "cpu", "--epochs", "1", "--max-batches", "1", "--micro-batch", "1",
        "--batch-size", "1", "-q"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return command_app(train.register, generate.register, evaluate.register)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    world = tiny_world(tmp_path_factory)
    return {"world": world, "cache": tmp_path_factory.getbasetemp() / "dacno2-cache",
            "runs": tmp_path_factory.mktemp("cli-runs")}


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(app, env):
    w, c, runs = env["world"], env["cache"], env["runs"]
    common = ["--data", w, "--cache-dir", c, *FAST]
    res = invoke(app, "train", "--phase", 1, "--out", runs / "phase1", "--preset", "tiny", *common)
    assert res.exit_code == 0, res.output
    for n in (2, 3):
        res = invoke(app, "train", "--phase", n, "--out", runs / f"phase{n}", "--from",
                     runs / f"phase{n - 1}", *common)
        assert res.exit_code == 0, res.output
    return runs


def test_three_phases_write_checkpoints_with_everything_generation_needs(trained):
    for n in (1, 2, 3):
        run = trained / f"phase{n}"
        for name in ("best.pt", "last.pt", "weights.pt", "metrics.jsonl", "metrics.csv"):
            assert (run / name).is_file(), (n, name)
        _, meta = load_weights(run / "weights.pt")
        assert meta["phase"] == n and meta["model"] == "dacno2" and meta["preset"] == "tiny"
        for key in ("config", "stats", "ratios", "grid", "levels_m", "spec", "aprior_version"):
            assert key in meta
        assert meta["trained_on"].startswith("SYNTHETIC")
        ckpt = load_checkpoint(run / "last.pt")
        assert ckpt["metadata"]["phase"] == n
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert rows[0]["epoch"] == 1 and "val_loss" in rows[0]
    p3 = load_weights(trained / "phase3" / "weights.pt")[1]
    assert p3["predecessor"]["phase"] == 2
    assert p3["training"]["settings"]["lr"] == pytest.approx(1e-4)
    assert set(p3["days"]["train"]) | set(p3["days"]["val"]) == {"2023-01-01", "2023-01-02"}


def test_resume_reaches_the_weights_of_an_uninterrupted_run(app, env, tmp_path):
    common = ["--phase", 1, "--data", env["world"], "--cache-dir", env["cache"], "--preset",
              "tiny", "--device", "cpu", "--max-batches", 2, "--micro-batch", 1, "--batch-size",
              1, "-q"]
    assert invoke(app, "train", "--out", tmp_path / "a", "--epochs", 2, *common).exit_code == 0
    assert invoke(app, "train", "--out", tmp_path / "b", "--epochs", 1, *common).exit_code == 0
    res = invoke(app, "train", "--out", tmp_path / "b", "--epochs", 2, "--resume", *common)
    assert res.exit_code == 0, res.output
    a = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    res = invoke(app, "train", "--out", tmp_path / "a", "--epochs", 2, *common)
    assert res.exit_code == 2 and "--resume" in res.output


def test_generate_writes_what_reprocess_reads_and_a_range(app, env, trained, tmp_path):
    w = trained / "phase3"
    out = tmp_path / "day.nc"
    res = invoke(app, "generate", "--date", "2023-01-01", "--data", env["world"], "--weights", w,
                 "--out", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    f = read_cf_field(out)
    grid = json.loads((env["world"] / "manifest.json").read_text())["grid_2km"]
    assert (f.grid.nx, f.grid.ny, f.grid.x0, f.grid.y0) == (grid["nx"], grid["ny"], grid["x0"], grid["y0"])
    assert f.heights.tolist() == [0, 50, 250, 500, 1000, 2000, 3000, 5000]
    assert str(f.times[0]) .startswith("2023-01-01T12:00")
    assert f.attrs["model"] == "DACNO2-S5P" and f.attrs["model_phase"] == 3
    assert f.attrs["weights_sha256"] and "SYNTHETIC" in f.attrs["comment"]
    res = invoke(app, "generate", "--date", "2022-12-31", "--days", 2, "--data", env["world"],
                 "--weights", w, "--out", tmp_path / "range", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "range").glob("*.nc"))
    assert [p.name for p in files] == ["dacno2_s5p_no2_20221231.nc", "dacno2_s5p_no2_20230101.nc"]
    assert str(read_cf_field(files[0]).times[0]).startswith("2022-12-31T12:00")
    res = invoke(app, "generate", "--date", "2023-01-01", "--data", env["world"], "--weights", w,
                 "--out", out, "--device", "cpu")
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_evaluate_writes_table2_in_the_papers_layout(app, env, trained, tmp_path):
    res = invoke(app, "evaluate", "--data", env["world"], "--runs", trained, "--out", tmp_path,
                 "--cache-dir", env["cache"], "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "Against EEA evaluation stations" in res.output and "SYNTHETIC" in res.output
    result = json.loads((tmp_path / "table2.json").read_text())
    assert result["columns"] == ["CAMS-2km", "Phase-1", "Phase-2", "Phase-3"]
    assert result["dates"] == ["2023-01-01", "2023-01-02"]
    t = result["tables"]
    assert [r["model"] for r in t["eea"]["rows"]] == result["columns"]
    assert [lay["layer"] for lay in t["cams"]["layers"]][-2:] == ["5000 m", "all"]
    assert len(t["cams"]["layers"]) == 9 and len(t["truth"]["layers"]) == 9
    assert {r["model"] for r in t["fine_scale"]["rows"]} == {*result["columns"], "truth"}
    shape = {r["apriori"]: r for r in t["shape"]["rows"]}  # the closed loop's diagnostics
    assert list(shape) == result["columns"]
    for r in shape.values():
        assert 0 < r["share_0_500m"] < 1 and -1 <= r["column_corr_truth"] <= 1
        assert r["ratio_50m_surface"] > 0 and math.isfinite(r["top_diff_clean"])
    shape_csv = list(csv.DictReader((tmp_path / "table2_shape.csv").open()))
    assert [r["apriori"] for r in shape_csv] == result["columns"]
    assert "top/mean clean" in res.output
    assert {r["year"] for r in t["bias_by_year"]["rows"]} == {2022, 2023}
    assert set(t["bias_by_year"]["shift"]) == {"stations", "cams", "truth"}
    assert set(t["bias_by_year"]["shift"]["truth"]) == set(result["columns"])
    assert set(t["bias_by_year"]["shift"]["cams"]) == set(result["columns"][1:])
    for r in t["eea"]["rows"]:
        assert r["n"] > 0 and r["rmse"] >= 0
    # each phase against CAMS-2km at the stations, day by day (two days: no interval)
    diffs = {(d["model"], d["score"]): d for d in t["eea"]["differences"]}
    assert set(diffs) == {(m, s) for m in result["columns"][1:] for s in ("rmse", "abs_bias", "r2")}
    by = {r["model"]: r for r in t["eea"]["rows"]}
    assert diffs[("Phase-3", "rmse")]["diff"] == pytest.approx(by["Phase-3"]["rmse"] - by["CAMS-2km"]["rmse"])
    assert all(d["n_days"] == 2 and math.isnan(d["ci_low"]) for d in diffs.values())
    assert "too few for an interval" in res.output
    assert len(list(csv.DictReader((tmp_path / "table2_station_differences.csv").open()))) == 9
    rows = list(csv.DictReader((tmp_path / "table2.csv").open()))
    assert {r["panel"] for r in rows} >= {"eea", "cams", "truth", "fine_scale", "bias_by_year"}
    assert "shape" not in {r["panel"] for r in rows}
    assert "R2" in (tmp_path / "table2.txt").read_text()
    res = invoke(app, "evaluate", "--data", env["world"], "--runs", trained, "--out", tmp_path)
    assert res.exit_code == 2 and "--overwrite" in res.output


@pytest.mark.parametrize("args, message", [
    (["train", "--phase", "2", "--out", "{tmp}/r"], "pass --from"),
    (["train", "--phase", "4", "--out", "{tmp}/r"], "phase must be 1, 2 or 3"),
    (["train", "--out", "{tmp}/r"], "give --phase"),
    (["train", "--model", "other", "--out", "{tmp}/r"], "--model must be"),
    (["train", "--phase", "1", "--out", "{tmp}/r", "--resume"], "no last.pt"),
    (["generate", "--date", "2024-06-01", "--out", "{tmp}/x.nc"], "no ERA5 single-level file for 2024-06-01"),
    (["generate", "--date", "2023-01-01", "--weights", "{tmp}/none.pt", "--out", "{tmp}/x.nc"], "no such weights"),
    (["generate", "--start", "2023-01-02", "--end", "2023-01-01", "--out", "{tmp}/d"], "before the start"),
    (["evaluate", "--out", "{tmp}/e"], "give the weights to evaluate"),
])
def test_bad_input_gives_one_line_and_exit_2(app, env, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = invoke(app, *args, "--data", env["world"], *(["--cache-dir", env["cache"]] if args[0] != "generate" else []))
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()
