"""Patch tiling and Hann merging."""

from __future__ import annotations

import numpy as np
import pytest

from aprior.grids.grid import domain_grid, grid_family, subdomain
from aprior.grids.tiling import Patch, PatchTiling, hann_window


def _smooth(shape, scale=40.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return np.sin(xx / scale) + np.cos(yy / (1.3 * scale)) + 0.01 * xx


def test_full_domain_has_the_papers_12_patches():
    t = PatchTiling()
    ps = t.patches(domain_grid())
    assert len(ps) == 12
    assert sorted({p.i0 for p in ps}) == [0, 168, 336]
    assert sorted({p.j0 for p in ps}) == [0, 160, 320, 480]
    assert max(p.i0 for p in ps) + 256 == domain_grid().nx
    assert max(p.j0 for p in ps) + 256 == domain_grid().ny


def test_patches_align_at_2_8_and_16_km():
    g2, g8, g16 = grid_family(domain_grid())
    t = PatchTiling()
    f2 = _smooth(g2.shape)
    # an 8 km / 16 km field that is the block mean of the 2 km one
    f8 = f2.reshape(g8.ny, 4, g8.nx, 4).mean(axis=(1, 3))
    f16 = f2.reshape(g16.ny, 8, g16.nx, 8).mean(axis=(1, 3))
    for p in t.patches(g2):
        assert p.i0 % 8 == 0 and p.j0 % 8 == 0
        a2 = t.extract(f2, p)
        a8 = t.extract(f8, p, factor=4)
        a16 = t.extract(f16, p, factor=8)
        assert a2.shape == (256, 256) and a8.shape == (64, 64) and a16.shape == (32, 32)
        np.testing.assert_allclose(a2.reshape(64, 4, 64, 4).mean(axis=(1, 3)), a8, atol=1e-12)
        np.testing.assert_allclose(a2.reshape(32, 8, 32, 8).mean(axis=(1, 3)), a16, atol=1e-12)


@pytest.mark.parametrize("factor", [1, 4, 8])
def test_round_trip_full_domain(factor):
    g = domain_grid(2000 * factor)
    t = PatchTiling()
    ps = t.patches(domain_grid())
    f = _smooth(g.shape, scale=40.0 / factor)[None].repeat(2, 0).astype(np.float64)
    vals = t.extract_all(f, ps, factor)
    assert vals.shape == (12, 2, 256 // factor, 256 // factor)
    merged = t.merge(vals, g, ps, factor)
    np.testing.assert_allclose(merged, f, atol=1e-6)
    const = t.merge(np.full((12, 256 // factor, 256 // factor), 3.25, np.float32), g, ps, factor)
    assert const.dtype == np.float32
    np.testing.assert_allclose(const, 3.25, rtol=1e-7, atol=0)


def test_merge_of_different_patches_is_a_positive_weighted_mean():
    g = domain_grid()
    t = PatchTiling()
    ps = t.patches(g)
    vals = np.stack([np.full((256, 256), float(k)) for k in range(len(ps))])
    merged = t.merge(vals, g, ps)
    eps = 1e-12
    assert merged.min() >= -eps and merged.max() <= len(ps) - 1 + eps
    # cell (0, 0) lies only in patch 0, the far corner only in the last one
    assert merged[0, 0] == 0.0 and merged[-1, -1] == pytest.approx(len(ps) - 1, rel=1e-14)
    # a cell in the overlap of patches 0 and 1 (columns 168-255, row 10) mixes both
    assert 0.0 < merged[10, 200] < 1.0
    w = t.weights(g.shape, ps)
    assert np.all(w > 0)


def test_every_cell_has_positive_weight_on_subdomains():
    t = PatchTiling()
    for name in ("demo", "northern", "benelux", "paris", "alps"):
        g = subdomain(name)
        ps = t.patches(g)
        for f in (1, 4, 8):
            shape = (g.ny // f, g.nx // f)
            assert np.all(t.weights(shape, ps, f) > 0), (name, f)


def test_hann_window_is_periodic_positive_and_sums_to_one_at_half_overlap():
    w = hann_window(256)
    assert w.min() > 0 and np.isclose(w.max(), np.sin(np.pi * 127.5 / 256) ** 4)
    np.testing.assert_allclose(w, w.T)  # separable and symmetric
    assert np.isclose(w[0, 0], np.sin(np.pi * 0.5 / 256) ** 4)
    g = domain_grid()
    t = PatchTiling(stride=128)
    ps = t.patches(g.window(0, 0, 512, 512))
    assert len(ps) == 9
    s = t.weights((512, 512), ps)
    np.testing.assert_allclose(s[128:384, 128:384], 1.0, atol=1e-12)


def test_small_subdomain_is_padded_into_one_patch():
    g = subdomain("paris")  # smaller than a patch
    assert g.nx < 256 and g.ny < 256
    t = PatchTiling()
    ps = t.patches(g)
    assert len(ps) == 1 and ps[0].i0 <= 0 and ps[0].j0 <= 0
    assert ps[0].i0 % 8 == 0 and ps[0].i0 + 256 >= g.nx
    f = _smooth(g.shape)
    patch = t.extract(f, ps[0])
    assert patch.shape == (256, 256)
    # padded with edge values
    assert patch[0, 0] == f[0, 0] and patch[-1, -1] == f[-1, -1]
    np.testing.assert_allclose(t.merge(patch[None], g, ps), f, atol=1e-12)
    zero = t.extract(f, ps[0], pad_mode="constant")
    assert zero[0, 0] == 0.0


def test_subdomain_patches_touch_both_edges():
    g = domain_grid().window(0, 0, 592, 400)
    t = PatchTiling()
    ps = t.patches(g)
    js = sorted({p.j0 for p in ps})
    assert js[0] == 0 and js[-1] + 256 == 400 and all(j % 8 == 0 for j in js)
    assert max(np.diff(js)) <= 160


def test_validation():
    with pytest.raises(ValueError):
        PatchTiling(stride=(100, 160))
    with pytest.raises(ValueError):
        PatchTiling(size=250)
    with pytest.raises(ValueError, match="divide by 8"):
        PatchTiling().patches((100, 100))
    with pytest.raises(ValueError, match="aligned"):
        Patch(4, 0).at(8)
    with pytest.raises(ValueError, match="do not match"):
        PatchTiling().merge(np.zeros((3, 256, 256)), domain_grid())
