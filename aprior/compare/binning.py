"""Area-weighted binning of pixel footprints onto a regular lon/lat grid, streamed.

Every pixel contributes to every grid cell its footprint overlaps, with weight the
overlap area ``a_pc`` (km2). A cell's mean is ``sum_p a_pc v_p / sum_p a_pc``; its weight
``W_c = sum_p a_pc`` is kept with it. This conserves the pixel-area-weighted mean: for
pixels lying wholly inside the grid,

    sum_c W_c mean_c / sum_c W_c = sum_p A_p v_p / sum_p A_p,

with ``A_p = sum_c a_pc`` the pixel's area. Only the sums ``sum a v`` and ``sum a`` are
kept (two ``(ny, nx)`` float64 arrays per quantity), so any number of orbits is binned in
constant memory.

The overlaps come from :func:`aprior.retrieval.footprint.footprint_weights` on the
EPSG:4326 grid: footprints are intersected exactly in lon/lat (straight edges in degrees)
and the overlap fractions are weighted by the cosine of the cell-centre latitude. A pixel's
area is its lon/lat (shoelace) area times the cosine of its centre latitude times
``(pi R / 180)^2`` with the mean Earth radius R = 6371.0088 km; for TROPOMI footprints
(a few km) this differs from the geodesic area by a nearly constant factor over a
region, which cancels in every mean.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from aprior.grids.grid import Grid
from aprior.retrieval.footprint import footprint_weights

log = logging.getLogger(__name__)

#: Mean Earth radius (km), IUGG.
EARTH_RADIUS_KM = 6371.0088
_KM2_PER_DEG2 = (math.pi * EARTH_RADIUS_KM / 180.0) ** 2


def lonlat_grid(bbox: tuple[float, float, float, float], resolution: float) -> Grid:
    """A regular EPSG:4326 grid covering ``bbox`` (west, south, east, north; degrees).

    Cells are ``resolution`` degrees square, starting at the west and south edges; the
    east and north edges are moved outward to a whole number of cells.
    """
    w, s, e, n = (float(v) for v in bbox)
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if not (e > w and n > s):
        raise ValueError(f"empty box {bbox}")
    nx = max(1, int(math.ceil((e - w) / resolution - 1e-9)))
    ny = max(1, int(math.ceil((n - s) / resolution - 1e-9)))
    return Grid("EPSG:4326", w, s, float(resolution), float(resolution), nx, ny)


def footprint_area_km2(lon_bounds: np.ndarray, lat_bounds: np.ndarray) -> np.ndarray:
    """Approximate footprint areas (km2), ``(n,)``, from ``(n, 4)`` corners in degrees.

    Shoelace area in lon/lat (longitudes unwrapped around the first corner) times the
    cosine of the mean corner latitude times ``(pi R / 180)^2``; NaN where a corner is NaN.
    """
    lon = np.asarray(lon_bounds, dtype=np.float64)
    lat = np.asarray(lat_bounds, dtype=np.float64)
    d = lon - lon[:, :1]
    lon = np.where(d > 180.0, lon - 360.0, np.where(d < -180.0, lon + 360.0, lon))
    x, y = lon - lon[:, :1], lat - lat[:, :1]
    xn, yn = np.roll(x, -1, axis=1), np.roll(y, -1, axis=1)
    area = 0.5 * np.abs(np.sum(x * yn - xn * y, axis=1))
    return area * np.cos(np.deg2rad(lat.mean(axis=1))) * _KM2_PER_DEG2


class GridAccumulator:
    """Streaming area-weighted means of several quantities on one grid.

    Args:
        grid: an EPSG:4326 :class:`~aprior.grids.grid.Grid` (see :func:`lonlat_grid`).
        names: the quantities binned.

    Attributes:
        sum_wv, sum_w: name -> ``(ny, nx)`` float64; sums of ``a * v`` (km2 times the
            quantity's unit) and of ``a`` (km2) over the pixels where the quantity is finite.
        n_pixels: pixels with a footprint overlapping the grid.
    """

    def __init__(self, grid: Grid, names: Sequence[str]) -> None:
        if not grid.is_geographic:
            raise ValueError("the binning grid must be a lon/lat grid (EPSG:4326)")
        self.grid = grid
        self.names = tuple(names)
        self.sum_wv = {k: np.zeros(grid.shape) for k in self.names}
        self.sum_w = {k: np.zeros(grid.shape) for k in self.names}
        self.n_pixels = 0

    def overlaps(self, lon_bounds: np.ndarray, lat_bounds: np.ndarray):
        """Overlap areas (km2) of ``(n, 4)`` footprints with the cells: ``(n, cells)`` CSR."""
        fw = footprint_weights(lon_bounds, lat_bounds, self.grid)
        area = footprint_area_km2(lon_bounds, lat_bounds)
        mat = fw.matrix.tocsr(copy=True)
        rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
        mat.data = mat.data * np.nan_to_num(area)[rows]
        return mat

    def add(self, lon_bounds: np.ndarray, lat_bounds: np.ndarray,
            values: Mapping[str, np.ndarray]) -> None:
        """Bin one block of pixels.

        Args:
            lon_bounds, lat_bounds: ``(n, 4)`` footprint corners, degrees, in order around
                the footprint.
            values: name -> ``(n,)`` values; NaN pixels do not count for that name.
        """
        n = lon_bounds.shape[0]
        if n == 0:
            return
        mat = self.overlaps(lon_bounds, lat_bounds)
        self.n_pixels += int(np.count_nonzero(np.diff(mat.indptr)))
        stack = np.column_stack([np.asarray(values[k], dtype=np.float64) for k in self.names])
        finite = np.isfinite(stack)
        wt = mat.T.tocsr()
        sums = np.asarray(wt @ np.where(finite, stack, 0.0))
        weights = np.asarray(wt @ finite.astype(np.float64))
        for i, k in enumerate(self.names):
            self.sum_wv[k] += sums[:, i].reshape(self.grid.shape)
            self.sum_w[k] += weights[:, i].reshape(self.grid.shape)

    def mean(self, name: str) -> np.ndarray:
        """``(ny, nx)`` area-weighted mean of a quantity; NaN in cells without pixels."""
        w = self.sum_w[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w > 0, self.sum_wv[name] / np.where(w > 0, w, 1.0), np.nan)

    def data_window(self, margin: int = 2) -> tuple[slice, slice]:
        """(rows, cols) slices of the smallest window holding all cells with weight, plus
        ``margin`` cells; the whole grid when no cell has weight."""
        any_w = np.zeros(self.grid.shape, dtype=bool)
        for w in self.sum_w.values():
            any_w |= w > 0
        if not any_w.any():
            return slice(0, self.grid.ny), slice(0, self.grid.nx)
        rows = np.flatnonzero(any_w.any(axis=1))
        cols = np.flatnonzero(any_w.any(axis=0))
        return (slice(max(0, rows[0] - margin), min(self.grid.ny, rows[-1] + 1 + margin)),
                slice(max(0, cols[0] - margin), min(self.grid.nx, cols[-1] + 1 + margin)))
