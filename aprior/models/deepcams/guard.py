"""Guards around the learned stages: inputs outside the training statistics, bounded tails.

**Out of range.** A network trained on one distribution extrapolates on inputs far beyond
it (a 3657 ug m-3 bushfire cell is 37 standard deviations of ``log1p(c / 10)`` above the
synthetic training mean of the earlier demo weights). :func:`out_of_range` compares the
input's peak with the stage's training maximum (any value above it) where the weights record
one, else with its normalisation (more than 6 standard deviations above the mean), and
returns one sentence to log as a warning, or None.

**Tails.** A learned stage's output is never allowed above what its input supports:

* temporal: ``min(network, max(linear, M_r(max(G0, G1))))``, where ``linear`` is the
  correct interpolation ``(1 - t) G0 + t G1`` and ``M_r`` the maximum over the
  ``(2 r + 1)^2`` coarse nodes around each node (``r`` = :data:`TEMPORAL_RADIUS`, the
  farthest a plume moves in 2 hours at 0.75 degree): an interpolated frame has no peak
  higher than the two frames it is made from, near the same place;
* spatial: ``min(network, max(area, I(M_1(coarse))))``, where ``area`` is the
  area-conserving upsampling (the baseline that keeps every cell's mean), ``M_1`` the
  maximum over the 3 x 3 coarse nodes around each node and ``I`` gives every fine node
  its coarse cell's value: a fine peak may exceed the coarse peak only as much as
  conserving the cell mean demands.

The ratio of output peak to input peak is therefore at most that of the baseline chain
(linear interpolation never exceeds its inputs; area-conserving upsampling is reported in
the evaluation's tail table). All arrays are ug m-3 on the (extended) node grids of
:mod:`aprior.models.deepcams.region`; longitude wraps (an even extension wraps as a
mirror), latitude edges replicate.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from aprior.models.deepcams.grid import _inject, pad_lon

log = logging.getLogger(__name__)

#: standard deviations of the normalised input above which a stage warns
Z_WARN = 6.0
#: inputs above this multiple of the recorded training maximum warn
MAX_WARN = 1.0
#: coarse nodes a plume may move between the two frames and the target hour
TEMPORAL_RADIUS = 3


def out_of_range(stage, frames: np.ndarray, what: str = "input") -> str | None:
    """One sentence when ``frames`` (ug m-3, any shape) lie beyond the stage's training
    statistics: above :data:`MAX_WARN` x the training maximum the weights record, or, for
    weights without that record, :data:`Z_WARN` standard deviations of ``log1p(c / scale)``
    above the training mean; None otherwise."""
    peak = float(np.max(frames)) if np.size(frames) else 0.0
    norm = stage.norm
    z = float((np.log1p(peak / norm.scale) - norm.mean) / norm.std)
    top = float(getattr(norm, "max", float("nan")))
    # with a recorded training maximum that decides; without one, the z-score does
    beyond = peak > MAX_WARN * top if np.isfinite(top) else z > Z_WARN
    if not beyond:
        return None
    known = f", training maximum {top:.4g} ug m-3" if np.isfinite(top) else ""
    return (f"the {what} peaks at {peak:.4g} ug m-3, {z:.0f} standard deviations (of "
            f"log1p(c/{norm.scale:g})) above the mean of the data the {stage.stage} weights "
            f"were trained on ({stage.metadata.get('trained_on', 'unknown')}{known}): the "
            f"network extrapolates there; its output is capped at what the input supports")


def _local_max(x: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over ``(2 radius + 1)^2`` neighbours of ``(..., h, w)``, longitude wrapping."""
    if radius <= 0:
        return np.asarray(x, np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    shape = t.shape
    t = pad_lon(t.reshape(-1, 1, *shape[-2:]), radius)
    t = F.pad(t, (0, 0, radius, radius), mode="replicate")
    return F.max_pool2d(t, 2 * radius + 1, stride=1).reshape(shape).numpy()


def limit_temporal(pred: np.ndarray, g0: np.ndarray, g1: np.ndarray,
                   ts: list[float], radius: int = TEMPORAL_RADIUS) -> tuple[np.ndarray, int]:
    """Cap interpolated frames at the temporal envelope (module docstring).

    Args:
        pred: ``(n, k, h, w)`` network frames at the ``k`` fractions ``ts``.
        g0, g1: ``(n, h, w)`` the frames around them.

    Returns:
        the capped frames (float32) and the number of values capped.
    """
    env = _local_max(np.maximum(g0, g1), radius)
    lin = np.stack([(1.0 - t) * g0 + t * g1 for t in ts], axis=1)
    upper = np.maximum(lin, env[:, None])
    capped = int(np.count_nonzero(pred > upper))
    return np.minimum(pred, upper).astype(np.float32), capped


def limit_spatial(fine: np.ndarray, coarse: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, int]:
    """Cap upscaled frames at the spatial envelope (module docstring).

    Args:
        fine: ``(n, 3 (h-1) + 1, 3 w)`` network output on the (extended) fine node grid.
        coarse: ``(n, h, w)`` its input; area: the area-conserving upsampling of ``coarse``.

    Returns:
        the capped frames (float32) and the number of values capped.
    """
    near = _inject(torch.from_numpy(_local_max(coarse, 1)), 3).numpy()
    upper = np.maximum(area, near)
    capped = int(np.count_nonzero(fine > upper))
    return np.minimum(fine, upper).astype(np.float32), capped


def peak_ratio(output: np.ndarray, inputs: np.ndarray) -> float:
    """Output peak / input peak (1 when both are 0)."""
    top_in, top_out = float(np.max(inputs)), float(np.max(output))
    return top_out / top_in if top_in > 0 else (1.0 if top_out == 0 else float("inf"))


__all__ = ["MAX_WARN", "TEMPORAL_RADIUS", "Z_WARN", "limit_spatial", "limit_temporal",
           "out_of_range", "peak_ratio"]
