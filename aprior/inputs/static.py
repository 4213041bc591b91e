"""The static (time-independent) DACNO2 input layers on the 2 km EPSG:3035 grid.

Each source is put on the grid by the method DACNO2 names (Sect. 2.2.1: "interpolation,
averaging, or rasterization"; land cover by the mode):

=================  ==========================  ====================================  ==============
layer              source (paper)              method                                unit
=================  ==========================  ====================================  ==============
emissions          CAMS-GLOB-ANT NOx, 0.1 deg  bilinear interpolation at cell centres kg m-2 s-1
roads              GRIP4 road lines            rasterisation: line length per cell    km km-2
population         GISCO/GHS population grid   sum of counts per cell / cell area    persons km-2
nightlight         VIIRS VNL annual            mean of pixels in the cell             as the source
elevation          MERIT DEM                   mean of pixels in the cell             m
landcover          CORINE 2018, 44 classes     5 groups, mode per cell, one-hot       1
=================  ==========================  ====================================  ==============

Raster pixels are assigned to the cell containing their centre. Rasters may be split in
tiles (several paths); only the window covering the grid is read from each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from aprior.errors import InputFileError
from aprior.grids.grid import Grid, lonlat_of
from aprior.grids.interp import bilinear_latlon
from aprior.grids.rasterise import (
    LANDCOVER_CLASSES,
    CellAccumulator,
    cell_index,
    corine_classes,
    detect_corine_convention,
    line_length_per_cell,
    one_hot,
)
from aprior.inputs import static_io
from aprior.inputs.geotiff import GeoRaster, read_geotiff, read_geotiff_info

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: channel names of :meth:`StaticLayers.stack`, in order
STATIC_CHANNELS = ("emissions", "roads", "population", "nightlight", "elevation",
                   *(f"landcover_{c}" for c in LANDCOVER_CLASSES))


def _paths(value: PathLike | Sequence[PathLike]) -> tuple[Path, ...]:
    if isinstance(value, str | os.PathLike):
        return (Path(value),)
    return tuple(Path(v) for v in value)


@dataclass(frozen=True)
class StaticPaths:
    """Where the static inputs are. Raster layers accept one file or a list of tiles.

    Attributes:
        emissions: CAMS-GLOB-ANT NOx netCDF.
        roads: road lines, GeoJSON.
        population: population GeoTIFF(s), persons per pixel (or per km2 if
            ``population_is_density``).
        nightlight: night-time light GeoTIFF(s).
        elevation: elevation GeoTIFF(s) or one lat/lon netCDF, m.
        landcover: CORINE land cover GeoTIFF(s) (CLC codes or grid codes 1..44).
        road_types: GRIP ``GP_RTP`` codes to rasterise; None = all roads.
        population_is_density: the population raster holds densities (averaged) rather
            than counts (summed).
        min_coverage: fraction of grid cells a raster layer must cover.
    """

    emissions: Path
    roads: Path
    population: tuple[Path, ...]
    nightlight: tuple[Path, ...]
    elevation: tuple[Path, ...]
    landcover: tuple[Path, ...]
    road_types: tuple[int, ...] | None = None
    population_is_density: bool = False
    min_coverage: float = 0.98

    def __post_init__(self) -> None:
        object.__setattr__(self, "emissions", Path(self.emissions))
        object.__setattr__(self, "roads", Path(self.roads))
        for name in ("population", "nightlight", "elevation", "landcover"):
            paths = _paths(getattr(self, name))
            if not paths:
                raise ValueError(f"{name}: at least one file is needed")
            object.__setattr__(self, name, paths)
        if self.road_types is not None:
            object.__setattr__(self, "road_types", tuple(int(t) for t in self.road_types))
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError("min_coverage must be in (0, 1]")


@dataclass(frozen=True)
class StaticLayers:
    """The static layers on one grid; every array is ``(ny, nx)`` float32 and finite,
    rows ascending in y like the grid.

    Attributes:
        grid: the grid.
        emissions: anthropogenic NOx flux, kg m-2 s-1.
        roads: road density, km of road per km2.
        population: population density, persons km-2.
        nightlight: night-time radiance, the source's unit (VIIRS: nW cm-2 sr-1).
        elevation: m above sea level (0 over the sea where the DEM has no data).
        landcover: ``(5, ny, nx)`` one-hot CORINE groups (:data:`LANDCOVER_CLASSES`); a
            cell without land-cover data is all zeros.
        attrs: provenance (source files).
    """

    grid: Grid
    emissions: np.ndarray
    roads: np.ndarray
    population: np.ndarray
    nightlight: np.ndarray
    elevation: np.ndarray
    landcover: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("emissions", "roads", "population", "nightlight", "elevation"):
            arr = np.asarray(getattr(self, name), dtype=np.float32)
            if arr.shape != self.grid.shape:
                raise ValueError(f"{name} shape {arr.shape} != grid shape {self.grid.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} has non-finite values")
            object.__setattr__(self, name, arr)
        lc = np.asarray(self.landcover, dtype=np.float32)
        if lc.shape != (len(LANDCOVER_CLASSES), *self.grid.shape):
            raise ValueError(f"landcover shape {lc.shape} != (5, ny, nx)")
        if not np.all((lc == 0) | (lc == 1)) or np.any(lc.sum(axis=0) > 1):
            raise ValueError("landcover must be one-hot")
        object.__setattr__(self, "landcover", lc)

    def stack(self) -> np.ndarray:
        """``(10, ny, nx)`` float32 in the order of :data:`STATIC_CHANNELS`."""
        return np.concatenate([np.stack([self.emissions, self.roads, self.population,
                                         self.nightlight, self.elevation]), self.landcover])


# -- glue: sources -> grid -------------------------------------------------------------
def _grid_bounds_in(grid: Grid, crs: CRS) -> tuple[float, float, float, float]:
    """Bounding box of the grid's outline in another CRS (outline densified)."""
    x0, y0, x1, y1 = grid.bounds
    s = np.linspace(0.0, 1.0, 101)
    xs = np.concatenate([x0 + s * (x1 - x0), np.full_like(s, x1), x1 - s * (x1 - x0), np.full_like(s, x0)])
    ys = np.concatenate([np.full_like(s, y0), y0 + s * (y1 - y0), np.full_like(s, y1), y1 - s * (y1 - y0)])
    tx, ty = Transformer.from_crs(grid.pyproj_crs, crs, always_xy=True).transform(xs, ys)
    return float(np.min(tx)), float(np.min(ty)), float(np.max(tx)), float(np.max(ty))


def _block_cells(raster: GeoRaster, grid: Grid, same_crs: bool, tr: Transformer | None) -> np.ndarray:
    """``(ny, nx)`` flat cell index of each pixel centre of a raster block (-1 outside)."""
    if same_crs:  # separable: no per-pixel transform
        cols = np.floor((raster.x - grid.x0) / grid.dx)
        rows = np.floor((raster.y - grid.y0) / grid.dy)
        col_ok = (cols >= 0) & (cols < grid.nx)
        row_ok = (rows >= 0) & (rows < grid.ny)
        cells = rows[:, None].astype(np.int64) * grid.nx + cols[None, :].astype(np.int64)
        return np.where(row_ok[:, None] & col_ok[None, :], cells, -1)
    xx, yy = np.meshgrid(raster.x, raster.y)
    gx, gy = tr.transform(xx, yy)
    return cell_index(grid, gx, gy)


def aggregate_rasters(paths: Sequence[PathLike], grid: Grid, acc: CellAccumulator,
                      convert=None, block_rows: int = 512) -> CellAccumulator:
    """Stream the parts of GeoTIFF tiles that overlap ``grid`` into ``acc``.

    ``convert(values, raster) -> values`` turns raw samples into what the accumulator
    takes (by default float64 with nodata as NaN).
    """
    gcrs = grid.pyproj_crs
    overlapping = 0
    for path in paths:
        info = read_geotiff_info(path)
        rcrs = CRS.from_user_input(info.crs)
        same = rcrs == gcrs
        window = info.window_for_bounds(*_grid_bounds_in(grid, rcrs))
        if window is None:
            log.info("%s does not overlap the grid; skipped", path)
            continue
        overlapping += 1
        tr = None if same else Transformer.from_crs(rcrs, gcrs, always_xy=True)
        r0, r1, c0, c1 = window
        for rb in range(r0, r1, block_rows):
            raster = read_geotiff(path, (rb, min(rb + block_rows, r1), c0, c1))
            if convert is None:
                vals = raster.data.astype(np.float64)
                vals[~raster.valid_mask()] = np.nan
            else:
                vals = convert(raster.data, raster)
            acc.add(_block_cells(raster, grid, same, tr), vals)
    if overlapping == 0:
        raise InputFileError("does not overlap the grid at all (wrong area or CRS?)", paths[0])
    return acc


def _check_coverage(acc: CellAccumulator, paths: Sequence[Path], name: str, minimum: float) -> None:
    if acc.coverage < minimum:
        raise InputFileError(
            f"the {name} raster(s) cover only {100 * acc.coverage:.1f} % of the grid "
            f"(at least {100 * minimum:.0f} % needed): add the missing tiles, or the source "
            "pixels are coarser than the grid cells", paths[0])
    if acc.coverage < 1.0:
        log.warning("%s covers %.2f %% of the grid; the rest is filled", name, 100 * acc.coverage)


def emissions_on_grid(path: PathLike, grid: Grid) -> np.ndarray:
    """CAMS-GLOB-ANT NOx bilinearly interpolated to the cell centres, ``(ny, nx)`` kg m-2 s-1."""
    nox, lat, lon = static_io.read_cams_glob_ant(path)
    glon, glat = lonlat_of(grid)
    out = bilinear_latlon(nox, lat, lon, glat.ravel(), glon.ravel()).reshape(grid.shape)
    if not np.all(np.isfinite(out)):
        raise InputFileError("does not cover the whole grid (cells outside its lat/lon range)", path)
    return out


def roads_on_grid(path: PathLike, grid: Grid, road_types: Sequence[int] | None = None) -> np.ndarray:
    """Road density ``(ny, nx)`` in km per km2 from GeoJSON lines (lon/lat)."""
    lines = static_io.read_roads_geojson(path, road_types)
    tr = Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    proj = [np.column_stack(tr.transform(ln[:, 0], ln[:, 1])) for ln in lines]
    length_m = line_length_per_cell(proj, grid)
    return (length_m / 1000.0) / (grid.dx * grid.dy / 1e6)


def landcover_on_grid(paths: Sequence[PathLike], grid: Grid, min_coverage: float = 0.98) -> np.ndarray:
    """CORINE land cover: 5 groups, mode per cell, one-hot ``(5, ny, nx)``."""
    first = read_geotiff_info(paths[0])
    win = first.window_for_bounds(*_grid_bounds_in(grid, CRS.from_user_input(first.crs)))
    probe = read_geotiff(paths[0], win) if win is not None else read_geotiff(paths[0])
    try:
        convention = detect_corine_convention(probe.data[probe.valid_mask()])
    except ValueError as exc:
        raise InputFileError("holds no CORINE class codes (1..44 or 111..523)", paths[0]) from exc
    log.info("land cover %s uses %s codes", paths[0], convention)

    def convert(values: np.ndarray, raster: GeoRaster) -> np.ndarray:
        cls = corine_classes(values, convention)
        cls[~raster.valid_mask()] = -1
        return cls

    acc = aggregate_rasters(paths, grid, CellAccumulator(grid, "mode"), convert)
    _check_coverage(acc, _paths(paths), "land-cover", min_coverage)
    return one_hot(acc.result())


def raster_on_grid(paths: Sequence[PathLike], grid: Grid, how: str, name: str,
                   fill: float = 0.0, min_coverage: float = 0.98) -> np.ndarray:
    """Mean or sum of GeoTIFF pixels per cell, ``(ny, nx)``; ``fill`` where no valid pixel."""
    acc = aggregate_rasters(paths, grid, CellAccumulator(grid, how))
    _check_coverage(acc, _paths(paths), name, min_coverage)
    return acc.result(fill=fill)


def elevation_on_grid(paths: Sequence[PathLike], grid: Grid, min_coverage: float = 0.98) -> np.ndarray:
    """Elevation ``(ny, nx)`` in m: GeoTIFF tiles averaged per cell, or a lat/lon netCDF
    (averaged when finer than the grid, bilinearly interpolated when coarser)."""
    paths = _paths(paths)
    if paths[0].suffix.lower() not in (".nc", ".nc4", ".netcdf"):
        return raster_on_grid(paths, grid, "mean", "elevation", 0.0, min_coverage)
    z, lat, lon = static_io.read_latlon_raster_nc(paths[0])
    glon, glat = lonlat_of(grid)
    step_m = abs(lat[1] - lat[0]) * 111_000.0
    if step_m > min(grid.dx, grid.dy):
        out = bilinear_latlon(np.nan_to_num(z, nan=0.0), lat, lon, glat.ravel(), glon.ravel())
        if not np.all(np.isfinite(out)):
            raise InputFileError("does not cover the whole grid", paths[0])
        return out.reshape(grid.shape)
    acc = CellAccumulator(grid, "mean")
    tr = Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    for j0 in range(0, lat.size, 256):
        xx, yy = np.meshgrid(lon, lat[j0: j0 + 256])
        gx, gy = tr.transform(xx, yy)
        acc.add(cell_index(grid, gx, gy), z[j0: j0 + 256])
    _check_coverage(acc, paths, "elevation", min_coverage)
    return acc.result(fill=0.0)


def load_static_layers(paths: StaticPaths, grid: Grid) -> StaticLayers:
    """Read every static source and put it on ``grid`` (see the module table)."""
    log.info("static layers: emissions from %s", paths.emissions)
    emissions = emissions_on_grid(paths.emissions, grid)
    log.info("static layers: roads from %s", paths.roads)
    roads = roads_on_grid(paths.roads, grid, paths.road_types)
    cell_km2 = grid.dx * grid.dy / 1e6
    if paths.population_is_density:
        population = raster_on_grid(paths.population, grid, "mean", "population", 0.0, paths.min_coverage)
    else:
        population = raster_on_grid(paths.population, grid, "sum", "population", 0.0,
                                    paths.min_coverage) / cell_km2
    nightlight = raster_on_grid(paths.nightlight, grid, "mean", "night-light", 0.0, paths.min_coverage)
    elevation = elevation_on_grid(paths.elevation, grid, paths.min_coverage)
    landcover = landcover_on_grid(paths.landcover, grid, paths.min_coverage)
    attrs = {k: [str(p) for p in _paths(getattr(paths, k))]
             for k in ("emissions", "roads", "population", "nightlight", "elevation", "landcover")}
    return StaticLayers(grid, emissions, roads, population, nightlight, elevation, landcover, attrs)
