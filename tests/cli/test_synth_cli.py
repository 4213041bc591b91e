"""``aprior synth`` through typer's CliRunner on a local app."""

from __future__ import annotations

import json

import pytest
import typer
from conftest import command_app
from typer.testing import CliRunner

from aprior.cli.synth import register

ARGS = ["--region", "4.3,50.6,5.3,51.3", "--start", "2023-03-01", "--pm25-hours", "0", "--no-s5p"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return command_app(register)


def test_synth_writes_a_world_and_refuses_to_overwrite_it(app, tmp_path):
    out = tmp_path / "world"
    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--out", str(out), "--seed", "3", *ARGS])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 3
    assert manifest["period"] == {"start": "2023-03-01", "end": "2023-03-01"}
    assert not any(e["kind"] == "s5p_l2_no2" for e in manifest["files"])
    res = runner.invoke(app, ["synth", "--out", str(out), *ARGS])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["synth", "--out", str(out), "--overwrite", "-q", *ARGS])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "manifest.json").read_text())["seed"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--region", "nowhere"], "unknown region"),
    (["--start", "2023-03-02", "--end", "2023-03-01"], "before start"),
    (["--region", "20,60,21,61"], "does not overlap"),
])
def test_synth_bad_options_give_one_line_and_exit_2(app, tmp_path, extra, message):
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "w"), *ARGS, *extra])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "w").exists()
