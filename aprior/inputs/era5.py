"""ERA5 hourly meteorology from CDS netCDF files, read onto the 16 km grid.

DACNO2 uses 24 hourly ERA5 fields of the target day, single-level and pressure-level,
bilinearly resampled to the 16 km EPSG:3035 grid. The readers accept the netCDF files the
Climate Data Store distributes, in both of its styles:

- new CDS (2024-): dims ``valid_time`` (int64 seconds since 1970-01-01), ``pressure_level``
  (hPa), ``latitude`` (descending), ``longitude``; scalar ``number`` and per-time string
  ``expver`` coordinates; float32 variables with GRIB-style unit strings ("m s**-1"). A
  request mixing instantaneous and accumulated fields comes as a zip holding one netCDF
  per step type: pass the zip, its members are read from memory.
- old CDS: dims ``time`` (int32 hours since 1900-01-01), ``level`` ("millibars"),
  ``latitude``, ``longitude``; int16 packed variables. An ``expver`` dimension (ERA5 mixed
  with ERA5T) is merged by taking the first non-missing value.

Longitudes may be -180..180 or 0..360. Readers open files lazily and load only the hours,
levels and the lat/lon window the target grid needs. They check that each variable is
present, its units (:data:`LEXICON`) and that its values are plausible for them, that the
file's grid covers the target grid, that all 24 hours exist and that no value is missing,
and raise :class:`aprior.errors.InputFileError` naming the file otherwise. Several files
may be given (e.g. one per variable or per month): each variable-hour is taken from the
first file that has it.

The variable lexicon and the CDS-like writers (:func:`write_era5_single_levels`,
:func:`write_era5_pressure_levels`, re-exported here) live in
:mod:`aprior.inputs.era5_cds`.

Accumulated variables (``ssrd`` in J m-2, ``tp`` in m) are the hourly accumulations ending
at the valid time, as ERA5 delivers them; they are not converted to rates.

The DACNO2 paper's Table 1 (eight pressure levels) is not in the text available to us: the
default levels :data:`DEFAULT_PRESSURE_LEVELS_HPA` are our choice, covering the 0-5 km of
the NO2 levels; pass ``levels_hpa`` to use others.
"""

from __future__ import annotations

import datetime as _dt
import logging
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import xarray as xr

from aprior.errors import InputFileError
from aprior.grids.grid import Grid, lonlat_of
from aprior.grids.regrid import _wrap, apply_matrix, bilinear_matrix
from aprior.inputs.era5_cds import (
    DEFAULT_PRESSURE_LEVELS_HPA,
    HOURS,
    LEVEL_UNITS_HPA,
    LEXICON,
    PRESSURE_LEVEL_VARIABLES,
    SINGLE_LEVEL_VARIABLES,
    UNIT_SPELLINGS,
    Era5Var,
    norm_units,
    write_era5_pressure_levels,
    write_era5_single_levels,
)
from aprior.units import factor as unit_factor
from aprior.units import is_convertible

log = logging.getLogger(__name__)

PathLikeT = str | PathLike[str]

__all__ = [
    "DEFAULT_PRESSURE_LEVELS_HPA", "HOURS", "LEXICON", "PRESSURE_LEVEL_VARIABLES",
    "SINGLE_LEVEL_VARIABLES", "Era5Var", "read_era5_pressure_levels", "read_era5_single_levels",
    "write_era5_pressure_levels", "write_era5_single_levels",
]

# -- opening ------------------------------------------------------------------------------
@dataclass
class _Source:
    """One opened netCDF (a file, or a member of a zip), standardised."""

    label: str
    path: Path
    ds: xr.Dataset
    closers: list = field(default_factory=list)

    def fail(self, message: str) -> InputFileError:
        where = "" if self.label == str(self.path) else f" (member {self.label.split('!')[-1]})"
        return InputFileError(message + where, self.path)

    def close(self) -> None:
        self.ds.close()
        for c in self.closers:
            c.close()


def _open_sources(path: Path) -> list[_Source]:
    if not path.is_file():
        raise InputFileError("the ERA5 file does not exist", path)
    try:
        if zipfile.is_zipfile(path):
            return _open_zip(path)
        ds = xr.open_dataset(path, engine="netcdf4", cache=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputFileError(f"cannot be read as netCDF ({exc})", path) from exc
    return [_Source(str(path), path, ds)]


def _open_zip(path: Path) -> list[_Source]:
    import netCDF4

    out = []
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if n.endswith(".nc")]
        if not members:
            raise InputFileError("the zip archive holds no .nc file", path)
        for name in members:
            nc = netCDF4.Dataset(name, mode="r", memory=zf.read(name))
            ds = xr.open_dataset(xr.backends.NetCDF4DataStore(nc))
            out.append(_Source(f"{path}!{name}", path, ds, [nc]))
    return out


def _standardise(src: _Source) -> None:
    ds = src.ds
    ren = {a: b for a, b in (("valid_time", "time"), ("pressure_level", "level"),
                             ("lat", "latitude"), ("lon", "longitude"))
           if a in ds.variables and b not in ds.variables}
    ds = ds.rename(ren)
    if "time" in ds.variables and "time" not in ds.dims and ds["time"].ndim == 0:
        ds = ds.expand_dims("time")
    for dim in ("time", "latitude", "longitude"):
        if dim not in ds.dims:
            raise src.fail(f"has no {dim!r} dimension; not an ERA5 netCDF file from the CDS")
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise src.fail("its time coordinate could not be decoded as dates")
    if "number" in ds.dims:
        if ds.sizes["number"] != 1:
            raise src.fail("holds an ensemble (several 'number' members); give the reanalysis")
        ds = ds.isel(number=0)
    drop = [c for c in ("number", "expver") if c in ds.coords and c not in ds.dims]
    src.ds = ds.drop_vars(drop)


# -- selecting ----------------------------------------------------------------------------
def _day(date: object) -> np.datetime64:
    if isinstance(date, str):
        return np.datetime64(date[:10], "D")
    if isinstance(date, _dt.datetime):
        return np.datetime64(date.date(), "D")
    return np.datetime64(date, "D")


def _window(src: _Source, tlon: np.ndarray, tlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the source rows and columns the bilinear interpolation needs."""
    lat = np.asarray(src.ds["latitude"].values, dtype=np.float64)
    lon = _wrap(np.asarray(src.ds["longitude"].values, dtype=np.float64))
    if lat.size < 2 or lon.size < 2:
        raise src.fail("its grid has fewer than 2 latitudes or longitudes")
    dlat = float(np.max(np.abs(np.diff(np.sort(lat)))))
    dlon = float(np.max(np.diff(np.sort(lon))))
    periodic = abs(lon.max() - lon.min() + np.median(np.diff(np.sort(lon))) - 360) < 1e-3
    covered = (tlat.min() >= lat.min() - 1e-9 and tlat.max() <= lat.max() + 1e-9
               and (periodic or (tlon.min() >= lon.min() - 1e-9
                                 and tlon.max() <= lon.max() + 1e-9)))
    if not covered:
        raise src.fail(
            f"its grid (lon {lon.min():.2f}..{lon.max():.2f}, lat {lat.min():.2f}..{lat.max():.2f})"
            f" does not cover the target grid (lon {tlon.min():.2f}..{tlon.max():.2f}, "
            f"lat {tlat.min():.2f}..{tlat.max():.2f}); download a larger area")
    rows = np.nonzero((lat >= tlat.min() - dlat) & (lat <= tlat.max() + dlat))[0]
    if periodic:
        return rows, np.arange(lon.size)
    cols = np.nonzero((lon >= tlon.min() - dlon) & (lon <= tlon.max() + dlon))[0]
    return rows, cols


def _check_units(src: _Source, name: str) -> None:
    var = LEXICON[name]
    units = src.ds[name].attrs.get("units")
    if units is None:
        raise src.fail(f"variable {name!r} has no units attribute; expected {var.ecmwf_units}")
    same = is_convertible(str(units), var.units) and abs(unit_factor(str(units), var.units) - 1) < 1e-9
    if not same and norm_units(str(units)) not in UNIT_SPELLINGS.get(var.units, ()):
        raise src.fail(f"variable {name!r} has units {units!r}; expected {var.ecmwf_units}")


def _level_indices(src: _Source, levels_hpa: Sequence[float]) -> np.ndarray:
    if "level" not in src.ds.dims:
        raise src.fail("has no 'pressure_level' or 'level' dimension; not a pressure-level file")
    lev = np.asarray(src.ds["level"].values, dtype=np.float64)
    units = str(src.ds["level"].attrs.get("units", "hPa"))
    if is_convertible(units, "hPa"):
        lev = lev * unit_factor(units, "hPa")
    elif norm_units(units) not in LEVEL_UNITS_HPA:
        raise src.fail(f"its pressure levels have units {units!r}; expected hPa")
    want = np.asarray(levels_hpa, dtype=np.float64)
    hit = np.abs(want[:, None] - lev[None, :]) < 1e-3
    missing = want[~hit.any(axis=1)]
    if missing.size:
        raise src.fail(f"lacks pressure levels {', '.join(f'{v:g}' for v in missing)} hPa "
                       f"(has {', '.join(f'{v:g}' for v in lev)})")
    return np.argmax(hit, axis=1)


def _load(src: _Source, name: str, t_idx: np.ndarray, rows: np.ndarray, cols: np.ndarray,
          lev_idx: np.ndarray | None) -> np.ndarray:
    """``(nt, [nlev,] nrows, ncols)`` float64 values, expver merged, checked."""
    da = src.ds[name]
    required = {"time", "latitude", "longitude"} | ({"level"} if lev_idx is not None else set())
    if not required <= set(da.dims) <= required | {"expver"}:
        raise src.fail(f"variable {name!r} has dims {da.dims}, expected "
                       f"(time, {'level, ' if lev_idx is not None else ''}latitude, longitude)")
    order = ["expver"] if "expver" in da.dims else []
    order += ["time", "level", "latitude", "longitude"] if lev_idx is not None else \
        ["time", "latitude", "longitude"]
    # read sorted unique indices (what netCDF handles best), then put them in order
    t_u, t_inv = np.unique(t_idx, return_inverse=True)
    sel = {"time": t_u, "latitude": rows, "longitude": cols}
    if lev_idx is not None:
        l_u, l_inv = np.unique(lev_idx, return_inverse=True)
        sel["level"] = l_u
    vals = np.asarray(da.isel(sel).transpose(*order).values, dtype=np.float64)
    ax = 1 if order[0] == "expver" else 0
    vals = np.take(vals, t_inv, axis=ax)
    if lev_idx is not None:
        vals = np.take(vals, l_inv, axis=ax + 1)
    if "expver" in da.dims:
        merged = vals[0]
        for v in vals[1:]:
            merged = np.where(np.isnan(merged), v, merged)
        vals = merged
    n_bad = int(np.count_nonzero(~np.isfinite(vals)))
    if n_bad:
        raise src.fail(f"variable {name!r} has {n_bad} missing (NaN) values in the hours and "
                       "area needed")
    lo, hi = LEXICON[name].valid_range
    if vals.min() < lo or vals.max() > hi:
        raise src.fail(f"variable {name!r} ranges {vals.min():.4g}..{vals.max():.4g}, "
                       f"implausible in {LEXICON[name].units}: check the units")
    return vals


# -- reading ------------------------------------------------------------------------------
def _as_paths(paths: PathLikeT | Iterable[PathLikeT]) -> list[Path]:
    if isinstance(paths, str | PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _hours_in(src: _Source, hours: np.ndarray, todo: np.ndarray) -> tuple[list, list]:
    """Positions (in the day) and time indices (in the source) of the hours ``todo``."""
    times = src.ds["time"].values.astype("datetime64[s]")
    pos, t_idx = [], []
    for p in todo:
        hit = np.nonzero(times == hours[p])[0]
        if hit.size:
            pos.append(int(p))
            t_idx.append(int(hit[0]))
    return pos, t_idx


def _plan(sources: list[_Source], variables: Sequence[str], hours: np.ndarray,
          paths: list[Path]) -> dict[str, list[tuple[int, np.ndarray, np.ndarray]]]:
    """For each variable: (source index, positions in the day, time indices in the source)."""
    plan: dict[str, list] = {}
    gaps: dict[str, np.ndarray] = {}
    present = {n for src in sources for n in src.ds.data_vars}
    for name in variables:
        filled = np.zeros(hours.size, dtype=bool)
        plan[name] = []
        for k, src in enumerate(sources):
            if name not in src.ds.data_vars or filled.all():
                continue
            _check_units(src, name)
            pos, t_idx = _hours_in(src, hours, np.nonzero(~filled)[0])
            if pos:
                filled[pos] = True
                plan[name].append((k, np.asarray(pos), np.asarray(t_idx)))
        if not filled.all():
            gaps[name] = np.nonzero(~filled)[0]
    where = paths[0] if len(paths) == 1 else None
    in_files = "" if where else f" in the files {', '.join(str(p) for p in paths)}"
    absent = [n for n in variables if n not in present]
    if absent:
        raise InputFileError(f"ERA5 variables {', '.join(repr(n) for n in absent)} are missing"
                             f"{in_files} (need {', '.join(variables)})", where)
    for name, missing in gaps.items():
        day = hours[0].astype("datetime64[D]")
        raise InputFileError(f"hours {', '.join(f'{h:02d}' for h in missing)} UTC of {day} are "
                             f"missing for ERA5 variable {name!r}{in_files}", where)
    return plan


def _read(paths: PathLikeT | Iterable[PathLikeT], date: object, grid: Grid,
          variables: Sequence[str], levels_hpa: Sequence[float] | None) -> xr.Dataset:
    unknown = [v for v in variables if v not in LEXICON]
    if unknown:
        raise ValueError(f"unknown ERA5 variables {unknown}; known: {', '.join(LEXICON)}")
    plist = _as_paths(paths)
    if not plist:
        raise ValueError("no ERA5 files given")
    day = _day(date)
    hours = (day.astype("datetime64[s]") + np.arange(HOURS) * np.timedelta64(3600, "s"))
    tlon, tlat = lonlat_of(grid)
    tlon = _wrap(tlon)
    sources: list[_Source] = []
    try:
        for p in plist:
            for src in _open_sources(p):
                sources.append(src)
                _standardise(src)
        plan = _plan(sources, variables, hours, plist)
        data = _regrid_plan(sources, plan, grid, tlon, tlat, levels_hpa)
    finally:
        for src in sources:
            src.close()
    return _assemble(data, hours, grid, levels_hpa, [s.label for s in sources], day)


def _regrid_plan(sources: list[_Source], plan: Mapping[str, list], grid: Grid,
                 tlon: np.ndarray, tlat: np.ndarray,
                 levels_hpa: Sequence[float] | None) -> dict[str, np.ndarray]:
    mats: dict[int, tuple] = {}
    data = {}
    nlev = () if levels_hpa is None else (len(levels_hpa),)
    for name, parts in plan.items():
        out = np.full((HOURS, *nlev, *grid.shape), np.nan, dtype=np.float32)
        for k, pos, t_idx in parts:
            src = sources[k]
            if k not in mats:
                rows, cols = _window(src, tlon, tlat)
                lat = src.ds["latitude"].values[rows]
                lon = src.ds["longitude"].values[cols]
                try:
                    m = bilinear_matrix(lat, lon, tlon, tlat)
                except ValueError as exc:
                    raise src.fail(f"its grid cannot be interpolated to the target ({exc})") \
                        from exc
                lev_idx = None if levels_hpa is None else _level_indices(src, levels_hpa)
                mats[k] = (rows, cols, m, lev_idx)
            rows, cols, m, lev_idx = mats[k]
            vals = _load(src, name, t_idx, rows, cols, lev_idx)
            out[pos] = apply_matrix(m, vals, grid.shape)
            log.debug("ERA5 %s: %d hours from %s", name, len(pos), src.label)
        data[name] = out
    return data


def _assemble(data: dict[str, np.ndarray], hours: np.ndarray, grid: Grid,
              levels_hpa: Sequence[float] | None, labels: list[str],
              day: np.datetime64) -> xr.Dataset:
    dims = ("time", "y", "x") if levels_hpa is None else ("time", "level", "y", "x")
    coords = {"time": hours.astype("datetime64[ns]"),
              "y": ("y", grid.y, {"units": "m", "standard_name": "projection_y_coordinate"}),
              "x": ("x", grid.x, {"units": "m", "standard_name": "projection_x_coordinate"})}
    if levels_hpa is not None:
        coords["level"] = ("level", np.asarray(levels_hpa, dtype=np.float64),
                           {"units": "hPa", "long_name": "pressure level"})
    data_vars = {name: (dims, arr, {"units": LEXICON[name].units,
                                    "long_name": LEXICON[name].long_name})
                 for name, arr in data.items()}
    attrs = {"crs": grid.crs, "grid_x0": grid.x0, "grid_y0": grid.y0, "grid_dx": grid.dx,
             "grid_dy": grid.dy, "date": str(day), "source_files": "; ".join(labels),
             "regridding": "bilinear in lon/lat to cell centres"}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def read_era5_single_levels(paths: PathLikeT | Iterable[PathLikeT], date: object, grid16: Grid,
                            variables: Sequence[str] = SINGLE_LEVEL_VARIABLES) -> xr.Dataset:
    """ERA5 single-level fields of one day on a (16 km) grid.

    Args:
        paths: one or more CDS netCDF files (or zips of them).
        date: the UTC day ("YYYY-MM-DD", date, datetime64).
        grid16: the target grid (16 km EPSG:3035 in DACNO2).
        variables: ERA5 short names.

    Returns:
        Dataset with one float32 variable per name, dims ``(time=24, y, x)``, units as
        :data:`LEXICON` (``units``), coords ``time`` (hourly, 00-23 UTC), ``y``, ``x`` (m).

    Raises:
        aprior.errors.InputFileError: a file is unreadable or lacks a variable or hours,
            has wrong units, NaNs or too small an area.
    """
    return _read(paths, date, grid16, variables, None)


def read_era5_pressure_levels(paths: PathLikeT | Iterable[PathLikeT], date: object,
                              grid16: Grid, variables: Sequence[str] = PRESSURE_LEVEL_VARIABLES,
                              levels_hpa: Sequence[float] = DEFAULT_PRESSURE_LEVELS_HPA,
                              ) -> xr.Dataset:
    """ERA5 pressure-level fields of one day on a (16 km) grid.

    Returns:
        Dataset with dims ``(time=24, level, y, x)``, ``level`` in hPa in the order of
        ``levels_hpa`` (default from 1000 hPa up). Otherwise as
        :func:`read_era5_single_levels`.
    """
    return _read(paths, date, grid16, variables, tuple(levels_hpa))
