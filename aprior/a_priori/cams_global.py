"""CAMS global forecasts and the EAC4 reanalysis: the ``cams-global`` profile source.

The layout of the Atmosphere Data Store's netCDF (``cams-global-atmospheric-composition-forecasts``
and ``cams-global-reanalysis-eac4``; the ECMWF parameter database for names and units):

- ``no2`` "Nitrogen dioxide mass mixing ratio", ``kg kg**-1`` (param 121.210);
- on model levels: ``level`` (older ``grib_to_netcdf`` files, ``long_name =
  "model_level_number"``, no units) or ``model_level`` (newer files), numbered 1 at the
  top to 137 (forecasts, IFS L137) or 60 (EAC4, IFS L60) at the surface; a request may
  hold any contiguous subset ending at the surface;
- the surface pressure as ``sp`` (Pa, param 134) or ``lnsp`` (its natural log,
  param 152, stored on model level 1); without either the levels are placed on the
  satellite's surface pressure;
- or on pressure levels: ``level`` in ``millibars`` (old) or ``pressure_level`` in hPa (new);
- ``latitude`` north to south, ``longitude`` 0-360 or -180..180, ``time`` (hours since
  1900-01-01) or ``valid_time``; old files may be int16-packed (``scale_factor``).

The half-level coefficients of L137 and L60 are ECMWF's published tables (bundled in
``ecmwf_levels.json``). Fields up to model level 1 reach 0.01 hPa and need no extension; a
subset that stops lower is extended with the constant mixing ratio of its top level.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np

from aprior.a_priori.cf_axes import axis_roles
from aprior.a_priori.cf_generic import _plane, field_from_dataset, open_dataset
from aprior.a_priori.cf_vertical import Vertical, vertical
from aprior.a_priori.field import PressureLevels, ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.errors import ProfileFieldError

VAR = "no2"
_MODEL_LEVEL_DIMS = ("level", "model_level", "hybrid", "lev")


@functools.lru_cache(maxsize=1)
def ecmwf_levels() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{137: (a, b), 60: (a, b)}``: IFS half-level coefficients, top (0) to surface."""
    data = json.loads(files("aprior.a_priori").joinpath("ecmwf_levels.json").read_text())
    return {int(k[1:]): (np.array(v["a"]), np.array(v["b"])) for k, v in data.items() if k.startswith("L")}


def model_levels(numbers: np.ndarray, path) -> Vertical:
    """The hybrid coordinate of IFS model levels ``numbers`` (1 = top), bottom first."""
    n = np.asarray(numbers).astype(int)
    if n.size < 2:
        raise ProfileFieldError(
            f"the file holds model level {n.tolist()} only: a single level gives no profile", path)
    nlev = int(n.max())
    if nlev not in ecmwf_levels():
        raise ProfileFieldError(
            f"model levels run to {nlev}; the IFS grids end at 137 (forecasts) or 60 (EAC4), so "
            "the levels do not reach the surface", path)
    order = np.argsort(-n, kind="stable")
    got = n[order]
    if not np.array_equal(got, np.arange(nlev, nlev - n.size, -1)):
        raise ProfileFieldError(
            f"model levels {sorted(n.tolist())[:5]}... are not a contiguous range ending at the "
            f"surface level {nlev}", path)
    a, b = ecmwf_levels()[nlev]
    k = np.arange(nlev, nlev - n.size - 1, -1)  # half levels, bottom first
    return Vertical(order=order, pressure=PressureLevels(a[k], b[k], terrain_following=True))


def read_cams_global(path: str | PathLike[str]) -> ProfileField:
    """Read ``no2`` of a CAMS global forecast or EAC4 file (module docstring)."""
    p = Path(path)
    with open_dataset(p) as ds:
        if VAR not in ds.variables:
            raise ProfileFieldError(
                f"no variable {VAR!r} (found: {', '.join(map(str, ds.data_vars))}); is this a CAMS "
                "global NO2 file?", p)
        roles = axis_roles(ds, VAR, p)
        zdim = roles.get("Z")
        if zdim is None:
            raise ProfileFieldError(
                f"{VAR!r} has no level dimension: the file holds one level (which one is not "
                "recorded); request several model or pressure levels", p)
        units = str(ds[zdim].attrs.get("units", "") or "").strip().lower()
        ps = None
        if units in ("", "1", "~") or "model" in str(ds[zdim].attrs.get("long_name", "")).lower() \
                or zdim == "model_level":
            vert = model_levels(ds[zdim].values, p)
            nt = ds.sizes[roles["T"]] if "T" in roles else 1
            if "sp" in ds.variables or "lnsp" in ds.variables:
                name = "sp" if "sp" in ds.variables else "lnsp"
                v = ds[name]
                if zdim in v.dims:  # lnsp is stored on model level 1, sharing the level dim
                    finite = [i for i in range(v.sizes[zdim]) if np.isfinite(v.isel({zdim: i}).values).all()]
                    if not finite:
                        raise ProfileFieldError(f"{name!r} has no complete level", p)
                    ds = ds.assign({name: v.isel({zdim: finite[0]})})
                raw = _plane(ds, name, roles, nt, _Identity(ds, roles), p, "surface pressure")
                ps = np.exp(raw) if name == "lnsp" else raw
        else:
            vert = vertical(ds, VAR, zdim, p)
        return field_from_dataset(ds, VAR, p, source=f"CAMS global ({p.name})", vert=vert,
                                  roles=roles, surface_pressure=ps)


class _Identity:
    """File-order y/x (``field_from_dataset`` puts the surface pressure in grid order)."""

    def __init__(self, ds, roles) -> None:
        self.y_order = np.arange(ds.sizes[roles["Y"]])
        self.x_order = np.arange(ds.sizes[roles["X"]])


def _is_cams_global(ds: netCDF4.Dataset) -> bool:
    v = ds.variables.get(VAR)
    if v is None or "XLAT" in ds.variables or "hp" in ds.variables:
        return False
    units = str(getattr(v, "units", "")).replace(" ", "")
    return units in ("kgkg**-1", "kgkg-1") and (
        "lnsp" in ds.variables or "sp" in ds.variables
        or any(d in v.dimensions for d in (*_MODEL_LEVEL_DIMS, "pressure_level")))


class CamsGlobalSource:
    """The ``cams-global`` profile source."""

    name = "cams-global"
    description = ("CAMS global forecasts and EAC4 reanalysis (no2 in kg kg**-1 on L137/L60 model "
                   "levels with sp or lnsp, or on pressure levels)")

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, _is_cams_global)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_cams_global(path)
