"""Faults injected into real command-line runs (subprocesses): kill -9 and SIGTERM mid-run,
concurrent writers, a read-only file system, colliding names, auxiliary inputs that miss the
orbit. Each asserts the exit code, the one-line message, unchanged inputs and no debris."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import pytest
from reliability_helpers import (
    aprior,
    assert_one_line_error,
    debris,
    digest,
    everything,
    start,
    write_pm25,
    write_temperature,
)

from aprior._io import output_lock


@pytest.fixture(scope="module")
def rworld(tmp_path_factory):
    """A small orbit over a 2 km field (tests/conftest.py) ."""
    from conftest import build_world

    return build_world(tmp_path_factory.mktemp("rworld"), n_scanline=120)



def _wait_for_temporary(d: Path, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Wait until the output's own temporary (``.r.nc.aprior-...tmp``) is being written."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if any(p.startswith(".r.nc.aprior-") and p.endswith(".tmp") for p in everything(d)):
            return True
        time.sleep(0.002)
    return False


def _valid_output(path: Path) -> bool:
    with netCDF4.Dataset(path) as ds:
        return "nitrogendioxide_tropospheric_column_reprocessed" in ds["PRODUCT"].variables


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_a_killed_reprocess_leaves_nothing_a_rerun_cannot_clean(rworld, tmp_path, how):
    out = tmp_path / "out"
    out.mkdir()
    before = digest(rworld.l2, rworld.field_path)
    args = ["reprocess", rworld.l2, "-p", rworld.field_path, "-o", out / "r.nc",
            "--block-scanlines", "1", "-q"]
    for _attempt in range(5):  # the run is short: retry until the kill lands mid-write
        proc = start(*args)
        if _wait_for_temporary(out, proc):
            proc.send_signal(how)
            _, err = proc.communicate(timeout=60)
            break
        proc.communicate(timeout=60)
        for p in out.iterdir():
            p.unlink()
    else:
        pytest.fail("could not catch the run while it wrote")
    # the signal lands while the output is written, or (rarely, on a loaded machine) just after
    # its rename: then the output is whole; never a partial file
    finished = (out / "r.nc").exists()
    if finished:
        assert _valid_output(out / "r.nc")
    if how == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert finished or debris(out)  # what kill -9 leaves...
    else:  # ...SIGTERM and SIGHUP are handled like Ctrl-C: one line, nothing left
        assert proc.returncode == 128 + how, err
        assert "terminated" in err and "Traceback" not in err
        assert debris(out) == []
    rerun = aprior(*args, "--overwrite")
    assert rerun.code == 0, rerun.err
    assert everything(out) == ["r.nc"] and _valid_output(out / "r.nc")  # stale files removed
    assert digest(rworld.l2, rworld.field_path) == before


def test_a_second_writer_of_the_same_output_is_refused_at_once(rworld, tmp_path):
    target = tmp_path / "r.nc"
    with output_lock(target):  # another run holds the output
        t0 = time.monotonic()
        run = aprior("reprocess", rworld.l2, "-p", rworld.field_path, "-o", target, "-q")
        assert time.monotonic() - t0 < 30
    assert_one_line_error(run, "another aprior run is writing this output")
    assert everything(tmp_path) == []


def test_two_concurrent_runs_one_output_exactly_one_result(rworld, tmp_path):
    target = tmp_path / "r.nc"
    args = ["reprocess", rworld.l2, "-p", rworld.field_path, "-o", target, "-q"]
    procs = [start(*args) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    loser = next(e for c, e in results if c == 2)
    assert ("another aprior run is writing this output" in loser
            or "output exists" in loser), loser
    assert everything(tmp_path) == ["r.nc"] and _valid_output(target)


def test_inputs_with_the_same_name_are_refused_before_any_work(rworld, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(rworld.l2, a / "orbit.nc")
    shutil.copy(rworld.l2, b / "orbit.nc")
    out = tmp_path / "out"
    run = aprior("reprocess", a / "orbit.nc", b / "orbit.nc", "-p", rworld.field_path, "-o", out)
    assert_one_line_error(run, "same file name", "orbit.nc")
    assert everything(out) == []


@pytest.fixture
def read_only_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only file system needs root to mount one; not root here")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({res.stderr.strip()})")
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_a_read_only_file_system_is_one_line_for_every_command(rworld, read_only_dir, tmp_path):
    ro = read_only_dir
    world = Path(__file__).resolve().parents[2] / "fixtures" / "world"
    reprocessed = tmp_path / "r.nc"
    assert aprior("reprocess", rworld.l2, "-p", rworld.field_path, "-o", reprocessed, "-q").code == 0
    cases = [
        ("reprocess", rworld.l2, "-p", rworld.field_path, "-o", ro / "r.nc"),
        ("reprocess", rworld.l2, rworld.field_path, "-p", rworld.field_path, "-o", ro / "sub"),
        ("compare", reprocessed, "--out", ro / "report"),
        ("synth", "--out", ro / "w", "--start", "2023-01-13", "--end", "2023-01-13"),
        ("demo", "--out", ro / "demo"),
        ("generate", "--date", "2023-01-13", "--out", ro / "f.nc"),
        ("downscale", "--date", "2023-01-13", "--out", ro / "p.nc"),
        ("train", "--phase", "1", "--data", world, "--out", ro / "run", "--preset", "tiny"),
        ("evaluate", "--model", "deepcams", "--data", world, "--out", ro / "eval"),
    ]
    for args in cases:
        run = aprior(*args)
        assert_one_line_error(run, str(ro))
        assert "Read-only file system" in run.lines[0] or "cannot write" in run.lines[0], run.lines
    assert everything(ro) == []


@pytest.mark.parametrize(("what", "west", "south", "day", "message"), [
    ("temperature", -20.0, 30.0, "2023-06-15", "does not cover this orbit"),
    ("temperature", 3.0, 49.0, "2023-06-16", "was observed at"),
    ("pm25", -20.0, 30.0, "2023-06-15", "does not cover this orbit"),
    ("pm25", 3.0, 49.0, "2023-06-17", "was observed at"),
])
def test_auxiliary_inputs_that_miss_the_orbit_are_refused(rworld, tmp_path, what, west, south,
                                                          day, message):
    aux = tmp_path / f"{what}.nc"
    (write_temperature if what == "temperature" else write_pm25)(aux, west=west, south=south,
                                                                day=day)
    before = digest(rworld.l2, rworld.field_path, aux)
    out = tmp_path / "out"
    out.mkdir()
    run = aprior("reprocess", rworld.l2, "-p", rworld.field_path, "-o", out / "r.nc",
                 f"--{what}", aux, "-q")
    assert_one_line_error(run, message, str(aux))
    assert everything(out) == []
    assert digest(rworld.l2, rworld.field_path, aux) == before


def test_covering_auxiliary_inputs_are_used(rworld, tmp_path):
    t = write_temperature(tmp_path / "t.nc", west=3.0, south=49.0, day="2023-06-15")
    pm = write_pm25(tmp_path / "pm.nc", west=3.0, south=49.0, day="2023-06-15")
    run = aprior("reprocess", rworld.l2, "-p", rworld.field_path, "-o", tmp_path / "r.nc",
                 "--temperature", t, "--pm25", pm, "-q")
    assert run.code == 0, run.err
    with netCDF4.Dataset(tmp_path / "r.nc") as ds:
        pm25 = ds["PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT/pm25_context"][:]
        assert float(pm25.max()) == pytest.approx(12.0, rel=1e-3)


def test_python_m_aprior_and_its_help_keep_brackets():
    res = subprocess.run([sys.executable, "-m", "aprior", "reprocess", "--help"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0 and "[reprocess]" in res.stdout
