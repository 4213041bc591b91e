"""The CDS side of ERA5: variable lexicon (names, units, CDS request names) and writers.

:data:`LEXICON` maps ERA5 short names (the netCDF variable names) to their ECMWF long
names and unit spellings, our units, GRIB parameter ids, CDS request names and a
plausible value range (used by :mod:`aprior.inputs.era5` to catch mislabelled units).

The writers produce files laid out like the CDS netCDF downloads, in the new (2024-)
style (``valid_time`` int64 seconds since 1970-01-01, ``pressure_level`` hPa, scalar
``number``, string ``expver``, float32 variables with GRIB-style attributes, netCDF4) or
the old style (``time`` int32 hours since 1900-01-01, ``level`` "millibars", int16 packed
variables, netCDF3). They are used by the synthetic world and the tests.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from aprior._io import atomic_path

PathLikeT = str | PathLike[str]

#: ERA5 single-level variables used by DACNO2 (ERA5 short names).
SINGLE_LEVEL_VARIABLES = ("u10", "v10", "t2m", "d2m", "sp", "blh", "ssrd", "tcc", "tp")
#: ERA5 pressure-level variables used by DACNO2 (humidity: "q", or "r" if preferred).
PRESSURE_LEVEL_VARIABLES = ("u", "v", "t", "q", "w", "z")
#: Default pressure levels (hPa), from the surface up (our choice; see the module doc).
DEFAULT_PRESSURE_LEVELS_HPA = (1000, 975, 950, 925, 900, 850, 700, 500)
#: Hours of the target day read (UTC).
HOURS = 24


@dataclass(frozen=True)
class Era5Var:
    """What we know of one ERA5 variable: CDS metadata, our units, plausible range."""

    long_name: str
    ecmwf_units: str
    units: str
    standard_name: str
    param_id: int
    grib_short: str
    cds_name: str
    valid_range: tuple[float, float]
    step_type: str = "instant"


LEXICON: dict[str, Era5Var] = {
    "u10": Era5Var("10 metre U wind component", "m s**-1", "m s-1", "unknown", 165, "10u",
                   "10m_u_component_of_wind", (-150, 150)),
    "v10": Era5Var("10 metre V wind component", "m s**-1", "m s-1", "unknown", 166, "10v",
                   "10m_v_component_of_wind", (-150, 150)),
    "t2m": Era5Var("2 metre temperature", "K", "K", "unknown", 167, "2t",
                   "2m_temperature", (150, 350)),
    "d2m": Era5Var("2 metre dewpoint temperature", "K", "K", "unknown", 168, "2d",
                   "2m_dewpoint_temperature", (150, 350)),
    "sp": Era5Var("Surface pressure", "Pa", "Pa", "surface_air_pressure", 134, "sp",
                  "surface_pressure", (3.0e4, 1.2e5)),
    "blh": Era5Var("Boundary layer height", "m", "m", "unknown", 159, "blh",
                   "boundary_layer_height", (0, 1.0e4)),
    "ssrd": Era5Var("Surface short-wave (solar) radiation downwards", "J m**-2", "J m-2",
                    "surface_downwelling_shortwave_flux_in_air", 169, "ssrd",
                    "surface_solar_radiation_downwards", (-1.0, 5.0e6), "accum"),
    "tcc": Era5Var("Total cloud cover", "(0 - 1)", "1", "cloud_area_fraction", 164, "tcc",
                   "total_cloud_cover", (-1e-3, 1.001)),
    "tp": Era5Var("Total precipitation", "m", "m", "unknown", 228, "tp",
                  "total_precipitation", (-1e-4, 0.5), "accum"),
    "u": Era5Var("U component of wind", "m s**-1", "m s-1", "eastward_wind", 131, "u",
                 "u_component_of_wind", (-200, 200)),
    "v": Era5Var("V component of wind", "m s**-1", "m s-1", "northward_wind", 132, "v",
                 "v_component_of_wind", (-200, 200)),
    "t": Era5Var("Temperature", "K", "K", "air_temperature", 130, "t", "temperature",
                 (150, 350)),
    "q": Era5Var("Specific humidity", "kg kg**-1", "kg kg-1", "specific_humidity", 133, "q",
                 "specific_humidity", (-1e-4, 0.06)),
    "r": Era5Var("Relative humidity", "%", "%", "relative_humidity", 157, "r",
                 "relative_humidity", (-1.0, 160.0)),
    "w": Era5Var("Vertical velocity", "Pa s**-1", "Pa s-1",
                 "lagrangian_tendency_of_air_pressure", 135, "w", "vertical_velocity",
                 (-100, 100)),
    "z": Era5Var("Geopotential", "m**2 s**-2", "m2 s-2", "geopotential", 129, "z",
                 "geopotential", (-2.0e4, 3.0e5)),
}

#: ECMWF spellings that are not UDUNITS (compared after :func:`norm_units`); every other
#: spelling is compared by value with pint (:func:`aprior.units.factor`).
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "m": ("m of water equivalent",),
    "1": ("(0 - 1)", "(0-1)", "0-1", "fraction"),
}
LEVEL_UNITS_HPA = ("hpa", "millibars", "millibar", "mbar", "mb", "hectopascal", "hectopascals")


def norm_units(units: str) -> str:
    """A unit string lower-cased, without "**" or "^", single-spaced ("m s**-1" -> "m s-1")."""
    s = units.strip().lower().replace("**", "").replace("^", "")
    return re.sub(r"\s+", " ", s)


def write_era5_single_levels(path: PathLikeT, *, times: np.ndarray, lat: np.ndarray,
                             lon: np.ndarray, fields: Mapping[str, np.ndarray],
                             style: str = "new") -> Path:
    """Write single-level fields as the CDS does.

    Args:
        path: output file (written atomically).
        times: ``(t,)`` datetime64 valid times.
        lat: ``(ny,)`` latitudes (degrees; descending like ERA5's).
        lon: ``(nx,)`` longitudes (degrees; -180..180 or 0..360).
        fields: ERA5 short name -> ``(t, ny, nx)`` values in ERA5 units.
        style: "new" (CDS 2024-) or "old" (CDS before 2024).
    """
    return _write(path, times, None, lat, lon, fields, style)


def write_era5_pressure_levels(path: PathLikeT, *, times: np.ndarray, levels_hpa: Sequence[float],
                               lat: np.ndarray, lon: np.ndarray,
                               fields: Mapping[str, np.ndarray], style: str = "new") -> Path:
    """Write pressure-level fields as the CDS does: ``fields`` values are ``(t, k, ny, nx)``
    with ``k = len(levels_hpa)`` (hPa); otherwise as :func:`write_era5_single_levels`."""
    return _write(path, times, np.asarray(levels_hpa, dtype=np.float64), lat, lon, fields, style)


def _write(path: PathLikeT, times: np.ndarray, levels: np.ndarray | None, lat: np.ndarray,
           lon: np.ndarray, fields: Mapping[str, np.ndarray], style: str) -> Path:
    import netCDF4

    if style not in ("new", "old"):
        raise ValueError(f"style must be 'new' or 'old', got {style!r}")
    times = np.asarray(times).astype("datetime64[s]")
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    shape = (times.size, *(() if levels is None else (levels.size,)), lat.size, lon.size)
    for name, arr in fields.items():
        if name not in LEXICON:
            raise ValueError(f"unknown ERA5 variable {name!r}")
        if np.shape(arr) != shape:
            raise ValueError(f"field {name!r} has shape {np.shape(arr)}, expected {shape}")
    new = style == "new"
    tdim, ldim = ("valid_time", "pressure_level") if new else ("time", "level")
    target = Path(path)
    with atomic_path(target, suffix=".nc") as tmp:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4" if new else "NETCDF3_64BIT_OFFSET")
        try:
            _write_coords(nc, new, tdim, ldim, times, levels, lat, lon)
            dims = (tdim, *(() if levels is None else (ldim,)), "latitude", "longitude")
            for name, arr in fields.items():
                _write_var(nc, name, np.asarray(arr, dtype=np.float64), dims, new)
        finally:
            nc.close()
    return target


def _write_coords(nc, new: bool, tdim: str, ldim: str, times: np.ndarray,
                  levels: np.ndarray | None, lat: np.ndarray, lon: np.ndarray) -> None:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if new:
        nc.setncatts({"GRIB_centre": "ecmf",
                      "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
                      "GRIB_subCentre": np.int64(0), "Conventions": "CF-1.7",
                      "institution": "European Centre for Medium-Range Weather Forecasts",
                      "history": f"{stamp} GRIB to CDM+CF via cfgrib (synthetic, written by aprior)"})
        nc.createDimension(tdim, times.size)
    else:
        nc.setncatts({"Conventions": "CF-1.6",
                      "history": f"{stamp} GMT by grib_to_netcdf (synthetic, written by aprior)"})
        nc.createDimension("longitude", lon.size)
        nc.createDimension("latitude", lat.size)
        nc.createDimension(tdim, None)
    if levels is not None:
        nc.createDimension(ldim, levels.size)
    if new:
        nc.createDimension("latitude", lat.size)
        nc.createDimension("longitude", lon.size)
        v = nc.createVariable("number", "i8")
        v.setncatts({"long_name": "ensemble member numerical id", "units": "1",
                     "standard_name": "realization"})
        v.assignValue(0)
        v = nc.createVariable(tdim, "i8", (tdim,))
        v.setncatts({"long_name": "time", "standard_name": "time",
                     "units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"})
        v[:] = times.astype(np.int64)
    else:
        v = nc.createVariable(tdim, "i4", (tdim,))
        v.setncatts({"units": "hours since 1900-01-01 00:00:00.0", "long_name": "time",
                     "calendar": "gregorian"})
        v[:] = ((times - np.datetime64("1900-01-01T00:00:00", "s"))
                // np.timedelta64(3600, "s")).astype(np.int32)
    ctype = "f8" if new else "f4"
    for name, vals, units in (("latitude", lat, "degrees_north"), ("longitude", lon, "degrees_east")):
        v = nc.createVariable(name, ctype, (name,))
        v.setncatts({"units": units, "long_name": name}
                    | ({"standard_name": name} if new else {}))
        if new and name == "latitude":
            v.stored_direction = "decreasing"
        v[:] = vals
    if levels is not None:
        if new:
            v = nc.createVariable(ldim, "f8", (ldim,))
            v.setncatts({"long_name": "pressure", "units": "hPa", "positive": "down",
                         "stored_direction": "decreasing", "standard_name": "air_pressure"})
        else:
            v = nc.createVariable(ldim, "i4", (ldim,))
            v.setncatts({"units": "millibars", "long_name": "pressure_level"})
        v[:] = levels
    if new:
        v = nc.createVariable("expver", str, (tdim,))
        v.setncatts({"long_name": "Experiment version"})
        v[:] = np.array(["0001"] * times.size, dtype=object)


def _write_var(nc, name: str, arr: np.ndarray, dims: tuple[str, ...], new: bool) -> None:
    meta = LEXICON[name]
    if new:
        v = nc.createVariable(name, "f4", dims, zlib=True, complevel=1, fill_value=np.float32(np.nan))
        v.setncatts({"GRIB_paramId": np.int64(meta.param_id), "GRIB_dataType": "an",
                     "GRIB_stepType": meta.step_type, "GRIB_gridType": "regular_ll",
                     "GRIB_name": meta.long_name, "GRIB_shortName": meta.grib_short,
                     "GRIB_units": meta.ecmwf_units, "GRIB_cfVarName": name,
                     "long_name": meta.long_name, "units": meta.ecmwf_units,
                     "standard_name": meta.standard_name,
                     "coordinates": f"number {dims[0]} latitude longitude expver"})
        v[:] = arr.astype(np.float32)
        return
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scale = (hi - lo) / 65530.0 if hi > lo else 1.0
    offset = (hi + lo) / 2.0
    v = nc.createVariable(name, "i2", dims, fill_value=np.int16(-32767))
    v.setncatts({"scale_factor": scale, "add_offset": offset,
                 "missing_value": np.int16(-32767), "units": meta.ecmwf_units,
                 "long_name": meta.long_name}
                | ({} if meta.standard_name == "unknown" else {"standard_name": meta.standard_name}))
    v[:] = np.ma.masked_invalid(arr)
