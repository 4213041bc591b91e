"""Writing a synthetic PM2.5 world for DeepCAMS (``aprior synth-pm25``).

A directory that :func:`aprior.models.deepcams.archive.open_pm25_data` reads (its
``manifest.json`` is marked synthetic), separate from the fixture world made by
``aprior synth`` (whose PM2.5 comes from :mod:`aprior.synth.aerosol` and is unchanged)::

    manifest.json
    pm25/geoscf/geoscf_pm25_YYYYMMDD.nc   truth, hourly 0.25 degree (GEOS-CF layout), 00-23 UTC
    pm25/eac4/eac4_pm2p5_YYYYMMDD.nc      the 0.75 degree model, 3-hourly 00-21 UTC, EAC4
                                          layout as old grib_to_netcdf writes it: int16-packed
                                          kg m-3, lat 90..-90, lon -180..179.25, ``time``
    pm25/model/model_pm2p5_YYYYMMDD.nc    the same model hourly (float), for training on
                                          model-made coarse inputs

The truth and the model are :mod:`aprior.synth.pm25_world`; both spin up for
``spinup_hours`` before the first day, and the model's 12-hourly analysis (00 and 12 UTC)
nudges it halfway to the area mean of the truth. Frames are rounded to 10 significant bits
before writing (relative error below 0.05 %) so the files compress.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aprior._io import atomic_path, probe_writable, staging_dir
from aprior.errors import ConfigError, OutputExistsError
from aprior.inputs.pm25 import write_eac4_pm25, write_geoscf_pm25
from aprior.interrupts import deferred
from aprior.synth.manifest import publish
from aprior.synth.noise import round_bits
from aprior.synth.pm25_world import PM25Atmosphere, Sources, coarse_model, coarsen_state

log = logging.getLogger(__name__)

EPOCH = np.datetime64("2000-01-01T00", "h")
ANALYSIS_HOURS = (0, 12)
ANALYSIS_WEIGHT = 0.5


def _hours(t: np.datetime64) -> float:
    return float((np.datetime64(t, "h") - EPOCH).astype(np.int64))


def write_pm25_world(out: str | os.PathLike[str], *, seed: int = 0, start: str = "2023-03-01",
                     days: int = 8, spinup_hours: int = 72, overwrite: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     fine_step: float = 0.25) -> Path:
    """Write ``days`` days of the synthetic PM2.5 world ``seed`` from ``start`` into ``out``.

    Args:
        out: a new or empty directory (or one holding such a world, with ``overwrite``).
        progress: called with ``(hours done, hours total)`` after every model hour.
        fine_step: the truth's grid step in degrees (the model runs at 3x; 0.25 for the
            real layout, coarser for quick tests).

    Returns:
        the manifest's path.
    """
    root = Path(out)
    if days < 1 or spinup_hours < 1:
        raise ConfigError("days and spinup_hours must be at least 1")
    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        raise ConfigError(f"start must be YYYY-MM-DD, got {start!r}") from None
    _check_out(root, overwrite)
    with staging_dir(root) as stage:  # the world is whole or absent, even if interrupted
        t_first = np.datetime64(first.isoformat(), "h")
        h0 = _hours(t_first)
        total = spinup_hours + 24 * days - 1  # the last step reaches 23 UTC of the last day
        src = Sources(seed, h0, 24 * days)
        truth, model = PM25Atmosphere(src, seed, fine_step), coarse_model(src, seed, 3 * fine_step)
        s = truth.initial(h0 - spinup_hours)
        m = model.initial(h0 - spinup_hours)
        lat_f, lon_f = truth.lat, truth.lon
        entries: list[dict] = []
        fine_day: list[np.ndarray] = []
        coarse_day: list[np.ndarray] = []
        for k in range(1, total + 1):
            hour = h0 - spinup_hours + k
            s, m = truth.step_to(s, hour), model.step_to(m, hour)
            if int(hour) % 24 in ANALYSIS_HOURS:
                m = (m + ANALYSIS_WEIGHT * (coarsen_state(s) - m)).astype(np.float32)
            if progress is not None:
                progress(k, total)
            if k < spinup_hours:
                continue
            fine_day.append(round_bits(truth.surface(s, hour), 10))
            coarse_day.append(round_bits(model.surface(m, hour), 10))
            if len(fine_day) == 24:
                d = (k - spinup_hours) // 24
                day = first + dt.timedelta(days=d)
                times = t_first + np.timedelta64(24 * d, "h") + np.arange(24).astype("timedelta64[h]")
                entries += _write_day(stage, day, times, lat_f, lon_f, np.stack(fine_day),
                                      model, np.stack(coarse_day))
                fine_day, coarse_day = [], []
        _manifest(stage, seed, first, days, entries)
        with deferred():  # the old world goes and the new one comes in together
            _remove_old(root)
            publish(stage, root)
    return root / "manifest.json"


def _check_out(root: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``root`` unless ``overwrite`` and it holds a PM2.5 world."""
    if root.exists() and not root.is_dir():
        raise OutputExistsError("exists and is not a directory", root)
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise OutputExistsError("is not empty; pass --overwrite to replace a PM2.5 world", root)
        if _world_kind(root) != "pm25-world":
            raise OutputExistsError("is not empty and holds no synthetic PM2.5 world; refusing to "
                                    "write into it even with --overwrite", root)
    probe_writable(root.parent)


def _world_kind(root: Path) -> str | None:
    try:
        return json.loads((root / "manifest.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def _remove_old(root: Path) -> None:
    """Remove an earlier PM2.5 world's files from ``root`` (checked by :func:`_check_out`)."""
    if not root.is_dir():
        return
    shutil.rmtree(root / "pm25", ignore_errors=True)
    (root / "manifest.json").unlink(missing_ok=True)


def _write_day(root: Path, day: dt.date, times: np.ndarray, lat_f: np.ndarray, lon_f: np.ndarray,
               fine: np.ndarray, model: PM25Atmosphere, coarse: np.ndarray) -> list[dict]:
    tag = day.strftime("%Y%m%d")
    out = []
    for sub in ("geoscf", "eac4", "model"):
        (root / "pm25" / sub).mkdir(parents=True, exist_ok=True)
    p = write_geoscf_pm25(root / "pm25/geoscf" / f"geoscf_pm25_{tag}.nc", times, lat_f, lon_f, fine)
    out.append({"path": str(p.relative_to(root)), "kind": "pm25_geoscf", "date": day.isoformat()})
    lat_c, lon_c = model.lat[::-1], model.lon  # EAC4 layout: north first
    kg = coarse[:, ::-1, :] * 1e-9
    p = write_eac4_pm25(root / "pm25/eac4" / f"eac4_pm2p5_{tag}.nc", times[::3], lat_c, lon_c,
                        kg[::3], style="old", packing="int16")
    out.append({"path": str(p.relative_to(root)), "kind": "pm25_eac4", "date": day.isoformat()})
    p = write_eac4_pm25(root / "pm25/model" / f"model_pm2p5_{tag}.nc", times, lat_c, lon_c, kg)
    out.append({"path": str(p.relative_to(root)), "kind": "pm25_model", "date": day.isoformat()})
    log.info("PM2.5 world: wrote %s", day)
    return out


def _manifest(root: Path, seed: int, first: dt.date, days: int, entries: list[dict]) -> Path:
    doc = {"synthetic": True, "kind": "pm25-world", "seed": seed,
           "generator": "aprior.synth.pm25_world",
           "period": {"start": first.isoformat(),
                      "end": (first + dt.timedelta(days=days - 1)).isoformat()},
           "note": ("SYNTHETIC PM2.5 world: truth at 0.25 degree hourly and a 0.75 degree "
                    "model with its own errors; not real data."),
           "files": entries}
    target = root / "manifest.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return target


__all__ = ["write_pm25_world"]
