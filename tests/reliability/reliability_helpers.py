"""Helpers of the reliability tests: the real command line in a subprocess, debris and
input checks, auxiliary inputs that do or do not cover the test orbit."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORBIT_TIME = np.datetime64("2023-06-15T12:20:00")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(COLUMNS="200", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return e


def aprior(*args, timeout: float = 120) -> Run:
    """``python -m aprior ARGS`` in a subprocess, as a user runs it."""
    p = subprocess.run([sys.executable, "-m", "aprior", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=env(), stdin=subprocess.DEVNULL)
    return Run(p.returncode, p.stdout, p.stderr)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aprior", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            stdin=subprocess.DEVNULL)


def assert_one_line_error(run: Run, *fragments: str) -> None:
    """Exit 2, exactly one non-empty line on stderr starting with 'error:', no traceback."""
    assert run.code == 2, (run.code, run.err[-2000:])
    assert "Traceback" not in run.err and "Traceback" not in run.out, run.err
    assert len(run.lines) == 1, run.err
    assert run.lines[0].startswith("error: "), run.lines[0]
    for f in fragments:
        assert f.lower() in run.lines[0].lower(), (f, run.lines[0])


def everything(d: Path) -> list[str]:
    """Every file and directory under ``d``, hidden ones included, relative."""
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*")) if Path(d).exists() else []


def debris(d: Path) -> list[str]:
    """Temporaries, locks and staging directories left under ``d``."""
    return [p for p in everything(d) if ".aprior-" in p or p.endswith(".tmp") or ".partial" in p]


def digest(*paths: Path) -> dict[str, str]:
    out = {}
    for p in paths:
        for f in ([p] if Path(p).is_file() else sorted(Path(p).rglob("*"))):
            if Path(f).is_file():
                out[str(f)] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
    return out


def write_temperature(path: Path, *, west: float, south: float, day: str) -> Path:
    """An ERA5 pressure-level file with temperature over a 4 x 3 degree box, 24 hours."""
    from aprior.inputs.era5_cds import write_era5_pressure_levels

    lat = np.arange(south + 3.0, south - 0.01, -0.25)
    lon = np.arange(west, west + 4.01, 0.25)
    times = np.datetime64(day) + np.arange(24) * np.timedelta64(1, "h")
    levels = [1000, 925, 850, 700, 500, 300, 200, 100, 50, 10, 1]
    t = np.broadcast_to(np.linspace(290.0, 220.0, len(levels))[None, :, None, None],
                        (24, len(levels), lat.size, lon.size)).astype(np.float32)
    return write_era5_pressure_levels(path, times=times, levels_hpa=levels, lat=lat, lon=lon,
                                      fields={"t": t})


def write_pm25(path: Path, *, west: float, south: float, day: str) -> Path:
    """A GEOS-CF-like hourly PM2.5 file over a 4 x 3 degree box."""
    from aprior.inputs.pm25 import write_geoscf_pm25

    lat = np.arange(south, south + 3.01, 0.25)
    lon = np.arange(west, west + 4.01, 0.25)
    times = np.datetime64(day) + np.arange(24) * np.timedelta64(1, "h")
    values = np.full((24, lat.size, lon.size), 12.0, np.float32)
    return write_geoscf_pm25(path, times, lat, lon, values)
