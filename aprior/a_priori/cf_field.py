"""Our CF netCDF profile field: reader, writer and the ``cf`` profile source.

File layout (CF-1.8)::

    dimensions: [time,] height, y, x
    float no2([time,] height, y, x)   units "ug m-3", grid_mapping "crs",
                                      standard_name mass_concentration_of_nitrogen_dioxide_in_air
    double height(height)             m above ground, positive up, axis Z
    double y(y), x(x)                 cell centres (projection_y/x_coordinate, m)
    int crs                           crs_wkt, spatial_ref and the CF grid-mapping parameters
    [time(time)                       CF time units, standard calendar]

The reader also accepts y (or x) stored descending, heights in km, other mass units
(mg m-3, kg m-3, ...) and a CRS given by ``spatial_ref`` or CF parameters only. It refuses
NaN, negative values, mixing ratios and fields whose CRS is not explicit. The netCDF
helpers here (:func:`open_netcdf`, :func:`text_attr`, :func:`check_values`) are shared
with the other netCDF profile readers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np
from pyproj import CRS
from pyproj.exceptions import CRSError

from aprior import __version__
from aprior._io import atomic_path
from aprior.a_priori.field import ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.errors import InputFileError, ProfileFieldError
from aprior.grids.grid import Grid
from aprior.units import concentration_factor, decode_time, encode_time

log = logging.getLogger(__name__)

VAR = "no2"
STANDARD_NAME = "mass_concentration_of_nitrogen_dioxide_in_air"
_DEGREES = ("degrees_east", "degree_east", "degrees_e", "degree_e", "degrees_north",
            "degree_north", "degrees_n", "degree_n", "degrees", "degree")


# -- shared netCDF helpers ---------------------------------------------------------
def require_variable(ds: netCDF4.Dataset, name: str, path: Path, kind: str) -> netCDF4.Variable:
    """``ds[name]``, or a ProfileFieldError naming the file, what it has, and the expected kind."""
    var = ds.variables.get(name)
    if var is None:
        raise ProfileFieldError(
            f"no variable {name!r} (found: {', '.join(ds.variables) or 'none'}); is this a "
            f"{kind}?", path)
    return var


@contextlib.contextmanager
def open_netcdf(path: str | PathLike[str]) -> Iterator[netCDF4.Dataset]:
    """Open a netCDF file read-only; unreadable files raise InputFileError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("file not found", p)
    try:
        ds = netCDF4.Dataset(p, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputFileError(f"not a readable netCDF file ({exc})", p) from exc
    try:
        ds.set_auto_maskandscale(True)
        yield ds
    except (OSError, RuntimeError) as exc:  # HDF5 errors of truncated or corrupt files
        raise InputFileError(f"cannot read the file, it may be truncated ({exc})", p) from exc
    finally:
        ds.close()


def text_attr(obj: netCDF4.Dataset | netCDF4.Variable, name: str) -> str | None:
    """A text attribute, or None; tolerates Latin-1 bytes (the µ of some CAMS files)."""
    if name not in obj.ncattrs():
        return None
    try:
        value = obj.getncattr(name)
    except UnicodeDecodeError:
        value = obj.getncattr(name, encoding="latin-1")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value)


def global_attrs(ds: netCDF4.Dataset) -> dict:
    """The file's global attributes (text attributes decoded leniently)."""
    out = {}
    for key in ds.ncattrs():
        try:
            out[key] = ds.getncattr(key)
        except UnicodeDecodeError:
            out[key] = text_attr(ds, key)
    return out


def check_values(no2: np.ndarray, variable: str, path: str | PathLike[str]) -> None:
    """Refuse NaN and negative concentrations.

    Args:
        no2: ``(t, z, y, x)`` concentrations (any units).
        variable: the variable's name in the file, for messages.
        path: the file, for messages.
    """
    n_nan = int(np.count_nonzero(np.isnan(no2)))
    if n_nan:
        raise ProfileFieldError(
            f"variable {variable!r} contains {n_nan} NaN or missing values out of {no2.size}; "
            "a profile field must be complete (fill or crop it first)", path)
    n_neg = int(np.count_nonzero(no2 < 0))
    if n_neg:
        raise ProfileFieldError(
            f"variable {variable!r} has {n_neg} negative values (minimum {float(no2.min()):.4g}); "
            "concentrations must be >= 0", path)


def read_float32(var: netCDF4.Variable, index: tuple = ()) -> np.ndarray:
    """``var[index]`` as float32 with masked (fill) values as NaN."""
    data = var[index] if index else var[...]
    if np.ma.isMaskedArray(data):
        return np.ma.filled(data.astype(np.float32), np.nan)
    return np.asarray(data, dtype=np.float32)


def regular_centres(crs: str, x: np.ndarray, y: np.ndarray, *, stored: np.dtype,
                    path: str | PathLike[str], names: tuple[str, str] = ("x", "y")) -> Grid:
    """``Grid.from_centres`` with a tolerance for float32-stored coordinates.

    Args:
        crs: the grid's CRS.
        x, y: ``(nx,)``, ``(ny,)`` float64 ascending cell centres in CRS units.
        stored: the dtype the coordinates had in the file (float32 widens the tolerance).
        path: the file, for messages.
        names: the coordinates' names in the file, for messages.
    """
    rtol = 1e-4
    if np.dtype(stored).itemsize <= 4:
        span = max(float(np.max(np.abs(x))), float(np.max(np.abs(y))), 1.0)
        step = min(float(np.min(np.abs(np.diff(x)))) if x.size > 1 else 1.0,
                   float(np.min(np.abs(np.diff(y)))) if y.size > 1 else 1.0)
        rtol = max(rtol, 8 * float(np.finfo(np.float32).eps) * span / max(step, 1e-12))
    try:
        g = Grid.from_centres(crs, x, y, rtol=rtol)
    except ValueError as exc:
        msg = str(exc).replace("x coordinate", f"{names[0]} coordinate").replace(
            "y coordinate", f"{names[1]} coordinate")
        raise ProfileFieldError(f"{msg}; the field must be on a regular grid", path) from exc
    # snap away the last-bit noise of (x[-1] - x[0]) / (n - 1), so that equal grids compare equal
    return Grid(crs, round(g.x0, 9), round(g.y0, 9), round(g.dx, 9), round(g.dy, 9), g.nx, g.ny)


# -- reader ------------------------------------------------------------------------
def _crs(ds: netCDF4.Dataset, var: netCDF4.Variable, path: Path) -> str:
    name = text_attr(var, "grid_mapping")
    if name is None:
        units = {(text_attr(ds.variables[c], "units") or "").lower()
                 for c in ("x", "y") if c in ds.variables}
        if units & set(_DEGREES):
            raise ProfileFieldError(
                f"variable {VAR!r} has no grid_mapping and its x/y are in degrees; add a "
                "grid-mapping variable (e.g. latitude_longitude with crs_wkt) so the CRS is explicit",
                path)
        raise ProfileFieldError(
            f"variable {VAR!r} has no grid_mapping attribute, so its CRS is unknown; add a "
            "'crs' grid-mapping variable with a crs_wkt attribute", path)
    gm = ds.variables.get(name.strip())
    if gm is None:
        raise ProfileFieldError(f"grid_mapping {name!r} names no variable in the file", path)
    try:
        wkt = text_attr(gm, "crs_wkt") or text_attr(gm, "spatial_ref")
        crs = CRS.from_wkt(wkt) if wkt else CRS.from_cf({k: gm.getncattr(k) for k in gm.ncattrs()})
    except CRSError as exc:
        raise ProfileFieldError(f"grid-mapping variable {name!r} does not define a CRS ({exc})",
                                path) from exc
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def _axis(ds: netCDF4.Dataset, name: str, path: Path, projected: bool) -> np.ndarray:
    v = ds.variables.get(name)
    if v is None or v.dimensions != (name,):
        raise ProfileFieldError(f"coordinate variable {name!r} is missing", path)
    values = np.asarray(v[:], dtype=np.float64)
    units = (text_attr(v, "units") or "").strip().lower()
    if projected and units == "km":
        values = values * 1000.0
    return values


def _heights(ds: netCDF4.Dataset, path: Path) -> np.ndarray:
    v = ds.variables.get("height")
    if v is None or v.dimensions != ("height",):
        raise ProfileFieldError("coordinate variable 'height' is missing", path)
    units = (text_attr(v, "units") or "").strip().lower()
    if units in ("m", "metre", "metres", "meter", "meters"):
        factor = 1.0
    elif units in ("km", "kilometre", "kilometres", "kilometer", "kilometers"):
        factor = 1000.0
    else:
        raise ProfileFieldError(f"height has units {units or 'none'!r}; expected 'm' or 'km'", path)
    if (text_attr(v, "positive") or "up").strip().lower() != "up":
        raise ProfileFieldError("height must be positive up (height above ground)", path)
    h = np.asarray(v[:], dtype=np.float64) * factor
    if not np.all(np.isfinite(h)):
        raise ProfileFieldError("height has missing values", path)
    return h


def _times(ds: netCDF4.Dataset, path: Path) -> np.ndarray:
    v = ds.variables.get("time")
    if v is None or v.dimensions != ("time",):
        raise ProfileFieldError("coordinate variable 'time' is missing", path)
    return decode_time(np.asarray(v[:]), text_attr(v, "units"), text_attr(v, "calendar"),
                       path=path)


def read_cf_field(path: str | PathLike[str]) -> ProfileField:
    """Read and validate a CF profile field (layout in the module docstring).

    Returns:
        a :class:`ProfileField`: ``no2`` ``(t, z, y, x)`` float32 in ug m-3, rows and
        columns ascending; ``times`` None for a file without a time dimension.
    """
    p = Path(path)
    with open_netcdf(p) as ds:
        var = require_variable(ds, VAR, p, "CF profile field")
        dims = var.dimensions
        if dims not in (("height", "y", "x"), ("time", "height", "y", "x")):
            raise ProfileFieldError(
                f"variable {VAR!r} has dims {dims}; expected (height, y, x) or "
                "(time, height, y, x)", p)
        crs = _crs(ds, var, p)
        projected = not CRS.from_user_input(crs).is_geographic
        x, y = _axis(ds, "x", p, projected), _axis(ds, "y", p, projected)
        heights = _heights(ds, p)
        times = _times(ds, p) if dims[0] == "time" else None
        factor = concentration_factor(text_attr(var, "units"), path=p, variable=VAR)
        nt = len(times) if times is not None else 1
        no2 = np.empty((nt, len(heights), len(y), len(x)), dtype=np.float32)
        for ti in range(nt):  # one time at a time keeps the temporaries small
            no2[ti] = read_float32(var, (ti,)) if times is not None else read_float32(var)
        check_values(no2, VAR, p)
        attrs = global_attrs(ds)
        source = text_attr(ds, "source") or text_attr(ds, "title") or p.name
        stored = ds.variables["x"].dtype
    if factor != 1.0:
        no2 *= np.float32(factor)
    if y.size > 1 and y[0] > y[-1]:
        y, no2 = y[::-1], no2[:, :, ::-1]
    if x.size > 1 and x[0] > x[-1]:
        x, no2 = x[::-1], no2[:, :, :, ::-1]
    if heights.size > 1 and heights[0] > heights[-1]:
        heights, no2 = heights[::-1], no2[:, ::-1]
    grid = regular_centres(crs, x, y, stored=stored, path=p)
    try:
        return ProfileField(np.ascontiguousarray(no2), heights, grid, times,
                            source=source, path=str(p), attrs=attrs)
    except ValueError as exc:
        raise ProfileFieldError(f"invalid profile field: {exc}", p) from exc


# -- writer ------------------------------------------------------------------------
def _attr_value(value: object) -> object | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).dtype.kind in "iuf":
        return np.asarray(value)
    return str(value)


def _global_attrs(field: ProfileField, attrs: dict | None) -> dict:
    merged = {**field.attrs, **(attrs or {})}
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp}: written by aprior {__version__} (write_cf_field)"
    old = merged.get("history")
    out = {
        "Conventions": "CF-1.8",
        "title": (attrs or {}).get("title", "NO2 a-priori profile field"),
        "source": (attrs or {}).get("source", field.source),
        "history": f"{line}\n{old}" if old else line,
    }
    for key in ("Conventions", "history", "title", "source"):
        merged.pop(key, None)
    out.update(merged)
    return {k: v for k, v in ((k, _attr_value(v)) for k, v in out.items()) if v is not None}


def write_cf_field(
    path: str | PathLike[str], field: ProfileField, *, attrs: dict | None = None,
    compress: bool = True,
) -> Path:
    """Write ``field`` as our CF netCDF profile field, atomically.

    Args:
        path: the output file (replaced if it exists; callers check overwrite rules).
        field: the field; ``no2`` ``(t, z, y, x)`` ug m-3 is written as float32, chunked
            one level at a time. A field without times is written without a time dimension.
        attrs: provenance attributes added to the file's global attributes (they win over
            ``field.attrs``); the history line of this write is prepended.
        compress: zlib-compress the data (level 4, shuffle).

    Returns:
        the path written.
    """
    if field.heights is None or field.surface_elevation is not None or field.quantity != "mass_concentration":
        raise ValueError(f"write_cf_field writes fields on heights above ground in ug m-3, not "
                         f"{field.vertical_kind} in {field.units}")
    target = Path(path)
    grid, crs = field.grid, field.grid.pyproj_crs
    timed = field.times is not None
    dims = (("time",) if timed else ()) + ("height", "y", "x")
    chunks = ((1,) if timed else ()) + (1, grid.ny, grid.nx)
    with atomic_path(target, suffix=".nc") as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        ds.setncatts(_global_attrs(field, attrs))
        if timed:
            ds.createDimension("time", len(field.times))
        ds.createDimension("height", field.nz)
        ds.createDimension("y", grid.ny)
        ds.createDimension("x", grid.nx)
        if timed:
            values, units = encode_time(field.times)
            tv = ds.createVariable("time", values.dtype, ("time",))
            tv.setncatts({"standard_name": "time", "long_name": "time", "units": units,
                          "calendar": "standard", "axis": "T"})
            tv[:] = values
        hv = ds.createVariable("height", "f8", ("height",))
        hv.setncatts({"long_name": "height above ground", "standard_name": "height",
                      "units": "m", "positive": "up", "axis": "Z"})
        hv[:] = field.heights
        geo = crs.is_geographic
        for name, values, std, units in (
            ("y", grid.y, "latitude" if geo else "projection_y_coordinate",
             "degrees_north" if geo else "m"),
            ("x", grid.x, "longitude" if geo else "projection_x_coordinate",
             "degrees_east" if geo else "m"),
        ):
            cv = ds.createVariable(name, "f8", (name,))
            cv.setncatts({"standard_name": std, "long_name": f"{name} of cell centre",
                          "units": units, "axis": name.upper()})
            cv[:] = values
        cm = ds.createVariable("crs", "i4")
        cf = {k: _attr_value(v) for k, v in crs.to_cf().items()}
        cm.setncatts({k: v for k, v in cf.items() if v is not None})
        cm.setncattr("spatial_ref", crs.to_wkt())
        nv = ds.createVariable(VAR, "f4", dims, zlib=compress, complevel=4, shuffle=compress,
                               chunksizes=chunks, fill_value=False)
        nv.setncatts({"standard_name": STANDARD_NAME, "long_name": "NO2 mass concentration",
                      "units": "ug m-3", "grid_mapping": "crs"})
        data = field.no2 if timed else field.no2[0]
        nv[...] = data.astype(np.float32, copy=False)
    log.info("wrote profile field %s (%s)", target, "x".join(map(str, field.no2.shape)))
    return target


def _is_cf_field(ds: netCDF4.Dataset) -> bool:
    var = ds.variables.get(VAR)
    return var is not None and var.dimensions[-3:] == ("height", "y", "x")


class CFProfileSource:
    """The ``cf`` profile source: our CF netCDF profile field."""

    name = "cf"
    description = "CF netCDF NO2 profile field (variable 'no2' in ug m-3 on a projected grid)"

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, _is_cf_field)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_cf_field(path)
