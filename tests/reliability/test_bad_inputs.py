"""A table of bad inputs for every command, through the real command line (subprocesses).

Each case must give exit code 2, exactly one line on stderr ("error: ..."), no traceback,
leave its inputs unchanged and leave nothing in the output location.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import pytest
from reliability_helpers import aprior, assert_one_line_error, digest, everything

FIXTURE_WORLD = Path(__file__).resolve().parents[2] / "fixtures" / "world"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad and good inputs, made once."""
    from conftest import build_world

    d = tmp_path_factory.mktemp("bad-inputs")
    (d / "w").mkdir()
    w = build_world(d / "w", n_scanline=40)
    garbage = d / "garbage.nc"
    garbage.write_bytes(b"this is not a netCDF file\n" * 40)
    co = d / "S5P_OFFL_L2__CO_____20230615T120000_20230615T130000_30000_03_020600_20230616T000000.nc"
    shutil.copy(w.l2, co)
    with netCDF4.Dataset(co, "a") as ds:
        ds["METADATA/GRANULE_DESCRIPTION"].setncattr("ProductShortName", "L2__CO____")
    bad_toml = d / "bad.toml"
    bad_toml.write_text("[reprocess]\nmin-coverage = 0.9\nno-such-option = 1\n")
    existing = d / "existing.nc"
    shutil.copy(w.l2, existing)
    empty_dir = d / "empty"
    empty_dir.mkdir()
    return {"l2": w.l2, "field": w.field_path, "garbage": garbage, "co": co, "toml": bad_toml,
            "existing": existing, "empty": empty_dir, "missing": d / "missing.nc", "root": d}


#: (command, arguments with {placeholders}, fragments the one line must contain)
CASES = [
    ("reprocess", ["{missing}", "-p", "{field}", "-o", "{out}/r.nc"], ["missing.nc", "does not exist"]),
    ("reprocess", ["{garbage}", "-p", "{field}", "-o", "{out}/r.nc"], ["garbage.nc"]),
    ("reprocess", ["{co}", "-p", "{field}", "-o", "{out}/r.nc"], ["L2__CO____", "L2__NO2___"]),
    ("reprocess", ["{l2}", "-p", "{missing}", "-o", "{out}/r.nc"], ["missing.nc", "does not exist"]),
    ("reprocess", ["{l2}", "-p", "{garbage}", "-o", "{out}/r.nc"], ["garbage.nc"]),
    ("reprocess", ["{l2}", "-p", "{field}", "-o", "{out}/r.nc", "--config", "{toml}"],
     ["bad.toml", "no_such_option"]),
    ("reprocess", ["{l2}", "-p", "{field}", "-o", "{out}/r.nc", "--min-coverage", "1.5"],
     ["min_coverage"]),
    ("reprocess", ["{l2}", "-p", "{field}", "-o", "{existing}"], ["existing.nc", "--overwrite"]),
    ("reprocess", ["{l2}", "-p", "{field}", "-o", "{l2}", "--overwrite"], ["overwrite an input"]),
    ("reprocess", ["{l2}", "-p", "{field}", "-o", "{out}/no/such/dir/r.nc"], ["does not exist"]),
    ("compare", ["{missing}", "--out", "{out}/report"], ["missing.nc"]),
    ("compare", ["{garbage}", "--out", "{out}/report"], ["garbage.nc"]),
    ("compare", ["{l2}", "--out", "{out}/report", "--region", "atlantis"], ["atlantis"]),
    ("generate", ["--date", "2023-13-45", "--out", "{out}/f.nc"], ["2023-13-45"]),
    ("generate", ["--date", "2023-01-13", "--data", "{missing}", "--out", "{out}/f.nc"],
     ["missing.nc"]),
    ("generate", ["--date", "2023-01-13", "--weights", "{garbage}", "--out", "{out}/f.nc"],
     ["garbage.nc"]),
    ("downscale", ["--date", "2023-01-13", "--eac4", "{missing}", "--out", "{out}/p.nc"],
     ["missing.nc"]),
    ("downscale", ["--date", "2023-01-13", "--eac4", "{garbage}", "--out", "{out}/p.nc"],
     ["garbage.nc"]),
    ("train", ["--phase", "1", "--data", "{missing}", "--out", "{out}/run"], ["missing.nc"]),
    ("train", ["--phase", "1", "--data", "{empty}", "--out", "{out}/run"], ["empty"]),
    ("evaluate", ["--data", "{missing}", "--out", "{out}/eval", "--runs", "{empty}"], ["phase1"]),
    ("evaluate", ["--model", "deepcams", "--data", "{missing}", "--out", "{out}/eval"],
     ["missing.nc"]),
    ("synth", ["--out", "{out}/w", "--start", "2023-02-30"], ["2023-02-30"]),
    ("synth", ["--out", "{existing}"], ["existing.nc"]),
    ("fetch", ["era5", "--start", "2023-01-01", "--end", "yesterday", "--dry-run"], ["yesterday"]),
    ("fetch", ["era5", "--start", "2023-01-01", "--end", "2023-01-02", "--region", "atlantis",
               "--dry-run"], ["atlantis"]),
    ("demo", ["--date", "2023-01-13", "--data", "{missing}", "--out", "{out}/demo"], ["missing.nc"]),
    ("demo", ["--date", "1999-01-01", "--out", "{out}/demo"], ["1999-01-01"]),
    ("models", ["nosuchmodel"], ["nosuchmodel"]),
]


@pytest.mark.parametrize(("command", "args", "fragments"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(files, tmp_path, command, args, fragments):
    out = tmp_path / "out"
    out.mkdir()
    values = {**{k: str(v) for k, v in files.items()}, "out": str(out)}
    argv = [a.format(**values) for a in args]
    before = digest(files["root"])
    run = aprior(command, *argv)
    assert_one_line_error(run, *fragments)
    assert digest(files["root"]) == before  # inputs unchanged
    assert everything(out) == []  # nothing partial, no debris
