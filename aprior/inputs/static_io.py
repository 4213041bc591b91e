"""Readers and writers of the vector and netCDF static inputs.

- CAMS-GLOB-ANT anthropogenic NOx emissions (netCDF from the ADS/ECCAD: ``lat``,
  ``lon`` at 0.1 degree, optional ``time``, one variable per sector in kg m-2 s-1 and
  usually their total ``sum``).
- Road lines as GeoJSON (GRIP4 converted with ``ogr2ogr -f GeoJSON``; LineString or
  MultiLineString features, road type in the ``GP_RTP`` property, 1 = highway ...
  5 = local).
- A lat/lon elevation grid in netCDF (variables ``z``, ``elevation``, ``Band1`` ...).

GeoTIFF rasters are read by :mod:`aprior.inputs.geotiff`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from aprior._io import atomic_path
from aprior.errors import InputFileError

log = logging.getLogger(__name__)

#: spellings of kg m-2 s-1 found in emission files
FLUX_UNITS = {"kg m-2 s-1", "kg m**-2 s**-1", "kg/m2/s", "kg m-2 s**-1", "kg/m^2/s", "kg m^-2 s^-1"}

#: GRIP4 road types (property GP_RTP)
GRIP_ROAD_TYPES = {"highway": 1, "primary": 2, "secondary": 3, "tertiary": 4, "local": 5}

_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "longitude", "x")


def _open(path: str | os.PathLike[str]) -> xr.Dataset:
    p = Path(path)
    if not p.exists():
        raise InputFileError("no such file", p)
    try:
        return xr.open_dataset(p, mask_and_scale=True)
    except Exception as exc:  # netCDF4/h5netcdf raise many kinds
        raise InputFileError(f"is not a readable netCDF file ({exc})", p) from exc


def _latlon_names(ds: xr.Dataset, path: str) -> tuple[str, str]:
    lat = next((n for n in _LAT_NAMES if n in ds.coords or n in ds.variables), None)
    lon = next((n for n in _LON_NAMES if n in ds.coords or n in ds.variables), None)
    if lat is None or lon is None:
        raise InputFileError("has no lat/lon coordinates", path)
    return lat, lon


def _to_ascending(values: np.ndarray, lat: np.ndarray, lon: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip latitude to ascending and roll longitude into [-180, 180)."""
    if lat[0] > lat[-1]:
        lat, values = lat[::-1], values[..., ::-1, :]
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    order = np.argsort(lon, kind="stable")
    return np.ascontiguousarray(values[..., order]), lat.copy(), lon[order]


def read_cams_glob_ant(path: str | os.PathLike[str], sectors: Sequence[str] | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read CAMS-GLOB-ANT NOx emissions, summed over sectors and averaged over time.

    Args:
        path: the netCDF file.
        sectors: variables to sum; None uses ``sum`` if present, else all flux variables.

    Returns:
        ``(nox (ny, nx) float64 kg m-2 s-1, lat (ny,) ascending, lon (nx,) ascending in
        [-180, 180))``.
    """
    p = str(path)
    with _open(p) as ds:
        latn, lonn = _latlon_names(ds, p)
        flux = [n for n, v in ds.data_vars.items() if latn in v.dims and lonn in v.dims]
        if sectors is None:
            names = ["sum"] if "sum" in flux else flux
        else:
            missing = [s for s in sectors if s not in ds.data_vars]
            if missing:
                raise InputFileError(f"has no sector variable(s) {missing}; it has {flux}", p)
            names = list(sectors)
        if not names:
            raise InputFileError("has no emission variable on lat/lon", p)
        total = None
        for name in names:
            var = ds[name]
            units = str(var.attrs.get("units", "")).strip()
            if units not in FLUX_UNITS:
                raise InputFileError(f"variable {name!r} has units {units!r}; kg m-2 s-1 expected "
                                     "(a CAMS-GLOB-ANT flux file)", p)
            extra = [d for d in var.dims if d not in (latn, lonn)]
            arr = var.transpose(*extra, latn, lonn).values.astype(np.float64)
            if extra:
                arr = arr.reshape(-1, *arr.shape[-2:]).mean(axis=0)
            total = arr if total is None else total + arr
        lat = ds[latn].values.astype(np.float64)
        lon = ds[lonn].values.astype(np.float64)
    if not np.all(np.isfinite(total)):
        raise InputFileError("has missing (NaN or fill) emission values", p)
    if np.any(total < 0):
        raise InputFileError("has negative emission fluxes", p)
    return _to_ascending(total, lat, lon)


def write_cams_glob_ant(path: str | os.PathLike[str], lat: np.ndarray, lon: np.ndarray,
                        nox: np.ndarray, sectors: Sequence[str] | Mapping[str, float] | None = None,
                        n_months: int = 12, year: int = 2019) -> Path:
    """Write a CAMS-GLOB-ANT-like NOx file (monthly ``time``, per-sector fluxes and ``sum``).

    Args:
        lat: ``(ny,)``, lon: ``(nx,)`` cell centres (degrees), in the order to write.
        nox: ``(ny, nx)`` total flux, kg m-2 s-1, written for every month.
        sectors: sector names (equal shares) or name -> share; None writes only ``sum``.
    """
    nox = np.asarray(nox, np.float32)
    if nox.shape != (len(lat), len(lon)):
        raise ValueError(f"nox shape {nox.shape} != (lat, lon) {(len(lat), len(lon))}")
    shares: dict[str, float] = {}
    if sectors is not None:
        shares = dict(sectors) if isinstance(sectors, Mapping) else {s: 1 / len(sectors) for s in sectors}
    times = np.array([np.datetime64(f"{year}-{m:02d}-01") for m in range(1, n_months + 1)],
                     dtype="datetime64[ns]")
    attrs = {"units": "kg m-2 s-1", "long_name": "anthropogenic NOx emissions"}
    data = {"sum": (("time", "lat", "lon"), np.broadcast_to(nox, (n_months, *nox.shape)), attrs)}
    for name, share in shares.items():
        data[name] = (("time", "lat", "lon"),
                      np.broadcast_to(nox * np.float32(share), (n_months, *nox.shape)), attrs)
    ds = xr.Dataset(data, coords={"time": times, "lat": ("lat", np.asarray(lat, np.float64),
                                                          {"units": "degrees_north"}),
                                  "lon": ("lon", np.asarray(lon, np.float64),
                                          {"units": "degrees_east"})},
                    attrs={"title": "CAMS-GLOB-ANT anthropogenic emissions (synthetic)"})
    target = Path(path)
    with atomic_path(target) as tmp:
        ds.to_netcdf(tmp)
    return target


def read_roads_geojson(path: str | os.PathLike[str], road_types: Sequence[int] | None = None
                       ) -> list[np.ndarray]:
    """Read road lines from a GeoJSON FeatureCollection.

    Args:
        road_types: GRIP ``GP_RTP`` codes to keep (1 highway ... 5 local); None keeps all.

    Returns:
        A list of ``(n, 2)`` float64 arrays of (lon, lat) vertices in degrees.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("no such file", p)
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"is not valid GeoJSON ({exc})", p) from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InputFileError("is not a GeoJSON FeatureCollection", p)
    keep = None if road_types is None else {int(t) for t in road_types}
    lines: list[np.ndarray] = []
    for feat in doc.get("features", []):
        geom = (feat or {}).get("geometry") or {}
        props = feat.get("properties") or {}
        if keep is not None:
            rtp = props.get("GP_RTP", GRIP_ROAD_TYPES.get(str(props.get("kind", "")).lower()))
            if rtp is None or int(rtp) not in keep:
                continue
        if geom.get("type") == "LineString":
            parts = [geom.get("coordinates", [])]
        elif geom.get("type") == "MultiLineString":
            parts = geom.get("coordinates", [])
        else:
            continue
        for part in parts:
            arr = np.asarray(part, dtype=np.float64)
            if arr.ndim == 2 and arr.shape[0] >= 2 and arr.shape[1] >= 2:
                lines.append(arr[:, :2])
    if not lines:
        raise InputFileError("has no road lines (LineString/MultiLineString features)"
                             + ("" if keep is None else f" of types {sorted(keep)}"), p)
    return lines


def write_roads_geojson(path: str | os.PathLike[str], lines: Sequence[np.ndarray],
                        kinds: Sequence[str]) -> Path:
    """Write road lines as a GeoJSON FeatureCollection with GRIP-like properties.

    Args:
        lines: ``(n, 2)`` arrays of (lon, lat) vertices in degrees.
        kinds: one road kind per line ("highway", "primary", "secondary", "tertiary", "local").
    """
    if len(lines) != len(kinds):
        raise ValueError("need one kind per line")
    feats = []
    for line, kind in zip(lines, kinds, strict=True):
        arr = np.asarray(line, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
            raise ValueError("each line must be an (n >= 2, 2) array of lon, lat")
        props = {"kind": kind, "GP_RTP": GRIP_ROAD_TYPES.get(kind.lower(), 5)}
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "LineString", "coordinates": arr.tolist()}})
    doc = {"type": "FeatureCollection", "features": feats}
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(doc))
    return target


def read_latlon_raster_nc(path: str | os.PathLike[str], variable: str | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a 2D lat/lon grid (e.g. elevation in m) from netCDF.

    Returns ``(values (ny, nx) float64 with NaN for fill, lat (ny,) ascending, lon (nx,)
    ascending in [-180, 180))``.
    """
    p = str(path)
    with _open(p) as ds:
        latn, lonn = _latlon_names(ds, p)
        cands = [n for n, v in ds.data_vars.items() if v.dims == (latn, lonn)]
        name = variable or next((n for n in ("elevation", "z", "Band1", "height") if n in cands),
                                cands[0] if len(cands) == 1 else None)
        if name is None or name not in ds.data_vars:
            raise InputFileError(f"has no unambiguous 2D lat/lon variable (found {cands}); "
                                 "name it explicitly", p)
        vals = ds[name].transpose(latn, lonn).values.astype(np.float64)
        lat = ds[latn].values.astype(np.float64)
        lon = ds[lonn].values.astype(np.float64)
    return _to_ascending(vals, lat, lon)
