"""Slow reference for :mod:`aprior.retrieval.footprint`, built on shapely.

Each footprint becomes a shapely polygon of its projected corners; it is intersected
with the box of every grid cell its bounding box touches, and the overlap areas are read
from shapely. The conventions (skipped pixels, geographic grids, cosine weighting, row
normalisation) follow :func:`aprior.retrieval.footprint.footprint_weights`, but the code
path shares nothing with it except this module's own simple projection. For tests and
benchmarks only.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer
from scipy import sparse

from aprior.grids.grid import Grid
from aprior.retrieval.footprint import FootprintWeights


def _project(lon: np.ndarray, lat: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    if grid.is_geographic:
        x = lon.copy()
        for k in range(1, 4):  # unwrap around corner 0
            x[:, k] = np.where(x[:, k] - x[:, 0] > 180, x[:, k] - 360, x[:, k])
            x[:, k] = np.where(x[:, k] - x[:, 0] < -180, x[:, k] + 360, x[:, k])
        centre = x.mean(axis=1)
        while np.any(centre < grid.x0):
            low = centre < grid.x0
            x[low] += 360.0
            centre = x.mean(axis=1)
        while np.any(centre >= grid.x0 + 360.0):
            high = centre >= grid.x0 + 360.0
            x[high] -= 360.0
            centre = x.mean(axis=1)
        return x, lat.copy()
    tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def shapely_weights(
    lon_bounds: np.ndarray,
    lat_bounds: np.ndarray,
    grid: Grid,
    *,
    valid: np.ndarray | None = None,
) -> FootprintWeights:
    """Same contract as :func:`aprior.retrieval.footprint.footprint_weights` (geographic
    grids spanning 360 degrees are not wrapped here)."""
    lon = np.asarray(lon_bounds, dtype=np.float64)
    lat = np.asarray(lat_bounds, dtype=np.float64)
    n = lon.shape[0]
    ok = np.isfinite(lon).all(axis=1) & np.isfinite(lat).all(axis=1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    safe_lon = np.where(np.isfinite(lon), lon, 0.0)
    safe_lat = np.where(np.isfinite(lat), lat, 0.0)
    x, y = _project(safe_lon, safe_lat, grid)
    finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    ok &= finite
    coords = np.stack([x, y], axis=-1)  # (n, 4, 2)
    polys = shapely.polygons(coords)
    area = np.where(finite, shapely.area(polys), np.nan)
    diag2 = np.ptp(x, axis=1) ** 2 + np.ptp(y, axis=1) ** 2
    ok &= shapely.is_valid(polys) & (area > 1e-9 * diag2)
    xe, ye = grid.x_edges, grid.y_edges
    i0 = np.clip(np.searchsorted(xe, x.min(axis=1), side="right") - 1, 0, grid.nx)
    i1 = np.clip(np.searchsorted(xe, x.max(axis=1), side="left"), 0, grid.nx)
    j0 = np.clip(np.searchsorted(ye, y.min(axis=1), side="right") - 1, 0, grid.ny)
    j1 = np.clip(np.searchsorted(ye, y.max(axis=1), side="left"), 0, grid.ny)
    wi = np.where(ok, np.maximum(i1 - i0, 0), 0)
    counts = wi * np.where(ok, np.maximum(j1 - j0, 0), 0)
    rows = np.repeat(np.arange(n), counts)
    k = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    jj = j0[rows] + k // wi[rows]
    ii = i0[rows] + k % wi[rows]
    boxes = shapely.box(xe[ii], ye[jj], xe[ii + 1], ye[jj + 1])
    vals = shapely.area(shapely.intersection(polys[rows], boxes))
    keep = vals > 0
    rows, cols, vals = rows[keep], (jj * grid.nx + ii)[keep], vals[keep]
    covered = np.bincount(rows, weights=vals, minlength=n)
    coverage = np.zeros(n)
    coverage[ok] = np.minimum(covered[ok] / area[ok], 1.0)
    if grid.is_geographic:
        weighted = vals * np.cos(np.deg2rad(grid.y[cols // grid.nx]))
        wsum = np.bincount(rows, weights=weighted, minlength=n)
        vals = weighted * (covered[rows] / wsum[rows])
    matrix = sparse.csr_matrix((vals / area[rows], (rows, cols)), shape=(n, grid.size))
    return FootprintWeights(matrix=matrix, coverage=coverage, area=area)
