"""The CAMS-like model: an independent, imperfect run on the world's weather; station points."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from aprior.grids.grid import LAEA_EUROPE, Grid, lonlat_of, subdomain
from aprior.grids.regrid import bilinear_to_grid
from aprior.synth.chemistry import Chemistry
from aprior.synth.meteo import Meteo, era5_axes
from aprior.synth.observations import (
    CamsModel,
    Stations,
    cams_axes,
    cams_inventory,
    inventory_year_factor,
    measure,
    point_values,
)
from aprior.synth.settlements import settlements
from aprior.synth.static_world import fine_static, static_2km

BOX = (4.3, 50.6, 5.3, 51.3)


@pytest.fixture(scope="module")
def small():
    region = subdomain(BOX)
    m = 32_000
    chem_grid = Grid(LAEA_EUROPE, region.x0 - m, region.y0 - m, 2000.0, 2000.0,
                     region.nx + 32, region.ny + 32)
    fine_grid = Grid(LAEA_EUROPE, chem_grid.x0, chem_grid.y0, 1000.0, 1000.0,
                     chem_grid.nx * 2, chem_grid.ny * 2)
    static = static_2km(fine_static(0, fine_grid, settlements(0)), chem_grid)
    lat, lon = era5_axes((3.5, 50.0, 6.2, 51.9), 0.0)
    heights = np.array([0.0, 50, 100, 250, 500, 750, 1000, 2000, 3000, 5000])
    meteo = Meteo(0, lat, lon, (1000, 975, 950, 925, 900, 850, 700, 500))
    return static, meteo, lat, lon, heights


def test_inventory_misses_small_sources_and_is_older():
    e = {"traffic": np.array([[0.0, 1.0, 2.0, 3.0, 10.0]]), "soil": np.array([[0.0, 1.0, 1.0, 1.0, 1.0]])}
    inv = cams_inventory(e)
    assert inv["traffic"][0, 1] == 0.0 and inv["traffic"][0, 4] > 10.0  # dropped; two years older
    np.testing.assert_array_equal(inv["soil"], e["soil"])  # natural sources are kept as they are
    assert inventory_year_factor(dt.date(2022, 6, 1)) == 1.0 < inventory_year_factor(dt.date(2023, 6, 1))


def test_cams_like_model_is_coarse_and_low_in_cities_at_the_surface(small):
    static, meteo, lat, lon, heights = small
    day = dt.date(2023, 7, 10)
    era5 = meteo.day(day)
    chem = Chemistry(static, lat, lon, meteo.levels, heights)
    clat, clon = cams_axes(BOX, 0.9)
    cams = CamsModel(0, static, lat, lon, meteo.levels, clat, clon, heights)
    assert cams.grid.dx == 10_000.0
    t_state, c_state = chem.initial_state(day, era5), cams.initial_state(day, era5)
    for _ in chem.run_day(day, era5, t_state):
        pass
    for _ in cams.run_day(day, era5, c_state):
        pass
    truth = np.mean([h.no2 for h in chem.run_day(day, era5, copy.deepcopy(t_state))][11:14], axis=0)
    field = np.mean(list(cams.run_day(day, era5, copy.deepcopy(c_state)))[11:14], axis=0)
    assert field.shape == (10, clat.size, clon.size) and np.all(np.isfinite(field))
    on2 = bilinear_to_grid(field, clat, clon, static.grid)
    city = static.population > 3000
    lon2, lat2 = lonlat_of(static.grid)
    inside = (lon2 > clon[2]) & (lon2 < clon[-3]) & (lat2 < clat[2]) & (lat2 > clat[-3])
    assert (city & inside).sum() > 10
    # the near-source low bias at the surface, and a 10 km field misses the 2 km peaks
    assert on2[0][city & inside].mean() < 0.9 * truth[0][city & inside].mean()
    assert on2[0][inside].max() < truth[0][inside].max()
    # an independent model, not a copy: correlated with the truth, but not perfectly
    r = np.corrcoef(on2[0][inside], truth[0][inside])[0, 1]
    assert 0.5 < r < 0.98


def test_stations_are_points_and_industrial_ones_see_plumes():
    surface = np.array([[0.0, 10.0], [0.0, 10.0]])
    n = 30
    st = Stations(meta=pd.DataFrame({"station_id": [f"BESYN{k:04d}" for k in range(n)]}),
                  j=np.zeros(n, int), i=np.zeros(n, int), repr_factor=np.ones(n), kerb=np.zeros(n),
                  moly=np.ones(n), sparse=np.zeros(n, bool), fy=np.zeros(n),
                  fx=np.linspace(0.0, 0.45, n), plume=np.where(np.arange(n) < 10, 20.0, 0.0))
    pts = point_values(surface, st)
    assert pts[0] == 0.0 and pts[-1] == pytest.approx(4.5)  # between the cell centres
    base = np.full((24, n), 10.0)
    val = np.stack([measure(0, st, dt.date(2023, 3, d), base, np.full((24, n), 3.0)) for d in range(6, 11)])
    assert np.nanmean(val[:, :, :10]) > np.nanmean(val[:, :, 10:]) + 2.0  # plume hits
    assert np.nanmax(val[:, :, :10]) > 25.0 and np.nanmedian(val[:, :, :10]) < 15.0  # intermittent
