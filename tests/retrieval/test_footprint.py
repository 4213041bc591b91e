"""Exact footprint weights against the shapely oracle, and their use."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from aprior.grids.grid import LAEA_EUROPE, Grid
from aprior.retrieval import footprint as fp
from aprior.retrieval.footprint import FootprintWeights, apply, footprint_weights
from aprior.retrieval.footprint_oracle import shapely_weights

LAEA_GRID = Grid(LAEA_EUROPE, 3_800_000.0, 3_000_000.0, 2000.0, 2000.0, 40, 30)
LONLAT_GRID = Grid("EPSG:4326", 4.0, 50.0, 0.05, 0.05, 40, 30)
TO_LONLAT = Transformer.from_crs(LAEA_EUROPE, "EPSG:4326", always_xy=True)


def quads(rng, n, centre_box, size, shear=0.2, square=False):
    """``n`` CCW quadrilaterals (n, 4) x and y: rotated, sheared rectangles of ``size``
    (across, along) around centres drawn in ``centre_box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = centre_box
    cx, cy = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    ang = rng.uniform(-0.5, 0.5, n) if not square else np.zeros(n)
    base = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    u = base[None, :, 0] * size[0] + rng.uniform(-shear, shear, (n, 4)) * size[0]
    v = base[None, :, 1] * size[1] + rng.uniform(-shear, shear, (n, 4)) * size[1]
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    return cx[:, None] + c * u - s * v, cy[:, None] + s * u + c * v


def laea_footprints(rng, n=300):
    """TROPOMI-like footprints (3.5 x 5.5 km) in lon/lat around and across LAEA_GRID."""
    x0, y0, x1, y1 = LAEA_GRID.bounds
    parts = [
        quads(rng, n // 3, (x0 - 6e3, y0 - 6e3, x1 + 6e3, y1 + 6e3), (3500.0, 5500.0)),  # crossing edges
        quads(rng, n // 3, (x0, y0, x1, y1), (3500.0, 5500.0), shear=0.02, square=True),  # near-square
        quads(rng, n - 2 * (n // 3), (x0, y0, x1, y1), (14000.0, 3500.0), shear=0.3),  # edge of swath
    ]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    lon, lat = TO_LONLAT.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def lonlat_footprints(rng, n=300):
    x0, y0, x1, y1 = LONLAT_GRID.bounds
    return quads(rng, n, (x0 - 0.1, y0 - 0.1, x1 + 0.1, y1 + 0.1), (0.05, 0.08), shear=0.25)


def assert_same(w: FootprintWeights, o: FootprintWeights) -> None:
    np.testing.assert_allclose(w.matrix.toarray(), o.matrix.toarray(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w.coverage, o.coverage, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w.area, o.area, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(w.matrix.sum(1)).ravel(), w.coverage, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("grid, make", [(LAEA_GRID, laea_footprints), (LONLAT_GRID, lonlat_footprints)],
                         ids=["laea", "lonlat"])
def test_equals_shapely_oracle(grid, make):
    lon, lat = make(np.random.default_rng(42))
    w = footprint_weights(lon, lat, grid)
    o = shapely_weights(lon, lat, grid)
    assert_same(w, o)
    assert (w.coverage == 1).sum() > 50 and ((w.coverage > 0) & (w.coverage < 0.99)).sum() > 20
    assert (w.coverage == 0).sum() > 0  # some lie entirely outside
    assert w.matrix.has_sorted_indices and np.all(w.matrix.data > 0)


def test_chunked_and_slabbed_paths_agree(monkeypatch):
    """Tiny blocks force several chunks per group and node rows in slabs."""
    rng = np.random.default_rng(7)
    lon, lat = laea_footprints(rng, 60)
    big = quads(rng, 3, LAEA_GRID.bounds, (30000.0, 20000.0))  # larger than the block
    blon, blat = TO_LONLAT.transform(*big)
    lon, lat = np.concatenate([lon, blon]), np.concatenate([lat, blat])
    ref = shapely_weights(lon, lat, LAEA_GRID)
    monkeypatch.setattr(fp, "_BLOCK_ELEMENTS", 40)
    assert_same(footprint_weights(lon, lat, LAEA_GRID), ref)


def test_orientation_and_longitude_convention_do_not_matter():
    lon, lat = lonlat_footprints(np.random.default_rng(1), 80)
    w = footprint_weights(lon, lat, LONLAT_GRID)
    cw = footprint_weights(lon[:, ::-1], lat[:, ::-1], LONLAT_GRID)
    shifted = footprint_weights(lon + 360.0, lat, LONLAT_GRID)
    for other in (cw, shifted):
        np.testing.assert_allclose(other.matrix.toarray(), w.matrix.toarray(), rtol=1e-9, atol=1e-12)
    # the same cells with longitudes written 360 degrees higher (a 0..360 grid)
    g360 = Grid("EPSG:4326", LONLAT_GRID.x0 + 360.0, 50.0, 0.05, 0.05, 40, 30)
    w360 = footprint_weights(lon, lat, g360)
    np.testing.assert_allclose(w360.matrix.toarray(), w.matrix.toarray(), rtol=1e-9, atol=1e-12)


def test_global_grid_wraps_at_the_seam():
    grid = Grid("EPSG:4326", 0.0, -90.0, 1.0, 1.0, 360, 180)
    lon = np.array([[-0.6, 0.4, 0.4, -0.6], [359.5, 360.5, 360.5, 359.5]])
    lat = np.array([[10.2, 10.2, 10.8, 10.8]] * 2)
    w = footprint_weights(lon, lat, grid)
    np.testing.assert_allclose(w.coverage, 1.0, rtol=1e-12)
    row0 = w.matrix.getrow(0)
    assert sorted(row0.indices % 360) == [0, 359]
    np.testing.assert_allclose(row0.toarray()[0, 100 * 360 + 359], 0.6, rtol=1e-9)
    np.testing.assert_allclose(w.matrix.getrow(1).toarray()[0, 100 * 360], 0.5, rtol=1e-9)


def test_cosine_weighting_on_geographic_grids():
    grid = Grid("EPSG:4326", 0.0, 40.0, 1.0, 1.0, 4, 20)
    lon = np.array([[1.5, 2.5, 2.5, 1.5]])
    lat = np.array([[49.0, 49.0, 51.0, 51.0]])  # half in the 49-50, half in the 50-51 row
    w = footprint_weights(lon, lat, grid).matrix.toarray()[0].reshape(20, 4)
    c49, c50 = np.cos(np.deg2rad(49.5)), np.cos(np.deg2rad(50.5))
    np.testing.assert_allclose(w[9, 1] / w[9, 2], 1.0)
    np.testing.assert_allclose(w[9, 1] / w[10, 1], c49 / c50, rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)


def test_step_field_gives_the_covered_fraction_right_of_the_step():
    g = LAEA_GRID
    i_step = g.nx // 2
    x_step = g.x0 + i_step * g.dx
    field = np.zeros(g.shape)
    field[:, i_step:] = 1.0
    rng = np.random.default_rng(3)
    x, y = quads(rng, 200, (x_step - 3000, g.y0 - 3000, x_step + 3000, g.y0 + g.ny * g.dy + 3000),
                 (3500.0, 5500.0))
    lon, lat = TO_LONLAT.transform(x, y)
    w = footprint_weights(np.asarray(lon), np.asarray(lat), g)
    got = apply(w, field)[:, 0]
    tr = Transformer.from_crs("EPSG:4326", LAEA_EUROPE, always_xy=True)
    px, py = tr.transform(lon, lat)
    polys = shapely.polygons(np.stack([px, py], -1))
    x0, y0, x1, y1 = g.bounds
    covered = shapely.area(shapely.intersection(polys, shapely.box(x0, y0, x1, y1)))
    right = shapely.area(shapely.intersection(polys, shapely.box(x_step, y0, x1, y1)))
    has = covered > 0
    np.testing.assert_allclose(got[has], right[has] / covered[has], rtol=1e-9, atol=1e-12)
    assert np.all(np.isnan(got[~has]))
    mixed = (got > 0.05) & (got < 0.95)
    assert mixed.sum() > 50


def test_apply_layouts_and_nan():
    lon, lat = lonlat_footprints(np.random.default_rng(2), 50)
    w = footprint_weights(lon, lat, LONLAT_GRID)
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 10, (3,) + LONLAT_GRID.shape)
    a = apply(w, f)
    b = apply(w, f.reshape(3, -1).T)
    c = np.stack([apply(w, f[k])[:, 0] for k in range(3)], axis=1)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c)
    assert a.shape == (50, 3)
    ok = w.coverage > 0
    assert np.all(np.isnan(a[~ok])) and np.all(np.isfinite(a[ok]))
    assert np.all((a[ok] >= f.min() - 1e-9) & (a[ok] <= f.max() + 1e-9))
    const = apply(w, np.full(LONLAT_GRID.shape, 4.0))[:, 0]
    np.testing.assert_allclose(const[ok], 4.0, rtol=1e-12)
    with pytest.raises(ValueError):
        apply(w, np.ones((5, 5)))


def test_skipped_pixels():
    x, y = quads(np.random.default_rng(4), 7, (3_820_000, 3_020_000, 3_860_000, 3_040_000), (3500, 5500))
    x[2], y[2] = x[2, 0], y[2, 0]  # a point
    x[3], y[3] = x[3, 0] + np.arange(4) * 800.0, y[3, 0] + np.arange(4) * 500.0  # a line
    x[4], y[4] = x[4, [0, 2, 1, 3]], y[4, [0, 2, 1, 3]]  # bow-tie
    lon, lat = (np.asarray(v) for v in TO_LONLAT.transform(x, y))
    lon[1, 2] = np.nan  # fill
    valid = np.ones(7, bool)
    valid[5] = False
    w = footprint_weights(lon, lat, LAEA_GRID, valid=valid)
    counts = np.diff(w.matrix.indptr)
    assert list(w.coverage[1:6]) == [0.0] * 5 and np.all(counts[1:6] == 0)
    assert np.all(w.coverage[[0, 6]] == pytest.approx(1.0))
    # fill corners and pixels excluded by `valid` are not even projected: no area
    assert np.isnan(w.area[[1, 5]]).all() and np.isfinite(w.area[[0, 2, 3, 4, 6]]).all()
    o = shapely_weights(lon, lat, LAEA_GRID, valid=valid)
    np.testing.assert_allclose(w.matrix.toarray(), o.matrix.toarray(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError):
        footprint_weights(lon[:, :3], lat[:, :3], LAEA_GRID)
    with pytest.raises(ValueError):
        footprint_weights(lon, lat, LAEA_GRID, valid=valid[:3])


def test_exact_areas_for_known_shapes():
    """A 3 x 2 cell rectangle offset by half a cell: quarter, half and full cells."""
    g = Grid("EPSG:4326", 0.0, 0.0, 1.0, 1.0, 6, 5)
    lon = np.array([[0.5, 3.5, 3.5, 0.5]])
    lat = np.array([[0.5, 0.5, 2.5, 2.5]])
    w = footprint_weights(lon, lat, g)
    assert w.n_pixels == 1 and w.area[0] == 6.0 and w.coverage[0] == 1.0
    m = w.matrix.toarray()[0].reshape(5, 6)
    total = (np.cos(np.deg2rad(0.5)) * (0.25 + 0.5 + 0.5 + 0.25) + np.cos(np.deg2rad(1.5)) * 3
             + np.cos(np.deg2rad(2.5)) * (0.25 + 0.5 + 0.5 + 0.25))
    np.testing.assert_allclose(m[0, :5], np.array([0.25, 0.5, 0.5, 0.25, 0]) * np.cos(np.deg2rad(0.5)) / total,
                               rtol=1e-12)
    np.testing.assert_allclose(m[1, 1:3], np.cos(np.deg2rad(1.5)) / total, rtol=1e-12)
