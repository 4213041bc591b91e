"""Writing DeepCAMS outputs: evaluation results (plain-text tables, CSV, JSON) and
downscaled PM2.5 fields.

A downscaled file holds ``pm25(time, lat, lon)`` float32 ug m-3 with ``lat`` ascending
and ``lon`` ascending in [-180, 180), the layout of :class:`~aprior.inputs.pm25.PM25Field`,
so :func:`aprior.inputs.pm25.open_pm25` reads it back unchanged. Provenance (methods,
models, weights and their SHA-256, source files, date, a SYNTHETIC note) goes into global
attributes. Every write is atomic.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from aprior import __version__
from aprior._io import atomic_path
from aprior.errors import ConfigError
from aprior.inputs.pm25 import PM25Field


def _fmt(x: float, digits: int) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_evaluation(result: dict) -> str:
    """Plain-text tables of :func:`~aprior.models.deepcams.evaluate.evaluate_deepcams`'s result."""
    lines = []
    if result.get("synthetic"):
        lines.append("SYNTHETIC data: skill on a synthetic world is not real-world skill.")
    lines.append(f"data: {result.get('data')}")
    lines.append(f"days: {', '.join(result.get('dates', []))} ({result.get('hours')} hours)"
                 + ("  WARNING: these days were used in training" if result.get("overlaps_training") else ""))
    for stage, w in result.get("weights", {}).items():
        lines.append(f"{stage} weights: {w.get('weights')} ({w.get('model')}, preset {w.get('preset')}, "
                     f"sha256 {str(w.get('sha256'))[:12]}); trained on: {w.get('trained_on')}")
    lines.append(f"metrics: {result.get('metric_note')}")
    for table in result.get("tables", []):
        rows = table["rows"]
        width = max(len("method"), *(len(r["method"]) for r in rows))
        lines += ["", table["title"],
                  f"  {'method':<{width}}  {'n':>4}  {'R':>8}  {'RMSE':>8}  {'MAE':>8}  {'PSNR':>6}  "
                  f"{'peak/in':>7}  {'max':>6}",
                  "  " + "-" * (width + 60)]
        for r in rows:
            lines.append(f"  {r['method']:<{width}}  {r['n_samples']:>4}  {_fmt(r['R'], 5):>8}  "
                         f"{_fmt(r['RMSE'], 4):>8}  {_fmt(r['MAE'], 4):>8}  {_fmt(r.get('PSNR'), 2):>6}  "
                         f"{_fmt(r.get('peak_ratio_mean'), 3):>7}  {_fmt(r.get('peak_ratio_max'), 3):>6}")
        if "truth_peak_ratio_mean" in table:
            lines.append(f"  {'(truth)':<{width}}  {'':>4}  {'':>8}  {'':>8}  {'':>8}  {'':>6}  "
                         f"{_fmt(table['truth_peak_ratio_mean'], 3):>7}  {_fmt(table['truth_peak_ratio_max'], 3):>6}")
        edges = [(b["lo"], b["hi"]) for b in rows[0].get("bins", [])] if rows else []
        if edges:
            head = "  ".join(f"{_bin(lo, hi):>15}" for lo, hi in edges)
            lines += [f"  RMSE / MAE by truth bin (ug m-3){'':<{max(width - 30, 0)}}  {head}"]
            for r in rows:
                cells = {(b["lo"], b["hi"]): b for b in r.get("bins", [])}
                vals = "  ".join(f"{_fmt(cells[e]['RMSE'], 2) + ' / ' + _fmt(cells[e]['MAE'], 2):>15}"
                                 if e in cells else f"{'':>15}" for e in edges)
                lines.append(f"  {r['method']:<{max(width, 32)}}  {vals}")
    return "\n".join(lines)


def _bin(lo: float, hi: float) -> str:
    return f">= {lo:g}" if math.isinf(hi) else f"{lo:g}-{hi:g}"


SUMMARY_FIELDS = ("table", "method", "n_samples", "R", "RMSE", "MAE", "PSNR", "peak_ratio_mean",
                  "peak_ratio_max")


def summary_rows(result: dict) -> list[dict]:
    """One row per table and method: :data:`SUMMARY_FIELDS` (bins are in the JSON only)."""
    return [{k: v for k, v in {"table": t["name"], **r}.items() if k in SUMMARY_FIELDS}
            for t in result.get("tables", []) for r in t["rows"]]


def write_evaluation(result: dict, path: str | os.PathLike[str]) -> Path:
    """Write the result atomically: ``.json`` (everything, per-sample metrics included) or
    ``.csv`` (the summary rows); ConfigError for another suffix."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        text = json.dumps(result, indent=1, allow_nan=True) + "\n"
    elif suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, list(SUMMARY_FIELDS), lineterminator="\n")
        w.writeheader()
        w.writerows(summary_rows(result))
        text = buf.getvalue()
    else:
        raise ConfigError("the evaluation output must end in .json or .csv", target)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


# -- downscaled fields ---------------------------------------------------------------------
STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"


def _attr(value: object) -> str | int | float:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def downscaled_dataset(field: PM25Field, provenance: dict) -> xr.Dataset:
    """The CF dataset of ``field`` (``(t, lat, lon)`` ug m-3) with ``provenance`` as attributes.

    Provenance values are written as strings or numbers (lists joined by ", ").
    """
    attrs = {"Conventions": "CF-1.8",
             "title": "PM2.5 downscaled with DeepCAMS (hourly, 0.25 degree)",
             "source": "aprior DeepCAMS spatiotemporal downscaling of CAMS EAC4 PM2.5",
             "history": f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} "
                        f"aprior {__version__} downscale"}
    attrs.update({str(k): _attr(v) for k, v in provenance.items() if v is not None})
    var = {"units": "ug m-3", "long_name": "PM2.5 mass concentration at the surface",
           "standard_name": STANDARD_NAME}
    return xr.Dataset(
        {"pm25": (("time", "lat", "lon"), np.asarray(field.values, np.float32), var)},
        coords={"time": ("time", field.times.astype("datetime64[ns]"), {"standard_name": "time"}),
                "lat": ("lat", np.asarray(field.lat, np.float64),
                        {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", np.asarray(field.lon, np.float64),
                        {"units": "degrees_east", "standard_name": "longitude"})},
        attrs=attrs)


def write_downscaled(path: str | os.PathLike[str], field: PM25Field, provenance: dict) -> Path:
    """Write ``field`` to ``path`` (CF netCDF-4, zlib), atomically; returns the path.

    Args:
        field: hourly PM2.5, ``(t, lat, lon)`` ug m-3 (lat ascending, lon in [-180, 180)).
        provenance: global attributes to record (see :func:`downscaled_dataset`).
    """
    target = Path(path)
    ds = downscaled_dataset(field, provenance)
    ny, nx = field.values.shape[1:]
    enc = {"pm25": {"zlib": True, "complevel": 1, "chunksizes": (1, ny, nx), "dtype": "float32"},
           "time": {"units": "hours since 1970-01-01 00:00:00", "calendar": "standard",
                    "dtype": "float64"}}
    with atomic_path(target, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", encoding=enc)
    return target
