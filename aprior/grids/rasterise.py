"""Putting high-resolution sources on a coarser grid: cell binning, line lengths, CORINE.

All functions take arrays (coordinates already in the grid's CRS) and a
:class:`~aprior.grids.grid.Grid`; none reads files.

- :class:`CellAccumulator` bins source pixels by the cell containing their centre and
  keeps running sums, counts or class histograms, so rasters can be streamed block by
  block: ``mean`` (averaging, e.g. elevation, night-time light), ``sum`` (counts,
  e.g. population: the total inside the grid is preserved exactly) and ``mode`` (the
  most frequent class; ties go to the lowest class index).
- :func:`line_length_per_cell` clips polylines against the cell edges and returns the
  exact length of line in every cell (rasterisation of roads).
- :func:`corine_classes` maps the 44 CORINE Land Cover classes (CLC codes 111..523 or
  raster grid codes 1..44) to the five level-1 groups used by DACNO2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aprior.grids.grid import Grid

#: the five CORINE level-1 groups, in one-hot channel order
LANDCOVER_CLASSES = ("artificial", "agricultural", "forest_seminatural", "wetlands", "water")

#: CORINE raster grid codes 1..44 -> level-1 group index (0..4); see the CLC legend
_GRID_CODE_BOUNDS = np.array([1, 12, 23, 35, 40, 45])  # group k holds codes [b_k, b_{k+1})

#: the 44 valid CLC level-3 codes
CLC_CODES = (111, 112, 121, 122, 123, 124, 131, 132, 133, 141, 142,
             211, 212, 213, 221, 222, 223, 231, 241, 242, 243, 244,
             311, 312, 313, 321, 322, 323, 324, 331, 332, 333, 334, 335,
             411, 412, 421, 422, 423, 511, 512, 521, 522, 523)


def cell_index(grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Flat index ``row * nx + col`` of the cell containing each point, -1 outside.

    Args:
        x, y: ``(...)`` point coordinates in the grid's CRS.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    fi = np.floor((x - grid.x0) / grid.dx)
    fj = np.floor((y - grid.y0) / grid.dy)
    inside = (fi >= 0) & (fi < grid.nx) & (fj >= 0) & (fj < grid.ny)
    return np.where(inside, fj * grid.nx + fi, -1).astype(np.int64)


class CellAccumulator:
    """Streams source pixels into grid cells by the cell that contains their centre.

    Args:
        grid: the target grid.
        how: "mean", "sum" or "mode".
        n_classes: number of classes for "mode" (values are class indices, -1 = none).
    """

    def __init__(self, grid: Grid, how: str, n_classes: int = len(LANDCOVER_CLASSES)) -> None:
        if how not in ("mean", "sum", "mode"):
            raise ValueError(f"how must be mean, sum or mode, got {how!r}")
        self.grid, self.how, self.n_classes = grid, how, n_classes
        n = grid.size
        self._seen = np.zeros(n, dtype=bool)
        if how == "mode":
            self._hist = np.zeros(n * n_classes, dtype=np.int64)
        else:
            self._sum = np.zeros(n, dtype=np.float64)
            self._count = np.zeros(n, dtype=np.int64)

    def add(self, cells: np.ndarray, values: np.ndarray) -> None:
        """Add pixels.

        Args:
            cells: ``(n,)`` flat cell index of each pixel (-1 outside the grid).
            values: ``(n,)`` pixel values; NaN (mean/sum) or a negative class (mode) marks
                nodata, which counts towards coverage but not towards the statistic.
        """
        cells = np.asarray(cells).ravel()
        values = np.asarray(values).ravel()
        inside = cells >= 0
        cells, values = cells[inside], values[inside]
        self._seen[cells] = True
        n = self.grid.size
        if self.how == "mode":
            ok = (values >= 0) & (values < self.n_classes)
            self._hist += np.bincount(cells[ok] * self.n_classes + values[ok].astype(np.int64),
                                      minlength=n * self.n_classes)
        else:
            ok = np.isfinite(values)
            self._sum += np.bincount(cells[ok], weights=values[ok].astype(np.float64), minlength=n)
            self._count += np.bincount(cells[ok], minlength=n)

    @property
    def coverage(self) -> float:
        """Fraction of grid cells that received at least one pixel (valid or nodata)."""
        return float(self._seen.mean())

    def result(self, fill: float = np.nan) -> np.ndarray:
        """``(ny, nx)``: the mean or sum (``fill`` where no valid pixel), or the modal class
        index as int64 (-1 where no valid pixel)."""
        ny, nx = self.grid.shape
        if self.how == "mode":
            hist = self._hist.reshape(-1, self.n_classes)
            cls = np.argmax(hist, axis=1)
            cls[hist.sum(axis=1) == 0] = -1
            return cls.reshape(ny, nx)
        valid = self._count > 0
        out = np.full(self.grid.size, fill, dtype=np.float64)
        if self.how == "sum":
            out[valid] = self._sum[valid]
        else:
            out[valid] = self._sum[valid] / self._count[valid]
        return out.reshape(ny, nx)


def _crossings(a0: np.ndarray, a1: np.ndarray, n_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids and parameters t in (0, 1) where a0 + t (a1 - a0) crosses an integer in
    [0, n_lines] (a grid edge, in index units)."""
    lo, hi = np.minimum(a0, a1), np.maximum(a0, a1)
    k_lo = np.maximum(np.floor(lo) + 1, 0).astype(np.int64)
    k_hi = np.minimum(np.ceil(hi) - 1, n_lines).astype(np.int64)
    count = np.clip(k_hi - k_lo + 1, 0, None)
    seg = np.repeat(np.arange(a0.size), count)
    start = np.repeat(np.cumsum(count) - count, count)
    k = np.repeat(k_lo, count) + (np.arange(seg.size) - start)
    t = (k - a0[seg]) / (a1[seg] - a0[seg])
    return seg, t


def line_length_per_cell(lines: Sequence[np.ndarray], grid: Grid) -> np.ndarray:
    """Exact length of polylines inside each grid cell.

    Each segment is split where it crosses a cell edge; every piece lies in one cell,
    found from its midpoint. The result sums to the total length of the lines inside the
    grid, to rounding.

    Args:
        lines: ``(n_i, 2)`` arrays of vertices (x, y) in the grid's CRS units (m).
        grid: the target grid.

    Returns:
        ``(ny, nx)`` float64 length per cell, in CRS units (m).
    """
    segs = [np.asarray(ln, np.float64)[:, :2] for ln in lines if len(ln) >= 2]
    if not segs:
        return np.zeros(grid.shape)
    p0 = np.concatenate([s[:-1] for s in segs])
    p1 = np.concatenate([s[1:] for s in segs])
    keep = np.all(np.isfinite(p0) & np.isfinite(p1), axis=1) & np.any(p0 != p1, axis=1)
    p0, p1 = p0[keep], p1[keep]
    u0, u1 = (p0[:, 0] - grid.x0) / grid.dx, (p1[:, 0] - grid.x0) / grid.dx
    v0, v1 = (p0[:, 1] - grid.y0) / grid.dy, (p1[:, 1] - grid.y0) / grid.dy
    n = p0.shape[0]
    su, tu = _crossings(u0, u1, grid.nx)
    sv, tv = _crossings(v0, v1, grid.ny)
    seg = np.concatenate([np.arange(n), np.arange(n), su, sv])
    t = np.concatenate([np.zeros(n), np.ones(n), tu, tv])
    order = np.lexsort((t, seg))
    seg, t = seg[order], t[order]
    same = seg[1:] == seg[:-1]
    s, ta, tb = seg[1:][same], t[:-1][same], t[1:][same]
    tm = 0.5 * (ta + tb)
    um = u0[s] + tm * (u1[s] - u0[s])
    vm = v0[s] + tm * (v1[s] - v0[s])
    length = (tb - ta) * np.hypot(p1[s, 0] - p0[s, 0], p1[s, 1] - p0[s, 1])
    i, j = np.floor(um), np.floor(vm)
    inside = (i >= 0) & (i < grid.nx) & (j >= 0) & (j < grid.ny)
    flat = (j[inside] * grid.nx + i[inside]).astype(np.int64)
    out = np.bincount(flat, weights=length[inside], minlength=grid.size)
    return out.reshape(grid.shape)


def detect_corine_convention(codes: np.ndarray) -> str:
    """"clc" if the raster holds CLC level-3 codes (111..523), "grid" for grid codes 1..44.

    Raises ValueError if neither is present.
    """
    vals = np.unique(np.asarray(codes))
    if np.isin(vals, CLC_CODES).any():
        return "clc"
    if ((vals >= 1) & (vals <= 44)).any():
        return "grid"
    raise ValueError("no CORINE class codes (1..44 or 111..523) found")


def corine_classes(codes: np.ndarray, convention: str) -> np.ndarray:
    """Map CORINE codes to the five level-1 groups.

    Args:
        codes: ``(...)`` integer CORINE values.
        convention: "clc" (codes 111..523) or "grid" (raster grid codes 1..44).

    Returns:
        ``(...)`` int8 group index 0..4 (see :data:`LANDCOVER_CLASSES`), -1 for nodata,
        unclassified or unknown codes (e.g. 48, 128, 999).
    """
    c = np.asarray(codes).astype(np.int64)
    if convention == "clc":
        valid = np.isin(c, CLC_CODES)
        out = np.where(valid, c // 100 - 1, -1)
    elif convention == "grid":
        valid = (c >= 1) & (c <= 44)
        out = np.where(valid, np.searchsorted(_GRID_CODE_BOUNDS, c, side="right") - 1, -1)
    else:
        raise ValueError(f"convention must be 'clc' or 'grid', got {convention!r}")
    return out.astype(np.int8)


def one_hot(classes: np.ndarray, n_classes: int = len(LANDCOVER_CLASSES)) -> np.ndarray:
    """``(ny, nx)`` class indices (-1 = none) -> ``(n_classes, ny, nx)`` float32 one-hot;
    a cell without class is all zeros."""
    classes = np.asarray(classes)
    return (classes[None] == np.arange(n_classes)[:, None, None]).astype(np.float32)
