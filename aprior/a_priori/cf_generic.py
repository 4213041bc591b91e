"""Any CF-described NO2 field: the ``cf-netcdf`` profile source and the shared builder.

The NO2 variable is the one whose ``standard_name`` names nitrogen dioxide
(``mass_concentration_of_nitrogen_dioxide_in_air``, ``mole_fraction_of_...``,
``mass_fraction_of_...``, ``number_concentration_of_...``), else the first of the common
names (``no2``, ``NO2``, ``no2_conc``, ``SpeciesConc_NO2``...). Its axes and grid come from
:mod:`aprior.a_priori.cf_axes`, its vertical coordinate from
:mod:`aprior.a_priori.cf_vertical`, its units from :mod:`aprior.a_priori.quantities`.
Time: none, one or many (CF units). Packed (int16 ``scale_factor``) data are unpacked; the
tiny negatives a packed 0 unpacks to (within one packing step) are set to 0, as the real
EAC4 files need. A plain
``xr.Dataset({"no2": (("height", "lat", "lon"), ...)}).to_netcdf(...)`` with units on
``no2`` and ``height`` is read without options.

:func:`field_from_dataset` is the builder the named model readers (GEOS-Chem, CAMS global,
LOTOS-EUROS) share: they find their variables and vertical coordinate, it does the rest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from aprior.a_priori.cf_axes import axis_roles, horizontal
from aprior.a_priori.cf_vertical import Vertical, elevation_variable, vertical
from aprior.a_priori.field import PressureLevels, ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.a_priori.quantities import check_amounts, quantity_of
from aprior.errors import InputFileError, ProfileFieldError
from aprior.units import decode_time, factor, is_convertible

log = logging.getLogger(__name__)

NO2_NAMES = ("no2", "no2_conc", "speciesconc_no2", "no2_concentration", "nitrogen_dioxide",
             "vmr_no2", "mmr_no2", "conc_no2", "no2_vmr", "no2_mmr")


def find_no2(variables: dict, ndim=lambda v: v.ndim) -> str | None:
    """The NO2 variable's name among ``variables`` (name -> variable), or None."""
    for name, v in variables.items():
        std = str(getattr(v, "attrs", {}).get("standard_name", "") if hasattr(v, "attrs")
                  else getattr(v, "standard_name", ""))
        if "nitrogen_dioxide" in std and ndim(v) >= 2:
            return str(name)
    lower = {str(n).lower(): n for n in variables}
    for key in NO2_NAMES:
        if key in lower and ndim(variables[lower[key]]) >= 2:
            return str(lower[key])
    return None


@contextlib.contextmanager
def open_dataset(path: str | PathLike[str]) -> Iterator[xr.Dataset]:
    """Open a netCDF file read-only with xarray (times decoded where CF units allow)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("file not found", p)
    try:
        ds = xr.open_dataset(p, decode_times=False, mask_and_scale=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputFileError(f"not a readable netCDF file ({exc})", p) from exc
    try:
        yield ds
    finally:
        ds.close()


def _times(ds: xr.Dataset, tdim: str | None, path) -> np.ndarray | None:
    if tdim is None:
        return None
    if tdim not in ds.variables:
        raise ProfileFieldError(f"time dimension {tdim!r} has no coordinate variable", path)
    v = ds[tdim]
    if np.issubdtype(v.dtype, np.datetime64):
        return v.values.astype("datetime64[ns]")
    return decode_time(np.asarray(v.values), v.attrs.get("units"), v.attrs.get("calendar"), path=path)


def _plane(ds: xr.Dataset, name: str, roles: dict[str, str], nt: int, hz, path,
           what: str) -> np.ndarray:
    """A 2D-per-time variable (surface pressure, elevation) as ``(t, y, x)`` in grid order."""
    v = ds[name]
    keep = [d for d in (roles.get("T"), roles["Y"], roles["X"]) if d is not None and d in v.dims]
    extra = {d: 0 for d in v.dims if d not in keep}
    if any(ds.sizes[d] > 1 for d in extra) or roles["Y"] not in v.dims or roles["X"] not in v.dims:
        raise ProfileFieldError(f"{what} {name!r} has dims {v.dims}, not the field's (y, x)", path)
    arr = np.asarray(v.isel(extra).transpose(*keep).values, np.float64)
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (nt, *arr.shape))
    return np.ascontiguousarray(arr[:, hz.y_order][:, :, hz.x_order])


def field_from_dataset(ds: xr.Dataset, var: str, path: str | PathLike[str], *, source: str,
                       vert: Vertical | None = None, roles: dict[str, str] | None = None,
                       surface_pressure: np.ndarray | None = None) -> ProfileField:
    """Build a :class:`ProfileField` from ``ds[var]`` (module docstring).

    Args:
        ds: the open dataset.
        var: the NO2 variable.
        path: the file, for messages.
        source: the ``source`` of the field.
        vert: the vertical coordinate if the caller knows it (named layouts), else found
            from CF attributes.
        roles: the dims' roles if the caller knows them.
        surface_pressure: ``(t, y, x)`` Pa in the file's y/x order, for callers that derive
            it (CAMS ``lnsp``); overrides ``vert.ps_var``.
    """
    roles = roles or axis_roles(ds, var, path)
    hz = horizontal(ds, var, roles["Y"], roles["X"], path)
    vert = vert or vertical(ds, var, roles.get("Z"), path)
    da = ds[var]
    units = str(da.attrs.get("units", "") or "")
    quantity, fac = quantity_of(units, variable=var, path=path)
    times = _times(ds, roles.get("T"), path)
    dims = [roles[r] for r in ("T", "Z", "Y", "X") if r in roles]
    da = da.isel({d: 0 for d in da.dims if d not in dims}).transpose(*dims)
    no2 = np.asarray(da.values, dtype=np.float32)
    if "T" not in roles:
        no2 = no2[None]
    if "Z" not in roles:
        no2 = no2[:, None]
    no2 = no2[:, vert.order][:, :, hz.y_order][:, :, :, hz.x_order]
    if fac != 1.0:
        no2 = no2 * np.float32(fac)
    scale = ds[var].encoding.get("scale_factor")
    if scale is not None:  # packed (int16) data: a true 0 unpacks within one step of 0
        step = abs(float(scale)) * abs(fac)
        no2[(no2 < 0) & (no2 >= -step)] = 0.0
    check_amounts(no2, quantity, units, variable=var, path=path)
    nt = no2.shape[0]
    if times is not None and nt > 1:
        t_order = np.argsort(times, kind="stable")
        times, no2 = times[t_order], no2[t_order]
    else:
        t_order = np.arange(nt)
    pressure, elevation, heights = vert.pressure, None, vert.heights
    if pressure is not None and pressure.interfaces is None:
        ps = surface_pressure
        if ps is None and vert.ps_var is not None:
            ps = _plane(ds, vert.ps_var, roles, nt, hz, path, "surface pressure") * vert.ps_factor
        elif ps is not None:
            ps = np.ascontiguousarray(ps[:, hz.y_order][:, :, hz.x_order])
        if ps is not None:
            ps = ps[t_order]
            if not (np.all(np.isfinite(ps)) and ps.min() >= 30_000 and ps.max() <= 120_000):
                raise ProfileFieldError(
                    f"surface pressure spans {np.nanmin(ps):.4g}-{np.nanmax(ps):.4g} Pa, not a "
                    "surface pressure; check its units", path)
            pressure = PressureLevels(pressure.a, pressure.b, ps.astype(np.float32), None,
                                      pressure.terrain_following)
    if vert.above_sea_level:
        name = elevation_variable(ds)
        if name is None:
            raise ProfileFieldError(
                "the heights are above sea level, but the file has no surface elevation "
                "(standard_name surface_altitude, or orog/HGT); add it", path)
        units = str(ds[name].attrs.get("units", "m") or "m")
        if not is_convertible(units, "m"):
            raise ProfileFieldError(f"surface elevation {name!r} has units {units!r}", path)
        elevation = (_plane(ds, name, roles, 1, hz, path, "surface elevation")[0]
                     * factor(units, "m")).astype(np.float32)
    try:
        return ProfileField(np.ascontiguousarray(no2), heights, hz.grid, times, source=source,
                            path=str(path), attrs=dict(ds.attrs), quantity=quantity,
                            pressure=pressure, surface_elevation=elevation)
    except ValueError as exc:
        raise ProfileFieldError(f"invalid profile field: {exc}", path) from exc


def read_cf_netcdf(path: str | PathLike[str], variable: str | None = None) -> ProfileField:
    """Read any CF-described NO2 field (module docstring)."""
    p = Path(path)
    with open_dataset(p) as ds:
        var = variable or find_no2(dict(ds.data_vars))
        if var is None or var not in ds.variables:
            raise ProfileFieldError(
                f"no NO2 variable (a standard_name naming nitrogen_dioxide, or one of "
                f"{', '.join(NO2_NAMES[:4])}...); the file has: {', '.join(map(str, ds.data_vars)) or 'none'}",
                p)
        source = str(ds.attrs.get("source") or ds.attrs.get("title") or p.name)
        return field_from_dataset(ds, var, p, source=source)


def _named_layout(ds: netCDF4.Dataset) -> bool:
    """True for files a named source reads (WRF, GEOS-Chem, LOTOS-EUROS, CAMS global)."""
    v = ds.variables
    return ("XLAT" in v and "MAP_PROJ" in ds.ncattrs()) or "SpeciesConc_NO2" in v or ("hp" in v and "no2" in v) \
        or ("no2" in v and ("lnsp" in v or "sp" in v))


class CFNetCDFSource:
    """The ``cf-netcdf`` profile source: any CF-described NO2 field."""

    name = "cf-netcdf"
    description = ("any CF netCDF NO2 field: lat/lon, 2D lat/lon or projected grids; heights, "
                   "pressure or hybrid levels; ug m-3, mol mol-1, ppb, kg kg-1 or molec cm-3")

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, lambda ds: not _named_layout(ds) and find_no2(ds.variables, lambda v: v.ndim) is not None)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_cf_netcdf(path)
