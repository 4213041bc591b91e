"""Patch tiling: cut grids into overlapping 512 km patches and merge patch outputs back.

DACNO2 works on patches of 256 x 256 cells at 2 km (64 x 64 at 8 km, 32 x 32 at 16 km).
On the full domain grid (592 x 736 cells) the paper's 12 overlapping patches per day are
3 columns x 4 rows of patches with strides 168 (x) and 160 (y) cells; that is our default.

Placement. Along each axis of ``n`` cells, ``m = ceil((n - P) / S) + 1`` patches of ``P``
cells are spread evenly so that the first starts at 0 and the last ends at ``n``; their
offsets are rounded to multiples of 8 cells, so every patch is also a whole window of the
8 km and 16 km grids (the grid's sides must divide by 8, as sub-domains do). ``S`` is the
largest allowed stride; actual strides are at most ``S``. On the full domain this gives
exactly the paper's offsets. A grid smaller than a patch gets one patch along that axis,
centred on the grid and reaching outside it: :meth:`PatchTiling.extract` fills the outside
by padding (edge values by default) and :meth:`PatchTiling.merge` ignores it. Padding
gives the network no real context: prefer a sub-domain at least one patch wide.

Merging. Patch values are weighted by a 2D Hann window, the outer product of the
periodic Hann window sampled at cell centres, ``w[k] = sin^2(pi (k + 0.5) / P)``. It is a
half-cell shift of the textbook periodic window ``sin^2(pi k / P)``: it keeps its key
property (windows at 50 % overlap sum to exactly 1) but is strictly positive, so every
cell that any patch covers gets a positive total weight, including the cells on the edges
of the grid that only a patch edge covers. The merged value is the weighted sum divided
by the summed weights, which is exact for any overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aprior.grids.grid import Grid

#: Patch offsets are multiples of this many 2 km cells (one 16 km cell).
ALIGN = 8

#: The paper's patch size (2 km cells) and strides (x, y) on the full domain.
PATCH_SIZE = 256
PAPER_STRIDE = (168, 160)


@dataclass(frozen=True)
class Patch:
    """A square patch window on the finest (2 km) grid.

    Attributes:
        i0, j0: column and row of the patch's first cell (multiples of 8; negative or
            beyond the grid only for grids smaller than a patch).
        size: side in 2 km cells.
    """

    i0: int
    j0: int
    size: int = PATCH_SIZE

    def at(self, factor: int) -> tuple[int, int, int]:
        """``(i0, j0, size)`` on the grid coarsened by ``factor`` (1, 4 or 8)."""
        if self.i0 % factor or self.j0 % factor or self.size % factor:
            raise ValueError(f"patch {self} is not aligned with factor {factor}")
        return self.i0 // factor, self.j0 // factor, self.size // factor


@lru_cache(maxsize=16)
def hann_window(size: int) -> np.ndarray:
    """``(size, size)`` float64 2D periodic Hann window sampled at cell centres, > 0."""
    k = np.arange(size, dtype=np.float64)
    w1 = np.sin(np.pi * (k + 0.5) / size) ** 2
    w = np.outer(w1, w1)
    w.setflags(write=False)
    return w


def _offsets(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [-ALIGN * int(round((size - n) / (2 * ALIGN)))]
    m = math.ceil((n - size) / stride) + 1
    span = n - size
    return [ALIGN * int(round(k * span / (m - 1) / ALIGN)) for k in range(m)]


@dataclass(frozen=True)
class PatchTiling:
    """How a grid is cut into patches.

    Attributes:
        size: patch side in 2 km cells (multiple of 8); 256 in the paper.
        stride: largest stride ``(x, y)`` in 2 km cells (multiples of 8, at most ``size``);
            the paper's (168, 160) by default, which gives its 12 patches on the domain.
    """

    size: int = PATCH_SIZE
    stride: tuple[int, int] = PAPER_STRIDE

    def __post_init__(self) -> None:
        stride = self.stride
        if isinstance(stride, int):
            stride = (stride, stride)
        object.__setattr__(self, "stride", tuple(int(s) for s in stride))
        if self.size < ALIGN or self.size % ALIGN:
            raise ValueError(f"patch size must be a positive multiple of {ALIGN}, got {self.size}")
        for s in self.stride:
            if s < ALIGN or s % ALIGN or s > self.size:
                raise ValueError(f"strides must be multiples of {ALIGN} between {ALIGN} and "
                                 f"the patch size {self.size}, got {self.stride}")

    # -- placement ----------------------------------------------------------------------
    def patches(self, grid: Grid | tuple[int, int]) -> list[Patch]:
        """Patches covering a 2 km grid (or a ``(ny, nx)`` shape), row-major from (0, 0).

        Raises:
            ValueError: the grid's sides do not divide by 8 cells.
        """
        ny, nx = grid.shape if isinstance(grid, Grid) else grid
        if nx % ALIGN or ny % ALIGN:
            raise ValueError(f"grid sides must divide by {ALIGN} cells, got {ny} x {nx}")
        xs = _offsets(nx, self.size, self.stride[0])
        ys = _offsets(ny, self.size, self.stride[1])
        return [Patch(i0, j0, self.size) for j0 in ys for i0 in xs]

    # -- cutting ------------------------------------------------------------------------
    def extract(self, array: np.ndarray, patch: Patch, factor: int = 1,
                pad_mode: str = "edge") -> np.ndarray:
        """The patch window of an array on the grid coarsened by ``factor``.

        Args:
            array: ``(..., ny, nx)`` values on the 2 km grid coarsened by ``factor``.
            patch: a patch from :meth:`patches` of the 2 km grid.
            factor: 1 (2 km), 4 (8 km) or 8 (16 km).
            pad_mode: ``numpy.pad`` mode for cells outside the grid ("edge", "reflect",
                "constant" gives zeros); only used for grids smaller than a patch.

        Returns:
            ``(..., size / factor, size / factor)``; a view when no padding is needed.
        """
        i0, j0, s = patch.at(factor)
        ny, nx = array.shape[-2:]
        if i0 >= 0 and j0 >= 0 and i0 + s <= nx and j0 + s <= ny:
            return array[..., j0:j0 + s, i0:i0 + s]
        ya, yb = max(j0, 0), min(j0 + s, ny)
        xa, xb = max(i0, 0), min(i0 + s, nx)
        if ya >= yb or xa >= xb:
            raise ValueError(f"patch {patch} does not overlap the array of shape {array.shape}")
        pad = [(0, 0)] * (array.ndim - 2) + [(ya - j0, j0 + s - yb), (xa - i0, i0 + s - xb)]
        return np.pad(array[..., ya:yb, xa:xb], pad, mode=pad_mode)

    def extract_all(self, array: np.ndarray, patches: list[Patch], factor: int = 1,
                    pad_mode: str = "edge") -> np.ndarray:
        """``(n, ..., s, s)`` stack of :meth:`extract` for each patch."""
        return np.stack([self.extract(array, p, factor, pad_mode) for p in patches])

    # -- merging ------------------------------------------------------------------------
    def weights(self, shape: tuple[int, int], patches: list[Patch], factor: int = 1) -> np.ndarray:
        """``(ny, nx)`` float64 summed Hann weights of the patches on a (coarsened) grid."""
        acc = np.zeros(shape, dtype=np.float64)
        w = hann_window(self.size // factor)
        for p in patches:
            dst, src = self._overlap(p, factor, shape)
            acc[dst] += w[src]
        return acc

    def merge(self, values: np.ndarray, grid: Grid | tuple[int, int],
              patches: list[Patch] | None = None, factor: int = 1) -> np.ndarray:
        """Hann-weighted merge of patch values into one field.

        Args:
            values: ``(n, ..., s, s)`` patch values, ``s = size / factor``, in the order of
                ``patches``.
            grid: the grid (or ``(ny, nx)``) the field lives on, coarsened by ``factor``
                from the 2 km grid the patches were placed on.
            patches: the patches; by default :meth:`patches` of the 2 km grid.
            factor: 1, 4 or 8.

        Returns:
            ``(..., ny, nx)`` in the dtype of ``values`` (floating), accumulated in float64.
            Every cell of the grid gets a positive weight, so the result is finite where
            the patch values are.
        """
        shape = grid.shape if isinstance(grid, Grid) else tuple(grid)
        if patches is None:
            patches = self.patches((shape[0] * factor, shape[1] * factor))
        s = self.size // factor
        values = np.asarray(values)
        if values.shape[0] != len(patches) or values.shape[-2:] != (s, s):
            raise ValueError(f"values of shape {values.shape} do not match {len(patches)} "
                             f"patches of {s} x {s} cells")
        lead = values.shape[1:-2]
        acc = np.zeros(lead + tuple(shape), dtype=np.float64)
        wsum = np.zeros(tuple(shape), dtype=np.float64)
        w = hann_window(s)
        for p, v in zip(patches, values, strict=True):
            dst, src = self._overlap(p, factor, shape)
            acc[(Ellipsis, *dst)] += v[(Ellipsis, *src)] * w[src]
            wsum[dst] += w[src]
        if np.any(wsum <= 0):
            raise ValueError("the patches leave cells of the grid uncovered")
        out = acc / wsum
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
        return out.astype(dtype, copy=False)

    def _overlap(self, patch: Patch, factor: int,
                 shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Slices (grid, patch) of the part of a patch that lies on the grid."""
        i0, j0, s = patch.at(factor)
        ny, nx = shape
        ya, yb = max(j0, 0), min(j0 + s, ny)
        xa, xb = max(i0, 0), min(i0 + s, nx)
        return ((slice(ya, yb), slice(xa, xb)),
                (slice(ya - j0, yb - j0), slice(xa - i0, xb - i0)))
