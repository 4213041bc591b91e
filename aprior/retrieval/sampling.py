"""Footprint sampling of a profile field for the pixels of one L2 file.

:func:`build_samplers` reads the footprint corners of a file once and builds, for each
field, the exact area-weight matrix ``W (n_pixel, n_cell)``
(:mod:`aprior.retrieval.footprint`); a :class:`Sampler` then gives, for any block of
pixels, the footprint-mean profiles (``W @ field / coverage``, interpolated linearly in time)
together with their vertical coordinate (:class:`~aprior.retrieval.vertical_fields.ColumnProfiles`):
heights above ground, or the footprint-mean interface pressures of a field on pressure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pyproj import Transformer

from aprior.a_priori.field import ProfileField, time_interpolation
from aprior.errors import ProfileFieldError
from aprior.grids.grid import Grid
from aprior.retrieval.footprint import footprint_weights
from aprior.retrieval.granule import GranuleInfo
from aprior.retrieval.protocols import Sensor
from aprior.retrieval.vertical import above_ground
from aprior.retrieval.vertical_fields import ColumnProfiles


@dataclass
class _Sampler:
    """Footprint-averages one field for any block of pixels (weights built once).

    Attributes:
        field: the profile field.
        weights: ``(n_pixel_file, n_cell)`` CSR overlap areas over footprint areas.
        coverage: ``(n_pixel_file,)`` covered fraction of each footprint.
    """

    field: ProfileField
    weights: sp.csr_matrix
    coverage: np.ndarray
    _cache: dict = field(default_factory=dict)

    def _cells(self, name: str, t: int) -> np.ndarray:
        """(n_cell, k) slice of a (t, k, y, x) array of the field at time index t, cached."""
        key = (name, t)
        if key not in self._cache:
            arr = {"no2": self.field.no2,
                   "interfaces": getattr(self.field.pressure, "interfaces", None),
                   "ps": getattr(self.field.pressure, "surface_pressure", None)}[name]
            if arr.ndim == 3:
                arr = arr[:, None]
            self._cache = {k: v for k, v in self._cache.items() if abs(k[1] - t) <= 1}
            self._cache[key] = np.ascontiguousarray(arr[t].reshape(arr.shape[1], -1).T, dtype=np.float64)
        return self._cache[key]

    def _mean(self, name: str, rows: slice, obs_time: np.ndarray) -> np.ndarray:
        """Footprint-mean ``(n, k)`` of the field's array ``name`` interpolated to ``obs_time``."""
        w = self.weights[rows]
        cov = self.coverage[rows]
        i0, i1, wt = time_interpolation(self.field.times, obs_time)
        out = None
        for t in np.unique(np.concatenate([i0, i1])):
            share = np.where(i0 == t, 1.0 - wt, 0.0) + np.where(i1 == t, wt, 0.0)
            if not share.any():
                continue
            part = share[:, None] * (w @ self._cells(name, int(t)))
            out = part if out is None else out + part
        if out is None:
            out = np.zeros((w.shape[0], self._cells(name, 0).shape[1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            out /= cov[:, None]
        out[cov <= 0] = np.nan
        return out

    def profiles(self, rows: slice, obs_time: np.ndarray) -> np.ndarray:
        """Footprint-mean profiles ``(n, z)`` (the field's unit) of pixel rows ``rows`` at
        ``obs_time (n,)``: ``W @ field / coverage``. NaN where the footprint does not touch
        the field."""
        return self._mean("no2", rows, obs_time)

    def column_profiles(self, rows: slice, obs_time: np.ndarray) -> ColumnProfiles:
        """The footprint-mean profiles with their vertical coordinate, pixel by pixel:
        heights above ground (heights above sea level less the footprint-mean surface
        elevation), or the footprint-mean interface pressures (Pa, bottom first)."""
        f = self.field
        values = self.profiles(rows, obs_time)
        if f.pressure is None:
            if f.surface_elevation is None:
                return ColumnProfiles(values, f.quantity, heights=f.heights)
            w = self.weights[rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                elev = (w @ f.surface_elevation.reshape(-1).astype(np.float64)) / self.coverage[rows]
            h, v = above_ground(values, f.heights, elev)
            return ColumnProfiles(v, f.quantity, heights=h)
        pr = f.pressure
        if pr.interfaces is not None:
            p = self._mean("interfaces", rows, obs_time)
        elif pr.surface_pressure is not None:
            ps = self._mean("ps", rows, obs_time)
            p = pr.a[None, :] + pr.b[None, :] * ps
        else:  # fixed pressure levels, or hybrid levels placed on the satellite's surface
            p = np.broadcast_to(pr.a + pr.b * 101325.0, (values.shape[0], pr.a.size)).copy()
        return ColumnProfiles(values, f.quantity, pressure=p, terrain_following=pr.terrain_following)


@functools.lru_cache(maxsize=16)
def _lonlat_box(g: Grid) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a grid's outline."""
    if g.is_geographic:
        return g.bounds
    xs = np.linspace(g.bounds[0], g.bounds[2], 101)
    ys = np.linspace(g.bounds[1], g.bounds[3], 101)
    bx = np.concatenate([xs, np.full(101, xs[-1]), xs[::-1], np.full(101, xs[0])])
    by = np.concatenate([np.full(101, ys[0]), ys, np.full(101, ys[-1]), ys[::-1]])
    tr = Transformer.from_crs(g.pyproj_crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(bx, by)
    return float(np.nanmin(lon)), float(np.nanmin(lat)), float(np.nanmax(lon)), float(np.nanmax(lat))


def _near_field_mask(field: ProfileField, lon_b: np.ndarray, lat_b: np.ndarray, margin_deg: float = 0.5) -> np.ndarray:
    """(n,) pixels with a corner inside the field's lon/lat bounding box (plus a margin)."""
    w, s, e, n = _lonlat_box(field.grid)
    lon_b = np.where(lon_b > 180.0, lon_b - 360.0, lon_b)
    inside = (
        (lon_b >= w - margin_deg) & (lon_b <= e + margin_deg)
        & (lat_b >= s - margin_deg) & (lat_b <= n + margin_deg)
    )
    ok = np.all(np.isfinite(lon_b) & np.isfinite(lat_b), axis=-1)
    return inside.any(axis=-1) & ok


def _build_samplers(sensor: Sensor, info: GranuleInfo, fields: list[ProfileField], block: int) -> list[_Sampler]:
    """Geolocation pass: read the footprint corners once and build the exact footprint
    weights of every pixel of the file on each field's grid."""
    mats: list[list[sp.csr_matrix]] = [[] for _ in fields]
    for start in range(0, info.n_scanline, block):
        stop = min(start + block, info.n_scanline)
        lat_b, lon_b = sensor.read_bounds(info, start, stop)
        lat_b = lat_b.reshape(-1, 4)
        lon_b = lon_b.reshape(-1, 4)
        for k, fld in enumerate(fields):
            near = _near_field_mask(fld, lon_b, lat_b)
            mats[k].append(footprint_weights(lon_b, lat_b, fld.grid, valid=near).matrix)
    samplers = []
    for fld, m in zip(fields, mats, strict=True):
        weights = sp.vstack(m, format="csr") if m else sp.csr_matrix((0, fld.grid.size))
        samplers.append(_Sampler(fld, weights, np.asarray(weights.sum(axis=1)).ravel()))
    return samplers


def _build_sampler(sensor: Sensor, info: GranuleInfo, fld: ProfileField, block: int) -> _Sampler:
    """The geolocation pass for a single field (see :func:`_build_samplers`)."""
    return _build_samplers(sensor, info, [fld], block)[0]


def _check_seen_values(fld: ProfileField, weights: sp.csr_matrix, path: Path) -> None:
    """Refuse a field that is zero (or not finite) in every cell the orbit's pixels touch."""
    cells = np.unique(weights.indices)
    if cells.size == 0:
        return
    flat = fld.no2.reshape(fld.no2.shape[0], fld.no2.shape[1], -1)
    for t in range(flat.shape[0]):  # one time at a time: memory (z, cells)
        seen = flat[t][:, cells]
        if np.any(np.isfinite(seen) & (seen > 0)):
            return
    raise ProfileFieldError(
        f"the profile field ({fld.path or fld.source}) is zero or missing in all "
        f"{cells.size} cells this orbit sees; no a-priori profile can be made from it", path)
