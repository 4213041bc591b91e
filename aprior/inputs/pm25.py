"""Surface PM2.5 fields: CAMS global reanalysis (EAC4) and GEOS-CF, read and sampled.

EAC4 (ADS ``cams-global-reanalysis-eac4``, variable ``particulate_matter_2.5um``): netCDF
variable ``pm2p5`` in kg m-3 (multiplied by 1e9 to ug m-3), 0.75 degree, 3-hourly;
``latitude`` 90..-90 (241 rows, poles included), ``longitude`` 0..359.25 (480); time
coordinate ``valid_time`` (new ADS) or ``time`` (old ADS).

GEOS-CF (collection ``chm_tavg_1hr_g1440x721_v1``): variable ``PM25_RH35_GCC`` (also
``pm25_rh35_gcc`` through OPeNDAP) in ug m-3, 0.25 degree, hourly; ``lat`` -90..90 (721),
``lon`` -180..179.75 (1440), ``time``; a size-one ``lev`` is dropped.

Readers return a :class:`PM25Field` with latitude ascending and longitude ascending in
[-180, 180). :func:`sample_pm25` interpolates it bilinearly in space (periodic in
longitude for global fields) and linearly in time.

Real files as the providers deliver them:

* **Packing.** Old ``grib_to_netcdf`` EAC4 files are int16 with ``scale_factor`` /
  ``add_offset`` (and ``_FillValue``/``missing_value`` -32767); xarray unpacks them.
  Zeros come back as tiny negatives (about -3.4e-21 kg m-3), and GRIB-derived float files
  carry the same artefact. Values in ``[-tolerance, 0)`` are clipped to 0 and counted in
  the log; ``tolerance`` is :data:`NEGATIVE_TOLERANCE_UG` (1e-6 ug m-3 = 1e-15 kg m-3)
  or one packing step (``scale_factor`` in ug m-3) for a packed variable, whichever is
  larger. Anything more negative is refused.
* **Regional subsets** (an ADS ``area``): any regular lat/lon box, north-first or
  south-first, longitudes -180..180 or 0..360; the reader only reorders. Whether a grid is
  global (periodic in longitude) is decided by the consumer (DeepCAMS:
  :mod:`aprior.models.deepcams.region`).
* **Half-hour stamps.** GEOS-CF time-averaged collections (``chm_tavg_1hr``) stamp each
  hourly mean at HH:30. The reader keeps the stamps as they are; :func:`hour_labels`
  turns them into hourly labels explicitly (see there) and refuses mixed or other minutes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from aprior._io import atomic_path
from aprior.errors import InputFileError
from aprior.grids.interp import bilinear_weights
from aprior.units import MASS_CONCENTRATION, amount_kind
from aprior.units import factor as unit_factor

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: packing artefacts down to this (ug m-3, 1e-15 kg m-3) are clipped to 0 (see module docstring)
NEGATIVE_TOLERANCE_UG = 1e-6

@dataclass(frozen=True)
class PM25Field:
    """A surface PM2.5 field on a regular lat/lon grid.

    Attributes:
        times: ``(t,)`` datetime64[ns] valid times, strictly increasing.
        lat: ``(ny,)`` ascending latitudes (degrees).
        lon: ``(nx,)`` ascending longitudes in [-180, 180) (degrees).
        values: ``(t, ny, nx)`` float32 PM2.5 in ug m-3, finite and >= 0.
        source: "eac4", "geos-cf" or a description.
    """

    times: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    values: np.ndarray
    source: str = "unknown"

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", np.asarray(self.times).astype("datetime64[ns]"))
        object.__setattr__(self, "values", np.asarray(self.values, dtype=np.float32))
        t, ny, nx = self.values.shape
        if self.times.shape != (t,) or self.lat.shape != (ny,) or self.lon.shape != (nx,):
            raise ValueError(f"coordinate shapes {self.times.shape}, {self.lat.shape}, "
                             f"{self.lon.shape} do not match values {self.values.shape}")
        if t > 1 and not np.all(np.diff(self.times) > np.timedelta64(0, "ns")):
            raise ValueError("times must be strictly increasing")
        if not (np.all(np.diff(self.lat) > 0) and np.all(np.diff(self.lon) > 0)):
            raise ValueError("lat and lon must be ascending")
        if self.lon[0] < -180 or self.lon[-1] >= 180:
            raise ValueError("lon must lie in [-180, 180)")


def _open(path: PathLike) -> xr.Dataset:
    p = Path(path)
    if not p.exists():
        raise InputFileError("no such file", p)
    try:
        return xr.open_dataset(p, mask_and_scale=True)
    except Exception as exc:  # netCDF backends raise many kinds
        raise InputFileError(f"is not a readable netCDF file ({exc})", p) from exc


def _find(ds: xr.Dataset, names: Sequence[str]) -> str | None:
    lower = {str(k).lower(): str(k) for k in ds.variables}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _read(path: PathLike, var_names: Sequence[str], source: str) -> PM25Field:
    p = str(path)
    with _open(p) as ds:
        name = _find(ds, var_names)
        if name is None:
            raise InputFileError(f"has no PM2.5 variable ({' or '.join(var_names)}); "
                                 f"is it a {source} PM2.5 file?", p)
        tname = _find(ds, ("valid_time", "time"))
        latn, lonn = _find(ds, ("latitude", "lat")), _find(ds, ("longitude", "lon"))
        if tname is None or latn is None or lonn is None:
            raise InputFileError("lacks a time, latitude or longitude coordinate", p)
        var = ds[name]
        for dim in var.dims:
            if dim not in (tname, latn, lonn):
                if var.sizes[dim] != 1:
                    raise InputFileError(f"variable {name!r} has an extra dimension {dim!r} "
                                         f"of size {var.sizes[dim]}; a surface field is expected", p)
                var = var.isel({dim: 0})
        if tname not in var.dims:
            var = var.expand_dims(tname)
        units = str(var.attrs.get("units", "")).strip()
        if amount_kind(units) == MASS_CONCENTRATION:
            scale = unit_factor(units, "ug m-3")
        else:
            raise InputFileError(f"variable {name!r} has units {units!r}; kg m-3 or ug m-3 expected", p)
        vals = var.transpose(tname, latn, lonn).values.astype(np.float64) * scale
        packing = abs(float(var.encoding.get("scale_factor", 0.0) or 0.0)) * scale
        times = np.asarray(ds[tname].values).astype("datetime64[ns]")
        lat = ds[latn].values.astype(np.float64)
        lon = ds[lonn].values.astype(np.float64)
    if not np.all(np.isfinite(vals)):
        raise InputFileError(f"variable {name!r} has missing (NaN or fill) values", p)
    vals = _clip_artefacts(vals, max(NEGATIVE_TOLERANCE_UG, packing), name, p)
    if lat[0] > lat[-1]:
        lat, vals = lat[::-1], vals[:, ::-1, :]
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    order = np.argsort(lon, kind="stable")
    torder = np.argsort(times, kind="stable")
    try:
        return PM25Field(times[torder], lat.copy(), lon[order],
                         np.ascontiguousarray(vals[torder][:, :, order]), source)
    except ValueError as exc:
        raise InputFileError(f"has an irregular time or lat/lon axis ({exc})", p) from exc


def _clip_artefacts(vals: np.ndarray, tol: float, name: str, path: str) -> np.ndarray:
    """Clip packing artefacts in ``[-tol, 0)`` (ug m-3) to 0 with a log line; refuse worse."""
    neg = vals < 0
    if not np.any(neg):
        return vals
    low = float(vals.min())
    if low < -tol:
        raise InputFileError(f"variable {name!r} has negative values (min {low:.3g} ug m-3, "
                             f"beyond the packing tolerance {tol:.3g} ug m-3)", path)
    log.info("%s: %d value(s) of %r between %.3g and 0 ug m-3 (packing artefacts, tolerance "
             "%.3g ug m-3) clipped to 0", path, int(neg.sum()), name, low, tol)
    return np.where(neg, 0.0, vals)


def hour_labels(times: np.ndarray, where: str = "") -> np.ndarray:
    """Hourly labels (datetime64[h]) of PM2.5 frame stamps, explicitly.

    * all stamps on the hour (EAC4, instantaneous): the hours themselves;
    * all stamps at HH:30 (GEOS-CF ``tavg_1hr``: the mean over HH:00-HH+1:00): labelled
      HH, the start of the averaging hour, as GEOS-CF names its files; every frame then
      sits 30 minutes before its centre, the same for all of them, so 3-hour windows and
      the fractions ``t = 1/3, 2/3`` between frames are unchanged. Logged once per call.

    Args:
        times: ``(t,)`` datetime64 stamps. where: the file, for messages.

    Raises:
        InputFileError: stamps at other minutes, or a mix of HH:00 and HH:30.
    """
    t = np.asarray(times).astype("datetime64[s]")
    minutes = set(((t - t.astype("datetime64[h]")).astype(np.int64)).tolist())
    if minutes <= {0}:
        return t.astype("datetime64[h]")
    if minutes == {1800}:
        log.info("%s: time-averaged frames stamped HH:30 are labelled with the hour they start "
                 "(HH:00-HH+1:00 mean -> HH)", where or "PM2.5 field")
        return t.astype("datetime64[h]")
    shown = ", ".join(f"{m // 60}:{m % 60:02d}" for m in sorted(minutes)[:4])
    raise InputFileError(f"has frames stamped at minutes:seconds {shown} past the hour; PM2.5 "
                         "frames must all be on the hour (instantaneous) or all at HH:30 "
                         "(hourly means)", where or None)


def read_eac4_pm25(path: PathLike) -> PM25Field:
    """Read CAMS EAC4 ``pm2p5`` (kg m-3) as ug m-3."""
    return _read(path, ("pm2p5",), "eac4")


def read_geoscf_pm25(path: PathLike) -> PM25Field:
    """Read GEOS-CF ``PM25_RH35_GCC`` (ug m-3)."""
    return _read(path, ("PM25_RH35_GCC",), "geos-cf")


def open_pm25(path: PathLike) -> PM25Field:
    """Read any supported PM2.5 field: CAMS EAC4 ``pm2p5``, GEOS-CF ``PM25_RH35_GCC``, or a
    CF field with a ``pm25``/``pm2p5`` variable on lat/lon (e.g. a downscaled product)."""
    return _read(path, ("pm2p5", "PM25_RH35_GCC", "pm25", "PM25"), "supported")


def concat_pm25(fields: Sequence[PM25Field]) -> PM25Field:
    """Join fields on the same grid along time (e.g. one file per day)."""
    if not fields:
        raise ValueError("no fields to join")
    f0 = fields[0]
    for f in fields[1:]:
        if f.lat.shape != f0.lat.shape or f.lon.shape != f0.lon.shape \
                or not (np.allclose(f.lat, f0.lat) and np.allclose(f.lon, f0.lon)):
            raise ValueError("fields are on different grids")
    times = np.concatenate([f.times for f in fields])
    order = np.argsort(times, kind="stable")
    values = np.concatenate([f.values for f in fields])[order]
    return PM25Field(times[order], f0.lat, f0.lon, values, f0.source)


def sample_pm25(field: PM25Field, lon: np.ndarray, lat: np.ndarray, times: np.ndarray) -> np.ndarray:
    """PM2.5 at points, ``(n,)`` float64 ug m-3.

    Bilinear in lat/lon (periodic in longitude for a global field), linear in time
    between the two enclosing field times; NaN outside the field's time range or region.

    Args:
        lon, lat: ``(n,)`` degrees (any longitude convention).
        times: ``(n,)`` datetime64.
    """
    lon = np.asarray(lon, np.float64).ravel()
    lat = np.asarray(lat, np.float64).ravel()
    t = np.asarray(times).astype("datetime64[ns]").ravel()
    if not (lon.shape == lat.shape == t.shape):
        raise ValueError("lon, lat and times must have the same length")
    rows, cols, w = bilinear_weights(field.lat, field.lon, lat, lon)
    tf = field.times.astype(np.int64).astype(np.float64)
    tq = t.astype(np.int64).astype(np.float64)
    if tf.size == 1:
        i0 = i1 = np.zeros(tq.size, np.int64)
        wt = np.zeros(tq.size)
        outside = tq != tf[0]
    else:
        i1 = np.clip(np.searchsorted(tf, tq, side="right"), 1, tf.size - 1)
        i0 = i1 - 1
        wt = (tq - tf[i0]) / (tf[i1] - tf[i0])
        outside = (tq < tf[0]) | (tq > tf[-1])
    v0 = np.sum(field.values[i0[:, None], rows, cols] * w, axis=1)
    v1 = np.sum(field.values[i1[:, None], rows, cols] * w, axis=1)
    out = (1.0 - wt) * v0 + wt * v1
    out[outside | np.isnat(t)] = np.nan
    return out


# -- writers (synthetic world) -----------------------------------------------------------
def int16_packing(values: np.ndarray) -> dict:
    """``grib_to_netcdf``-style int16 packing of ``values``: the encoding (dtype,
    ``scale_factor``, ``add_offset``, ``_FillValue`` -32767) that maps the minimum to
    -32766 and the maximum to 32766. Unpacked zeros come back as tiny non-zeros (the
    artefact real EAC4 files carry)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    scale = (hi - lo) / 65532.0 if hi > lo else 1.0
    return {"dtype": "int16", "scale_factor": scale, "add_offset": lo + 32766.0 * scale,
            "_FillValue": np.int16(-32767)}


def write_eac4_pm25(path: PathLike, times: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                    pm2p5: np.ndarray, style: str = "new", packing: str = "float") -> Path:
    """Write an ADS-like EAC4 PM2.5 file.

    Args:
        times: ``(t,)`` datetime64 valid times (3-hourly for real EAC4).
        lat: ``(241,)`` descending 90..-90; lon: ``(480,)`` 0..359.25 or -180..179.25
            (any regular grid, global or a regional box, works).
        pm2p5: ``(t, ny, nx)`` kg m-3.
        style: "new" (``valid_time``, with ``number``/``expver`` like the new ADS) or
            "old" (``time`` in hours since 1900, as ``grib_to_netcdf`` writes it).
        packing: "float" (float32, zlib) or "int16" (:func:`int16_packing`, as old
            ``grib_to_netcdf`` files are).
    """
    if style not in ("new", "old"):
        raise ValueError("style must be 'new' or 'old'")
    if packing not in ("float", "int16"):
        raise ValueError("packing must be 'float' or 'int16'")
    pm2p5 = np.asarray(pm2p5, np.float32)
    tname = "valid_time" if style == "new" else "time"
    attrs = {"units": "kg m**-3", "long_name": "Particulate matter d < 2.5 um",
             "standard_name": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"}
    ds = xr.Dataset({"pm2p5": ((tname, "latitude", "longitude"), pm2p5, attrs)},
                    coords={tname: np.asarray(times).astype("datetime64[ns]"),
                            "latitude": ("latitude", np.asarray(lat, np.float64), {"units": "degrees_north"}),
                            "longitude": ("longitude", np.asarray(lon, np.float64), {"units": "degrees_east"})},
                    attrs={"Conventions": "CF-1.7", "institution": "European Centre for Medium-Range Weather Forecasts"})
    if style == "new":
        ds = ds.assign_coords(number=np.int64(0), expver=(tname, np.array(["0001"] * len(times))))
    enc: dict = {"pm2p5": {"zlib": True, "complevel": 1}}
    if packing == "int16":
        enc["pm2p5"].update(int16_packing(pm2p5))
    if style == "old":
        enc["time"] = {"units": "hours since 1900-01-01 00:00:00.0", "dtype": "int32",
                       "calendar": "gregorian"}
    target = Path(path)
    with atomic_path(target) as tmp:
        ds.to_netcdf(tmp, encoding=enc)
    return target


def write_geoscf_pm25(path: PathLike, times: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                      pm25: np.ndarray) -> Path:
    """Write a GEOS-CF-like ``chm_tavg_1hr`` file with ``PM25_RH35_GCC``.

    Args:
        times: ``(t,)`` datetime64 (hourly); lat: ``(721,)`` -90..90; lon: ``(1440,)``
            -180..179.75; pm25: ``(t, ny, nx)`` ug m-3.
    """
    pm25 = np.asarray(pm25, np.float32)
    attrs = {"units": "ug m-3", "long_name": "Particulate matter with diameter below 2.5 um "
             "(GEOS-Chem, RH=35%)", "_FillValue": np.float32(1e15)}
    data = pm25[:, None]  # lev of size one, as in the collection
    ds = xr.Dataset({"PM25_RH35_GCC": (("time", "lev", "lat", "lon"), data, attrs)},
                    coords={"time": np.asarray(times).astype("datetime64[ns]"),
                            "lev": ("lev", np.array([72.0]), {"units": "1"}),
                            "lat": ("lat", np.asarray(lat, np.float64), {"units": "degrees_north"}),
                            "lon": ("lon", np.asarray(lon, np.float64), {"units": "degrees_east"})},
                    attrs={"Title": "GEOS-CF chm_tavg_1hr_g1440x721_v1 (synthetic)"})
    target = Path(path)
    with atomic_path(target) as tmp:
        ds.to_netcdf(tmp, encoding={"PM25_RH35_GCC": {"zlib": True, "complevel": 1}})
    return target
