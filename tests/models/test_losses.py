"""Tests of the shared losses: SSIM per layer, masked MSE, L1 and average pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aprior.models.losses import (
    C1,
    C2,
    avg_pool_xy,
    block_detail,
    l1,
    masked_mse,
    ssim_loss,
    ssim_per_layer,
)


def field(b: int = 2, z: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    """A smooth positive field with some structure, (B, Z, H, W)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    base = 5 + 3 * torch.sin(xx / 3) * torch.cos(yy / 4)
    return base + torch.rand(b, z, h, w, generator=g) * 2


def hand_ssim(pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> float:
    """SSIM of one window covering a whole (H, W) image, after target-based min-max scaling."""
    lo, hi = target.min(), target.max()
    x, y = (pred - lo) / (hi - lo), (target - lo) / (hi - lo)
    w = weights / weights.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    return float((2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))


def test_identical_is_one():
    t = field()
    assert ssim_per_layer(t, t.clone()).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim_loss(t, t.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_bias_and_scale_are_not_hidden():
    t = field()
    span = t.amax(dim=(2, 3), keepdim=True) - t.amin(dim=(2, 3), keepdim=True)
    biased = t + 0.3 * span
    assert ssim_per_layer(biased, t).item() < 0.95
    assert ssim_per_layer(2.0 * t, t).item() < 0.95
    # a self-normalised comparison would have scored the biased copy 1: ours must be lower
    assert ssim_per_layer(biased, t).item() < ssim_per_layer(t + 0.01 * span, t).item()


def test_noise_lowers_ssim_monotonically():
    t = field()
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(t.shape, generator=g)
    values = [ssim_per_layer(t + a * noise, t).item() for a in (0.1, 0.5, 2.0)]
    assert values[0] > values[1] > values[2]


def test_uniform_window_matches_hand_computation():
    rng = np.random.default_rng(3)
    target = rng.uniform(1, 4, (5, 5))
    pred = target + rng.normal(0, 0.4, (5, 5))
    got = ssim_per_layer(torch.tensor(pred[None, None]), torch.tensor(target[None, None]), window=5,
                         gaussian=False).item()
    assert got == pytest.approx(hand_ssim(pred, target, np.ones((5, 5))), rel=1e-5)


def test_gaussian_window_matches_hand_computation():
    rng = np.random.default_rng(4)
    target = rng.uniform(0, 10, (7, 7))
    pred = 0.8 * target + rng.normal(0, 1.0, (7, 7))
    r = np.arange(7) - 3.0
    g = np.exp(-(r**2) / (2 * 1.5**2))
    got = ssim_per_layer(torch.tensor(pred[None, None]), torch.tensor(target[None, None]), window=7).item()
    assert got == pytest.approx(hand_ssim(pred, target, np.outer(g, g)), rel=1e-5)


def test_mean_over_layers_and_batch():
    t = field(b=2, z=2)
    p = t.clone()
    p[1, 0] = p[1, 0] + torch.linspace(0, 3, 16)  # only one slice differs
    per = [ssim_per_layer(p[b : b + 1, z : z + 1], t[b : b + 1, z : z + 1]).item() for b in range(2) for z in range(2)]
    assert ssim_per_layer(p, t).item() == pytest.approx(np.mean(per), rel=1e-6)
    assert min(per) < 1 - 1e-3


def test_constant_slices_give_no_nan():
    t = field()
    t[0, 1] = 7.0  # a constant target slice
    p = field(seed=1).requires_grad_(True)
    s = ssim_per_layer(p, t)
    s.backward()
    assert torch.isfinite(s) and torch.isfinite(p.grad).all()
    zeros = torch.zeros(1, 2, 8, 8)
    assert ssim_per_layer(zeros, zeros).item() == pytest.approx(1.0)
    # a constant target vs. an offset constant prediction still scores below 1
    assert ssim_per_layer(zeros + 0.5, zeros).item() < 0.9


def test_mask_equals_crop_and_ignores_nan():
    t = field(b=1, z=2, h=12, w=12)
    p = t + 0.3 * torch.randn(t.shape, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(t.shape, dtype=torch.bool)
    mask[..., :10, :10] = True
    p_nan, t_nan = p.clone(), t.clone()
    p_nan[~mask] = float("nan")
    t_nan[~mask] = float("nan")
    p_nan.requires_grad_(True)
    got = ssim_per_layer(p_nan, t_nan, mask=mask)
    got.backward()
    want = ssim_per_layer(p[..., :10, :10], t[..., :10, :10])
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.isfinite(p_nan.grad).all()
    assert (p_nan.grad[~mask] == 0).all()


def test_empty_mask_and_small_slices():
    t = field(b=1, z=1, h=8, w=8)
    p = t.clone().requires_grad_(True)
    s = ssim_per_layer(p, t, mask=torch.zeros(t.shape, dtype=torch.bool))
    s.backward()
    assert s.item() == 1.0 and torch.isfinite(p.grad).all()
    small = field(b=1, z=2, h=4, w=4)
    assert ssim_per_layer(small, small).item() == pytest.approx(1.0, abs=1e-6)  # window shrunk to 4


def test_ssim_is_float32_under_bf16_autocast():
    t = field()
    p = t + 0.2
    want = ssim_per_layer(p, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ssim_per_layer(p, t)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        ssim_per_layer(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 9))


def test_masked_mse_values_and_empty_mask():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, float("nan")], [3.0, 1.0]])
    mask = torch.tensor([[True, False], [True, True]])
    loss = masked_mse(pred, target, mask)
    assert loss.item() == pytest.approx((1 + 0 + 9) / 3)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 1] == 0
    p2 = pred.detach().clone().requires_grad_(True)
    empty = masked_mse(p2, target, torch.zeros_like(mask))
    empty.backward()
    assert empty.item() == 0.0 and empty.requires_grad and (p2.grad == 0).all()


def test_l1():
    pred = torch.tensor([1.0, -2.0, 3.0])
    target = torch.tensor([0.0, 0.0, 0.0])
    assert l1(pred, target).item() == pytest.approx(2.0)
    assert l1(pred, target, torch.tensor([True, False, True])).item() == pytest.approx(2.0)
    assert l1(pred, target, torch.tensor([False, True, False])).item() == pytest.approx(2.0)
    assert l1(pred, target, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_avg_pool_xy():
    x = torch.arange(2 * 4 * 8, dtype=torch.float32).reshape(2, 1, 4, 8)
    y = avg_pool_xy(x, 4)
    assert y.shape == (2, 1, 1, 2)
    assert y[0, 0, 0, 0].item() == pytest.approx(x[0, 0, :4, :4].mean().item())
    assert y[1, 0, 0, 1].item() == pytest.approx(x[1, 0, :4, 4:].mean().item())
    assert torch.allclose(avg_pool_xy(x, 2), torch.nn.functional.avg_pool2d(x, 2))
    assert avg_pool_xy(x, 1) is x
    with pytest.raises(ValueError):
        avg_pool_xy(x, 3)


def test_block_detail_is_the_departure_from_the_masked_block_mean():
    """Zero for a field constant in each block; over the kept cells of a block the detail
    sums to 0; masked cells (NaN) count neither in the mean nor in the result; rows and
    columns past the last whole block are dropped."""
    coarse = torch.tensor([[1.0, 5.0], [2.0, 7.0]]).reshape(1, 1, 2, 2)
    flat = coarse.repeat_interleave(4, -2).repeat_interleave(4, -1)
    flat = torch.nn.functional.pad(flat, (0, 3, 0, 2), value=99.0)  # (1, 1, 10, 11)
    ok = torch.ones_like(flat, dtype=torch.bool)
    det, mask = block_detail(flat, ok, 4)
    assert det.shape == mask.shape == (1, 1, 8, 8)
    assert torch.equal(det, torch.zeros_like(det))
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    m = torch.rand(2, 3, 8, 8) > 0.3
    x[~m] = float("nan")
    det, mask = block_detail(x, m, 4)
    assert torch.isfinite(det).all() and torch.equal(mask, m)
    assert torch.all(det[~m] == 0)
    sums = avg_pool_xy(torch.where(m, det, 0.0), 4)
    assert torch.allclose(sums, torch.zeros_like(sums), atol=1e-12)
    i = torch.nonzero(m[0, 0, :4, :4])[0]
    block = x[0, 0, :4, :4][m[0, 0, :4, :4]]
    assert float(det[0, 0, i[0], i[1]]) == pytest.approx(float(x[0, 0, i[0], i[1]] - block.mean()))
