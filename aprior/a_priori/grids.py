"""Regular grids: the DACNO2 domain grids on EPSG:3035 and generic lat/lon grids.

A :class:`Grid` is a regular array of rectangular cells in one CRS. Rows ascend in y
(south to north for the grids we use) and columns ascend in x. Cell ``(j, i)`` spans
``[x0 + i*dx, x0 + (i+1)*dx] x [y0 + j*dy, y0 + (j+1)*dy]``; arrays on the grid have
shape ``(..., ny, nx)``.

The DACNO2 domain (5W-9E, 42-54N) is covered by a 2 km EPSG:3035 grid whose origin and
size are multiples of 16 km, so the 8 km (CAMS targets) and 16 km (ERA5) grids nest in it
exactly (factors 4 and 8). Its 592 x 736 cells hold the paper's 12 overlapping
256 x 256 patches (3 x 4, strides 168 and 160 cells) without remainder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyproj import CRS

LAEA_EUROPE = "EPSG:3035"

#: lon/lat box of the DACNO2 domain (degrees): west, south, east, north.
DOMAIN_BBOX = (-5.0, 42.0, 9.0, 54.0)

#: 2 km domain grid in EPSG:3035 (metres). Covers DOMAIN_BBOX completely.
DOMAIN_X0 = 3_072_000.0
DOMAIN_Y0 = 2_080_000.0
DOMAIN_NX_2KM = 592
DOMAIN_NY_2KM = 736


@dataclass(frozen=True)
class Grid:
    """A regular grid of rectangular cells.

    Attributes:
        crs: the CRS as WKT or an authority string ("EPSG:3035", "EPSG:4326").
        x0, y0: coordinates of the lower-left corner of cell (0, 0), in CRS units
            (m for projected CRSs, degrees for geographic ones).
        dx, dy: cell sizes, positive, in CRS units.
        nx, ny: number of columns and rows.
    """

    crs: str
    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    def __post_init__(self) -> None:
        if not (self.dx > 0 and self.dy > 0):
            raise ValueError(f"grid cell sizes must be positive, got dx={self.dx}, dy={self.dy}")
        if self.nx < 1 or self.ny < 1:
            raise ValueError(f"grid must have at least one cell, got nx={self.nx}, ny={self.ny}")

    # -- geometry -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return (self.ny, self.nx)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @property
    def x_edges(self) -> np.ndarray:
        """(nx + 1,) cell edges in x."""
        return self.x0 + self.dx * np.arange(self.nx + 1, dtype=np.float64)

    @property
    def y_edges(self) -> np.ndarray:
        """(ny + 1,) cell edges in y."""
        return self.y0 + self.dy * np.arange(self.ny + 1, dtype=np.float64)

    @property
    def x(self) -> np.ndarray:
        """(nx,) cell centres in x."""
        return self.x0 + self.dx * (np.arange(self.nx, dtype=np.float64) + 0.5)

    @property
    def y(self) -> np.ndarray:
        """(ny,) cell centres in y."""
        return self.y0 + self.dy * (np.arange(self.ny, dtype=np.float64) + 0.5)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax)."""
        return (self.x0, self.y0, self.x0 + self.nx * self.dx, self.y0 + self.ny * self.dy)

    @cached_property
    def pyproj_crs(self) -> CRS:
        return CRS.from_user_input(self.crs)

    @property
    def is_geographic(self) -> bool:
        return bool(self.pyproj_crs.is_geographic)

    # -- derived grids ------------------------------------------------------------
    def coarsen(self, factor: int) -> Grid:
        """The grid with ``factor x factor`` cells merged; nx and ny must divide."""
        if self.nx % factor or self.ny % factor:
            raise ValueError(f"grid {self.nx}x{self.ny} does not divide by {factor}")
        return Grid(self.crs, self.x0, self.y0, self.dx * factor, self.dy * factor,
                    self.nx // factor, self.ny // factor)

    def window(self, i0: int, j0: int, nx: int, ny: int) -> Grid:
        """Sub-grid of ``ny x nx`` cells starting at column ``i0``, row ``j0``."""
        if i0 < 0 or j0 < 0 or i0 + nx > self.nx or j0 + ny > self.ny:
            raise ValueError("window lies outside the grid")
        return Grid(self.crs, self.x0 + i0 * self.dx, self.y0 + j0 * self.dy,
                    self.dx, self.dy, nx, ny)

    @classmethod
    def from_centres(cls, crs: str, x: np.ndarray, y: np.ndarray, rtol: float = 1e-4) -> Grid:
        """Build a grid from 1D ascending, evenly spaced cell-centre coordinates.

        Raises ValueError if the coordinates are not regular within ``rtol``.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        for name, c in (("x", x), ("y", y)):
            if c.ndim != 1 or c.size < 2:
                raise ValueError(f"{name} coordinate needs at least two values")
            d = np.diff(c)
            if not np.all(d > 0):
                raise ValueError(f"{name} coordinate is not strictly ascending")
            if np.max(np.abs(d - d.mean())) > rtol * abs(d.mean()):
                raise ValueError(f"{name} coordinate is not evenly spaced")
        dx = float((x[-1] - x[0]) / (x.size - 1))
        dy = float((y[-1] - y[0]) / (y.size - 1))
        return cls(crs, float(x[0] - dx / 2), float(y[0] - dy / 2), dx, dy, int(x.size), int(y.size))


def domain_grid(resolution_m: int = 2000) -> Grid:
    """The DACNO2 domain grid on EPSG:3035 at 2000, 8000 or 16000 m (or any multiple of 2 km
    that divides 592 x 736 cells)."""
    if resolution_m % 2000:
        raise ValueError("resolution must be a multiple of 2000 m")
    return Grid(LAEA_EUROPE, DOMAIN_X0, DOMAIN_Y0, 2000.0, 2000.0,
                DOMAIN_NX_2KM, DOMAIN_NY_2KM).coarsen(resolution_m // 2000)
