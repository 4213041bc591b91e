"""Temperature profiles for the heights of the TM5 layers.

By default :mod:`aprior.retrieval.vertical` assumes a standard-atmosphere temperature
profile. With ``aprior reprocess --temperature FILE`` the layer temperatures come from an
ERA5 pressure-level file instead (variable ``t`` in K on ``pressure_level``/``level`` hPa,
``valid_time``/``time``, ``latitude``/``longitude``, as the CDS distributes it): sampled
bilinearly at each pixel centre, linearly in time at its observation time, and
interpolated linearly in log-pressure to the middle of each TM5 layer. Layers above the
file's top level take the top level's temperature, layers below its lowest level the
lowest level's.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import xarray as xr

from aprior.errors import InputFileError
from aprior.grids.interp import bilinear_weights


@dataclass(frozen=True)
class TemperatureField:
    """Air temperature on pressure levels.

    Attributes:
        times: ``(t,)`` datetime64[ns], ascending.
        pressure: ``(k,)`` level pressures in Pa, descending (surface first).
        lat, lon: ``(ny,)``, ``(nx,)`` degrees, ascending, evenly spaced.
        values: ``(t, k, ny, nx)`` float32 temperature in K.
        path: the file read.
    """

    times: np.ndarray
    pressure: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    values: np.ndarray
    path: str | None = None

    def __post_init__(self) -> None:
        t, k, ny, nx = self.values.shape
        if self.times.shape != (t,) or self.pressure.shape != (k,):
            raise ValueError("times/pressure do not match values")
        if self.lat.shape != (ny,) or self.lon.shape != (nx,):
            raise ValueError("lat/lon do not match values")
        if k < 2 or not np.all(np.diff(self.pressure) < 0):
            raise ValueError("pressure levels must be at least two, descending")


def _name(ds: xr.Dataset, *names: str) -> str | None:
    return next((n for n in names if n in ds.variables), None)


def read_era5_temperature(path: str | PathLike[str]) -> TemperatureField:
    """Read ``t`` from an ERA5 pressure-level netCDF file (new or old CDS names)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("temperature file not found", p)
    try:
        ds = xr.open_dataset(p)
    except Exception as exc:
        raise InputFileError(f"is not a readable netCDF file ({exc})", p) from None
    with ds:
        if "t" not in ds.variables:
            raise InputFileError("has no temperature variable 't'; an ERA5 pressure-level file is expected", p)
        tn, ln = _name(ds, "valid_time", "time"), _name(ds, "pressure_level", "level")
        la, lo = _name(ds, "latitude", "lat"), _name(ds, "longitude", "lon")
        if None in (tn, ln, la, lo):
            raise InputFileError("lacks a time, pressure_level, latitude or longitude coordinate", p)
        var = ds["t"]
        for d in var.dims:
            if d not in (tn, ln, la, lo):
                var = var.isel({d: 0})
        if str(var.attrs.get("units", "K")).strip() != "K":
            raise InputFileError(f"temperature units are {var.attrs.get('units')!r}; K expected", p)
        vals = var.transpose(tn, ln, la, lo).values.astype(np.float32)
        times = np.asarray(ds[tn].values).astype("datetime64[ns]")
        lev = ds[ln].values.astype(np.float64)
        lev_units = str(ds[ln].attrs.get("units", "hPa")).lower()
        lat = ds[la].values.astype(np.float64)
        lon = ds[lo].values.astype(np.float64)
    pres = lev * (100.0 if lev_units in ("hpa", "millibars", "mbar") else 1.0)
    if not np.all(np.isfinite(vals)):
        raise InputFileError("temperature has missing values", p)
    if vals.min() < 150 or vals.max() > 350:
        raise InputFileError("temperature values outside 150-350 K; are the units right?", p)
    order = np.argsort(-pres)
    vals, pres = vals[:, order], pres[order]
    if lat[0] > lat[-1]:
        lat, vals = lat[::-1], vals[:, :, ::-1]
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    lo_order = np.argsort(lon, kind="stable")
    to = np.argsort(times, kind="stable")
    try:
        return TemperatureField(times[to], pres, lat.copy(), lon[lo_order],
                                np.ascontiguousarray(vals[to][:, :, :, lo_order]), str(p))
    except ValueError as exc:
        raise InputFileError(f"has irregular coordinates ({exc})", p) from None


def layer_temperatures(field: TemperatureField, lon: np.ndarray, lat: np.ndarray, times: np.ndarray,
                       p_mid: np.ndarray) -> np.ndarray:
    """Temperatures (K) at the middle of each TM5 layer of each pixel.

    Args:
        lon, lat: ``(n,)`` pixel centres (degrees).
        times: ``(n,)`` datetime64 observation times (clamped to the file's range).
        p_mid: ``(n, L)`` layer mid pressures (Pa).

    Returns:
        ``(n, L)`` float64; rows of pixels outside the file's region are NaN.
    """
    rows, cols, w = bilinear_weights(field.lat, field.lon, np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    tf = field.times.astype(np.int64).astype(np.float64)
    tq = np.asarray(times).astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    if tf.size == 1:
        i0 = i1 = np.zeros(tq.size, np.intp)
        wt = np.zeros(tq.size)
    else:
        i1 = np.clip(np.searchsorted(tf, tq, side="right"), 1, tf.size - 1)
        i0 = i1 - 1
        wt = np.clip((tq - tf[i0]) / (tf[i1] - tf[i0]), 0.0, 1.0)
    # (n, k) profiles at the pixels
    v0 = np.einsum("nkc,nc->nk", field.values[i0[:, None], :, rows, cols].transpose(0, 2, 1), w)
    v1 = np.einsum("nkc,nc->nk", field.values[i1[:, None], :, rows, cols].transpose(0, 2, 1), w)
    prof = (1.0 - wt)[:, None] * v0 + wt[:, None] * v1
    # linear in log-pressure; x must ascend for np.interp: use -log p
    xk = -np.log(field.pressure)
    xq = -np.log(np.clip(p_mid, 1e-3, None))
    # vectorised piecewise-linear interpolation along k for all pixels
    j = np.clip(np.searchsorted(xk, xq, side="right"), 1, xk.size - 1)
    f = np.clip((xq - xk[j - 1]) / (xk[j] - xk[j - 1]), 0.0, 1.0)
    lo = np.take_along_axis(prof, j - 1, axis=1)
    hi = np.take_along_axis(prof, j, axis=1)
    return (1.0 - f) * lo + f * hi
