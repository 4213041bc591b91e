"""Optical-flow pieces of the temporal network: flow reversal to time t and the Eq. 3 blend.

Flows are ``(b, 2, h, w)`` in pixels of their own grid: channel 0 along columns
(longitude, periodic), channel 1 along rows (latitude). ``F_ab`` maps a position in frame
``a`` to its match in frame ``b``, so backward warping frame ``b`` with ``F_ab`` gives a
view of frame ``a`` (:func:`aprior.models.deepcams.grid.warp`).

Flow reversal (the flows from the unknown frame at ``t`` to both known frames):

* ``"linear"``: the approximation of Jiang et al. (Super SloMo),
  ``F_t0 = -(1-t) t F_01 + t^2 F_10``, ``F_t1 = (1-t)^2 F_01 - t (1-t) F_10``. It
  evaluates ``F_01`` at the position of the pixel at time t, wrong wherever the motion
  varies over the displacement.
* ``"cfr"`` (default): complementary flow reversal, after XVFI (Sim et al. 2021). Each
  pixel ``y`` of frame 0 is at ``y + t F_01(y)`` at time t; there its flow to frame 0 is
  ``-t F_01(y)`` and to frame 1 ``(1-t) F_01(y)``. Each pixel of frame 1 is at
  ``y + (1-t) F_10(y)``, with flows ``t F_10(y)`` to frame 0 and ``-(1-t) F_10(y)`` to
  frame 1. Both sets are forward-splatted (bilinear weights, longitude wrapping) to time
  t and averaged with weights ``1-t`` (frame 0's) and ``t`` (frame 1's), the nearer
  frame being the more reliable. Holes (no splat lands) fall back to the linear
  approximation through a small constant weight ``eps``. Exact at ``t = 0`` and ``t = 1``.

We take CFR because it puts each motion vector where the moving structure is at time t,
which matters for advected plumes whose speed varies along their path; the learned
t-flow refinement (BiOF-T) then corrects both reversals alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

REVERSALS = ("cfr", "linear")


def _tview(t: Tensor, like: Tensor) -> Tensor:
    return t.to(like.dtype).view(-1, 1, 1, 1)


def linear_reversal(f01: Tensor, f10: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Linear flows from time ``t`` to frames 0 and 1 (``f01, f10 (b, 2, h, w)``, ``t (b,)``)."""
    tt = _tview(t, f01)
    ft0 = -(1 - tt) * tt * f01 + tt * tt * f10
    ft1 = (1 - tt) * (1 - tt) * f01 - tt * (1 - tt) * f10
    return ft0, ft1


def splat(values: Tensor, disp: Tensor, periodic_lon: bool = True) -> tuple[Tensor, Tensor]:
    """Forward-splat ``values`` from each pixel ``y`` to ``y + disp(y)`` with bilinear weights.

    Args:
        values: ``(b, c, h, w)``.
        disp: ``(b, 2, h, w)`` displacement in pixels (columns, rows).
        periodic_lon: wrap columns modulo ``w``; rows outside the grid are dropped.

    Returns:
        ``(sum (b, c, h, w), weight (b, 1, h, w))``: the weighted sum of the values landing
        on each pixel and the sum of their weights. Differentiable in both inputs.
    """
    b, c, h, w = values.shape
    work = torch.promote_types(torch.promote_types(values.dtype, disp.dtype), torch.float32)
    values, disp = values.to(work), disp.to(work)  # positions and sums in at least float32
    px = torch.arange(w, device=values.device, dtype=disp.dtype).view(1, 1, w) + disp[:, 0]
    py = torch.arange(h, device=values.device, dtype=disp.dtype).view(1, h, 1) + disp[:, 1]
    x0, y0 = torch.floor(px), torch.floor(py)
    fx, fy = px - x0, py - y0
    src = torch.cat([values, torch.ones_like(values[:, :1])], dim=1).reshape(b, c + 1, h * w)
    out = values.new_zeros(b, c + 1, h * w)
    for dy in (0, 1):
        for dx in (0, 1):
            wgt = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
            yi, xi = y0 + dy, x0 + dx
            valid = (yi >= 0) & (yi <= h - 1)
            if periodic_lon:
                xi = torch.remainder(xi, w)
            else:
                valid &= (xi >= 0) & (xi <= w - 1)
            wgt = (wgt * valid).to(values.dtype).reshape(b, 1, h * w)
            idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().reshape(b, 1, h * w)
            out = out.scatter_add(2, idx.expand(b, c + 1, h * w), src * wgt)
    out = out.reshape(b, c + 1, h, w)
    return out[:, :c], out[:, c:]


def complementary_reversal(
    f01: Tensor, f10: Tensor, t: Tensor, eps: float = 1e-2, periodic_lon: bool = True
) -> tuple[Tensor, Tensor]:
    """Complementary flow reversal (see module docstring); shapes as :func:`linear_reversal`."""
    tt = _tview(t, f01)
    n0, w0 = splat(torch.cat([-tt * f01, (1 - tt) * f01], 1), tt * f01, periodic_lon)
    n1, w1 = splat(torch.cat([tt * f10, -(1 - tt) * f10], 1), (1 - tt) * f10, periodic_lon)
    lin = torch.cat(linear_reversal(f01, f10, t), 1)
    num = (1 - tt) * n0 + tt * n1 + eps * lin
    den = (1 - tt) * w0 + tt * w1 + eps
    flows = num / den
    return flows[:, :2], flows[:, 2:]


def reverse_flows(
    f01: Tensor, f10: Tensor, t: Tensor, mode: str = "cfr", periodic_lon: bool = True
) -> tuple[Tensor, Tensor]:
    """Flows ``(F_t0, F_t1)`` from time ``t`` to frames 0 and 1 by ``mode`` (``"cfr"|"linear"``)."""
    if mode == "linear":
        return linear_reversal(f01, f10, t)
    if mode == "cfr":
        return complementary_reversal(f01, f10, t, periodic_lon=periodic_lon)
    raise ValueError(f"flow reversal must be one of {REVERSALS}, got {mode!r}")


def blend(w0: Tensor, w1: Tensor, mask_logit: Tensor, residual: Tensor, t: Tensor) -> Tensor:
    """DeepCAMS Eq. 3 (XVFI): occlusion-weighted, time-weighted mean of the warped frames.

    ``pred = ((1-t) m w0 + t (1-m) w1) / ((1-t) m + t (1-m)) + residual`` with
    ``m = sigmoid(mask_logit)``. At ``t = 0`` the mean is ``w0`` exactly, at ``t = 1`` ``w1``.

    Args:
        w0, w1: ``(b, c, h, w)`` frames 0 and 1 warped to time t.
        mask_logit: ``(b, 1, h, w)``; residual: ``(b, c, h, w)``; t: ``(b,)``.
    """
    tt = _tview(t, w0)
    m = torch.sigmoid(mask_logit)
    a, b = (1 - tt) * m, tt * (1 - m)
    return (a * w0 + b * w1) / (a + b).clamp_min(1e-12) + residual
