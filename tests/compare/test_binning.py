"""Area-weighted binning of footprints (``aprior compare`` maps)."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from aprior.compare.binning import GridAccumulator, footprint_area_km2, lonlat_grid


def _box(w, s, e, n):
    """(1, 4) lon and lat corners, counter-clockwise from the south-west."""
    return np.array([[w, e, e, w]], float), np.array([[s, s, n, n]], float)


def test_lonlat_grid_covers_the_box():
    g = lonlat_grid((-5.0, 42.0, 9.0, 54.0), 0.05)
    assert (g.nx, g.ny) == (280, 240)
    assert g.bounds == pytest.approx((-5.0, 42.0, 9.0, 54.0))
    assert lonlat_grid((0, 0, 1, 1), 0.3).nx == 4  # edges moved outward


def test_hand_computed_cell_means():
    """Pixel A spans cells 0-1, pixel B cells 1-3 of one row: equal overlaps in cell 1."""
    grid = lonlat_grid((0.0, 50.0, 0.2, 50.05), 0.05)
    lon_a, lat_a = _box(0.0, 50.0, 0.1, 50.05)
    lon_b, lat_b = _box(0.05, 50.0, 0.2, 50.05)
    acc = GridAccumulator(grid, ["v"])
    acc.add(np.vstack([lon_a, lon_b]), np.vstack([lat_a, lat_b]), {"v": np.array([2.0, 8.0])})
    np.testing.assert_allclose(acc.mean("v")[0], [2.0, 5.0, 8.0, 8.0], rtol=1e-12)
    # weights: overlap areas, one cell each
    cell = footprint_area_km2(*_box(0.0, 50.0, 0.05, 50.05))[0]
    np.testing.assert_allclose(acc.sum_w["v"][0], [cell, 2 * cell, cell, cell], rtol=1e-9)
    # a NaN value does not count for its quantity
    acc2 = GridAccumulator(grid, ["v"])
    acc2.add(np.vstack([lon_a, lon_b]), np.vstack([lat_a, lat_b]), {"v": np.array([2.0, np.nan])})
    assert acc2.mean("v")[0, 1] == pytest.approx(2.0)
    assert np.isnan(acc2.mean("v")[0, 3])


def _swath(n_s=20, n_p=15, seed=0):
    """Slanted quadrilateral footprints of a few km around 4.5E, 50.5N."""
    rng = np.random.default_rng(seed)
    j, i = np.meshgrid(np.arange(n_s + 1), np.arange(n_p + 1), indexing="ij")
    lon = 4.0 + 0.06 * i + 0.012 * j + rng.uniform(-0.004, 0.004, i.shape)
    lat = 50.2 + 0.045 * j - 0.006 * i + rng.uniform(-0.003, 0.003, i.shape)
    lonb = np.stack([lon[:-1, :-1], lon[:-1, 1:], lon[1:, 1:], lon[1:, :-1]], -1).reshape(-1, 4)
    latb = np.stack([lat[:-1, :-1], lat[:-1, 1:], lat[1:, 1:], lat[1:, :-1]], -1).reshape(-1, 4)
    return lonb, latb, rng.lognormal(35, 0.5, lonb.shape[0])


def test_binning_conserves_the_pixel_area_weighted_mean():
    lonb, latb, v = _swath()
    grid = lonlat_grid((3.5, 49.5, 6.0, 52.0), 0.05)
    acc = GridAccumulator(grid, ["v"])
    for part in np.array_split(np.arange(v.size), 3):  # streamed in blocks
        acc.add(lonb[part], latb[part], {"v": v[part]})
    w, m = acc.sum_w["v"], acc.mean("v")
    binned = np.nansum(w * m) / w.sum()
    area = footprint_area_km2(lonb, latb)
    assert w.sum() == pytest.approx(area.sum(), rel=1e-9)  # all footprints inside the grid
    assert binned == pytest.approx(np.sum(area * v) / area.sum(), rel=1e-12)
    # the same with independent geodesic areas (WGS84), to the accuracy of the area model
    geod = Geod(ellps="WGS84")
    geo = np.array([abs(geod.polygon_area_perimeter(lo, la)[0]) for lo, la in zip(lonb, latb, strict=True)])
    assert binned == pytest.approx(np.sum(geo * v) / geo.sum(), rel=1e-5)
    np.testing.assert_allclose(area / (geo / 1e6), np.median(area / (geo / 1e6)), rtol=1e-3)


def test_blocks_and_whole_give_the_same_sums():
    lonb, latb, v = _swath(8, 6, seed=2)
    grid = lonlat_grid((3.5, 49.5, 6.0, 52.0), 0.1)
    one, two = GridAccumulator(grid, ["v"]), GridAccumulator(grid, ["v"])
    one.add(lonb, latb, {"v": v})
    two.add(lonb[:20], latb[:20], {"v": v[:20]})
    two.add(lonb[20:], latb[20:], {"v": v[20:]})
    np.testing.assert_allclose(one.sum_wv["v"], two.sum_wv["v"], rtol=1e-12)
    rows, cols = one.data_window(margin=0)
    assert np.all(one.sum_w["v"][rows, cols].sum(axis=0) > 0)
    assert one.sum_w["v"].sum() == pytest.approx(one.sum_w["v"][rows, cols].sum())
