"""Exact area weights of satellite footprints on a regular grid.

A footprint is the quadrilateral spanned by its four corners (given in order around the
polygon, either orientation), projected into the grid's CRS with pyproj, with straight
edges in that CRS. The weight of grid cell ``c`` for pixel ``p`` is
``area(P ∩ c) / area(P)``: a row of the weight matrix sums to the fraction of the
footprint that the grid covers, and the area-weighted mean of a field over the covered
part of a footprint is ``(W @ f) / coverage`` (:func:`apply`).

Method (exact up to rounding). For a simple polygon ``P`` oriented counter-clockwise and
the quadrant ``Q(X, Y) = {x <= X, y <= Y}``, Green's theorem gives

    G(X, Y) = area(P ∩ Q(X, Y)) = ∮_P min(x, X) · 1[y <= Y] dy.

Along an edge ``x`` is linear in ``y``, so each edge contributes in closed form: the
integral of the line over its part with ``y <= Y`` minus the integral of the positive
part of ``x - X`` there (a linear function's positive part integrates to
``L (u0+ + u1+)^2 / (2 (|u0| + |u1|))`` with ``u = x - X`` at the two ends). ``G`` is
evaluated at every grid node of the footprint's bounding box, vectorised over
pixels x nodes, and a cell's overlap is the second difference
``G(x1, y1) - G(x0, y1) - G(x1, y0) + G(x0, y0)``. Coordinates are taken relative to each
footprint's bounding-box corner, so metre-scale coordinates of 3e6 m lose no digits.
Pixels are grouped by the size of their node box and processed in blocks of at most
``_BLOCK_ELEMENTS`` nodes (node rows in slabs for footprints larger than that), so the
work arrays stay at a few MB whatever the number or size of footprints; for 200,000
TROPOMI pixels on the 2 km grid the peak is about 200 MB, mostly inputs and output.

Skipped pixels (empty row, coverage 0): a non-finite corner, ``valid`` False, corners
outside the CRS's domain, a degenerate footprint (area below 1e-9 of its squared
bounding-box diagonal) and a self-intersecting ("bow-tie") corner order. Overlaps
below 1e-14 of the squared bounding-box diagonal are rounding noise (measured at
most 3e-16 of it) and are dropped.

Geographic grids (x = longitude, y = latitude, degrees): footprints are intersected in
lon/lat space (edges straight in degrees) and each cell's overlap is weighted by the
cosine of the latitude of the cell centre, so that weights within a row approximate true
areas; the row is then scaled so that it still sums to the covered fraction in lon/lat.
``area`` stays the plain lon/lat area (deg2). Corners are unwrapped around the first
corner (footprints crossing the antimeridian stay whole) and each footprint is shifted
by a multiple of 360 degrees so that its centre lies in ``[x_min, x_min + 360)`` of the
grid; on a grid spanning 360 degrees the parts beyond either edge wrap around. Longitudes
may thus come as 0..360 or -180..180 whatever the grid uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import Transformer
from scipy import sparse

from aprior.grids.grid import Grid

log = logging.getLogger(__name__)

#: Elements of one (pixel, node row, node column) block evaluated at once.
_BLOCK_ELEMENTS = 1 << 16
_DEGENERATE_REL = 1e-9
_NOISE_REL = 1e-14


@dataclass(frozen=True)
class FootprintWeights:
    """Area weights of ``n`` footprints on a grid.

    Attributes:
        matrix: ``(n, grid.size)`` scipy.sparse CSR, float64, 1. Overlap area of footprint
            ``p`` with cell ``(j, i)`` (column ``j * nx + i``) divided by the footprint's
            area; rows sum to ``coverage``. Skipped pixels have empty rows.
        coverage: ``(n,)`` float64 in [0, 1]; fraction of each footprint covered by the grid.
        area: ``(n,)`` float64; footprint area in the grid CRS units squared (m2 or deg2),
            NaN where the corners are fill or could not be projected, and for pixels
            excluded by ``valid`` (they are not projected at all).
    """

    matrix: sparse.csr_matrix
    coverage: np.ndarray
    area: np.ndarray

    def __post_init__(self) -> None:
        n = self.coverage.shape[0]
        if not sparse.issparse(self.matrix) or self.matrix.shape[0] != n:
            raise ValueError(f"matrix must be sparse with {n} rows")
        if self.coverage.shape != (n,) or self.area.shape != (n,):
            raise ValueError("coverage and area must be (n,) arrays")

    @property
    def n_pixels(self) -> int:
        return self.coverage.shape[0]


@lru_cache(maxsize=16)
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _project(lon: np.ndarray, lat: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) corners in degrees -> (n, 4) corners in the grid CRS (NaN stays NaN)."""
    if not grid.is_geographic:
        x, y = _transformer(grid.crs).transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = lon, lat
    if not grid.pyproj_crs.equals("EPSG:4326", ignore_axis_order=True):
        x, y = (np.asarray(v, dtype=np.float64) for v in _transformer(grid.crs).transform(lon, lat))
    with np.errstate(invalid="ignore"):
        d = x - x[:, :1]
        x = np.where(d > 180.0, x - 360.0, np.where(d < -180.0, x + 360.0, x))
    with np.errstate(invalid="ignore"):
        shift = np.floor((x.mean(axis=1) - grid.x0) / 360.0)
    x = x - 360.0 * np.where(np.isfinite(shift), shift, 0.0)[:, None]
    return x, y


def _min4(a: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(a[:, 0], a[:, 1]), np.minimum(a[:, 2], a[:, 3]))


def _sum4(a: np.ndarray) -> np.ndarray:
    return (a[:, 0] + a[:, 1]) + (a[:, 2] + a[:, 3])


def _max4(a: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(a[:, 0], a[:, 1]), np.maximum(a[:, 2], a[:, 3]))


def _accumulate_G(xl: np.ndarray, yl: np.ndarray, X: np.ndarray, Y: np.ndarray, G: np.ndarray,
                  right_free: bool) -> None:
    """Add G(X, Y) = area(P ∩ {x <= X, y <= Y}) at all node pairs to ``G``.

    Args:
        xl, yl: ``(m, 4)`` counter-clockwise corners in local coordinates.
        X: ``(m, ki)`` node x; Y: ``(m, kj)`` node y (same local coordinates).
        G: ``(m, kj, ki)`` float64 output, zero on entry.
        right_free: the last node column lies at or beyond the footprint's maximum x,
            where ``min(x, X) = x`` and the correction term vanishes.
    """
    xb, yb = np.roll(xl, -1, axis=1), np.roll(yl, -1, axis=1)
    up = yb > yl
    ylo, yhi = np.where(up, yl, yb), np.where(up, yb, yl)
    x_lo, x_hi = np.where(up, xl, xb), np.where(up, xb, xl)
    sign = np.where(up, 0.5, -0.5)  # the 1/2 of both integrals folded in
    dy = yhi - ylo
    slope = np.divide(x_hi - x_lo, dy, out=np.zeros_like(dy), where=dy > 0)
    Xc, Gc = (X[:, :-1], G[:, :, :-1]) if right_free else (X, G)
    for e in range(4):
        # the edge's part with y <= Y: length L in y, from x_lo to xt
        L = np.clip(Y, ylo[:, e:e + 1], yhi[:, e:e + 1]) - ylo[:, e:e + 1]  # (m, kj)
        xt = x_lo[:, e:e + 1] + L * slope[:, e:e + 1]
        w = sign[:, e:e + 1] * L
        G += (w * (x_lo[:, e:e + 1] + xt))[:, :, None]
        # minus the integral of max(x - X, 0): L (u0+ + u1+)^2 / (2 (|u0| + |u1|))
        u0 = x_lo[:, e:e + 1] - Xc  # (m, ki)
        pos0 = np.maximum(u0, 0.0)[:, None, :]
        abs0 = (np.abs(u0) + 1e-300)[:, None, :]  # never 0/0: u0 = u1 = 0 gives 0
        u1 = xt[:, :, None] - Xc[:, None, :]  # (m, kj, ki)
        num = np.maximum(u1, 0.0)
        num += pos0
        num *= num
        np.abs(u1, out=u1)
        u1 += abs0
        num /= u1
        num *= w[:, :, None]
        Gc -= num


def _cell_areas(xl, yl, X, Y, zero_first: bool, right_free: bool) -> np.ndarray:
    """``(m, kj - 1, ki - 1)`` overlap areas of the cells between the nodes X, Y.

    ``zero_first``: the first node column and row lie at or below the footprint's minimum
    x and y, where G vanishes, so they are not evaluated. ``right_free``: see
    :func:`_accumulate_G`. Node rows are taken in slabs
    so that a block never exceeds ``_BLOCK_ELEMENTS``.
    """
    m, ki = X.shape
    kj = Y.shape[1]
    c0 = int(zero_first)
    rows = max(1, _BLOCK_ELEMENTS // max(1, m * ki) - 1)
    out = []
    for r in range(0, kj - 1, rows):
        Ys = Y[:, r:r + rows + 1]
        G = np.zeros((m, Ys.shape[1], ki))
        r0 = c0 if r == 0 else 0
        _accumulate_G(xl, yl, X[:, c0:], Ys[:, r0:], G[:, r0:, c0:], right_free)
        out.append(G[:, 1:, 1:] - G[:, :-1, 1:] - G[:, 1:, :-1] + G[:, :-1, :-1])
    return out[0] if len(out) == 1 else np.concatenate(out, axis=1)


def _triplets(x, y, pix, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlaps of footprints ``pix`` (rows of the (n, 4) CCW corners x, y) with cells.

    Returns (rows, cols, areas) with areas in CRS units squared.
    """
    x, y = x[pix], y[pix]
    xmin, ymin, xmax, ymax = _min4(x), _min4(y), _max4(x), _max4(y)
    tol = _NOISE_REL * ((xmax - xmin) ** 2 + (ymax - ymin) ** 2)
    fi0, fj0 = np.floor((xmin - grid.x0) / grid.dx), np.floor((ymin - grid.y0) / grid.dy)
    i0 = np.clip(fi0, 0, grid.nx).astype(np.int64)
    fi1 = np.ceil((xmax - grid.x0) / grid.dx)
    i1 = np.clip(fi1, 0, grid.nx).astype(np.int64)
    j0 = np.clip(fj0, 0, grid.ny).astype(np.int64)
    j1 = np.clip(np.ceil((ymax - grid.y0) / grid.dy), 0, grid.ny).astype(np.int64)
    ki, kj = i1 - i0 + 1, j1 - j0 + 1
    # 0: nodes span the footprint; 1: clipped on the left or bottom; 2: on the right
    clip = ((fi0 < 0) | (fj0 < 0)).astype(np.int64) + 2 * (fi1 > grid.nx)
    inside = np.flatnonzero((ki > 1) & (kj > 1))
    key = (ki[inside] * (grid.ny + 2) + kj[inside]) * 4 + clip[inside]
    sort = np.argsort(key, kind="stable")
    order = inside[sort]
    bounds = np.flatnonzero(np.diff(key[sort])) + 1
    rows_out, cols_out, vals_out = [], [], []
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        gi, gj, gc = int(ki[group[0]]), int(kj[group[0]]), int(clip[group[0]])
        step = max(1, _BLOCK_ELEMENTS // (gi * gj))
        ai, aj = np.arange(gi), np.arange(gj)
        for s in range(0, group.size, step):
            g = group[s:s + step]
            X = grid.x0 + (i0[g, None] + ai) * grid.dx - xmin[g, None]
            Y = grid.y0 + (j0[g, None] + aj) * grid.dy - ymin[g, None]
            cells = _cell_areas(x[g] - xmin[g, None], y[g] - ymin[g, None],
                                X, Y, zero_first=not (gc & 1), right_free=not (gc & 2))
            p, a, b = np.nonzero(cells > tol[g, None, None])
            gp = g[p]
            rows_out.append(pix[gp])
            cols_out.append((j0[gp] + a) * grid.nx + i0[gp] + b)
            vals_out.append(cells[p, a, b])
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)


def _polygons(lon_bounds, lat_bounds, grid: Grid, valid):
    """Validated, projected, counter-clockwise corners: (x, y, area, ok).

    Only the wanted pixels (finite corners, ``valid``) are projected and checked; the
    others get zero corners, NaN area and ``ok`` False (a full orbit is mostly outside a
    field, so this keeps the cost proportional to the pixels that matter).
    """
    lon = np.asarray(lon_bounds, dtype=np.float64)
    lat = np.asarray(lat_bounds, dtype=np.float64)
    if lon.ndim != 2 or lon.shape[1] != 4 or lat.shape != lon.shape:
        raise ValueError(f"corner arrays must both be (n, 4), got {lon.shape} and {lat.shape}")
    n = lon.shape[0]
    want = np.isfinite(_sum4(lon) + _sum4(lat))
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != want.shape:
            raise ValueError(f"valid must be ({want.size},), got {valid.shape}")
        want &= valid
    idx = np.flatnonzero(want)
    x_all, y_all = np.zeros((n, 4)), np.zeros((n, 4))
    area_all = np.full(n, np.nan)
    ok_all = np.zeros(n, dtype=bool)
    if idx.size == 0:
        return x_all, y_all, area_all, ok_all
    with np.errstate(invalid="ignore"):
        x, y = _project(lon[idx], lat[idx], grid)
    finite = np.isfinite(_sum4(x) + _sum4(y))
    x, y = np.where(finite[:, None], x, 0.0), np.where(finite[:, None], y, 0.0)
    xl, yl = x - _min4(x)[:, None], y - _min4(y)[:, None]
    xn, yn = np.roll(xl, -1, axis=1), np.roll(yl, -1, axis=1)
    signed = 0.5 * _sum4(xl * yn - xn * yl)
    # turn at each corner: a crossed (bow-tie) quadrilateral turns twice each way
    ex, ey = xn - xl, yn - yl
    turn = ex * np.roll(ey, -1, axis=1) - ey * np.roll(ex, -1, axis=1)
    bowtie = (_sum4((turn > 0).astype(np.int8)) == 2) & (_sum4((turn < 0).astype(np.int8)) == 2)
    diag2 = _max4(xl) ** 2 + _max4(yl) ** 2
    area = np.abs(signed)
    ok = finite & ~bowtie & (area > _DEGENERATE_REL * diag2)
    cw = signed < 0
    x, y = np.where(cw[:, None], x[:, ::-1], x), np.where(cw[:, None], y[:, ::-1], y)
    n_bad = int((finite & bowtie).sum())
    if n_bad:
        log.warning("%d footprints have self-intersecting corner order and are skipped", n_bad)
    x_all[idx], y_all[idx] = x, y
    area_all[idx] = np.where(finite, area, np.nan)
    ok_all[idx] = ok
    return x_all, y_all, area_all, ok_all


def footprint_weights(
    lon_bounds: np.ndarray,
    lat_bounds: np.ndarray,
    grid: Grid,
    *,
    valid: np.ndarray | None = None,
) -> FootprintWeights:
    """Exact area weights of quadrilateral footprints on ``grid``.

    Args:
        lon_bounds, lat_bounds: ``(n, 4)`` footprint corners in degrees, in order around
            the footprint (either orientation; S5P gives them counter-clockwise).
        grid: the target grid; cell ``(j, i)`` is matrix column ``j * nx + i``.
        valid: ``(n,)`` bool, optional; False skips the pixel (empty row).

    Returns:
        :class:`FootprintWeights` (see the module docstring for the method and the
        treatment of geographic grids).
    """
    x, y, area, ok = _polygons(lon_bounds, lat_bounds, grid, valid)
    n = x.shape[0]
    pix = np.flatnonzero(ok)
    parts = [_triplets(x, y, pix, grid)]
    if grid.is_geographic and grid.nx * grid.dx >= 360.0 - 1e-9:
        xmin_g, _, xmax_g, _ = grid.bounds
        for shift, sel in ((-360.0, _max4(x[pix]) > xmax_g), (360.0, _min4(x[pix]) < xmin_g)):
            if sel.any():
                parts.append(_triplets(x + shift, y, pix[sel], grid))
    rows, cols, vals = (np.concatenate(p) for p in zip(*parts, strict=True))
    covered = np.bincount(rows, weights=vals, minlength=n)
    coverage = np.zeros(n)
    coverage[pix] = np.minimum(covered[pix] / area[pix], 1.0)
    if grid.is_geographic:
        weighted = vals * np.cos(np.deg2rad(grid.y))[cols // grid.nx]
        scale = np.ones(n)
        wsum = np.bincount(rows, weights=weighted, minlength=n)
        has = covered > 0
        scale[has] = covered[has] / wsum[has]
        vals = weighted * scale[rows]
    matrix = sparse.csr_matrix((vals / area[rows], (rows, cols)), shape=(n, grid.size))
    matrix.sum_duplicates()
    log.debug("footprint weights: %d of %d pixels, %d overlaps", pix.size, n, matrix.nnz)
    return FootprintWeights(matrix=matrix, coverage=coverage, area=area)


def apply(weights: FootprintWeights, values: np.ndarray) -> np.ndarray:
    """Area-weighted mean of grid fields over the covered part of each footprint.

    Args:
        weights: from :func:`footprint_weights`.
        values: the fields on the weights' grid: ``(grid.size, k)`` (column index
            ``j * nx + i``), ``(ny, nx)`` or ``(k, ny, nx)``. NaN in a cell a footprint
            overlaps makes that footprint's value NaN.

    Returns:
        ``(n, k)`` float64 (``k = 1`` for a ``(ny, nx)`` field); NaN where coverage is 0.
    """
    values = np.asarray(values)
    size = weights.matrix.shape[1]
    if values.ndim == 2 and values.shape[0] == size:
        flat = values
    elif values.ndim == 2 and values.size == size:
        flat = values.reshape(size, 1)
    elif values.ndim == 3 and values.shape[1] * values.shape[2] == size:
        flat = values.reshape(values.shape[0], size).T
    else:
        raise ValueError(f"values of shape {values.shape} do not fit a grid of {size} cells")
    out = np.asarray(weights.matrix @ flat.astype(np.float64, copy=False))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / weights.coverage[:, None]
    out[weights.coverage <= 0] = np.nan
    return out
