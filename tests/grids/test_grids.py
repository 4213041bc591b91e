"""Grids, sub-domains, regions, levels and regridding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from aprior.errors import ConfigError
from aprior.grids.grid import (
    DOMAIN_BBOX,
    LAEA_EUROPE,
    Grid,
    domain_grid,
    expand,
    grid_family,
    lonlat_of,
    subdomain,
    window_offset,
)
from aprior.grids.levels import (
    CAMS_LEVELS_M,
    DEFAULT_LEVELS_M,
    Levels,
    interpolate_levels,
    select_levels,
)
from aprior.grids.regions import REGIONS, Region, load_region
from aprior.grids.regrid import (
    bilinear_matrix,
    bilinear_to_grid,
    block_mean,
    conservative_to_grid,
)

# -- sub-domains ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_subdomain_nests_in_the_domain_and_covers_the_box(name):
    g2 = subdomain(name)
    dom = domain_grid(2000)
    i0, j0 = window_offset(dom, g2)
    assert i0 % 8 == 0 and j0 % 8 == 0 and g2.nx % 8 == 0 and g2.ny % 8 == 0
    g2_, g8, g16 = grid_family(g2)
    assert g8.shape == (g2.ny // 4, g2.nx // 4) and g16.shape == (g2.ny // 8, g2.nx // 8)
    # 8 and 16 km versions are windows of the 8 and 16 km domain grids
    assert window_offset(domain_grid(8000), g8) == (i0 // 4, j0 // 4)
    assert window_offset(domain_grid(16000), g16) == (i0 // 8, j0 // 8)
    assert subdomain(name, 16000) == g16
    # the box (clipped to the domain) lies inside the grid
    w, s, e, n = REGIONS[name]
    tr = Transformer.from_crs("EPSG:4326", LAEA_EUROPE, always_xy=True)
    lon = np.r_[np.linspace(w, e, 20), np.full(20, e), np.linspace(w, e, 20), np.full(20, w)]
    lat = np.r_[np.full(20, s), np.linspace(s, n, 20), np.full(20, n), np.linspace(s, n, 20)]
    x, y = tr.transform(lon, lat)
    x0, y0, x1, y1 = g2.bounds
    assert np.all((x >= x0 - 1e-6) & (x <= x1 + 1e-6) & (y >= y0 - 1e-6) & (y <= y1 + 1e-6))


def test_domain_region_is_the_domain_grid_and_demo_is_small():
    assert subdomain("domain") == domain_grid(2000)
    assert subdomain() == domain_grid(2000)
    demo = subdomain(load_region(None))
    assert demo.nx * 2 < 400 and demo.ny * 2 < 400


def test_subdomain_from_bbox_is_clipped_and_outside_raises():
    g = subdomain((-20.0, 40.0, 0.0, 45.0))
    assert g.x0 == domain_grid().x0 and g.y0 == domain_grid().y0
    with pytest.raises(ConfigError, match="does not overlap"):
        subdomain((20.0, 60.0, 25.0, 65.0))


def test_lonlat_of_inverts_the_projection():
    g = subdomain("paris", 16000)
    lon, lat = lonlat_of(g)
    assert lon.shape == lat.shape == g.shape
    x, y = Transformer.from_crs("EPSG:4326", LAEA_EUROPE, always_xy=True).transform(lon, lat)
    np.testing.assert_allclose(x, np.broadcast_to(g.x, g.shape), atol=1e-3)
    np.testing.assert_allclose(y, np.broadcast_to(g.y[:, None], g.shape), atol=1e-3)
    assert 1.0 < lon.mean() < 4.0 and 48.0 < lat.mean() < 50.0


def test_expand_gives_patch_context_inside_the_domain():
    small = subdomain("paris")
    big = expand(small)
    i, j = window_offset(big, small)
    assert big.shape == (256, 256) and i >= 0 and j >= 0
    window_offset(domain_grid(), big)  # raises if outside
    corner = expand(domain_grid().window(0, 0, 16, 16))
    assert (corner.x0, corner.y0) == (domain_grid().x0, domain_grid().y0)


def test_window_offset_refuses_misaligned():
    dom = domain_grid()
    with pytest.raises(ValueError, match="aligned"):
        window_offset(dom, Grid(LAEA_EUROPE, dom.x0 + 500, dom.y0, 2000, 2000, 8, 8))


# -- regions -------------------------------------------------------------------------------


def test_named_regions_and_box_strings():
    assert load_region("Paris").bbox == REGIONS["paris"]
    assert load_region("2,48,3,49").bbox == (2.0, 48.0, 3.0, 49.0)
    assert load_region(DOMAIN_BBOX).name == "box"
    for bad in ("nowhere", "3,2,1", "5,48,4,49"):
        with pytest.raises(ConfigError):
            load_region(bad)
    r = load_region("paris")
    m = r.contains(np.array([2.35, 5.0, 1.5]), np.array([48.85, 48.85, 48.3]))
    assert m.tolist() == [True, False, True]


def test_geojson_region(tmp_path):
    tri = {"type": "Feature", "properties": {"name": "tri"},
           "geometry": {"type": "Polygon",
                        "coordinates": [[[4, 50], [6, 50], [4, 52], [4, 50]]]}}
    p = tmp_path / "tri.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [tri]}))
    r = load_region(p)
    assert r.bbox == (4.0, 50.0, 6.0, 52.0) and r.polygon is not None
    lon = np.array([[4.5, 5.8], [4.2, 5.5]])
    lat = np.array([[50.5, 51.8], [51.5, 50.2]])
    expected = shapely.contains_xy(shapely.Polygon([(4, 50), (6, 50), (4, 52)]), lon, lat)
    assert np.array_equal(r.contains(lon, lat), expected)
    assert r.contains(lon, lat).tolist() == [[True, False], [True, True]]
    g = subdomain(r)
    assert g.nx % 8 == 0
    bad = tmp_path / "line.geojson"
    bad.write_text(json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}))
    with pytest.raises(ConfigError, match="polygons") as exc:
        load_region(bad)
    assert "line.geojson" in str(exc.value)
    (tmp_path / "junk.geojson").write_text("{nope")
    with pytest.raises(ConfigError, match="JSON"):
        load_region(tmp_path / "junk.geojson")
    with pytest.raises(ConfigError, match="does not exist"):
        load_region(tmp_path / "missing.geojson")


def test_region_is_frozen_and_validated():
    with pytest.raises(ConfigError):
        Region("x", (5.0, 40.0, 4.0, 41.0))
    r = Region("x", (1, 2, 3, 4))
    with pytest.raises(AttributeError):
        r.name = "y"  # type: ignore[misc]


# -- levels ------------------------------------------------------------------------------


def test_levels_defaults_and_validation():
    assert len(Levels()) == 8 and Levels().heights_m == DEFAULT_LEVELS_M
    assert len(Levels.cams()) == 10
    for bad in ((0, 50, 50), (-1, 10), (100, 50), ()):
        with pytest.raises(ValueError):
            Levels(bad)


def test_select_levels():
    idx = select_levels(CAMS_LEVELS_M, DEFAULT_LEVELS_M)
    assert np.asarray(CAMS_LEVELS_M)[idx].tolist() == list(DEFAULT_LEVELS_M)
    with pytest.raises(ValueError, match="75 m are not in the field"):
        select_levels(CAMS_LEVELS_M, (0, 75))


def test_interpolate_levels():
    h = np.array([0.0, 100.0, 300.0])
    v = np.stack([np.full((2, 3), 10.0), np.full((2, 3), 20.0), np.full((2, 3), 0.0)])[None]
    out = interpolate_levels(v, h, (0, 50, 100, 200), axis=1)
    assert out.shape == (1, 4, 2, 3)
    np.testing.assert_allclose(out[0, :, 0, 0], [10, 15, 20, 10])
    with pytest.raises(ValueError, match="extrapolation"):
        interpolate_levels(v, h, (0, 400), axis=1)


# -- regridding ------------------------------------------------------------------------------


def _linear(lon, lat):
    return 3.0 * lon - 2.0 * lat + 7.0


@pytest.mark.parametrize("lat_desc", [True, False])
@pytest.mark.parametrize("lon360", [True, False])
def test_bilinear_reproduces_linear_fields(lat_desc, lon360):
    g = subdomain("paris", 16000)
    lat = np.arange(46.0, 52.01, 0.25)
    lon = np.arange(-2.0, 6.01, 0.25)
    if lat_desc:
        lat = lat[::-1]
    lon_src = np.where(lon < 0, lon + 360.0, lon) if lon360 else lon
    vals = _linear(lon[None, :], lat[:, None])
    out = bilinear_to_grid(np.stack([vals, 2 * vals]), lat, lon_src, g)
    tlon, tlat = lonlat_of(g)
    np.testing.assert_allclose(out[0], _linear(tlon, tlat), atol=1e-9)
    np.testing.assert_allclose(out[1], 2 * _linear(tlon, tlat), atol=1e-9)


def test_bilinear_periodic_global_grid_and_out_of_range():
    lat = np.arange(90.0, -90.01, -1.0)
    lon = np.arange(0.0, 360.0, 1.0)
    tl = np.array([-0.5, 359.5, 10.0])
    m = bilinear_matrix(lat, lon, tl, np.array([45.0, 45.0, 45.0]))
    vals = np.broadcast_to(np.cos(np.deg2rad(lon)), (lat.size, lon.size))
    across = (np.cos(0.0) + np.cos(np.deg2rad(359.0))) / 2  # between 359E and 0E
    np.testing.assert_allclose(m @ vals.ravel(), [across, across, np.cos(np.deg2rad(10.0))],
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0)
    with pytest.raises(ValueError, match="outside the source grid"):
        bilinear_matrix(np.array([40.0, 41.0]), np.array([0.0, 1.0]), np.array([0.5]), np.array([45.0]))


def test_conservative_preserves_constants_and_means():
    g = subdomain("paris", 16000)
    lat = np.arange(52.0, 45.99, -0.1)
    lon = np.arange(-1.0, 6.01, 0.1)
    out = conservative_to_grid(np.full((2, lat.size, lon.size), 4.0), lat, lon, g, oversample=4)
    np.testing.assert_allclose(out, 4.0, rtol=1e-12)
    vals = _linear(lon[None, :], lat[:, None])
    tlon, tlat = lonlat_of(g)
    lin = conservative_to_grid(vals, lat, lon, g, oversample=8)
    np.testing.assert_allclose(lin, _linear(tlon, tlat), atol=0.05)  # cell-mean ~ centre value


def test_block_mean():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = block_mean(a[None], 2)
    assert out.shape == (1, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [[2.5, 4.5], [10.5, 12.5]])
    a[0, 0] = np.nan
    assert block_mean(a, 2, skipna=True)[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    with pytest.raises(ValueError):
        block_mean(a, 3)
