"""Regular grids: the DACNO2 domain grids on EPSG:3035 and generic lat/lon grids.

A :class:`Grid` is a regular array of rectangular cells in one CRS. Rows ascend in y
(south to north for the grids we use) and columns ascend in x. Cell ``(j, i)`` spans
``[x0 + i*dx, x0 + (i+1)*dx] x [y0 + j*dy, y0 + (j+1)*dy]``; arrays on the grid have
shape ``(..., ny, nx)``.

The DACNO2 domain (5W-9E, 42-54N) is covered by a 2 km EPSG:3035 grid whose origin and
size are multiples of 16 km, so the 8 km (CAMS targets) and 16 km (ERA5) grids nest in it
exactly (factors 4 and 8). Its 592 x 736 cells hold the paper's 12 overlapping
256 x 256 patches (3 x 4, strides 168 and 160 cells) without remainder.

Sub-domains (:func:`subdomain`) are windows of the domain grid snapped outward to whole
16 km cells, so their 2/8/16 km family (:func:`grid_family`) nests the same way;
:func:`lonlat_of` gives cell-centre coordinates, :func:`window_offset` the position of a
sub-grid in its parent and :func:`expand` grows a small sub-domain to a patch's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyproj import CRS

from aprior.errors import ConfigError
from aprior.grids.regions import DOMAIN_BBOX, Region, load_region

LAEA_EUROPE = "EPSG:3035"

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


# -- sub-domains and grid families ------------------------------------------------------

#: Sub-domains are snapped outward to whole cells of this size (m), so the 2, 8 and 16 km
#: grids of a sub-domain nest exactly (factors 4 and 8) and align with the domain grids.
SNAP_M = 16_000

#: Resolutions (m) of the grid family: model output, CAMS targets, ERA5 inputs.
FAMILY_RESOLUTIONS_M = (2000, 8000, 16000)


def _lonlat_bounds_to_laea(bbox: tuple[float, float, float, float]) -> tuple[float, ...]:
    """EPSG:3035 bounds (xmin, ymin, xmax, ymax) of a lon/lat box, edges densified."""
    from pyproj import Transformer

    west, south, east, north = bbox
    tr = Transformer.from_crs("EPSG:4326", LAEA_EUROPE, always_xy=True)
    return tuple(float(v) for v in tr.transform_bounds(west, south, east, north, densify_pts=101))


def subdomain(region: object = "domain", resolution_m: int = 2000) -> Grid:
    """The part of the domain grid that covers a region, snapped outward to 16 km cells.

    The region's lon/lat bounding box is projected to EPSG:3035 (edges densified), its
    bounds are moved outward to the next multiple of 16 km from the domain origin and the
    result is clipped to the domain. The 2, 8 and 16 km versions of the returned grid thus
    nest exactly and are windows of :func:`domain_grid` at the same resolution. The named
    region ``"domain"`` gives :func:`domain_grid` itself (which has one 16 km row of margin
    more at the south and north than the snapped box).

    Args:
        region: a lon/lat box ``(west, south, east, north)`` in degrees, a
            :class:`aprior.grids.regions.Region`, or anything
            :func:`aprior.grids.regions.load_region` accepts (a region name such as
            ``"demo"``, a ``"w,s,e,n"`` string, a GeoJSON path).
        resolution_m: 2000, 4000, 8000 or 16000.

    Raises:
        aprior.errors.ConfigError: the region does not overlap the domain.
    """
    if SNAP_M % resolution_m or resolution_m % 2000:
        raise ValueError(f"resolution must be 2000, 4000, 8000 or 16000 m, got {resolution_m}")
    reg = region if isinstance(region, Region) else load_region(region)
    if reg.name == "domain" and reg.polygon is None and reg.bbox == DOMAIN_BBOX:
        return domain_grid(resolution_m)
    xmin, ymin, xmax, ymax = _lonlat_bounds_to_laea(reg.bbox)
    dom = domain_grid(2000)
    dxmin, dymin, dxmax, dymax = dom.bounds
    x_lo = max(dxmin, DOMAIN_X0 + np.floor((xmin - DOMAIN_X0) / SNAP_M) * SNAP_M)
    y_lo = max(dymin, DOMAIN_Y0 + np.floor((ymin - DOMAIN_Y0) / SNAP_M) * SNAP_M)
    x_hi = min(dxmax, DOMAIN_X0 + np.ceil((xmax - DOMAIN_X0) / SNAP_M) * SNAP_M)
    y_hi = min(dymax, DOMAIN_Y0 + np.ceil((ymax - DOMAIN_Y0) / SNAP_M) * SNAP_M)
    if x_hi <= x_lo or y_hi <= y_lo:
        raise ConfigError(f"region {reg.name!r} {reg.bbox} does not overlap the DACNO2 domain "
                          f"{DOMAIN_BBOX}")
    res = float(resolution_m)
    return Grid(LAEA_EUROPE, float(x_lo), float(y_lo), res, res,
                int(round((x_hi - x_lo) / res)), int(round((y_hi - y_lo) / res)))


def grid_family(grid_2km: Grid) -> tuple[Grid, Grid, Grid]:
    """The (2 km, 8 km, 16 km) grids of a 2 km grid whose sides divide by 8 cells."""
    if not (np.isclose(grid_2km.dx, 2000.0) and np.isclose(grid_2km.dy, 2000.0)):
        raise ValueError(f"grid_family needs a 2 km grid, got dx={grid_2km.dx}, dy={grid_2km.dy}")
    return grid_2km, grid_2km.coarsen(4), grid_2km.coarsen(8)


def window_offset(parent: Grid, child: Grid) -> tuple[int, int]:
    """``(i0, j0)``: the column and row of ``parent`` where ``child`` starts.

    ``child`` must have the parent's CRS and cell size and lie on its cell boundaries
    within the parent; then ``array[..., j0:j0 + child.ny, i0:i0 + child.nx]`` of a parent
    array is the child's array.
    """
    if child.crs != parent.crs or not (np.isclose(child.dx, parent.dx)
                                       and np.isclose(child.dy, parent.dy)):
        raise ValueError("child grid differs from the parent in CRS or cell size")
    fi = (child.x0 - parent.x0) / parent.dx
    fj = (child.y0 - parent.y0) / parent.dy
    i0, j0 = int(round(fi)), int(round(fj))
    if abs(fi - i0) > 1e-6 or abs(fj - j0) > 1e-6:
        raise ValueError("child grid is not aligned with the parent's cells")
    if i0 < 0 or j0 < 0 or i0 + child.nx > parent.nx or j0 + child.ny > parent.ny:
        raise ValueError("child grid lies outside the parent grid")
    return i0, j0


def lonlat_of(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre longitudes and latitudes (degrees), each ``(ny, nx)`` float64."""
    xx, yy = np.meshgrid(grid.x, grid.y)
    if grid.is_geographic:
        return xx, yy
    from pyproj import Transformer

    tr = Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def expand(grid: Grid, min_cells: int = 256, within: Grid | None = None) -> Grid:
    """Grow a sub-domain grid to at least ``min_cells`` per side, inside ``within``.

    Used to give a small region the context of a whole patch (256 cells at 2 km) instead
    of padding: the grid grows about its centre by whole 16 km cells and is shifted to
    stay inside ``within`` (the domain grid at the same resolution by default). Crop the
    results back with :func:`window_offset`.

    Raises:
        ValueError: ``within`` is smaller than ``min_cells``, or ``grid`` is not inside it.
    """
    within = within or domain_grid(int(round(grid.dx)))
    step = max(1, int(round(SNAP_M / grid.dx)))
    i0, j0 = window_offset(within, grid)

    def grow(start: int, n: int, total: int) -> tuple[int, int]:
        if n >= min_cells:
            return start, n
        if total < min_cells:
            raise ValueError(f"the enclosing grid has only {total} cells, fewer than {min_cells}")
        new_n = min(total, -(-min_cells // step) * step)
        s = start - ((new_n - n) // (2 * step)) * step
        return min(max(s, 0), total - new_n), new_n

    i0, nx = grow(i0, grid.nx, within.nx)
    j0, ny = grow(j0, grid.ny, within.ny)
    return within.window(i0, j0, nx, ny)
