"""CLI tests of ``aprior reprocess`` and the top-level app, through typer's CliRunner."""

from __future__ import annotations

import hashlib
import shutil

import netCDF4
import numpy as np
from typer.testing import CliRunner

from aprior import __version__
from aprior.cli.main import app

runner = CliRunner()


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    for n in needles:
        assert n in text, text


def test_version_and_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("reprocess", "plugins"):
        assert cmd in r.output


def test_plugins_lists_builtins():
    r = runner.invoke(app, ["plugins"])
    assert r.exit_code == 0, r.output
    for name in ("cf", "cams-eu", "s5p-no2"):
        assert name in r.output


def test_reprocess_single_file(world, tmp_path):
    out = tmp_path / "out.nc"
    before = _sha(world.l2)
    r = runner.invoke(app, ["reprocess", str(world.l2), "--profiles", str(world.field_path), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert _sha(world.l2) == before
    with netCDF4.Dataset(out) as ds:
        assert "nitrogendioxide_tropospheric_column_reprocessed" in ds["PRODUCT"].variables
    # again without --overwrite: refused, output untouched
    stamp = _sha(out)
    r = runner.invoke(app, ["reprocess", str(world.l2), "--profiles", str(world.field_path), "-o", str(out), "-q"])
    _one_line_error(r, str(out), "--overwrite")
    assert _sha(out) == stamp


def _bad_inputs(world, tmp_path):
    garbage = tmp_path / "S5P_OFFL_L2__NO2____garbage.nc"
    garbage.write_bytes(b"this is not a netCDF file at all" * 100)
    truncated = tmp_path / "truncated.nc"
    data = world.l2.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing_var.nc"
    shutil.copy(world.l2, missing)
    with netCDF4.Dataset(missing, "a") as ds:
        ds["PRODUCT"].renameVariable("averaging_kernel", "something_else")
    co = tmp_path / "S5P_OFFL_L2__CO_____x.nc"
    shutil.copy(world.l2, co)
    with netCDF4.Dataset(co, "a") as ds:
        ds["METADATA/GRANULE_DESCRIPTION"].ProductShortName = "L2__CO____"
        for v in ("nitrogendioxide_tropospheric_column", "averaging_kernel"):
            ds["PRODUCT"].renameVariable(v, v.replace("nitrogendioxide", "carbonmonoxide") + "_co")
    return {"garbage": garbage, "truncated": truncated, "missing": missing, "co": co}


def test_bad_inputs_one_line_exit_2_no_output(world, tmp_path):
    bad = _bad_inputs(world, tmp_path)
    for kind, path in bad.items():
        before = _sha(path)
        out = tmp_path / f"out_{kind}.nc"
        r = runner.invoke(app, ["reprocess", str(path), "--profiles", str(world.field_path), "-o", str(out), "-q"])
        _one_line_error(r, path.name)
        assert not out.exists(), kind
        assert _sha(path) == before
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out_{kind}")]


def test_bad_profile_file(world, tmp_path):
    prof = tmp_path / "profiles.nc"
    with netCDF4.Dataset(prof, "w") as ds:
        ds.createDimension("n", 3)
        ds.createVariable("nothing", "f4", ("n",))[:] = 1
    out = tmp_path / "o.nc"
    r = runner.invoke(app, ["reprocess", str(world.l2), "--profiles", str(prof), "-o", str(out), "-q"])
    _one_line_error(r, "profiles.nc")
    assert not out.exists()


def test_many_files_one_bad_does_not_stop_others(world, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good1 = src / world.l2.name
    shutil.copy(world.l2, good1)
    good2 = src / world.l2.name.replace("_03_", "_04_")
    shutil.copy(world.l2, good2)
    (src / "S5P_OFFL_L2__NO2____broken.nc").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    outdir = tmp_path / "out"
    r = runner.invoke(app, ["reprocess", str(src / "*.nc"), "--profiles", str(world.field_path),
                            "-o", str(outdir), "--workers", "1"])
    assert r.exit_code == 2, r.output
    assert "1 of 3 files failed" in r.output
    assert sorted(p.name for p in outdir.iterdir()) == sorted([good1.name, good2.name])


def test_many_files_on_dask_workers(world, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    names = []
    for k in range(2):
        p = src / world.l2.name.replace("_03_", f"_0{k + 5}_")
        shutil.copy(world.l2, p)
        names.append(p.name)
    outdir = tmp_path / "out"
    r = runner.invoke(app, ["reprocess", *[str(src / n) for n in names], "--profiles", str(world.field_path),
                            "-o", str(outdir), "--workers", "2", "-q"])
    assert r.exit_code == 0, r.output
    cols = []
    for n in names:
        with netCDF4.Dataset(outdir / n) as ds:
            cols.append(np.ma.filled(ds["PRODUCT/nitrogendioxide_tropospheric_column_reprocessed"][:], np.nan))
    np.testing.assert_array_equal(cols[0], cols[1])
    assert np.isfinite(cols[0]).sum() > 100


def test_output_dir_same_as_input_dir_refused(world, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    a = src / "a_S5P.nc"
    b = src / "b_S5P.nc"
    shutil.copy(world.l2, a)
    shutil.copy(world.l2, b)
    r = runner.invoke(app, ["reprocess", str(a), str(b), "--profiles", str(world.field_path), "-o", str(src), "-q"])
    assert r.exit_code == 2
    assert "own directory" in r.output


def test_config_keys_are_the_long_option_names_with_or_without_dashes(world, tmp_path):
    out = tmp_path / "o.nc"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[reprocess]\n"--profiles" = "{world.field_path}"\nout = "{out}"\n'
                   'min-coverage = 0.5\nblock_scanlines = 16\ncrop = true\n')
    r = runner.invoke(app, ["reprocess", str(world.l2), "--config", str(cfg), "-q"])
    assert r.exit_code == 0, r.output
    with netCDF4.Dataset(out) as ds:  # --crop from the file: fewer scanlines than the input
        n_out = ds["PRODUCT"].dimensions["scanline"].size
    with netCDF4.Dataset(world.l2) as ds:
        assert n_out < ds["PRODUCT"].dimensions["scanline"].size
    # explicit options override the file; an unknown key names itself and the file
    cfg.write_text('[reprocess]\nmin-coverage = 0.5\nno-such = 1\n')
    r = runner.invoke(app, ["reprocess", str(world.l2), "-p", str(world.field_path), "-o",
                            str(tmp_path / "p.nc"), "--config", str(cfg)])
    _one_line_error(r, "no_such", "run.toml")


def test_failures_are_in_the_summary_table(world, tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"garbage" * 100)
    r = runner.invoke(app, ["reprocess", str(world.l2), str(bad), "-p", str(world.field_path),
                            "-o", str(tmp_path / "out"), "--threads", "1"])
    assert r.exit_code == 2
    table = r.output[r.output.index("aprior reprocess"):]
    assert "failed" in table and "bad.nc" in table and "reason" in table
