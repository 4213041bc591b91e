"""``aprior demo`` end to end on the bundled synthetic world (small preset demo weights)."""

from __future__ import annotations

import re

import h5py
import pytest
import typer
from typer.testing import CliRunner

from aprior.cli import demo as demo_cmd


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    demo_cmd.register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "demo" a named subcommand
        pass

    return app


@pytest.fixture(scope="module")
def demo_run(app, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--device", "cpu", "-q"])
    return out, result


def test_demo_runs_end_to_end_and_writes_the_report(demo_run):
    out, result = demo_run
    assert result.exit_code == 0, result.output
    report = out / "report" / "report.html"
    assert report.is_file() and "<img" in report.read_text()
    names = sorted(p.name for p in (out / "profiles").glob("*.nc"))
    assert names == [f"dacno2_s5p_2023{md}.nc" for md in ("0113", "0413", "0712", "1010")]
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) >= 3
    assert "truth" in result.output.lower()
    loop = [ln for ln in lines if ln.startswith("closed loop")]
    assert len(loop) == 1 and "4 orbit(s) on 4 day(s), months 1, 4, 7, 10" in loop[0]
    assert "all held out" in loop[0]  # none is a training or validation day of the bundled weights
    wins = re.search(r"DACNO2-S5P below CAMS-like on (\d) of (\d) day\(s\)", loop[0])
    assert wins and int(wins.group(1)) <= int(wins.group(2)) == 4
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".run.")]  # no temp dir left


def test_demo_reprocesses_with_both_apriori(demo_run):
    out, _ = demo_run
    for name in ("dacno2", "cams"):
        files = sorted((out / "reprocessed" / name).glob("*.nc"))
        assert len(files) == 4  # one orbit on each of the world's four days
        for path in files:
            with h5py.File(path, "r") as f:
                col = f["PRODUCT/nitrogendioxide_tropospheric_column_reprocessed"][...]
            assert (col[col < 9e36] > 0).sum() > 500


def test_demo_generated_profile_reads_as_a_profile_field(demo_run):
    from aprior.a_priori.cf_field import read_cf_field

    out, _ = demo_run
    fld = read_cf_field(out / "profiles" / "dacno2_s5p_20230113.nc")
    assert fld.no2.shape[1] == 8 and float(fld.no2.min()) >= 0.0
    assert fld.no2[:, 0].mean() > fld.no2[:, -1].mean()  # more NO2 at the surface than at 5 km


def test_demo_refuses_an_existing_output_and_a_day_without_an_orbit(app, demo_run, tmp_path):
    out, _ = demo_run
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "-q"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    bad = tmp_path / "bad"
    result = CliRunner().invoke(app, ["demo", "--out", str(bad), "--date", "2023-02-01", "-q"])
    assert result.exit_code == 2 and "2023-02-01" in result.output
    assert "Traceback" not in result.output and not bad.exists()


def test_demo_runs_one_day_when_asked(app, tmp_path):
    out = tmp_path / "one"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--date", "2023-07-12", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (out / "profiles").glob("*.nc")] == ["dacno2_s5p_20230712.nc"]
    assert "1 orbit(s) on 1 day(s), months 7" in result.output


def test_demo_outputs_have_the_umask_mode_and_final_paths_in_their_provenance(demo_run):
    import json
    import os
    import stat

    out, _ = demo_run
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    stats = json.loads((out / "report" / "stats.json").read_text())
    text = json.dumps(stats)
    assert ".aprior-" not in text  # no staging directory recorded
    assert stats["report"] == str(out / "report" / "report.html")
    assert all(f.startswith(str(out)) for f in stats["inputs"]["files"])
    assert stats["command"].startswith("aprior ")
