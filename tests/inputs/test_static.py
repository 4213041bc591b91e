"""GeoTIFF I/O, rasterisation (roads, CORINE, binning) and the static-layer loader."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import tifffile
import xarray as xr
from pyproj import Transformer

from aprior.errors import InputFileError
from aprior.grids.grid import LAEA_EUROPE, Grid, lonlat_of
from aprior.grids.rasterise import (
    CellAccumulator,
    cell_index,
    corine_classes,
    detect_corine_convention,
    line_length_per_cell,
    one_hot,
)
from aprior.inputs.geotiff import read_geotiff, read_geotiff_info, write_geotiff
from aprior.inputs.static import (
    STATIC_CHANNELS,
    StaticLayers,
    StaticPaths,
    emissions_on_grid,
    landcover_on_grid,
    load_static_layers,
    raster_on_grid,
    roads_on_grid,
)
from aprior.inputs.static_io import (
    read_cams_glob_ant,
    read_roads_geojson,
    write_cams_glob_ant,
    write_roads_geojson,
)

# a 60 x 40 km grid of 2 km cells near Brussels
GRID = Grid(LAEA_EUROPE, 3_900_000.0, 3_080_000.0, 2000.0, 2000.0, 30, 20)


# -- GeoTIFF -----------------------------------------------------------------------------
@pytest.mark.parametrize("epsg,x0,y_top,d", [(3035, 3_890_000.0, 3_130_000.0, 500.0),
                                               (4326, 3.5, 51.5, 0.01)])
def test_geotiff_round_trip(tmp_path, epsg, x0, y_top, d):
    data = np.random.default_rng(0).random((70, 90)).astype(np.float32)
    data[3, 4] = -9999.0
    path = write_geotiff(tmp_path / "a.tif", data, x0=x0, y_top=y_top, dx=d, dy=d, epsg=epsg,
                         nodata=-9999.0, rows_per_strip=16)
    info = read_geotiff_info(path)
    assert (info.ny, info.nx, info.epsg, info.nodata) == (70, 90, epsg, -9999.0)
    assert (info.x0, info.y_top, info.dx, info.dy) == (x0, y_top, d, d)
    whole = read_geotiff(path)
    np.testing.assert_array_equal(whole.data, data)
    assert not whole.valid_mask()[3, 4] and whole.valid_mask().sum() == data.size - 1
    win = read_geotiff(path, (17, 51, 5, 77))  # crosses strip boundaries
    np.testing.assert_array_equal(win.data, data[17:51, 5:77])
    np.testing.assert_allclose(win.x[0], x0 + 5.5 * d)
    np.testing.assert_allclose(win.y[0], y_top - 17.5 * d)


def test_geotiff_tiled_and_pixel_is_point(tmp_path):
    data = np.arange(100 * 130, dtype=np.int16).reshape(100, 130)
    keys = (1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 2, 2048, 0, 1, 4326)
    tifffile.imwrite(tmp_path / "t.tif", data, tile=(32, 32), compression="zlib",
                     extratags=[(33550, "d", 3, (0.1, 0.1, 0.0), True),
                                (33922, "d", 6, (0, 0, 0, 2.0, 50.0, 0), True),
                                (34735, "H", len(keys), keys, True)])
    r = read_geotiff(tmp_path / "t.tif", (33, 97, 31, 120))
    np.testing.assert_array_equal(r.data, data[33:97, 31:120])
    assert r.info.x0 == pytest.approx(1.95) and r.info.y_top == pytest.approx(50.05)


@pytest.mark.parametrize("case", ["no_geokeys", "multiband", "user_crs"])
def test_geotiff_refuses(tmp_path, case):
    path = tmp_path / "bad.tif"
    tags = [(33550, "d", 3, (1.0, 1.0, 0.0), True), (33922, "d", 6, (0, 0, 0, 0, 0, 0), True)]
    if case == "no_geokeys":
        tifffile.imwrite(path, np.zeros((4, 4), np.uint8), extratags=tags)
        match = "GeoKey"
    elif case == "multiband":
        tifffile.imwrite(path, np.zeros((4, 4, 3), np.uint8), extratags=tags)
        match = "single-band"
    else:
        keys = (1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32767)
        tifffile.imwrite(path, np.zeros((4, 4), np.uint8),
                         extratags=[*tags, (34735, "H", len(keys), keys, True)])
        match = "EPSG"
    with pytest.raises(InputFileError, match=match) as err:
        read_geotiff(path)
    assert err.value.path == str(path)


# -- roads -------------------------------------------------------------------------------
def test_line_length_conservation_against_shapely():
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = GRID.bounds
    lines = [np.column_stack([rng.uniform(x0 - 5000, x1 + 5000, n), rng.uniform(y0 - 5000, y1 + 5000, n)])
             for n in rng.integers(2, 9, size=60)]
    lines.append(np.array([[x0 + 2000.0, y0 + 1000.0], [x0 + 9000.0, y0 + 1000.0]]))  # horizontal
    lines.append(np.array([[x0 + 4000.0, y0 + 500.0], [x0 + 4000.0, y0 + 9000.0]]))  # on an edge
    out = line_length_per_cell(lines, GRID)
    box = shapely.box(*GRID.bounds)
    inside = sum(shapely.LineString(ln).intersection(box).length for ln in lines)
    assert out.sum() == pytest.approx(inside, rel=1e-9)
    for j, i in [(0, 0), (7, 13), (19, 29), (10, 2)]:
        cell = shapely.box(x0 + i * 2000, y0 + j * 2000, x0 + (i + 1) * 2000, y0 + (j + 1) * 2000)
        ref = sum(shapely.LineString(ln).intersection(cell).length for ln in lines[:-1])
        assert out[j, i] == pytest.approx(ref, rel=1e-9, abs=1e-6)


def test_roads_geojson_to_density(tmp_path):
    inv = Transformer.from_crs(LAEA_EUROPE, "EPSG:4326", always_xy=True)
    xs = np.array([GRID.x0 + 1000.0, GRID.x0 + 1000.0 + 10_000.0])  # 10 km inside row 3
    lon, lat = inv.transform(xs, np.full(2, GRID.y0 + 7000.0))
    far = np.array([[20.0, 60.0], [20.1, 60.1]])
    path = write_roads_geojson(tmp_path / "roads.geojson",
                               [np.column_stack([lon, lat]), far], ["highway", "local"])
    assert len(read_roads_geojson(path)) == 2
    assert len(read_roads_geojson(path, road_types=[5])) == 1
    dens = roads_on_grid(path, GRID)
    # density (km / km2) x cell area (4 km2) gives the 10 km back (projection is exact to ~1e-6)
    assert (dens * 4.0).sum() == pytest.approx(10.0, rel=1e-6)
    assert dens[3, 0] == pytest.approx(0.25, rel=1e-6) and dens[3, 5] == pytest.approx(0.25, rel=1e-6)
    assert dens[3, 2] == pytest.approx(0.5, rel=1e-6) and dens[3, 6] == 0.0
    (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputFileError, match="no road lines"):
        read_roads_geojson(tmp_path / "empty.geojson")


# -- CORINE and binning ------------------------------------------------------------------
def test_corine_groups_both_conventions():
    clc = np.array([111, 142, 211, 244, 311, 335, 411, 423, 511, 523, 999, 48])
    np.testing.assert_array_equal(corine_classes(clc, "clc"), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1, -1])
    grid_codes = np.array([1, 11, 12, 22, 23, 34, 35, 39, 40, 44, 48, 128, 0])
    np.testing.assert_array_equal(corine_classes(grid_codes, "grid"),
                                  [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1, -1, -1])
    assert detect_corine_convention(np.array([48, 312, 128])) == "clc"
    assert detect_corine_convention(np.array([48, 23, 128])) == "grid"


def test_mode_aggregation_on_hand_made_raster():
    grid = Grid(LAEA_EUROPE, 0.0, 0.0, 2.0, 2.0, 2, 1)  # two cells of 2 x 2 pixels of 1 m
    # rows north to south; left cell: 2 x agricultural, 1 forest, 1 nodata; right: a tie
    classes = np.array([[1, 2, 4, 0],
                        [1, -1, 0, 4]])
    x = np.array([0.5, 1.5, 2.5, 3.5])
    y = np.array([1.5, 0.5])
    xx, yy = np.meshgrid(x, y)
    acc = CellAccumulator(grid, "mode")
    acc.add(cell_index(grid, xx, yy), classes)
    mode = acc.result()
    np.testing.assert_array_equal(mode, [[1, 0]])  # tie 0 vs 4 -> lowest class
    hot = one_hot(np.array([[1, -1]]))
    assert hot.shape == (5, 1, 2) and hot[1, 0, 0] == 1 and hot.sum() == 1


def test_population_sum_is_preserved_and_mean_in_4326(tmp_path):
    rng = np.random.default_rng(2)
    pop = rng.integers(0, 500, size=(44, 64)).astype(np.float32)  # 1 km, 2 km margin
    pop[0, 0] = -1.0
    write_geotiff(tmp_path / "pop.tif", pop, x0=GRID.x0 - 2000, y_top=GRID.y0 + 42_000,
                  dx=1000, dy=1000, epsg=3035, nodata=-1.0)
    total = raster_on_grid([tmp_path / "pop.tif"], GRID, "sum", "population")
    assert total.sum() == pop[2:-2, 2:-2].sum()
    np.testing.assert_allclose(total[0, 0], pop[-4:-2, 2:4].sum())
    lon, lat = lonlat_of(GRID)
    w, n = lon.min() - 0.2, lat.max() + 0.2
    nl = np.full((150, 250), 7.0, np.float32)
    write_geotiff(tmp_path / "nl.tif", nl, x0=w, y_top=n, dx=0.006, dy=0.006, epsg=4326)
    mean = raster_on_grid([tmp_path / "nl.tif"], GRID, "mean", "night-light")
    np.testing.assert_allclose(mean, 7.0)
    small = np.ones((10, 10), np.float32)
    write_geotiff(tmp_path / "small.tif", small, x0=GRID.x0, y_top=GRID.y0 + 10_000, dx=1000,
                  dy=1000, epsg=3035)
    with pytest.raises(InputFileError, match="cover only"):
        raster_on_grid([tmp_path / "small.tif"], GRID, "mean", "elevation")


# -- emissions ---------------------------------------------------------------------------
def _glob(lat_desc: bool = False):
    lat = np.arange(40.05, 56.0, 0.1)
    lon = np.arange(0.05, 360.0, 0.1)
    nox = (1e-10 * (1 + np.cos(np.deg2rad(lon))[None, :] + lat[:, None] / 100)).astype(np.float32)
    if lat_desc:
        return lat[::-1], lon, nox[::-1]
    return lat, lon, nox


def test_emissions_read_and_interpolate(tmp_path):
    lat, lon, nox = _glob(lat_desc=True)
    path = write_cams_glob_ant(tmp_path / "e.nc", lat, lon, nox, sectors=["ene", "tro"])
    total, la, lo = read_cams_glob_ant(path)
    assert la[0] < la[-1] and lo[0] >= -180 and lo[-1] < 180
    sectors, _, _ = read_cams_glob_ant(path, sectors=["ene", "tro"])
    np.testing.assert_allclose(sectors, total, rtol=1e-6)
    out = emissions_on_grid(path, GRID)
    glon, glat = lonlat_of(GRID)
    expect = 1e-10 * (1 + np.cos(np.deg2rad(glon)) + glat / 100)
    np.testing.assert_allclose(out, expect, rtol=2e-3)


@pytest.mark.parametrize("case", ["units", "nan", "coverage", "sector"])
def test_emissions_refuse(tmp_path, case):
    lat, lon, nox = _glob()
    path = tmp_path / "e.nc"
    if case == "coverage":
        keep = lat > 52
        write_cams_glob_ant(path, lat[keep], lon, nox[keep])
        with pytest.raises(InputFileError, match="cover") as err:
            emissions_on_grid(path, GRID)
        assert err.value.path == str(path)
        return
    write_cams_glob_ant(path, lat, lon, nox)
    ds = xr.load_dataset(path)
    if case == "units":
        ds["sum"].attrs["units"] = "mol m-2 s-1"
        match = "units"
    elif case == "nan":
        ds["sum"][0, 3, 3] = np.nan
        match = "missing"
    else:
        match = "sector"
    ds.to_netcdf(path)
    with pytest.raises(InputFileError, match=match) as err:
        read_cams_glob_ant(path, sectors=["ene"] if case == "sector" else None)
    assert err.value.path == str(path)


# -- the bundle --------------------------------------------------------------------------
def test_load_static_layers_end_to_end(tmp_path):
    lat, lon, nox = _glob()
    write_cams_glob_ant(tmp_path / "e.nc", lat, lon, nox)
    write_roads_geojson(tmp_path / "r.geojson", [np.array([[4.0, 50.5], [4.6, 50.9]])], ["primary"])
    pop = np.full((24, 34), 40.0, np.float32)  # 2 km pixels aligned, 2 km margin
    write_geotiff(tmp_path / "pop.tif", pop, x0=GRID.x0 - 2000, y_top=GRID.y0 + 42_000,
                  dx=2000, dy=2000, epsg=3035)
    lonc, latc = lonlat_of(GRID)
    w, n = lonc.min() - 0.1, latc.max() + 0.1
    write_geotiff(tmp_path / "nl.tif", np.full((80, 120), 3.0, np.float32), x0=w, y_top=n,
                  dx=0.01, dy=0.01, epsg=4326)
    dem = np.full((80, 120), 120.0, np.float32)
    dem[:10] = -9999.0
    write_geotiff(tmp_path / "dem.tif", dem, x0=w, y_top=n, dx=0.01, dy=0.01, epsg=4326, nodata=-9999.0)
    clc = np.full((420, 620), 211, np.uint16)  # 100 m, agricultural, 1 km margin
    clc[390:410, 10:30] = 111  # the grid's south-west cell is artificial
    clc[:, -5:] = 999  # nodata in the margin
    write_geotiff(tmp_path / "clc.tif", clc, x0=GRID.x0 - 1000, y_top=GRID.y0 + 41_000,
                  dx=100, dy=100, epsg=3035, nodata=999)
    paths = StaticPaths(tmp_path / "e.nc", tmp_path / "r.geojson", tmp_path / "pop.tif",
                        tmp_path / "nl.tif", [tmp_path / "dem.tif"], tmp_path / "clc.tif")
    layers = load_static_layers(paths, GRID)
    assert isinstance(layers, StaticLayers)
    np.testing.assert_allclose(layers.population, 10.0)  # 40 persons per 4 km2
    np.testing.assert_allclose(layers.nightlight, 3.0)
    assert layers.elevation.max() == pytest.approx(120.0) and layers.elevation.min() >= 0.0
    assert layers.roads.sum() > 0 and layers.emissions.min() > 0
    stack = layers.stack()
    assert stack.shape == (len(STATIC_CHANNELS), 20, 30) and stack.dtype == np.float32
    assert layers.landcover[1].sum() == 20 * 30 - 1
    assert layers.landcover[0, 0, 0] == 1.0  # south-west cell (row 0 = south)
    lc = landcover_on_grid([tmp_path / "clc.tif"], GRID)
    np.testing.assert_array_equal(lc, layers.landcover)
    with pytest.raises(ValueError, match="one-hot"):
        StaticLayers(GRID, *[np.zeros((20, 30))] * 5, np.ones((5, 20, 30)))
