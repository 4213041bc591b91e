"""DeepCAMS temporal network: frame interpolation after XVFI (Sim et al. 2021).

Given normalised fields ``G0`` and ``G1`` at two times (3 h apart in DeepCAMS) and a
fraction ``t`` in (0, 1), predict the field at ``t``. At every scale ``s`` of a pyramid
(frames average-pooled by ``2**s``; scale 0 = input size), coarse to fine:

1. a shared encoder maps each frame to ``features`` channels at ``1/module_stride`` of the
   scale's size;
2. BiOF-I refines the bidirectional flows ``F01, F10`` (the coarser scale's, upsampled x2)
   from the features and the features warped by the current flows;
3. the flows from time t to both frames come from flow reversal
   (:mod:`aprior.models.deepcams.flow`: complementary flow reversal by default), refined by
   BiOF-T, which also sees t;
4. the t-flows are upsampled to the scale's size, both frames are backward-warped, and a
   U-Net (frames, warped frames, flows, t; the encoder features join at their resolution)
   gives an occlusion logit and a residual; the prediction is DeepCAMS Eq. 3
   (:func:`aprior.models.deepcams.flow.blend`).

All modules are shared across scales (XVFI), so the parameter count does not depend on the
number of scales, and inference may use more scales than training. Every convolution pads
longitude circularly (:mod:`aprior.models.deepcams.blocks`) and every warp wraps, so the
network is equivariant to longitude rolls by multiples of :attr:`TemporalConfig.stride`.
Frame sides must be multiples of that stride; :func:`interpolate_frames` pads any size.

Paper deviations (documented choices): the pyramid and the loss targets use 2x2 area means
instead of bicubic downsampling (exact and seam-free on a periodic grid); the flow nets
are stacks of dilated convolutions instead of XVFI's strided auto-encoders, so they need
no extra divisibility; the output layers of the flow nets and the U-Net start at zero, so
an untrained net is exactly the linear interpolation ``(1-t) G0 + t G1`` (the correct
baseline; DeepCAMS Eq. 9 swaps the weights) and training starts from it.

Extensions (:class:`TemporalConfig`; the presets use them, the dataclass defaults are the
paper's form): ``solar_time`` adds the local solar time of every pixel at both frames and
at the target (six sin/cos channels: each frame is encoded with its own pair, the U-Net
sees all six), because the boundary-layer transitions that make the largest hour-to-hour
changes follow it; ``blend = "concentration"`` takes the Eq. 3 blend in ug m-3 (the
normalisation is set by :meth:`TemporalNet.set_normalisation`), so the untrained net is
the linear interpolation of the concentrations, not of their logs; ``loss_linear`` adds a
Huber term in ug m-3 to Eq. 4-6 (:func:`temporal_loss`). The paper
preset runs 5 scales (DeepCAMS follows XVFI's settings, "s = 5") with flows at half of
each scale's resolution: frame sides must be multiples of 64. The smoothness term follows DeepCAMS Eq. 5 with weights
``exp(-edge * |grad G_t|)`` (XVFI's form; the paper's typeset ``e^2`` is not used).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aprior.models.deepcams.blocks import FeatureEncoder, FlowNet, RefineUNet, resize_flow, time_map
from aprior.models.deepcams.data import solar_channels
from aprior.models.deepcams.flow import blend, reverse_flows
from aprior.models.deepcams.grid import warp
from aprior.models.deepcams.temporal_config import PRESETS, TemporalConfig
from aprior.models.summary import ModelSummary, count_parameters

log = logging.getLogger(__name__)


class TemporalNet(nn.Module):
    """XVFI-style frame interpolation on periodic-longitude grids (see module docstring)."""

    def __init__(self, config: TemporalConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TemporalConfig()
        nf, c, a = cfg.features, cfg.in_channels, cfg.aux_channels
        # each frame is encoded with its own solar-time pair; the U-Net sees all three
        self.encoder = FeatureEncoder(c + a // 3, nf, cfg.module_stride, cfg.encoder_blocks)
        self.bi_flow = FlowNet(4 * nf + 4, cfg.flow_features, cfg.flow_layers)
        self.t_flow = FlowNet(4 * nf + 5, cfg.flow_features, cfg.flow_layers)
        self.refine = RefineUNet(
            4 * c + 5 + a, 1 + c, cfg.unet_features, cfg.unet_depth, 4 * nf, cfg.module_stride
        )
        # the stage's normalisation (scale, mean, std), for the blend in ug m-3; set by
        # set_normalisation from the weights' record, not stored in the state dict
        self.register_buffer("norm_stats", torch.tensor([10.0, 0.0, 1.0]), persistent=False)

    def set_normalisation(self, scale: float, mean: float, std: float) -> TemporalNet:
        """Use ``x = (log1p(c / scale) - mean) / std`` for the blend in ug m-3 (returns self)."""
        self.norm_stats = torch.tensor([scale, mean, std], dtype=self.norm_stats.dtype,
                                       device=self.norm_stats.device)
        return self

    def to_concentration(self, x: Tensor) -> Tensor:
        """Normalised -> ug m-3 (>= 0) with :meth:`set_normalisation`'s values."""
        scale, mean, std = self.norm_stats.to(x.dtype)
        return (scale * torch.expm1(x * std + mean)).clamp_min(0.0)

    def from_concentration(self, c: Tensor) -> Tensor:
        """ug m-3 -> normalised (inverse of :meth:`to_concentration`)."""
        scale, mean, std = self.norm_stats.to(c.dtype)
        return (torch.log1p(c / scale) - mean) / std

    def forward(
        self,
        g0: Tensor,
        g1: Tensor,
        t: Tensor,
        n_scales: int | None = None,
        all_scales: bool | None = None,
        sun: Tensor | None = None,
    ) -> dict[str, Tensor | list[Tensor]]:
        """Interpolate between two frames.

        Args:
            g0, g1: ``(b, c, h, w)`` normalised frames at times 0 and 1; ``h`` and ``w``
                multiples of ``2**(n_scales-1) * max(module_stride, 2**(unet_depth-1))``.
            t: ``(b,)`` times in [0, 1].
            sun: ``(b, 6, h, w)`` solar-time maps of frame 0, frame 1 and the target
                (:func:`aprior.models.deepcams.data.solar_channels`); required when the
                config has ``solar_time``, ignored otherwise.
            n_scales: pyramid levels (default: the config's).
            all_scales: predict at every scale (default: in training mode only).

        Returns:
            ``"pred"`` ``(b, c, h, w)``; ``"preds"`` per-scale predictions, fine to coarse
            (only scale 0 when not ``all_scales``); ``"flows"`` the matching t-flows
            ``(b, 4, h_s, w_s)`` = ``(F_t0, F_t1)`` in pixels of their scale; ``"mask"``
            ``(b, 1, h, w)`` the occlusion weight of frame 0 at scale 0; ``"flows_bi"``
            ``(b, 4, h/M, w/M)`` = ``(F_01, F_10)`` at scale 0's flow resolution.
        """
        cfg = self.config
        n_scales = cfg.n_scales if n_scales is None else n_scales
        all_scales = self.training if all_scales is None else all_scales
        self._check_inputs(g0, g1, t, n_scales, sun)
        pyr0, pyr1 = [g0], [g1]
        pyrs: list[Tensor | None] = [sun.to(g0.dtype) if cfg.solar_time else None]
        for _ in range(n_scales - 1):
            pyr0.append(F.avg_pool2d(pyr0[-1], 2))
            pyr1.append(F.avg_pool2d(pyr1[-1], 2))
            pyrs.append(None if pyrs[-1] is None else F.avg_pool2d(pyrs[-1], 2))
        preds: list[Tensor] = []
        flows: list[Tensor] = []
        f_bi: Tensor | None = None
        mask = None
        for s in reversed(range(n_scales)):
            b = g0.shape[0]
            x0, x1 = pyr0[s], pyr1[s]
            if pyrs[s] is not None:
                x0, x1 = torch.cat([x0, pyrs[s][:, 0:2]], 1), torch.cat([x1, pyrs[s][:, 2:4]], 1)
            feats = self.encoder(torch.cat([x0, x1], 0))
            c0, c1 = feats[:b], feats[b:]
            if f_bi is None:
                # flows stay in (at least) float32 under mixed precision
                f_bi = c0.new_zeros(b, 4, *c0.shape[-2:], dtype=torch.promote_types(c0.dtype, torch.float32))
            else:
                f_bi = resize_flow(f_bi, 2)
            f01, f10 = f_bi[:, :2], f_bi[:, 2:]
            x = torch.cat([c0, c1, warp(c1, f01), warp(c0, f10), f_bi], 1)
            f_bi = f_bi + self.bi_flow(x)
            ft0, ft1 = reverse_flows(f_bi[:, :2], f_bi[:, 2:], t, cfg.flow_reversal)
            tmap = time_map(t, c0)
            x = torch.cat([c0, c1, warp(c0, ft0), warp(c1, ft1), ft0, ft1, tmap], 1)
            ft = torch.cat([ft0, ft1], 1) + self.t_flow(x)
            if s == 0 or all_scales:
                pred, flow, mask = self._synthesise(pyr0[s], pyr1[s], c0, c1, ft, t, pyrs[s])
                preds.insert(0, pred)
                flows.insert(0, flow)
        return {"pred": preds[0], "preds": preds, "flows": flows, "mask": mask, "flows_bi": f_bi}

    def _synthesise(
        self, g0: Tensor, g1: Tensor, c0: Tensor, c1: Tensor, ft: Tensor, t: Tensor,
        sun: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Warp, refine and blend at one scale; returns (pred, full-size t-flows, mask)."""
        flow = resize_flow(ft, self.config.module_stride)
        w0, w1 = warp(g0, flow[:, :2]), warp(g1, flow[:, 2:])
        feats = torch.cat([c0, c1, warp(c0, ft[:, :2]), warp(c1, ft[:, 2:])], 1)
        x = [g0, g1, w0, w1, flow, time_map(t, g0)] + ([] if sun is None else [sun.to(w0.dtype)])
        out = self.refine(torch.cat(x, 1), feats)
        logit, residual = out[:, :1], out[:, 1:]
        if self.config.blend == "concentration":
            zero = torch.zeros_like(residual)
            mean = blend(self.to_concentration(w0), self.to_concentration(w1), logit, zero, t)
            pred = self.from_concentration(mean) + residual
        else:
            pred = blend(w0, w1, logit, residual, t)
        return pred, flow, torch.sigmoid(logit)

    def _check_inputs(self, g0: Tensor, g1: Tensor, t: Tensor, n_scales: int,
                      sun: Tensor | None = None) -> None:
        if g0.ndim != 4 or g0.shape != g1.shape or g0.shape[1] != self.config.in_channels:
            raise ValueError(
                f"g0 and g1 must both be (b, {self.config.in_channels}, h, w), "
                f"got {tuple(g0.shape)} and {tuple(g1.shape)}"
            )
        if self.config.solar_time:
            want = (g0.shape[0], self.config.aux_channels, *g0.shape[-2:])
            if sun is None or tuple(sun.shape) != want:
                got = None if sun is None else tuple(sun.shape)
                raise ValueError(f"this temporal net uses solar time: sun must be {want}, got {got}")
        if t.shape != (g0.shape[0],):
            raise ValueError(f"t must be ({g0.shape[0]},), got {tuple(t.shape)}")
        stride = self.config.stride_for(n_scales)
        h, w = g0.shape[-2:]
        if h % stride or w % stride:
            raise ValueError(
                f"frame size {h} x {w} is not a multiple of the pyramid stride {stride}; "
                "use interpolate_frames, which pads"
            )


def _pool_to(x: Tensor, like: Tensor) -> Tensor:
    f = x.shape[-2] // like.shape[-2]
    return x if f == 1 else F.avg_pool2d(x, f)


def temporal_loss(
    out: dict,
    target: Tensor,
    g0: Tensor,
    g1: Tensor,
    edge: float = 150.0,
    smooth_weight: float = 0.5,
    linear_weight: float = 0.0,
    to_concentration: Callable[[Tensor], Tensor] | None = None,
    scale: float = 10.0,
    delta: float = 5.0,
) -> tuple[Tensor, dict[str, float]]:
    """DeepCAMS Eq. 4-6: L1 at every scale plus edge-aware first-order flow smoothness,
    plus (``linear_weight > 0``, not in the paper) ``linear_weight * mean huber_delta(
    (C(pred) - C(target)) / scale)`` on the final prediction, with ``C = to_concentration``
    (ug m-3): the log-space L1 weighs relative errors and aims at the median, and so gives
    up the large values that dominate RMSE (see :class:`TemporalConfig` ``loss_linear``).

    Args:
        out: :meth:`TemporalNet.forward`'s output.
        target: ``(b, c, h, w)`` the true frame at t; pooled to each scale (area mean).
        g0, g1: the input frames (checked for shape; the smoothness edges come from the
            target, as in Eq. 5).
        edge: edge weighting factor ``e``; weights are ``exp(-e * |grad target|)``.
        smooth_weight: ``lambda_s``.

    Returns:
        ``(loss, parts)``: the scalar loss (mean over the batch) and ``"l1"`` (sum over
        scales), ``"l1_s0"``, ``"smooth"`` as floats.
    """
    if target.shape != g0.shape or g1.shape != g0.shape:
        raise ValueError(f"target, g0 and g1 must have one shape, got {tuple(target.shape)}")
    l1_terms = [(p - _pool_to(target, p)).abs().mean() for p in out["preds"]]
    l1 = torch.stack(l1_terms).sum()
    flow = out["flows"][0]
    img = target.mean(1, keepdim=True)
    gx = (img - img.roll(-1, dims=-1)).abs()  # longitude is periodic
    gy = (img[..., 1:, :] - img[..., :-1, :]).abs()
    fx = (flow - flow.roll(-1, dims=-1)).abs()
    fy = (flow[..., 1:, :] - flow[..., :-1, :]).abs()
    # Eq. 5 sums over the two flows (F_t0, F_t1); each holds 2 of the 4 channels
    smooth = 2 * ((torch.exp(-edge * gx) * fx).mean() + (torch.exp(-edge * gy) * fy).mean())
    loss = l1 + smooth_weight * smooth
    parts = {"l1": float(l1.detach()), "l1_s0": float(l1_terms[0].detach()), "smooth": float(smooth.detach())}
    if linear_weight > 0:
        if to_concentration is None:
            raise ValueError("linear_weight > 0 needs to_concentration")
        lin = conc_huber(to_concentration(out["pred"]), to_concentration(target), scale, delta)
        loss = loss + linear_weight * lin
        parts["huber_conc"] = float(lin.detach())
    return loss, parts


def conc_huber(pred: Tensor, target: Tensor, scale: float = 10.0, delta: float = 5.0) -> Tensor:
    """Mean Huber loss of ``(pred - target) / scale`` (concentrations, ug m-3), squared up
    to ``delta`` and linear beyond."""
    return F.huber_loss(pred / scale, target / scale, delta=delta)


def _pad_rows(x: Tensor, stride: int) -> tuple[Tensor, int]:
    """Replicate-pad rows (split top/bottom) to a multiple of ``stride``; returns (x, top)."""
    extra = -x.shape[-2] % stride
    top = extra // 2
    return (F.pad(x, (0, 0, top, extra - top), mode="replicate") if extra else x), top


@torch.no_grad()
def interpolate_frames(
    net: TemporalNet,
    g0: Tensor,
    g1: Tensor,
    ts: Sequence[float],
    tile: int | None = None,
    halo: int | None = None,
    lon: Sequence[float] | None = None,
    hour0: Sequence[float] | None = None,
    gap_hours: float = 3.0,
) -> Tensor:
    """Frames at the times ``ts`` between ``g0`` and ``g1``, on any periodic-longitude grid.

    Rows are padded by replication to a multiple of the pyramid stride; longitude stays
    exactly periodic when ``w`` is a multiple of the stride and no tiles are asked for.
    Otherwise each longitude window (the whole grid, or a tile of ``tile`` columns) is
    cut with a circular halo of at least ``halo`` columns on each side, rounded up to the
    stride, and the halo is cropped away: memory is bounded by the tile size.

    Args:
        net: a :class:`TemporalNet` (evaluated in eval mode, no gradients).
        g0, g1: ``(b, c, h, w)`` normalised frames.
        ts: times in [0, 1].
        tile: longitude columns per tile; None = the whole grid at once.
        halo: halo columns (default ``max(2 * stride, 16)``).
        lon: ``(w,)`` longitude of every column (degrees east) and ``hour0`` ``(b,)`` the
            UTC hour of ``g0`` (hours, any origin that is a multiple of 24); ``g1`` is
            ``gap_hours`` later. Required by a net with ``solar_time``, ignored otherwise.

    Returns:
        ``(b, len(ts), h, w)`` for one channel, else ``(b, len(ts), c, h, w)``.
    """
    stride = net.config.stride
    halo = max(2 * stride, 16) if halo is None else halo
    was_training = net.training
    net.eval()
    try:
        b, c, h, w = g0.shape
        x0, top = _pad_rows(g0, stride)
        x1, _ = _pad_rows(g1, stride)
        solar = net.config.solar_time
        if solar and (lon is None or hour0 is None or len(lon) != w or len(hour0) != b):
            raise ValueError(f"this temporal net uses solar time: give lon ({w},) and hour0 ({b},)")
        if tile is None and w % stride == 0:
            windows = [(0, w, 0, 0)]
        else:
            size = w if tile is None else min(tile, w)
            windows = []
            for c0 in range(0, w, size):
                width = min(size, w - c0)
                right = halo + (-(width + 2 * halo) % stride)
                windows.append((c0, width, halo, right))
        log.debug("interpolating %d frame(s) of %d x %d in %d window(s)", len(ts), h, w, len(windows))
        frames = []
        for tv in ts:
            t = torch.full((b,), float(tv), dtype=g0.dtype, device=g0.device)
            sun = None
            if solar:
                h0 = np.asarray(hour0, np.float64)
                maps = solar_channels(np.asarray(lon, np.float64),
                                      np.stack([h0, h0 + gap_hours, h0 + float(tv) * gap_hours], 1))
                sun = torch.from_numpy(maps).to(g0.device, g0.dtype)[:, :, None, :]
                sun = sun.expand(-1, -1, x0.shape[-2], -1)
            parts = []
            for c0, width, left, right in windows:
                idx = torch.arange(c0 - left, c0 + width + right, device=g0.device) % w
                sun_w = None if sun is None else sun.index_select(-1, idx)
                pred = net(x0.index_select(-1, idx), x1.index_select(-1, idx), t, sun=sun_w)["pred"]
                parts.append(pred[..., top : top + h, left : left + width])
            frames.append(torch.cat(parts, -1))
        out = torch.stack(frames, 1)
        return out[:, :, 0] if c == 1 else out
    finally:
        net.train(was_training)


def summary(preset: str) -> ModelSummary:
    """Parameter counts per part and tensor shapes for a ``1 x 1 x 96 x 96`` frame pair."""
    cfg = TemporalConfig.preset(preset)
    net = TemporalNet(cfg).eval()
    parts = {name: count_parameters(getattr(net, name)) for name in ("encoder", "bi_flow", "t_flow", "refine")}
    size = -(-96 // cfg.stride) * cfg.stride
    shapes: list[tuple[str, tuple[int, ...]]] = [("input g0, g1", (1, cfg.in_channels, 96, 96))]
    if size != 96:
        shapes.append(("padded to the stride", (1, cfg.in_channels, size, size)))
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda _m, _i, o, name=name: seen.__setitem__(name, tuple(o.shape))
        )
        for name in parts
    ]
    net = net.to("meta")  # shapes only: no memory, no arithmetic
    with torch.no_grad():
        g = torch.zeros(1, cfg.in_channels, size, size, device="meta")
        sun = torch.zeros(1, cfg.aux_channels, size, size, device="meta") if cfg.solar_time else None
        out = net(g, g, torch.full((1,), 0.5, device="meta"), sun=sun)
    for h in hooks:
        h.remove()
    shapes += [(f"{k} (scale 0)", v) for k, v in seen.items()]
    shapes += [("flows (F_t0, F_t1)", tuple(out["flows"][0].shape)), ("pred", tuple(out["pred"].shape))]
    return ModelSummary("deepcams-temporal", preset, count_parameters(net), parts, shapes)


__all__ = [
    "PRESETS",
    "TemporalConfig",
    "TemporalNet",
    "interpolate_frames",
    "summary",
    "conc_huber",
    "temporal_loss",
]
