"""Which dims of a CF variable are time, vertical, y and x, and the regular grid they span.

Roles come from cf-xarray (``axis``, ``standard_name``, ``units`` and ``positive``
attributes of the coordinate variables), falling back to common names (``lat``,
``latitude``, ``south_north``, ``lev``, ``bottom_top``, ``valid_time``...). Any dim order is
accepted; other dims must have size 1.

The horizontal grid, any of:

- 1D latitude/longitude coordinates (regular), longitudes in 0-360 or -180..180;
- 1D projected coordinates with the variable's ``grid_mapping`` (Lambert conformal, LAEA,
  polar stereographic... anything pyproj reads from CF attributes or ``crs_wkt``);
- 2D latitude/longitude with a ``grid_mapping``: the cell centres are projected and must
  form a regular grid in the projection (WRF's Lambert grid is);
- 2D latitude/longitude that are in fact rectilinear (lat constant along x, lon along y).

A truly curvilinear grid without its projection is refused with a message saying what to
add: the footprint weights need cells with exact edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from aprior.a_priori.cf_field import regular_centres
from aprior.errors import ProfileFieldError
from aprior.grids.grid import Grid
from aprior.units import factor, is_convertible

_NAMES = {
    "T": ("time", "valid_time", "times", "t", "date", "forecast_time"),
    "Z": ("height", "level", "lev", "levels", "z", "altitude", "alt", "plev", "pressure_level",
          "pressure", "isobaricinhpa", "model_level", "bottom_top", "hybrid", "nlev", "layer",
          "lev_1", "zlev", "depth"),
    "Y": ("lat", "latitude", "y", "rlat", "south_north", "yc", "nlat", "j"),
    "X": ("lon", "longitude", "x", "rlon", "west_east", "xc", "nlon", "i"),
}
_DEGREES_N = ("degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn")
_DEGREES_E = ("degrees_east", "degree_east", "degrees_e", "degree_e", "degreese")


def _role_from_attrs(c: xr.DataArray) -> str | None:
    a = {k: str(v).strip().lower() for k, v in c.attrs.items() if isinstance(v, str)}
    if a.get("axis") in ("t", "z", "y", "x"):
        return a["axis"].upper()
    std, units = a.get("standard_name", ""), a.get("units", "")
    if std in ("latitude", "projection_y_coordinate", "grid_latitude") or units in _DEGREES_N:
        return "Y"
    if std in ("longitude", "projection_x_coordinate", "grid_longitude") or units in _DEGREES_E:
        return "X"
    if std == "time" or " since " in units or np.issubdtype(c.dtype, np.datetime64):
        return "T"
    if "positive" in a or "formula_terms" in a or std in (
            "height", "altitude", "air_pressure", "atmosphere_hybrid_sigma_pressure_coordinate",
            "model_level_number", "height_above_mean_sea_level", "atmosphere_sigma_coordinate"):
        return "Z"
    return None


def axis_roles(ds: xr.Dataset, var: str, path: str | PathLike[str]) -> dict[str, str]:
    """``{"T"|"Z"|"Y"|"X": dim}`` for the dims of ``ds[var]``; size-1 extra dims are allowed.

    Raises:
        ProfileFieldError: a dim of size > 1 with no role, two dims with one role, or no
            horizontal dims.
    """
    da = ds[var]
    cf_axes = {}
    try:
        cf_axes = {k: [d for d in v if d in da.dims] for k, v in da.cf.axes.items()}
    except Exception:  # cf-xarray is a hint; the attribute rules below decide
        cf_axes = {}
    roles: dict[str, str] = {}
    for dim in da.dims:
        role = next((k for k, v in cf_axes.items() if dim in v), None)
        if role is None and dim in ds.variables:
            role = _role_from_attrs(ds[dim])
        if role is None:
            role = next((k for k, names in _NAMES.items() if str(dim).lower() in names), None)
        if role is None:
            if ds.sizes[dim] == 1:
                continue
            raise ProfileFieldError(
                f"variable {var!r} has a dimension {dim!r} whose role (time, vertical, y, x) "
                "is unknown: give its coordinate an 'axis' or 'standard_name' attribute", path)
        if role in roles:
            raise ProfileFieldError(
                f"variable {var!r} has two {role} dimensions ({roles[role]!r}, {dim!r})", path)
        roles[role] = str(dim)
    if "X" not in roles or "Y" not in roles:
        raise ProfileFieldError(
            f"variable {var!r} has dims {tuple(da.dims)}; cannot find its horizontal (y, x) "
            "dimensions", path)
    return roles


@dataclass(frozen=True)
class Horizontal:
    """A field's grid and how to put its y/x axes in the grid's ascending order."""

    grid: Grid
    y_order: np.ndarray
    x_order: np.ndarray


def crs_of(ds: xr.Dataset, var: str, path: str | PathLike[str]) -> CRS | None:
    """The CRS of ``ds[var]``'s ``grid_mapping``, or None without one."""
    da = ds[var]
    name = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if not name:
        return None
    name = str(name).split(":")[0].strip()
    if name not in ds.variables:
        raise ProfileFieldError(f"grid_mapping {name!r} of {var!r} names no variable", path)
    attrs = dict(ds[name].attrs)
    try:
        wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        return CRS.from_wkt(wkt) if wkt else CRS.from_cf(attrs)
    except CRSError as exc:
        raise ProfileFieldError(f"grid-mapping variable {name!r} does not define a CRS ({exc})",
                                path) from exc


def _crs_text(crs: CRS) -> str:
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def grid_from_lonlat_2d(crs: CRS, lon: np.ndarray, lat: np.ndarray,
                        path: str | PathLike[str]) -> Horizontal:
    """The regular grid in ``crs`` whose cell centres are the 2D ``lon``/``lat`` (y, x).

    Raises:
        ProfileFieldError: the projected centres are not a regular grid (to 2 % of a cell).
    """
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    px, py = tr.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    xc, yc = px.mean(axis=0), py.mean(axis=1)
    dx = float(np.mean(np.abs(np.diff(xc)))) if xc.size > 1 else 0.0
    dy = float(np.mean(np.abs(np.diff(yc)))) if yc.size > 1 else 0.0
    if dx <= 0 or dy <= 0:
        raise ProfileFieldError("the 2D latitude/longitude do not span a grid of cells", path)
    off = max(float(np.max(np.abs(px - xc[None, :]))) / dx, float(np.max(np.abs(py - yc[:, None]))) / dy)
    steps = max(float(np.max(np.abs(np.abs(np.diff(xc)) - dx))) / dx,
                float(np.max(np.abs(np.abs(np.diff(yc)) - dy))) / dy)
    if off > 0.02 or steps > 0.02:
        raise ProfileFieldError(
            f"the 2D latitude/longitude are not a regular grid in the projection "
            f"(off by up to {100 * max(off, steps):.0f} % of a cell); aprior needs cells with "
            "exact edges", path)
    yo, xo = np.argsort(yc, kind="stable"), np.argsort(xc, kind="stable")
    xs, ys = xc[xo], yc[yo]
    grid = Grid(_crs_text(crs), float(xs[0] - dx / 2), float(ys[0] - dy / 2), dx, dy, xs.size, ys.size)
    return Horizontal(grid, yo, xo)


def _lonlat_2d(ds: xr.Dataset, var: str, ydim: str, xdim: str):
    """2D (lon, lat) variables on (ydim, xdim) named by ``coordinates`` or CF attributes."""
    lat = lon = None
    names = str(ds[var].attrs.get("coordinates", "") or ds[var].encoding.get("coordinates", "")).split()
    candidates = list(names) + [str(v) for v in ds.variables]
    for name in candidates:
        if name not in ds.variables:
            continue
        c = ds[name]
        if set(c.dims) - {ydim, xdim} and any(ds.sizes[d] > 1 for d in set(c.dims) - {ydim, xdim}):
            continue
        if not {ydim, xdim} <= set(c.dims):
            continue
        role = _role_from_attrs(c) or next(
            (k for k, n in (("Y", ("lat", "latitude", "xlat", "nav_lat")),
                            ("X", ("lon", "longitude", "xlong", "nav_lon"))) if name.lower() in n), None)
        if role == "Y" and lat is None:
            lat = c
        elif role == "X" and lon is None:
            lon = c
    if lat is None or lon is None:
        return None
    squeeze = {d: 0 for d in lat.dims if d not in (ydim, xdim)}
    lat = lat.isel(squeeze).transpose(ydim, xdim).values
    squeeze = {d: 0 for d in lon.dims if d not in (ydim, xdim)}
    return lon.isel(squeeze).transpose(ydim, xdim).values, lat


def horizontal(ds: xr.Dataset, var: str, ydim: str, xdim: str,
               path: str | PathLike[str]) -> Horizontal:
    """The regular grid of ``ds[var]`` on ``(ydim, xdim)`` (module docstring)."""
    crs = crs_of(ds, var, path)
    one_d = (xdim in ds.variables and ds[xdim].dims == (xdim,)
             and ydim in ds.variables and ds[ydim].dims == (ydim,))
    if one_d:
        xv, yv = ds[xdim], ds[ydim]
        x = np.asarray(xv.values, np.float64)
        y = np.asarray(yv.values, np.float64)
        geo = _role_from_attrs(xv) == "X" and str(xv.attrs.get("units", "")).lower() in _DEGREES_E
        geo = geo or (crs is None and str(xdim).lower() in ("lon", "longitude")
                      and str(ydim).lower() in ("lat", "latitude"))
        if crs is None and not geo:
            raise ProfileFieldError(
                f"variable {var!r} is on {ydim!r}/{xdim!r}, which are neither latitude/longitude "
                "(units degrees_north/degrees_east) nor projected coordinates with a grid_mapping; "
                "add the grid_mapping variable of the projection", path)
        if crs is None or crs.is_geographic:
            crs_text = "EPSG:4326" if crs is None else _crs_text(crs)
            x = np.round((x + 180.0) % 360.0 - 180.0, 10)
            if xv.dtype.itemsize <= 4:
                x, y = np.round(x, 4), np.round(y, 4)
        else:
            crs_text = _crs_text(crs)
            for v, name in ((xv, "x"), (yv, "y")):
                units = str(v.attrs.get("units", "m")) or "m"
                if not is_convertible(units, "m"):
                    raise ProfileFieldError(
                        f"projected coordinate {name!r} has units {units!r}; expected m or km", path)
            x = x * factor(str(xv.attrs.get("units", "m")) or "m", "m")
            y = y * factor(str(yv.attrs.get("units", "m")) or "m", "m")
        xo, yo = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
        grid = regular_centres(crs_text, x[xo], y[yo], stored=xv.dtype, path=path,
                               names=(str(xdim), str(ydim)))
        return Horizontal(grid, yo, xo)
    ll = _lonlat_2d(ds, var, ydim, xdim)
    if ll is None:
        raise ProfileFieldError(
            f"variable {var!r} has no coordinates for {ydim!r}/{xdim!r} (neither 1D coordinate "
            "variables nor 2D latitude/longitude)", path)
    lon, lat = ll
    if crs is not None and not crs.is_geographic:
        return grid_from_lonlat_2d(crs, lon, lat, path)
    if np.allclose(lat, lat[:, :1], atol=1e-6) and np.allclose(lon, lon[:1, :], atol=1e-6):
        x = np.round((lon[0] + 180.0) % 360.0 - 180.0, 10)
        y = lat[:, 0].astype(np.float64)
        xo, yo = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
        return Horizontal(regular_centres("EPSG:4326", x[xo], y[yo], stored=lon.dtype, path=path,
                                          names=("longitude", "latitude")), yo, xo)
    raise ProfileFieldError(
        f"variable {var!r} is on a curvilinear latitude/longitude grid without a grid_mapping; "
        "add the grid_mapping of its projection (e.g. lambert_conformal_conic with "
        "standard_parallel, longitude_of_central_meridian, latitude_of_projection_origin)", path)
