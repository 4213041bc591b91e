"""Bilinear interpolation on regular lat/lon grids (periodic in longitude when global).

A small private helper for the static layers and the PM2.5 sampler; the gridded
regridding of whole fields lives in :mod:`aprior.grids.regrid`.
"""

from __future__ import annotations

import numpy as np


def _axis_step(c: np.ndarray, name: str) -> float:
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"{name} needs at least two values")
    d = np.diff(c)
    if not np.all(d > 0):
        raise ValueError(f"{name} must be strictly ascending")
    step = float((c[-1] - c[0]) / (c.size - 1))
    if np.max(np.abs(d - step)) > 1e-4 * step:
        raise ValueError(f"{name} must be evenly spaced")
    return step


def is_global_lon(lon: np.ndarray) -> bool:
    """True if the ``(nx,)`` ascending, evenly spaced longitudes go all the way round."""
    step = _axis_step(np.asarray(lon, np.float64), "lon")
    return abs(step * lon.size - 360.0) < 1e-3 * step


def bilinear_weights(lat: np.ndarray, lon: np.ndarray, qlat: np.ndarray, qlon: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corner indices and weights of bilinear interpolation.

    Args:
        lat: ``(ny,)`` ascending, evenly spaced latitudes of the grid (degrees).
        lon: ``(nx,)`` ascending, evenly spaced longitudes (degrees, any origin).
        qlat, qlon: ``(n,)`` query points (degrees).

    Returns:
        ``(rows (n, 4), cols (n, 4), w (n, 4))``; ``w`` is NaN for points outside the grid
        (outside the latitude range, or outside the longitude range of a regional grid).
        A global grid wraps around in longitude.
    """
    lat = np.asarray(lat, np.float64)
    lon = np.asarray(lon, np.float64)
    qlat = np.asarray(qlat, np.float64).ravel()
    qlon = np.asarray(qlon, np.float64).ravel()
    dlat = _axis_step(lat, "lat")
    dlon = _axis_step(lon, "lon")
    nx, ny = lon.size, lat.size
    fy = (qlat - lat[0]) / dlat
    out = (fy < -1e-9) | (fy > ny - 1 + 1e-9) | ~np.isfinite(fy)
    fy = np.clip(fy, 0, ny - 1)
    j0 = np.minimum(np.floor(fy).astype(np.int64), ny - 2)
    wy = fy - j0
    if is_global_lon(lon):
        fx = np.mod(qlon - lon[0], 360.0) / dlon
        i0 = np.floor(fx).astype(np.int64) % nx
        wx = fx - np.floor(fx)
        i1 = (i0 + 1) % nx
    else:
        fx = np.mod(qlon - lon[0] + 180.0, 360.0) - 180.0  # nearest copy of the point
        fx = fx / dlon
        out |= (fx < -1e-9) | (fx > nx - 1 + 1e-9) | ~np.isfinite(fx)
        fx = np.clip(fx, 0, nx - 1)
        i0 = np.minimum(np.floor(fx).astype(np.int64), nx - 2)
        wx = fx - i0
        i1 = i0 + 1
    rows = np.stack([j0, j0, j0 + 1, j0 + 1], axis=1)
    cols = np.stack([i0, i1, i0, i1], axis=1)
    w = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=1)
    w[out] = np.nan
    return rows, cols, w


def bilinear_latlon(values: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                    qlat: np.ndarray, qlon: np.ndarray) -> np.ndarray:
    """Interpolate ``(..., ny, nx)`` values to ``(n,)`` points; returns ``(..., n)``, NaN outside."""
    rows, cols, w = bilinear_weights(lat, lon, qlat, qlon)
    corners = values[..., rows, cols]  # (..., n, 4)
    return np.sum(corners * w, axis=-1)
