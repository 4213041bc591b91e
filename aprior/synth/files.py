"""Writing the synthetic world's static inputs and truth files in their real formats.

The product writers live with their readers (:mod:`aprior.inputs.geotiff`,
:mod:`~aprior.inputs.static_io`, :mod:`~aprior.inputs.temporal`, ...); this module
only cuts the world to each product's grid and calls them. Truth files that have no real
counterpart (per-pixel truth of an orbit, station truth, the 2 km maps) are plain
CF-style netCDF or CSV written here, all under ``truth/``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from aprior._io import atomic_path
from aprior.grids.grid import Grid, window_offset
from aprior.inputs.geotiff import write_geotiff
from aprior.inputs.static_io import write_cams_glob_ant, write_roads_geojson
from aprior.inputs.temporal import write_flights_csv
from aprior.synth.emissions import flights
from aprior.synth.geography import to_laea, to_lonlat
from aprior.synth.manifest import ManifestBuilder
from aprior.synth.noise import block_mean, round_bits
from aprior.synth.observations import Stations
from aprior.synth.s5p.orbits import Orbit
from aprior.synth.settlements import Settlements
from aprior.synth.static_world import FineStatic, Static2km, clc_grid_codes, inventory_flux

SYNTH_ATTRS = {"synthetic": "true", "comment": "SYNTHETIC data from 'aprior synth'; not real"}
_ARCSEC30 = 1.0 / 120.0


def _fine_window(fine: FineStatic, grid: Grid, values: np.ndarray) -> np.ndarray:
    """The part of a fine-raster map under ``grid``'s extent."""
    f = int(round(grid.dx / fine.grid.dx))
    sub = Grid(fine.grid.crs, grid.x0, grid.y0, fine.grid.dx, fine.grid.dy, grid.nx * f, grid.ny * f)
    i0, j0 = window_offset(fine.grid, sub)
    return values[j0:j0 + sub.ny, i0:i0 + sub.nx]


def _latlon_raster(fine: FineStatic, values: np.ndarray, bbox, step: float):
    """Nearest-neighbour samples of a fine map on a lat/lon raster (rows north to south)."""
    w, s, e, n = bbox
    west, north = np.floor(w / step) * step, np.ceil(n / step) * step
    nx, ny = int(np.ceil((e - west) / step)), int(np.ceil((north - s) / step))
    lon = west + (np.arange(nx) + 0.5) * step
    lat = north - (np.arange(ny) + 0.5) * step
    x, y = to_laea(*np.meshgrid(lon, lat))
    g = fine.grid
    i = np.clip(np.floor((x - g.x0) / g.dx).astype(int), 0, g.nx - 1)
    j = np.clip(np.floor((y - g.y0) / g.dy).astype(int), 0, g.ny - 1)
    return values[j, i], west, north


def write_static_inputs(root: Path, rec: ManifestBuilder, *, seed: int, days: list[dt.date],
                        fine: FineStatic, settle: Settlements, region_grid: Grid,
                        bbox: tuple[float, float, float, float]) -> None:
    """Population, CORINE, night lights, DEM, roads, CAMS-GLOB-ANT and flights files."""
    d = root / "static"
    d.mkdir(parents=True, exist_ok=True)
    y_top = region_grid.y0 + region_grid.ny * region_grid.dy
    f_km = int(round(1000.0 / fine.grid.dx))
    pop = block_mean(_fine_window(fine, region_grid, fine.population), f_km)[::-1]
    rec.add(write_geotiff(d / "population_1km.tif", round_bits(pop, 12), x0=region_grid.x0,
                          y_top=y_top, dx=1000.0, dy=1000.0, epsg=3035, nodata=-1.0), "population")
    clc = clc_grid_codes(_fine_window(fine, region_grid, fine.clc))[::-1]
    res = fine.grid.dx
    rec.add(write_geotiff(d / "corine_clc.tif", clc, x0=region_grid.x0, y_top=y_top, dx=res, dy=res,
                          epsg=3035, nodata=128), "corine")
    box = (bbox[0] - 0.1, bbox[1] - 0.1, bbox[2] + 0.1, bbox[3] + 0.1)
    for name, kind, values in (("nightlight_viirs.tif", "night_light", fine.night_light),
                               ("elevation_dem.tif", "elevation", fine.elevation)):
        arr, west, north = _latlon_raster(fine, values, box, _ARCSEC30)
        rec.add(write_geotiff(d / name, round_bits(arr, 12), x0=west, y_top=north, dx=_ARCSEC30,
                              dy=_ARCSEC30, epsg=4326), kind)
    _write_inventory(d, rec, fine, settle, bbox)
    _write_roads(d, rec, settle, bbox)
    (root / "flights").mkdir(exist_ok=True)
    names = {"FR": "France", "BE": "Belgium", "NL": "Netherlands", "DE": "Germany",
             "LU": "Luxembourg", "CH": "Switzerland", "ES": "Spain", "IT": "Italy",
             "GB": "United Kingdom"}
    counts = {names[c]: v for c, v in flights(seed, days).items()}
    dates = np.array([np.datetime64(day.isoformat()) for day in days])
    rec.add(write_flights_csv(root / "flights" / "flights.csv", dates, counts), "flights")


def _write_inventory(d: Path, rec: ManifestBuilder, fine: FineStatic, settle: Settlements, bbox) -> None:
    w, s, e, n = bbox
    lat_edges = np.arange(np.floor((s - 0.2) * 10), np.ceil((n + 0.2) * 10) + 1) / 10.0
    lon_edges = np.arange(np.floor((w - 0.2) * 10), np.ceil((e + 0.2) * 10) + 1) / 10.0
    flux = np.nan_to_num(inventory_flux(fine, settle, lat_edges, lon_edges))
    em = fine.emissions
    totals = {"tro": em["traffic"].sum(), "res": em["residential"].sum(),
              "ind": em["industry"].sum() + em["other"].sum(), "shp": em["shipping"].sum(),
              "agl": em["soil"].sum()}
    tot = sum(totals.values())
    shares = {k: float(v / tot) for k, v in totals.items()}
    path = write_cams_glob_ant(d / "cams_glob_ant_nox.nc", 0.5 * (lat_edges[:-1] + lat_edges[1:]),
                               0.5 * (lon_edges[:-1] + lon_edges[1:]), flux, sectors=shares)
    rec.add(path, "cams_glob_ant")


def _write_roads(d: Path, rec: ManifestBuilder, settle: Settlements, bbox) -> None:
    w, s, e, n = (bbox[0] - 0.2, bbox[1] - 0.2, bbox[2] + 0.2, bbox[3] + 0.2)
    lines, kinds = [], []
    for line, kind in zip(settle.roads.lines, settle.roads.kinds, strict=True):
        lon, lat = to_lonlat(line[:, 0], line[:, 1])
        if not np.any((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)):
            continue
        keep = np.unique(np.r_[np.arange(0, lon.size, 2), lon.size - 1])
        lines.append(np.round(np.column_stack([lon[keep], lat[keep]]), 5))
        kinds.append(kind)
    rec.add(write_roads_geojson(d / "roads.geojson", lines, kinds), "roads")


def _to_netcdf(ds: xr.Dataset, path: Path) -> Path:
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].dtype.kind in "fiu"}
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, encoding=enc)
    return path


def write_truth_static(root: Path, rec: ManifestBuilder, static: Static2km, settle: Settlements,
                       bbox) -> None:
    """The 2 km maps, emissions, point sources and cities behind the world."""
    d = root / "truth" / "static"
    d.mkdir(parents=True, exist_ok=True)
    g = static.grid
    maps = {"land_fraction": static.land, "elevation": static.elevation,
            "population": static.population, "urban_fraction": static.urban,
            "forest_fraction": static.forest, "valley_index": static.valley,
            **{f"emission_{k}": v for k, v in static.emissions.items()},
            "emission_total": static.total_emission}
    units = {"elevation": "m", "population": "km-2"}
    ds = xr.Dataset({k: (("y", "x"), v.astype(np.float32),
                         {"units": "kg m-2 s-1" if k.startswith("emission") else units.get(k, "1")})
                     for k, v in maps.items()},
                    coords={"y": ("y", g.y, {"units": "m"}), "x": ("x", g.x, {"units": "m"})},
                    attrs={**SYNTH_ATTRS, "crs": g.crs, "title": "synthetic world: 2 km maps"})
    rec.add(_to_netcdf(ds, d / "world_2km.nc"), "truth_static_2km")
    w, s, e, n = bbox
    src = settle.sources
    lon, lat = to_lonlat(src.x, src.y)
    sel = (lon >= w - 1) & (lon <= e + 1) & (lat >= s - 1) & (lat <= n + 1)
    df = pd.DataFrame({"lon": lon[sel].round(5), "lat": lat[sel].round(5), "kind": src.kind[sel],
                       "nox_kt_per_year": src.nox_kt[sel].round(4),
                       "inventory_kt_per_year": src.inventory_kt[sel].round(4)})
    _write_csv(df, d / "point_sources.csv", rec, "truth_point_sources")
    c = settle.cities
    lon, lat = to_lonlat(c.x, c.y)
    sel = (lon >= w - 1) & (lon <= e + 1) & (lat >= s - 1) & (lat <= n + 1)
    df = pd.DataFrame({"lon": lon[sel].round(5), "lat": lat[sel].round(5),
                       "population": c.pop[sel].round(0).astype(np.int64)})
    _write_csv(df, d / "cities.csv", rec, "truth_cities")


def _write_csv(df: pd.DataFrame, path: Path, rec: ManifestBuilder, kind: str) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    rec.add(path, kind)


def write_truth_orbit(path: Path, orbit: Orbit, l2_name: str) -> Path:
    """Per-pixel truth of one synthetic orbit (NaN where no retrieval)."""
    g = orbit.geometry
    dims, dims3 = ("scanline", "ground_pixel"), ("scanline", "ground_pixel", "layer")
    ds = xr.Dataset({
        "latitude": (dims, g.latitude.astype(np.float32), {"units": "degrees_north"}),
        "longitude": (dims, g.longitude.astype(np.float32), {"units": "degrees_east"}),
        "valid": (dims, orbit.valid.astype(np.int8), {"long_name": "pixel has a retrieval"}),
        "true_tropospheric_column": (dims, orbit.true_tropospheric_column,
                                     {"units": "mol m-2", "long_name": "sum of true partial "
                                      "columns over layers <= tm5_tropopause_layer_index"}),
        "true_partial_columns": (dims3, orbit.truth.astype(np.float32), {"units": "mol m-2"}),
        "tm5_apriori_partial_columns": (dims3, orbit.apriori_tm5.astype(np.float32),
                                        {"units": "mol m-2"}),
        "tropopause_index": (dims, orbit.tropopause_index.astype(np.int32)),
        "surface_pressure": (dims, orbit.surface_pressure.astype(np.float32), {"units": "Pa"}),
        "true_surface_no2": (dims, orbit.surface_no2.astype(np.float32), {"units": "ug m-3"}),
    }, attrs={**SYNTH_ATTRS, "orbit": orbit.orbit, "l2_file": l2_name,
              "title": "synthetic world: truth of one S5P orbit"})
    return _to_netcdf(ds, path)


def write_truth_stations(path: Path, stations: Stations, times: np.ndarray, truth: np.ndarray) -> Path:
    """Noise-free surface NO2 ``(t, n)`` in the station cells and each station's errors."""
    st = ("station",)
    ds = xr.Dataset({
        "truth_surface_no2": (("time", "station"), truth.astype(np.float32), {"units": "ug m-3"}),
        "representativeness_factor": (st, stations.repr_factor),
        "kerb_increment": (st, stations.kerb, {"units": "ug m-3"}),
        "converter_factor": (st, stations.moly),
        "sparse": (st, stations.sparse.astype(np.int8)),
        "cell_row": (st, stations.j), "cell_col": (st, stations.i),
    }, coords={"time": np.asarray(times).astype("datetime64[ns]"),
               "station_id": (st, stations.meta["station_id"].to_numpy().astype(str))},
        attrs={**SYNTH_ATTRS, "title": "synthetic world: truth at the EEA-like stations"})
    return _to_netcdf(ds, path)
