"""Regridding from regular lat/lon grids to projected (EPSG:3035) grids, and coarsening.

All regridders are sparse matrices ``M`` of shape ``(n_target, nlat * nlon)`` built once
per pair of grids and applied to any number of leading dims (time, levels) at once:
``out = M @ values.reshape(-1, nlat * nlon).T``. Source grids are rectilinear lat/lon
grids given by their cell-centre coordinates, in any order: latitudes may descend (as
ERA5's do) and longitudes may be 0-360 (they are wrapped to [-180, 180) and sorted). A
source covering all longitudes is treated as periodic.

- :func:`bilinear_matrix` / :func:`bilinear_to_grid`: bilinear in lon/lat at the target
  cell centres (used for ERA5 to 16 km and CAMS 0.1 degree to 8 km, as in the paper).
- :func:`conservative_matrix` / :func:`conservative_to_grid`: area-weighted average of the
  source cells over each target cell, for sources finer than the target. Each target cell
  is sampled by ``oversample x oversample`` sub-cell centres; as EPSG:3035 is equal-area
  the sub-cells have equal areas, so the weights are area fractions to within the
  sampling (error ~ 1 / oversample of a source cell's share at the cell's edge).
- :func:`block_mean`: mean over ``factor x factor`` blocks (2 km -> 8 km -> 16 km).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from aprior.grids.grid import Grid, lonlat_of


def _wrap(lon: np.ndarray) -> np.ndarray:
    return (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0


def _source_axes(lat: np.ndarray, lon: np.ndarray):
    """Sorted source axes: (lat_sorted, lat_order, lon_sorted, lon_order, periodic)."""
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.size < 2 or lon.size < 2:
        raise ValueError("source grid needs at least 2 latitudes and 2 longitudes")
    lat_order = np.argsort(lat, kind="stable")
    lon_w = _wrap(lon)
    lon_order = np.argsort(lon_w, kind="stable")
    lat_s, lon_s = lat[lat_order], lon_w[lon_order]
    if np.any(np.diff(lat_s) <= 0) or np.any(np.diff(lon_s) <= 0):
        raise ValueError("source latitudes and longitudes must be unique")
    step = np.median(np.diff(lon_s))
    periodic = bool(abs(lon_s[-1] - lon_s[0] + step - 360.0) < 1e-6 * 360.0)
    return lat_s, lat_order, lon_s, lon_order, periodic


def _axis_weights(axis: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left index, fraction and validity of targets ``t`` on ascending ``axis``."""
    i = np.clip(np.searchsorted(axis, t, side="right") - 1, 0, axis.size - 2)
    frac = (t - axis[i]) / (axis[i + 1] - axis[i])
    tol = 1e-9 * max(1.0, float(np.max(np.abs(axis))))
    valid = (t >= axis[0] - tol) & (t <= axis[-1] + tol)
    return i, np.clip(frac, 0.0, 1.0), valid


def bilinear_matrix(lat: np.ndarray, lon: np.ndarray, target_lon: np.ndarray,
                    target_lat: np.ndarray) -> sp.csr_matrix:
    """Sparse bilinear-interpolation matrix from a lat/lon grid to target points.

    Args:
        lat: ``(nlat,)`` source cell-centre latitudes (degrees), ascending or descending.
        lon: ``(nlon,)`` source cell-centre longitudes (degrees), -180..180 or 0..360.
        target_lon, target_lat: target points (degrees), any equal shape, ``n`` points.

    Returns:
        ``(n, nlat * nlon)`` CSR matrix acting on ``values.reshape(..., nlat * nlon)``
        of values ordered as the source arrays (``(..., nlat, nlon)``).

    Raises:
        ValueError: a target point lies outside the source grid's cell centres.
    """
    lat_s, lat_order, lon_s, lon_order, periodic = _source_axes(lat, lon)
    tlon = _wrap(np.ravel(target_lon))
    tlat = np.asarray(target_lat, dtype=np.float64).ravel()
    if periodic:
        lon_s = np.append(lon_s, lon_s[0] + 360.0)
        lon_order = np.append(lon_order, lon_order[0])
        tlon = np.where(tlon < lon_s[0], tlon + 360.0, tlon)
    ii, fx, okx = _axis_weights(lon_s, tlon)
    jj, fy, oky = _axis_weights(lat_s, tlat)
    bad = ~(okx & oky)
    if np.any(bad):
        raise ValueError(
            f"{int(bad.sum())} target points (lon {tlon[bad].min():.3f}..{tlon[bad].max():.3f}, "
            f"lat {tlat[bad].min():.3f}..{tlat[bad].max():.3f}) lie outside the source grid "
            f"(lon {lon_s[0]:.3f}..{lon_s[-1]:.3f}, lat {lat_s[0]:.3f}..{lat_s[-1]:.3f})")
    nlon = np.size(lon)
    n = tlon.size
    rows = np.repeat(np.arange(n), 4)
    c00 = lat_order[jj] * nlon + lon_order[ii]
    c01 = lat_order[jj] * nlon + lon_order[ii + 1]
    c10 = lat_order[jj + 1] * nlon + lon_order[ii]
    c11 = lat_order[jj + 1] * nlon + lon_order[ii + 1]
    cols = np.stack([c00, c01, c10, c11], axis=1).ravel()
    vals = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=1).ravel()
    keep = vals != 0
    m = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])),
                      shape=(n, np.size(lat) * np.size(lon)))
    m.sum_duplicates()
    return m


def apply_matrix(matrix: sp.spmatrix, values: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Apply a regridding matrix to ``(..., nlat, nlon)`` values -> ``(..., *out_shape)``.

    Computed in float64, returned as float32 for float32 input and float64 otherwise.
    NaNs in a source cell propagate to the targets that use it.
    """
    values = np.asarray(values)
    lead = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1]).astype(np.float64, copy=False)
    out = np.asarray(matrix @ flat.T).T.reshape(lead + tuple(out_shape))
    return out.astype(np.float32 if values.dtype == np.float32 else np.float64, copy=False)


def bilinear_to_grid(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, grid: Grid) -> np.ndarray:
    """Bilinear interpolation of ``(..., nlat, nlon)`` lat/lon values to a grid's cell centres.

    Args:
        values: ``(..., nlat, nlon)`` source values (any unit).
        lat: ``(nlat,)`` latitudes (degrees), ascending or descending.
        lon: ``(nlon,)`` longitudes (degrees), -180..180 or 0..360.
        grid: target grid (any CRS; EPSG:3035 for ours).

    Returns:
        ``(..., ny, nx)`` values at the target cell centres.
    """
    tlon, tlat = lonlat_of(grid)
    return apply_matrix(bilinear_matrix(lat, lon, tlon, tlat), values, grid.shape)


def _edges(centres: np.ndarray) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def conservative_matrix(lat: np.ndarray, lon: np.ndarray, grid: Grid,
                        oversample: int = 8, rows_per_block: int = 64) -> sp.csr_matrix:
    """Sparse area-weighted (conservative) regridding matrix lat/lon -> projected grid.

    Source cells span half-way to their neighbours. Weights of each target row sum to 1.

    Args:
        lat, lon: ``(nlat,)``, ``(nlon,)`` source cell centres (degrees), any order.
        grid: target grid, equal-area CRS (EPSG:3035) for exact area weights.
        oversample: sub-cells per target cell side.
        rows_per_block: target rows processed at once (bounds memory).

    Returns:
        ``(ny * nx, nlat * nlon)`` CSR matrix.

    Raises:
        ValueError: part of a target cell lies outside the source grid.
    """
    from pyproj import Transformer

    lat_s, lat_order, lon_s, lon_order, periodic = _source_axes(lat, lon)
    lat_e, lon_e = _edges(lat_s), _edges(lon_s)
    nlon = np.size(lon)
    tr = None if grid.is_geographic else Transformer.from_crs(grid.pyproj_crs, "EPSG:4326",
                                                             always_xy=True)
    sub = (np.arange(oversample) + 0.5) / oversample
    xs = (grid.x0 + grid.dx * (np.arange(grid.nx)[:, None] + sub[None, :])).ravel()
    mats = []
    for r0 in range(0, grid.ny, rows_per_block):
        nr = min(rows_per_block, grid.ny - r0)
        ys = (grid.y0 + grid.dy * (np.arange(r0, r0 + nr)[:, None] + sub[None, :])).ravel()
        yy, xx = np.meshgrid(ys, xs, indexing="ij")  # (nr*o, nx*o)
        plon, plat = (xx, yy) if tr is None else tr.transform(xx, yy)
        plon = _wrap(plon)
        if periodic:
            plon = np.where(plon < lon_e[0], plon + 360.0, plon)
            plon = np.where(plon >= lon_e[-1], plon - 360.0, plon)
        ii = np.searchsorted(lon_e, plon, side="right") - 1
        jj = np.searchsorted(lat_e, plat, side="right") - 1
        bad = (ii < 0) | (ii >= lon_s.size) | (jj < 0) | (jj >= lat_s.size)
        if np.any(bad):
            raise ValueError("target cells reach outside the source grid "
                             f"(lon {lon_e[0]:.3f}..{lon_e[-1]:.3f}, "
                             f"lat {lat_e[0]:.3f}..{lat_e[-1]:.3f})")
        cols = (lat_order[jj] * nlon + lon_order[ii]).ravel()
        rr = np.repeat(np.arange(r0, r0 + nr), oversample)[:, None]
        cc = np.repeat(np.arange(grid.nx), oversample)[None, :]
        rows = (rr * grid.nx + cc).ravel()
        w = np.full(rows.size, 1.0 / oversample**2)
        mats.append(sp.coo_matrix((w, (rows, cols)), shape=(grid.size, np.size(lat) * nlon)))
    m = sum(mats[1:], mats[0]).tocsr()
    m.sum_duplicates()
    return m


def conservative_to_grid(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, grid: Grid,
                         oversample: int = 8) -> np.ndarray:
    """Area-weighted average of ``(..., nlat, nlon)`` lat/lon values over each grid cell."""
    return apply_matrix(conservative_matrix(lat, lon, grid, oversample), values, grid.shape)


def block_mean(values: np.ndarray, factor: int, *, skipna: bool = False) -> np.ndarray:
    """Mean over ``factor x factor`` blocks of the last two dims.

    Args:
        values: ``(..., ny, nx)`` with ny and nx divisible by ``factor``.
        factor: block side in cells.
        skipna: ignore NaNs (a block of NaNs gives NaN).

    Returns:
        ``(..., ny / factor, nx / factor)``, float dtype of ``values`` (float64 for ints).
    """
    values = np.asarray(values)
    ny, nx = values.shape[-2:]
    if factor < 1 or ny % factor or nx % factor:
        raise ValueError(f"shape {ny} x {nx} does not divide into blocks of {factor}")
    blocks = values.reshape(values.shape[:-2] + (ny // factor, factor, nx // factor, factor))
    if not np.issubdtype(blocks.dtype, np.floating):
        blocks = blocks.astype(np.float64)
    if skipna:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(blocks, axis=(-3, -1))
    return blocks.mean(axis=(-3, -1))
