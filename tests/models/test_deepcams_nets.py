"""Tests of the DeepCAMS temporal (XVFI-style) and spatial (ABPN-style) networks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aprior.errors import ConfigError
from aprior.models.deepcams.flow import blend, reverse_flows, splat
from aprior.models.deepcams.grid import upsample_bicubic, upsample_bicubic_cells
from aprior.models.deepcams.spatial import (
    SpatialConfig,
    SpatialNet,
    spatial_loss,
    upscale_nodes,
)
from aprior.models.deepcams.spatial import summary as spatial_summary
from aprior.models.deepcams.temporal import (
    TemporalConfig,
    TemporalNet,
    interpolate_frames,
    temporal_loss,
)
from aprior.models.deepcams.temporal import summary as temporal_summary
from aprior.models.summary import count_parameters, get_summary


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one thread is faster and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: the tiny preset in the paper's form (no solar time, blend in the normalised space)
TINY = dataclasses.replace(TemporalConfig.preset("tiny"), solar_time=False, blend="normalised",
                           loss_linear=0.0)


def perturbed(net: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Random non-zero weights everywhere (the fresh nets start as plain interpolation)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def frames(b: int = 2, h: int = 16, w: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, h, w, generator=gen), torch.randn(b, 1, h, w, generator=gen)


def blob(cx: torch.Tensor, cy: torch.Tensor, n: int = 32) -> torch.Tensor:
    """Gaussian blobs ``(b, 1, n, n)`` centred at columns ``cx`` (periodic) and rows ``cy``."""
    x = torch.arange(n, dtype=torch.float32)
    dx = (x[None] - cx[:, None] + n / 2) % n - n / 2
    dy = x[None] - cy[:, None]
    return torch.exp(-(dx[:, None, :] ** 2 + dy[:, :, None] ** 2) / 6.0)[:, None]


# ----------------------------------------------------------------------------- temporal


def test_temporal_shapes_and_scales():
    cfg = TINY
    net = TemporalNet(cfg)
    g0, g1 = frames(h=16, w=24)
    out = net(g0, g1, torch.tensor([0.3, 0.6]))  # training mode: every scale
    assert out["pred"].shape == (2, 1, 16, 24)
    assert [p.shape[-2:] for p in out["preds"]] == [(16, 24), (8, 12)][: cfg.n_scales]
    assert [f.shape for f in out["flows"]] == [(2, 4, 16, 24), (2, 4, 8, 12)][: cfg.n_scales]
    assert out["mask"].shape == (2, 1, 16, 24)
    assert torch.isfinite(out["pred"]).all()
    net.eval()
    assert len(net(g0, g1, torch.tensor([0.3, 0.6]))["preds"]) == 1
    with pytest.raises(ValueError, match="stride"):
        net(g0[..., :15, :], g1[..., :15, :], torch.tensor([0.3, 0.6]))


def test_untrained_net_is_the_correct_linear_interpolation():
    # zero-initialised flow and output layers: pred = (1-t) G0 + t G1 (not the paper's swapped Eq. 9)
    net = TemporalNet(TINY).double().eval()
    g0, g1 = (g.double() for g in frames())
    for tv in (0.0, 1 / 3, 1.0):
        t = torch.full((2,), tv, dtype=torch.float64)
        pred = net(g0, g1, t)["pred"]
        assert torch.allclose(pred, (1 - tv) * g0 + tv * g1, atol=1e-10)


def test_blend_and_flow_reversal_at_the_ends():
    gen = torch.Generator().manual_seed(2)
    w0, w1, logit = (torch.randn(2, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    zero = torch.zeros_like(w0)
    assert torch.allclose(blend(w0, w1, 3 * logit, zero, torch.zeros(2, dtype=torch.float64)), w0, atol=1e-12)
    assert torch.allclose(blend(w0, w1, 3 * logit, zero, torch.ones(2, dtype=torch.float64)), w1, atol=1e-12)
    f01, f10 = (torch.randn(2, 2, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    for mode in ("cfr", "linear"):
        ft0, ft1 = reverse_flows(f01, f10, torch.zeros(2, dtype=torch.float64), mode)
        assert torch.allclose(ft0, torch.zeros_like(ft0), atol=1e-12)
        assert torch.allclose(ft1, f01, atol=1e-12)
        ft0, ft1 = reverse_flows(f01, f10, torch.ones(2, dtype=torch.float64), mode)
        assert torch.allclose(ft0, f10, atol=1e-12)
        assert torch.allclose(ft1, torch.zeros_like(ft1), atol=1e-12)


def test_cfr_reverses_a_uniform_motion_across_the_seam():
    # uniform motion of +2 columns: F01 = +2, F10 = -2, so F_t0 = -2t and F_t1 = 2(1-t)
    f01 = torch.zeros(1, 2, 6, 10, dtype=torch.float64)
    f01[:, 0] = 2.0
    t = torch.tensor([0.25], dtype=torch.float64)
    ft0, ft1 = reverse_flows(f01, -f01, t, "cfr")
    assert torch.allclose(ft0[:, 0], torch.full((1, 6, 10), -0.5, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ft1[:, 0], torch.full((1, 6, 10), 1.5, dtype=torch.float64), atol=1e-12)
    # splatting wraps in longitude (no weight lost) and drops what leaves through a lat edge
    ones = torch.ones(1, 1, 6, 10, dtype=torch.float64)
    _, weight = splat(ones, f01 * 0.7)
    assert float(weight.sum()) == pytest.approx(60.0)
    down = torch.zeros_like(f01)
    down[:, 1] = 0.5
    _, weight = splat(ones, down)
    assert float(weight.sum()) == pytest.approx(55.0)


def test_temporal_net_is_equivariant_to_longitude_rolls():
    net = perturbed(TemporalNet(TINY).double().eval(), scale=0.2)
    g0, g1 = (g.double() for g in frames(h=16, w=32))
    t = torch.tensor([0.4, 0.7], dtype=torch.float64)
    out = net(g0, g1, t)
    assert out["flows"][0].abs().max() > 1e-3  # the flows are not trivially zero
    shift = 2 * net.config.stride
    rolled = net(g0.roll(shift, -1), g1.roll(shift, -1), t)
    assert torch.allclose(rolled["pred"], out["pred"].roll(shift, -1), atol=1e-9)


def test_temporal_loss_decreases_on_a_translating_blob():
    torch.manual_seed(0)
    net = TemporalNet(TINY)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    cx, cy = torch.tensor([3.0, 10.0, 20.0, 30.0]), torch.tensor([10.0, 16.0, 20.0, 12.0])
    g0, gt, g1 = blob(cx, cy), blob(cx + 3.0, cy), blob(cx + 6.0, cy)  # crosses the seam
    t = torch.full((4,), 0.5)
    losses = []
    for _ in range(12):
        loss, parts = temporal_loss(net(g0, g1, t), gt, g0, g1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["l1_s0"])
        assert set(parts) == {"l1", "l1_s0", "smooth"}
    linear = float((0.5 * g0 + 0.5 * g1 - gt).abs().mean())
    assert losses[0] == pytest.approx(linear, rel=1e-4)  # starts at the linear baseline
    assert min(losses[-3:]) < 0.85 * losses[0]


def test_temporal_loss_terms():
    net = perturbed(TemporalNet(TINY).double(), scale=0.2)
    g0, g1 = (g.double() for g in frames())
    out = net(g0, g1, torch.tensor([0.5, 0.5], dtype=torch.float64))
    target = 0.5 * (g0 + g1)
    loss, parts = temporal_loss(out, target, g0, g1)
    assert parts["smooth"] > 0
    no_smooth, _ = temporal_loss(out, target, g0, g1, smooth_weight=0.0)
    assert float((loss - no_smooth).detach()) == pytest.approx(0.5 * parts["smooth"], rel=1e-4)
    # strong edges switch the smoothness off
    _, edgy = temporal_loss(out, target * 1000, g0 * 1000, g1 * 1000)
    assert edgy["smooth"] < 1e-3 * parts["smooth"]


def test_interpolate_frames_any_size_and_tiles():
    net = TemporalNet(TINY).double()
    g0, g1 = (g.double() for g in frames(h=13, w=30))  # not multiples of the stride
    ts = [1 / 3, 2 / 3]
    out = interpolate_frames(net, g0, g1, ts)
    assert out.shape == (2, 2, 13, 30)
    for k, tv in enumerate(ts):  # the untrained net is linear: padding and crops are exact
        assert torch.allclose(out[:, k], ((1 - tv) * g0 + tv * g1)[:, 0], atol=1e-10)
    tiled = interpolate_frames(net, g0, g1, ts, tile=7, halo=4)
    assert torch.allclose(tiled, out, atol=1e-10)
    assert net.training  # the mode is restored


def test_interpolate_frames_matches_the_net_on_a_periodic_grid():
    net = perturbed(TemporalNet(TINY).double(), scale=0.2).eval()
    g0, g1 = (g.double() for g in frames(h=16, w=32))
    out = interpolate_frames(net, g0, g1, [0.5])
    direct = net(g0, g1, torch.full((2,), 0.5, dtype=torch.float64))["pred"][:, 0]
    assert torch.allclose(out[:, 0], direct, atol=1e-12)


def test_temporal_presets_and_config():
    # the paper preset is the paper's size with our three extensions; the defaults are the paper's
    paper = TemporalConfig.preset("paper")
    assert paper == TemporalConfig(solar_time=True, blend="concentration", loss_linear=1.0)
    with pytest.raises(ConfigError, match="loss_delta"):
        TemporalConfig(loss_delta=0.0)
    assert not TemporalConfig().solar_time and TemporalConfig().blend == "normalised"
    with pytest.raises(ConfigError, match="blend"):
        TemporalConfig(blend="log")
    with pytest.raises(ConfigError, match="loss_linear"):
        TemporalConfig(loss_linear=-1.0)
    with pytest.raises(ConfigError, match="unknown temporal preset"):
        TemporalConfig.preset("huge")
    with pytest.raises(ConfigError, match="module_stride"):
        TemporalConfig(module_stride=3)
    with pytest.raises(ConfigError, match="flow_reversal"):
        TemporalConfig(flow_reversal="splat")
    cfg = TemporalConfig.preset("small")
    assert TemporalConfig.from_dict(cfg.to_dict()) == cfg
    assert 96 % cfg.stride == 0 and 32 % cfg.stride == 0
    with pytest.raises(ConfigError, match="unknown field"):
        TemporalConfig.from_dict({"widths": 3})


# ----------------------------------------------------------------------------- spatial


def test_spatial_shapes_and_bicubic_start():
    net = SpatialNet(SpatialConfig.preset("tiny"))
    x = torch.randn(2, 1, 12, 16)
    y = net(x)
    assert y.shape == (2, 1, 36, 48)
    assert torch.isfinite(y).all()
    # the zero-initialised output layers make the fresh net the bicubic interpolation
    assert torch.allclose(y[..., 1::3, 1::3], x, atol=1e-6)
    loss, parts = spatial_loss(y, torch.zeros_like(y))
    assert float(loss.detach()) == pytest.approx(float(y.detach().abs().mean()))
    assert parts == {"l1": pytest.approx(float(y.detach().abs().mean()))}
    with pytest.raises(ValueError, match="shape"):
        spatial_loss(y, x)


def test_spatial_net_is_equivariant_to_longitude_rolls():
    net = perturbed(SpatialNet(SpatialConfig.preset("tiny")).double(), scale=0.1)
    x = torch.randn(2, 1, 12, 16, dtype=torch.float64)
    y = net(x)
    assert (y - upsample_bicubic_cells(x)).abs().max() > 1e-3  # the learned part acts
    for k in (1, 5):
        assert torch.allclose(net(x.roll(k, -1)), y.roll(3 * k, -1), atol=1e-10)


def test_upscale_nodes_with_zeroed_net_is_bicubic():
    net = perturbed(SpatialNet(SpatialConfig.preset("tiny")).double(), scale=0.1).zero_learned_()
    coarse = torch.randn(1, 1, 21, 40, dtype=torch.float64)  # pole to pole, 9 degrees
    fine = upscale_nodes(net, coarse, tile=8, halo=3)  # partial tiles in both directions
    assert fine.shape == (1, 1, 61, 120)
    assert torch.allclose(fine, upsample_bicubic(coarse), atol=1e-12)
    assert torch.equal(fine[..., ::3, ::3], coarse)
    assert torch.allclose(upscale_nodes(net, coarse, tile=None), fine, atol=1e-12)


def test_upscale_nodes_is_periodic_and_tiles_agree_with_a_trained_like_net():
    net = perturbed(SpatialNet(SpatialConfig.preset("tiny")).double(), scale=0.1)
    coarse = torch.randn(1, 1, 21, 40, dtype=torch.float64)
    fine = upscale_nodes(net, coarse, tile=10, halo=4)
    assert (fine - upsample_bicubic(coarse)).abs().max() > 1e-3  # the learned part acts
    shifted = upscale_nodes(net, coarse.roll(10, -1), tile=10, halo=4)
    assert torch.allclose(shifted, fine.roll(30, -1), atol=1e-10)


def test_paper_parameter_counts():
    n_t = count_parameters(TemporalNet(TemporalConfig.preset("paper")))
    n_s = count_parameters(SpatialNet(SpatialConfig.preset("paper")))
    assert abs(n_t - 5.6e6) < 0.25 * 5.6e6
    assert abs(n_s - 1.8e6) < 0.25 * 1.8e6
    for preset in ("small", "tiny"):
        assert count_parameters(TemporalNet(TemporalConfig.preset(preset))) < n_t / 10
        assert count_parameters(SpatialNet(SpatialConfig.preset(preset))) < n_s / 10


def test_summaries():
    t = temporal_summary("tiny")
    assert t.name == "deepcams-temporal" and sum(t.parts.values()) == t.n_params
    assert ("pred", (1, 1, 96, 96)) in t.shapes
    s = get_summary("deepcams-spatial", "tiny")
    assert sum(s.parts.values()) == s.n_params
    assert s.shapes[-1] == ("output (fine cells)", (1, 1, 288, 288))
    assert "attention" in s.render()
    with pytest.raises(ConfigError):
        spatial_summary("huge")


# ------------------------------------------------- temporal extensions: solar time, blend in ug m-3


def test_local_solar_hour_and_channels():
    from aprior.models.deepcams.data import hour_of_day, local_solar_hour, solar_channels

    assert local_solar_hour(0.0, 12.0) == pytest.approx(12.0)
    assert local_solar_hour(90.0, 0.0) == pytest.approx(6.0)  # 90 E at 00 UTC: 06 local
    assert local_solar_hour(-75.0, 3.0) == pytest.approx(22.0)  # 75 W at 03 UTC: 22 local, day before
    assert local_solar_hour(180.0, 30.0) == pytest.approx(18.0)
    ch = solar_channels(np.array([0.0, 90.0, 270.0]), np.array([[12.0, 15.0, 13.0]]))
    assert ch.shape == (1, 6, 3) and ch.dtype == np.float32
    # 0 E at 12 UTC: noon, angle pi -> (sin, cos) = (0, -1); 90 E: 18 local -> (-1, 0);
    # 270 E (= 90 W) at 12 UTC: 06 local -> (1, 0)
    np.testing.assert_allclose(ch[0, :2].T, [[0, -1], [-1, 0], [1, 0]], atol=1e-6)
    # frame 1 three hours later: 0 E at 15 local -> angle 5 pi / 4
    np.testing.assert_allclose(ch[0, 2:4, 0], [np.sin(1.25 * np.pi), np.cos(1.25 * np.pi)], atol=1e-6)
    times = np.array(["2023-03-01T00", "2023-03-01T21", "2023-03-02T03"], "datetime64[h]")
    np.testing.assert_allclose(hour_of_day(times), [0.0, 21.0, 3.0])


def _ext_net(**kw) -> TemporalNet:
    net = TemporalNet(dataclasses.replace(TemporalConfig.preset("tiny"), **kw)).double()
    return net.set_normalisation(10.0, 0.7, 1.3)


def _sun(b: int, h: int, w: int, hour0: float = 6.0, t: float = 0.5) -> torch.Tensor:
    from aprior.models.deepcams.data import solar_channels

    lon = np.arange(w) * 360.0 / w
    hours = np.array([[hour0 + 24 * k, hour0 + 3 + 24 * k, hour0 + 3 * t + 24 * k] for k in range(b)])
    return torch.from_numpy(solar_channels(lon, hours)).double()[:, :, None, :].expand(b, 6, h, w)


def test_untrained_extended_net_is_linear_interpolation_in_concentration():
    # blend in ug m-3: the untrained net is (1-t) G0 + t G1 of the concentrations, the
    # correct baseline the stage is scored against (not the interpolation of log values)
    net = _ext_net().eval()
    g0, g1 = (2 * g.double() for g in frames(h=16, w=32))
    c0, c1 = net.to_concentration(g0), net.to_concentration(g1)
    for tv in (0.0, 1 / 3, 2 / 3, 1.0):
        t = torch.full((2,), tv, dtype=torch.float64)
        pred = net(g0, g1, t, sun=_sun(2, 16, 32, t=tv))["pred"]
        assert torch.allclose(net.to_concentration(pred), (1 - tv) * c0 + tv * c1, atol=1e-9)
    # and not the log-space interpolation, which the paper's form starts from
    log_lin = net.to_concentration(0.5 * (g0 + g1))
    pred = net.to_concentration(net(g0, g1, torch.full((2,), 0.5, dtype=torch.float64),
                                    sun=_sun(2, 16, 32))["pred"])
    assert (pred - log_lin).abs().max() > 0.1
    # interpolate_frames gives the same with longitudes and times, on any size
    lon = np.arange(30) * 12.0
    out = interpolate_frames(net, g0[..., :13, :30], g1[..., :13, :30], [1 / 3], lon=lon, hour0=[0.0, 3.0])
    want = (2 / 3) * c0[:, 0, :13, :30] + (1 / 3) * c1[:, 0, :13, :30]
    assert torch.allclose(net.to_concentration(out[:, 0]), want, atol=1e-9)
    with pytest.raises(ValueError, match="solar time"):
        interpolate_frames(net, g0, g1, [0.5])


def test_extended_net_needs_and_uses_the_sun_maps():
    net = perturbed(_ext_net(), scale=0.2).eval()
    g0, g1 = (g.double() for g in frames(h=16, w=32))
    t = torch.tensor([0.4, 0.7], dtype=torch.float64)
    with pytest.raises(ValueError, match="solar time"):
        net(g0, g1, t)
    a = net(g0, g1, t, sun=_sun(2, 16, 32, hour0=6.0))["pred"]
    b = net(g0, g1, t, sun=_sun(2, 16, 32, hour0=18.0))["pred"]
    assert (a - b).abs().max() > 1e-3  # the local time changes the answer
    # rolling the frames and their sun maps together rolls the output (no seam)
    shift = 2 * net.config.stride
    sun = _sun(2, 16, 32)
    rolled = net(g0.roll(shift, -1), g1.roll(shift, -1), t, sun=sun.roll(shift, -1))["pred"]
    assert torch.allclose(rolled, net(g0, g1, t, sun=sun)["pred"].roll(shift, -1), atol=1e-9)


def test_temporal_loss_linear_term():
    net = perturbed(_ext_net(), scale=0.2)
    g0, g1 = (g.double() for g in frames())
    out = net(g0, g1, torch.tensor([0.5, 0.5], dtype=torch.float64), sun=_sun(2, 16, 24))
    target = 0.5 * (g0 + g1)
    base, parts = temporal_loss(out, target, g0, g1)
    assert "huber_conc" not in parts
    loss, parts = temporal_loss(out, target, g0, g1, linear_weight=2.0,
                                to_concentration=net.to_concentration, scale=10.0, delta=0.5)
    e = ((net.to_concentration(out["pred"]) - net.to_concentration(target)) / 10.0).abs().detach()
    assert (e < 0.5).any() and (e > 0.5).any()  # both branches of the Huber term are used
    lin = torch.where(e < 0.5, 0.5 * e**2, 0.5 * (e - 0.25)).mean()
    assert parts["huber_conc"] == pytest.approx(float(lin), rel=1e-9)
    assert float((loss - base).detach()) == pytest.approx(2.0 * float(lin), rel=1e-6)
    with pytest.raises(ValueError, match="to_concentration"):
        temporal_loss(out, target, g0, g1, linear_weight=1.0)
