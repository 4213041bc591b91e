"""``aprior compare`` command line (typer CliRunner on a local app)."""

from __future__ import annotations

import numpy as np
import pytest
from compare_files import P, S, base_granule, reprocessed_copy, truth_file
from conftest import command_app
from typer.testing import CliRunner

from aprior.cli.compare import register


@pytest.fixture(scope="module")
def app():
    return command_app(register)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    base = base_granule(root / "base")
    original = np.full((S, P), 2e15)
    main = reprocessed_copy(base, root / "main" / base.name, original=original,
                            reprocessed=original * 1.25, qa=np.ones((S, P)))
    truth = truth_file(root / "truth" / (base.stem + "_truth.nc"), base, original * 1.25)
    return root, base, main, truth


def test_compare_cli_writes_report_and_summary(app, inputs, tmp_path):
    root, _, main, truth = inputs
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["compare", str(root / "main" / "*.nc"), "--out", str(out),
                                 "--truth", str(truth.parent), "--label", "DACNO2",
                                 "--region", "3.9,50.0,4.5,51.0", "--resolution", "0.1", "-q"])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").is_file() and (out / "img").is_dir()
    r = CliRunner().invoke(app, ["compare", str(main), "--out", str(out), "--overwrite",
                                 "--label", "DACNO2", "--truth", str(truth)])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[0].startswith("DACNO2 vs TM5, domain (120 px): mean +25.0 %")
    assert "vs truth" in lines[2] and "TM5 bias -5.00e+14 (-20.0 %)" in lines[2]
    assert "DACNO2 bias" in lines[2] and ("(-0.0 %)" in lines[2] or "(+0.0 %)" in lines[2])
    assert "report:" in r.output
    html = (out / "report.html").read_text()
    assert "aprior compare " in html and "--truth" in html


def test_compare_cli_bad_input_one_line_exit_2(app, inputs, tmp_path):
    _, base, main, _ = inputs
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["compare", str(main), str(base), "--out", str(out)])
    assert r.exit_code == 2
    msg = r.output.strip()
    assert len(msg.splitlines()) <= 2 and "Traceback" not in r.output  # rich may wrap
    assert base.name[:30] in msg.replace("\n", "") and "not a reprocessed file" in msg.replace("\n", " ")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, needle", [
    (["--extent", "1,2,3"], "--extent"),
    (["--qa", "1.5"], "qa_min"),
    (["--region", "atlantis"], "unknown region"),
    (["--against", "/nonexistent/*.nc"], "no --against file"),
])
def test_compare_cli_bad_options(app, inputs, tmp_path, args, needle):
    _, _, main, _ = inputs
    r = CliRunner().invoke(app, ["compare", str(main), "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output.replace("\n", " ")
    assert not (tmp_path / "o").exists()
