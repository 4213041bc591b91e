"""CAMS European air-quality NO2 files (ADS netCDF): reader, writer, daily reductions.

What the reader supports (the layout of the ``cams-europe-air-quality-forecasts`` and
``-reanalyses`` netCDF files of the Atmosphere Data Store):

- variable ``no2_conc`` (``µg/m3``; other mass units are converted, mixing ratios refused)
  with dims ``([time,] level, latitude, longitude)`` in any order; extra dims of size 1
  are dropped. ``lat``/``lon``, ``height`` and ``valid_time`` are accepted as names.
- ``level`` in m above ground (km converted; no units means m).
- ``latitude`` ascending or descending (the real files descend), ``longitude`` in
  0-360 (the real files run 335.05 ... 359.95, 0.05 ... 44.95) or -180..180. The field is
  returned on an EPSG:4326 grid with longitudes in -180..180, both axes ascending, so a
  domain crossing the prime meridian reads as one contiguous grid (-25 ... 45).
- time, either absolute CF units ("hours since 2021-01-01 00:00:00") or, as in the real
  files, bare "hours" counted from the start date named in the time variable's
  ``long_name`` ("FORECAST time from 20211222" / "ANALYSIS time from ...") or, failing
  that, in a global ``FORECAST``/``ANALYSIS``/``REANALYSIS`` attribute
  ("Europe, 20211222+[0H_96H]") or the title. A file without a time dimension is a
  static field (``times`` None).

The reductions used for training (:func:`daily_mean`, :func:`window_mean`) are pure
functions of a :class:`ProfileField`.
"""

from __future__ import annotations

import logging
import re
from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np

from aprior._io import atomic_path
from aprior.a_priori.cf_field import (
    check_values,
    global_attrs,
    open_netcdf,
    read_float32,
    regular_centres,
    require_variable,
    text_attr,
)
from aprior.a_priori.field import ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.errors import ProfileFieldError
from aprior.units import (
    concentration_factor,
    decode_time,
    duration_seconds,
    is_convertible,
    offsets_to_times,
)
from aprior.units import factor as unit_factor

log = logging.getLogger(__name__)

VAR = "no2_conc"
_NAMES = {
    "longitude": ("longitude", "lon"),
    "latitude": ("latitude", "lat"),
    "level": ("level", "height"),
    "time": ("time", "valid_time"),
}


# -- reader ------------------------------------------------------------------------
def _dim_roles(var: netCDF4.Variable, path: Path) -> dict[str, str]:
    roles: dict[str, str] = {}
    for dim in var.dimensions:
        role = next((r for r, names in _NAMES.items() if dim.lower() in names), None)
        if role is not None:
            roles[role] = dim
        elif len(var.get_dims()[var.dimensions.index(dim)]) != 1:
            raise ProfileFieldError(f"variable {VAR!r} has an unexpected dimension {dim!r}", path)
    missing = [r for r in ("level", "latitude", "longitude") if r not in roles]
    if missing:
        raise ProfileFieldError(
            f"variable {VAR!r} has dims {var.dimensions}; missing {', '.join(missing)}", path)
    return roles


def _coord(ds: netCDF4.Dataset, dim: str, path: Path) -> netCDF4.Variable:
    v = ds.variables.get(dim)
    if v is None or v.dimensions != (dim,):
        raise ProfileFieldError(f"coordinate variable {dim!r} is missing", path)
    return v


def _start_date(ds: netCDF4.Dataset, tvar: netCDF4.Variable) -> np.datetime64 | None:
    candidates = [(text_attr(tvar, "long_name") or "", r"time\s+from\s+(\d{8})")]
    candidates += [(text_attr(ds, k) or "", r"(\d{8})") for k in ("FORECAST", "ANALYSIS",
                                                                  "REANALYSIS", "title")]
    for text, pattern in candidates:
        m = re.search(pattern, text)
        if m:
            s = m.group(1)
            return np.datetime64(f"{s[:4]}-{s[4:6]}-{s[6:]}T00:00", "ns")
    return None


def _times(ds: netCDF4.Dataset, dim: str, path: Path) -> np.ndarray:
    tvar = _coord(ds, dim, path)
    units = text_attr(tvar, "units")
    values = np.asarray(tvar[:])
    if units and " since " in units.lower():
        return decode_time(values, units, text_attr(tvar, "calendar"), path=path)
    step = duration_seconds(units)
    if step is None:
        raise ProfileFieldError(
            f"time has units {units!r}; expected CF units ('hours since ...') or 'hours' "
            "with the start date in the file", path)
    start = _start_date(ds, tvar)
    if start is None:
        raise ProfileFieldError(
            f"time is in {units!r} from a start date that the file does not name (no "
            "'... time from YYYYMMDD' long_name nor FORECAST/ANALYSIS attribute)", path)
    return offsets_to_times(values, step, start, path=path)


def _level_heights(ds: netCDF4.Dataset, dim: str, path: Path) -> np.ndarray:
    v = _coord(ds, dim, path)
    units = (text_attr(v, "units") or "m").strip()
    if not is_convertible(units, "m"):
        raise ProfileFieldError(f"level has units {units!r}; expected heights in m", path)
    return np.asarray(v[:], dtype=np.float64) * unit_factor(units, "m")


def _geo_axis(v: netCDF4.Variable) -> np.ndarray:
    c = np.asarray(v[:], dtype=np.float64)
    # float32 coordinates carry ~2e-5 degree noise; the CAMS grids are multiples of 0.05
    return np.round(c, 4) if v.dtype.itemsize <= 4 else c


def _source(ds: netCDF4.Dataset, path: Path) -> str:
    parts = [t for t in (text_attr(ds, "title"), text_attr(ds, "source")) if t]
    return f"CAMS Europe ({'; '.join(parts) if parts else path.name})"


def read_cams_eu(path: str | PathLike[str]) -> ProfileField:
    """Read a CAMS European NO2 file (see the module docstring for what is supported).

    Returns:
        a :class:`ProfileField` on an EPSG:4326 grid: ``no2`` ``(t, z, lat, lon)`` float32
        in ug m-3, latitudes ascending, longitudes ascending in -180..180, heights in m.
    """
    p = Path(path)
    with open_netcdf(p) as ds:
        var = require_variable(ds, VAR, p, "CAMS European NO2 file")
        roles = _dim_roles(var, p)
        factor = concentration_factor(text_attr(var, "units"), path=p, variable=VAR)
        heights = _level_heights(ds, roles["level"], p)
        lat_v, lon_v = _coord(ds, roles["latitude"], p), _coord(ds, roles["longitude"], p)
        lat, lon = _geo_axis(lat_v), _geo_axis(lon_v)
        times = _times(ds, roles["time"], p) if "time" in roles else None
        lon = np.round((lon + 180.0) % 360.0 - 180.0, 10)
        lon_order = np.argsort(lon, kind="stable")
        lat_order = np.argsort(lat, kind="stable")
        z_order = np.argsort(heights, kind="stable")
        keep = [roles[r] for r in ("level", "latitude", "longitude")]
        axes = [d for d in var.dimensions if d in keep and d != roles.get("time")]
        perm = [axes.index(d) for d in keep]
        nt = len(times) if times is not None else 1
        no2 = np.empty((nt, len(heights), len(lat), len(lon)), dtype=np.float32)
        for ti in range(nt):  # one time step at a time keeps the temporaries small
            index = tuple(ti if d == roles.get("time") else (slice(None) if d in keep else 0)
                          for d in var.dimensions)
            block = read_float32(var, index).transpose(perm)
            no2[ti] = block[z_order][:, lat_order][:, :, lon_order]
        check_values(no2, VAR, p)
        attrs, source = global_attrs(ds), _source(ds, p)
        stored = np.dtype(lon_v.dtype)
    if factor != 1.0:
        no2 *= np.float32(factor)
    grid = regular_centres("EPSG:4326", lon[lon_order], lat[lat_order], stored=stored, path=p,
                           names=("longitude", "latitude"))
    try:
        return ProfileField(no2, heights[z_order], grid, times, source=source, path=str(p),
                            attrs=attrs)
    except ValueError as exc:
        raise ProfileFieldError(f"invalid CAMS field: {exc}", p) from exc


# -- writer ------------------------------------------------------------------------
def _file_attrs(kind: str, levels: np.ndarray, times: np.ndarray | None) -> dict:
    nk = len(levels)
    where = "the Surface" if nk == 1 and levels[0] == 0 else f"{nk} levels"
    listed = ",".join(f"{h:g}" for h in levels)
    attrs = {
        "title": f"NO2 Air Pollutant {kind} at {where}",
        "institution": "Data produced by Meteo France",
        "source": "Data from ENSEMBLE model",
        "history": f"Model ENSEMBLE {kind}",
    }
    span = ""
    if times is not None:
        day = times[0].astype("datetime64[D]")
        last = int((times[-1] - day) // np.timedelta64(1, "h"))
        span = f" from {str(day).replace('-', '')}+[0H_{last}H]"
        attrs[kind] = f"Europe, {str(day).replace('-', '')}+[0H_{last}H]"
    attrs["summary"] = (f"ENSEMBLE model hourly {kind} of NO2 concentration at {where} "
                        f"({listed} m){span} on Europe")
    attrs["project"] = "MACC-RAQ (http://macc-raq.gmes-atmosphere.eu)"
    return attrs


def write_cams_eu(
    path: str | PathLike[str], *,
    times: np.ndarray | None,
    levels: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    no2_conc: np.ndarray,
    lon_convention: str = "0-360",
    attrs: dict | None = None,
    kind: str = "ANALYSIS",
    compress: bool = True,
) -> Path:
    """Write a file laid out like an ADS CAMS European NO2 file, atomically.

    Args:
        path: the output file.
        times: ``(t,)`` datetime64 valid times, or None for a file without a time
            dimension (then ``t == 1``). Stored as "hours" from the first day at 00 UTC,
            named in the time ``long_name`` ("ANALYSIS time from YYYYMMDD"), as ADS does.
        levels: ``(k,)`` heights in m above ground.
        lat: ``(ny,)`` latitudes in degrees, written as given (real files descend).
        lon: ``(nx,)`` longitudes in degrees, written in the given order and wrapped to
            ``lon_convention`` ("0-360" or "-180..180").
        no2_conc: ``(t, k, ny, nx)`` NO2 in ug m-3, on ``lat`` x ``lon`` as given.
        attrs: extra or replacing global attributes.
        kind: "ANALYSIS" or "FORECAST", used in the title and time attributes.
        compress: zlib-compress ``no2_conc`` (chunks of one level and time step).

    Returns:
        the path written.
    """
    levels = np.asarray(levels, dtype=np.float64)
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    data = np.asarray(no2_conc, dtype=np.float32)
    if lon_convention == "0-360":
        lon = lon % 360.0
    elif lon_convention == "-180..180":
        lon = (lon + 180.0) % 360.0 - 180.0
    else:
        raise ValueError(f"lon_convention must be '0-360' or '-180..180', not {lon_convention!r}")
    if times is not None:
        times = np.asarray(times).astype("datetime64[ns]")
    nt = 1 if times is None else len(times)
    if data.shape != (nt, len(levels), len(lat), len(lon)):
        raise ValueError(f"no2_conc shape {data.shape} != (t, k, ny, nx) = "
                         f"{(nt, len(levels), len(lat), len(lon))}")
    target = Path(path)
    with atomic_path(target, suffix=".nc") as tmp, \
            netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as ds:
        ds.setncatts({**_file_attrs(kind, levels, times), **(attrs or {})})
        for name, n in (("longitude", len(lon)), ("latitude", len(lat)), ("level", len(levels))):
            ds.createDimension(name, n)
        for name, values, atts in (
            ("longitude", lon, {"long_name": "longitude", "units": "degrees_east"}),
            ("latitude", lat, {"long_name": "latitude", "units": "degrees_north"}),
            ("level", levels, {"long_name": "level", "units": "m"}),
        ):
            v = ds.createVariable(name, "f4", (name,))
            v.setncatts(atts)
            v[:] = values
        dims: tuple[str, ...] = ("level", "latitude", "longitude")
        if times is not None:
            ds.createDimension("time", nt)
            day = times[0].astype("datetime64[D]")
            hours = (times - day) / np.timedelta64(1, "h")
            tv = ds.createVariable("time", "f4" if np.all(hours == np.round(hours)) else "f8",
                                   ("time",))
            tv.setncatts({"long_name": f"{kind} time from {str(day).replace('-', '')}",
                          "units": "hours"})
            tv[:] = hours
            dims = ("time", *dims)
        chunks = (1,) * (len(dims) - 2) + (len(lat), len(lon))
        nv = ds.createVariable(VAR, "f4", dims, zlib=compress, complevel=4, shuffle=compress,
                               chunksizes=chunks, fill_value=False)
        nv.setncatts({"species": "Nitrogen Dioxide", "units": "µg/m3", "value": "hourly values",
                      "standard_name": "mass_concentration_of_nitrogen_dioxide_in_air"})
        nv[...] = data if times is not None else data[0]
    return target


# -- reductions used by training ----------------------------------------------------
def _grouped_mean(field: ProfileField, keep: np.ndarray, offset: np.timedelta64,
                  label: str, min_count: int) -> ProfileField:
    times = field.times
    days = times[keep].astype("datetime64[D]")
    idx = np.flatnonzero(keep)
    starts, counts = np.unique(days, return_counts=True)
    means, out_days = [], []
    for day, n in zip(starts, counts, strict=True):
        if n < min_count:
            log.warning("skipping %s: %d values in the %s, fewer than %d", day, n, label, min_count)
            continue
        sel = idx[days == day]
        means.append(field.no2[sel].mean(axis=0, dtype=np.float64).astype(np.float32))
        out_days.append(day)
    if not means:
        raise ProfileFieldError(f"no day has values for the {label}", field.path)
    out_times = np.array(out_days, dtype="datetime64[D]").astype("datetime64[ns]") + offset
    return ProfileField(np.stack(means), field.heights, field.grid, out_times,
                        source=field.source, path=field.path,
                        attrs={**field.attrs, "time_reduction": label})


def _need_times(field: ProfileField, what: str) -> np.ndarray:
    if field.times is None:
        raise ProfileFieldError(f"the field has no time axis, so it has no {what}", field.path)
    return field.times.astype("datetime64[ns]")


def daily_mean(field: ProfileField, min_count: int = 1) -> ProfileField:
    """Mean over each UTC day of all the field's times on that day.

    Args:
        field: a field with times; ``no2`` ``(t, z, y, x)``.
        min_count: days with fewer values are skipped (with a warning).

    Returns:
        a field with one time per day, stamped at the day's start (00:00 UTC).
    """
    times = _need_times(field, "daily mean")
    return _grouped_mean(field, np.ones(times.shape, bool), np.timedelta64(0, "ns"),
                         "daily mean (UTC day)", min_count)


def window_mean(field: ProfileField, start_hour: float = 11, end_hour: float = 13,
                min_count: int = 1) -> ProfileField:
    """Per-day mean over the times t with ``start_hour <= t <= end_hour`` (UTC, inclusive).

    The DACNO2 S5P variant's "11:00-13:00 UTC" mean is the default: for hourly data the
    three values at 11, 12 and 13 UTC, averaged with equal weights.

    Args:
        field: a field with times; ``no2`` ``(t, z, y, x)``.
        start_hour, end_hour: the window in hours of the UTC day, ``0 <= start <= end <= 24``.
        min_count: days with fewer values in the window are skipped (with a warning).

    Returns:
        a field with one time per day, stamped at the window centre (12:00 UTC by default).
    """
    if not 0 <= start_hour <= end_hour <= 24:
        raise ValueError(f"need 0 <= start_hour <= end_hour <= 24, got {start_hour}, {end_hour}")
    times = _need_times(field, f"{start_hour:g}-{end_hour:g} UTC window")
    tod = (times - times.astype("datetime64[D]").astype("datetime64[ns]")) / np.timedelta64(1, "h")
    keep = (tod >= start_hour) & (tod <= end_hour)
    centre = np.timedelta64(int(round((start_hour + end_hour) / 2 * 3600e9)), "ns")
    return _grouped_mean(field, keep, centre,
                         f"mean of {start_hour:g}-{end_hour:g} h UTC (inclusive)", min_count)


class CamsEuropeSource:
    """The ``cams-eu`` profile source: CAMS European air-quality NO2 (ADS netCDF)."""

    name = "cams-eu"
    description = ("CAMS European air-quality analyses, forecasts and reanalyses "
                   "(ADS netCDF, variable 'no2_conc', 0.1 degree lat/lon)")

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, lambda ds: VAR in ds.variables)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_cams_eu(path)
