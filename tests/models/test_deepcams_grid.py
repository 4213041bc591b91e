"""Tests of the DeepCAMS 0.75 -> 0.25 degree node-grid registration (aprior.models.deepcams.grid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aprior.models.deepcams.grid import (
    COARSE_SHAPE,
    FINE_SHAPE,
    cell_patch_index,
    coarsen,
    fine_shape,
    pad_lat,
    pad_lon,
    resolve_lat_pad,
    upsample_area,
    upsample_bicubic,
    upsample_bicubic_cells,
    warp,
)

H, W = 41, 80  # a pole-to-pole node grid with the global grid's structure (4.5 deg)


def sphere_smooth(lat: torch.Tensor, lon: torch.Tensor) -> torch.Tensor:
    """A field smooth on the sphere, also across the poles (degree 1 and 2 harmonics)."""
    la, lo = torch.deg2rad(lat), torch.deg2rad(lon)
    return 5 + torch.sin(la) + torch.cos(la) * torch.cos(lo) + torch.cos(la) ** 2 * torch.cos(2 * lo)


def smooth_field(h: int = H, w: int = W, batch: int = 2) -> torch.Tensor:
    lat = torch.linspace(90, -90, h, dtype=torch.float64)[:, None]
    lon = torch.arange(w, dtype=torch.float64)[None] * 360 / w
    base = sphere_smooth(lat, lon)
    noise = 0.3 * torch.randn(batch, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return base + noise


def test_global_shapes_are_registered():
    assert fine_shape(COARSE_SHAPE) == FINE_SHAPE
    assert 3 * COARSE_SHAPE[0] != FINE_SHAPE[0]
    assert resolve_lat_pad(*COARSE_SHAPE) == "pole"
    assert resolve_lat_pad(30, 480) == "reflect"


def test_pad_lon_and_pole_padding():
    x = torch.arange(2 * 5 * 6, dtype=torch.float64).reshape(2, 5, 6)
    p = pad_lon(x, 2)
    assert torch.equal(p[..., :2], x[..., -2:]) and torch.equal(p[..., -2:], x[..., :2])
    assert torch.equal(pad_lon(x, 7)[..., 0], x[..., -1])  # pad wider than the grid repeats
    q = pad_lat(x, 2, "pole")
    assert q.shape == (2, 9, 6)
    assert torch.equal(q[:, 1], x[:, 1].roll(3, -1))  # row -1 = row 1 across the pole
    assert torch.equal(q[:, 0], x[:, 2].roll(3, -1))
    assert torch.equal(q[:, -1], x[:, -3].roll(3, -1))


def test_bicubic_exact_at_coarse_nodes():
    x = smooth_field()
    y = upsample_bicubic(x)
    assert y.shape == (2, 1, 3 * (H - 1) + 1, 3 * W)
    assert torch.equal(y[..., ::3, ::3], x)
    # a smooth field is interpolated closely between the nodes
    lat = torch.linspace(90, -90, 3 * (H - 1) + 1, dtype=torch.float64)[:, None]
    lon = torch.arange(3 * W, dtype=torch.float64)[None] * 120 / W
    truth = sphere_smooth(lat, lon)
    clean = upsample_bicubic(sphere_smooth(lat[::3], lon[:, ::3]))
    assert (clean - truth).abs().max() < 2e-4
    # across the poles, padding with the values beyond the pole is what keeps it accurate
    mirrored = upsample_bicubic(sphere_smooth(lat[::3], lon[:, ::3]), lat_pad="reflect")
    assert (mirrored - truth).abs().max() > 1e-3


def test_bicubic_is_periodic_in_longitude():
    x = smooth_field()
    for k in (1, 7, W - 1):
        shifted = upsample_bicubic(x.roll(k, -1))
        assert torch.allclose(shifted, upsample_bicubic(x).roll(3 * k, -1), atol=1e-12)


def test_cell_bicubic_centres_are_the_input():
    x = smooth_field(12, 16)
    y = upsample_bicubic_cells(x)
    assert y.shape == (2, 1, 36, 48)
    assert torch.equal(y[..., 1::3, 1::3], x)
    assert torch.allclose(upsample_bicubic_cells(x.roll(3, -1)), y.roll(9, -1), atol=1e-12)


def _coarsen_oracle(fine: np.ndarray, h: int, w: int) -> np.ndarray:
    """Loop over cells: weighted mean with exact band areas, pole caps, periodic columns."""
    lat_f = np.linspace(90, -90, 3 * (h - 1) + 1)
    half = 180 / (h - 1) / 3 / 2
    area = np.sin(np.radians(np.clip(lat_f + half, -90, 90))) - np.sin(np.radians(np.clip(lat_f - half, -90, 90)))
    out = np.zeros((h, w))
    for j in range(h):
        rows = [r for r in range(3 * j - 1, 3 * j + 2) if 0 <= r < len(lat_f)]
        for i in range(w):
            cols = [(3 * i + d) % (3 * w) for d in (-1, 0, 1)]
            wts = np.array([[area[r]] * 3 for r in rows])
            vals = fine[np.ix_(rows, cols)]
            out[j, i] = (wts * vals).sum() / wts.sum()
    return out


def test_coarsen_matches_a_loop_oracle_with_pole_caps():
    h, w = 7, 12
    fine = torch.randn(3 * (h - 1) + 1, 3 * w, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = coarsen(fine)
    assert got.shape == (h, w)
    np.testing.assert_allclose(got.numpy(), _coarsen_oracle(fine.numpy(), h, w), rtol=1e-12, atol=1e-12)
    assert torch.allclose(coarsen(torch.full((3 * (h - 1) + 1, 3 * w), 2.5, dtype=torch.float64)),
                          torch.full((h, w), 2.5, dtype=torch.float64))


def test_area_upsample_conserves_cell_means():
    x = smooth_field()
    y = upsample_area(x)
    assert y.shape == (2, 1, 3 * (H - 1) + 1, 3 * W)
    assert torch.allclose(coarsen(y), x, atol=1e-12)
    assert torch.allclose(upsample_area(torch.full_like(x, 3.0)), torch.full_like(y, 3.0), atol=1e-12)
    # plain bicubic does not conserve the means; on a smooth field the area version stays
    # close to it (the smooth correction steps leave little for the blocky last one)
    assert (coarsen(upsample_bicubic(x)) - x).abs().max() > 1e-3
    lat = torch.linspace(90, -90, H, dtype=torch.float64)[:, None]
    clean = sphere_smooth(lat, torch.arange(W, dtype=torch.float64)[None] * 360 / W)
    assert (upsample_area(clean) - upsample_bicubic(clean)).abs().max() < 0.05


def test_area_upsample_conserves_on_a_latitude_band():
    lat = np.linspace(60, 30, 11)
    x = smooth_field(11, 40)
    y = upsample_area(x, lat=lat)
    assert torch.allclose(coarsen(y, lat=lat), x, atol=1e-12)
    assert not torch.allclose(coarsen(y), x, atol=1e-6)  # the latitudes matter


def test_cell_patch_index_covers_the_coarse_cells():
    h, w = 9, 16
    fine = torch.randn(3 * (h - 1) + 1, 3 * w, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rows, cols = cell_patch_index(2, 14, 4, 5, 3 * w)  # wraps across 0 deg
    patch = fine[np.ix_(rows, cols)]
    assert patch.shape == (12, 15)
    coarse = coarsen(fine)
    lat_f = np.linspace(90, -90, 3 * (h - 1) + 1)[rows]
    wts = torch.as_tensor(np.cos(np.radians(lat_f)))[:, None].expand(12, 15)
    means = (patch * wts).reshape(4, 3, 5, 3).sum((1, 3)) / wts.reshape(4, 3, 5, 3).sum((1, 3))
    expect = coarse[2:6][:, [(14 + k) % w for k in range(5)]]
    assert torch.allclose(means, expect, rtol=1e-4)


def test_warp_zero_flow_is_identity():
    x = smooth_field(16, 24)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 16, 24, dtype=torch.float64)), x, atol=1e-12)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 16, 24, dtype=torch.float64), periodic_lon=False), x, atol=1e-12)


def test_warp_wraps_across_the_seam():
    x = smooth_field(16, 24)
    flow = torch.zeros(2, 2, 16, 24, dtype=torch.float64)
    flow[:, 0] = 1.0  # sample one column east: the last column reads column 0
    out = warp(x, flow)
    assert torch.allclose(out, x.roll(-1, -1), atol=1e-12)
    flow[:, 0] = -0.5
    out = warp(x, flow)
    assert torch.allclose(out[..., 0], 0.5 * (x[..., 0] + x[..., -1]), atol=1e-12)
    # without periodicity the seam clamps instead
    clamped = warp(x, torch.ones(2, 2, 16, 24, dtype=torch.float64) * torch.tensor([1.0, 0.0]).view(1, 2, 1, 1),
                   periodic_lon=False)
    assert torch.allclose(clamped[..., -1], x[..., -1], atol=1e-12)


def test_warp_clamps_latitude():
    x = smooth_field(16, 24)
    flow = torch.zeros(2, 2, 16, 24, dtype=torch.float64)
    flow[:, 1] = 3.0
    out = warp(x, flow)
    assert torch.allclose(out[..., -1, :], x[..., -1, :], atol=1e-12)
    assert torch.allclose(out[..., 0, :], x[..., 3, :], atol=1e-12)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="node grid"):
        coarsen(torch.zeros(11, 12))
    with pytest.raises(ValueError, match="odd"):
        upsample_area(torch.zeros(5, 8), factor=2)
    with pytest.raises(ValueError, match="flow"):
        warp(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))
