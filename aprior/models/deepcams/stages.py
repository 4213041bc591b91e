"""Loaded DeepCAMS stages and what each does to whole frames (ug m-3 in, ug m-3 out).

Each stage normalises its input and inverts its output with the normalisation stored in
its weights file. Without a weights path the bundled demo weights are used
(``aprior/models/deepcams/weights/{temporal,spatial}-demo.pt``): they were trained on a
SYNTHETIC world and say so in their metadata, and so does everything made with them.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aprior.errors import InputFileError, ProfileFieldError
from aprior.models.checkpoint import load_weights, weights_hash
from aprior.models.deepcams.data import Normalisation, hour_of_day
from aprior.models.deepcams.training import build_network, check_stage, config_from_metadata
from aprior.models.engine import resolve_device

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: stage -> file name of the bundled demo weights (package data)
BUNDLED = {"temporal": "temporal-demo.pt", "spatial": "spatial-demo.pt"}


@dataclass(frozen=True)
class Stage:
    """A loaded DeepCAMS stage: the network (eval mode, on its device) and its records.

    Attributes:
        stage: "temporal" or "spatial".
        net: the network.
        norm: the normalisation its weights were trained with.
        metadata: the weights file's metadata.
        path: the weights file ("bundled:<name>" for the demo weights).
        sha256: SHA-256 of the weights file.
    """

    stage: str
    net: nn.Module
    norm: Normalisation
    metadata: dict
    path: str
    sha256: str

    @property
    def synthetic(self) -> bool:
        """True when the weights were trained on a synthetic world."""
        return str(self.metadata.get("trained_on", "")).startswith("SYNTHETIC")

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def describe(self) -> dict:
        """JSON-able facts for provenance records."""
        return {"model": self.metadata.get("model"), "preset": self.metadata.get("preset"),
                "weights": self.path, "sha256": self.sha256,
                "trained_on": self.metadata.get("trained_on", "unknown")}


def stage_from_state(stage: str, state: dict, metadata: dict, device: str | torch.device = "cpu",
                     path: str = "<memory>", sha256: str = "") -> Stage:
    """A :class:`Stage` from a state dict and its metadata (weights file contents)."""
    check_stage(stage)
    if metadata.get("model") != f"deepcams-{stage}":
        raise InputFileError(f"holds a {metadata.get('model')!r} model, not deepcams-{stage}", path)
    if "normalisation" not in metadata or "config" not in metadata:
        raise InputFileError("lacks the config or normalisation record of a DeepCAMS stage", path)
    norm = Normalisation.from_dict(metadata["normalisation"])
    net = build_network(stage, config_from_metadata(stage, metadata["config"]), norm)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise InputFileError(f"does not fit the {stage} network of its own config "
                             f"({str(exc).splitlines()[0]})", path) from exc
    dev = resolve_device(device) if isinstance(device, str) else device
    net = net.to(dev).eval()
    return Stage(stage, net, norm, metadata, path, sha256)


def load_stage(stage: str, path: PathLike | None = None, device: str | torch.device = "auto") -> Stage:
    """Load a stage's weights (``None``: the bundled demo weights) onto ``device``."""
    check_stage(stage)
    with ExitStack() as stack:
        if path is None:
            ref = resources.files("aprior.models.deepcams") / "weights" / BUNDLED[stage]
            real = stack.enter_context(resources.as_file(ref))
            if not Path(real).is_file():
                raise InputFileError(f"the bundled {stage} demo weights are missing from the "
                                     "installation; pass weights explicitly", real)
            shown = f"bundled:{BUNDLED[stage]}"
        else:
            real, shown = Path(path), str(path)
        state, meta = load_weights(real)
        return stage_from_state(stage, state, meta, device, shown, weights_hash(real))


def _as_tensor(frames: np.ndarray, stage: Stage) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames, np.float32))[:, None]
    return stage.norm.forward(x).to(stage.device)


@contextmanager
def one_cpu_thread():
    """Run torch's CPU operators on one intra-op thread inside the block (restored after).

    The temporal network works on 0.75 degree frames (241 x 480 for the globe): operators
    that small gain little from more threads on free cores, and on cores shared with other
    work the threads spin against each other (one global day took 58 s for the temporal
    step with 2 threads on our shared 2-core machine, 3 s with 1; docs/deepcams.md).
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@torch.no_grad()
def interpolate_hours(temporal: Stage, g0: np.ndarray, g1: np.ndarray, ts: list[float],
                      chunk: int = 4, *, lon: np.ndarray | None = None,
                      times0: np.ndarray | None = None) -> np.ndarray:
    """Frames at fractions ``ts`` between ``g0`` and ``g1``.

    Args:
        g0, g1: ``(n, h, w)`` ug m-3 node-grid frames (periodic longitude).
        ts: fractions in (0, 1).
        lon: ``(w,)`` column longitudes (degrees east) and ``times0`` ``(n,)`` datetime64
            times of ``g0``: the local solar time a net with ``solar_time`` needs (ignored
            by one without; ValueError when it needs them and they are missing).

    On the CPU the network runs on one intra-op thread (:func:`one_cpu_thread`).

    Returns:
        ``(n, len(ts), h, w)`` float32 ug m-3.
    """
    from aprior.models.deepcams.temporal import interpolate_frames

    if temporal.device.type == "cpu" and torch.get_num_threads() > 1:
        with one_cpu_thread():
            return interpolate_hours(temporal, g0, g1, ts, chunk, lon=lon, times0=times0)
    solar = temporal.net.config.solar_time
    if solar and (lon is None or times0 is None):
        raise ValueError("the temporal weights use local solar time: give lon and times0")
    gap = float(temporal.metadata.get("gap_hours", 3))
    hod = hour_of_day(times0) if solar else None
    out = []
    for a in range(0, g0.shape[0], chunk):
        x0, x1 = _as_tensor(g0[a:a + chunk], temporal), _as_tensor(g1[a:a + chunk], temporal)
        y = interpolate_frames(temporal.net, x0, x1, ts, lon=lon, gap_hours=gap,
                               hour0=None if hod is None else hod[a:a + chunk])
        out.append(temporal.norm.inverse(y.float()).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


#: coarse nodes of context around each spatial tile
SPATIAL_HALO = 4


def spatial_tile(spatial: Stage) -> int:
    """Coarse nodes per tile side so that a tile with its halo is the training crop size
    (the attention then sees as many positions as in training); 24 without a record."""
    patch = int(spatial.metadata.get("data", {}).get("spec", {}).get("spatial_patch", 32))
    return max(patch - 2 * SPATIAL_HALO, 8)


@torch.no_grad()
def upscale_baseline(method: str, coarse: np.ndarray, lat: np.ndarray | None = None,
                     lat_pad: str = "auto") -> np.ndarray:
    """``"bicubic"`` or ``"area"`` (conserving) upsampling of coarse node frames.

    Args:
        coarse: ``(n, h, w)`` ug m-3, periodic longitude.
        lat: ``(h,)`` node latitudes (area weights; None = pole to pole).

    Returns:
        ``(n, 3(h-1)+1, 3w)`` float32 ug m-3.
    """
    from aprior.models.deepcams.grid import upsample_area, upsample_bicubic

    x = torch.from_numpy(np.ascontiguousarray(coarse, np.float32))
    if method == "bicubic":
        return upsample_bicubic(x, 3, lat_pad).numpy()
    if method == "area":
        return positive_area(upsample_area(x, 3, lat, lat_pad), x, lat).numpy()
    raise ValueError(f"unknown upsampling {method!r}")


def positive_area(fine: torch.Tensor, coarse: torch.Tensor, lat: np.ndarray | None = None) -> torch.Tensor:
    """Make an area-conserving field non-negative without breaking conservation.

    Cubic interpolants undershoot beside sharp peaks (a plume cell next to clean air). The
    negative fine values are set to 0 and every cell's fine values are rescaled so that
    its area mean is again the coarse value (cells with no negative value are unchanged).

    Args:
        fine: ``(..., 3(h-1)+1, 3w)``; coarse: ``(..., h, w)`` >= 0; lat: as :func:`coarsen`.
    """
    from aprior.models.deepcams.grid import _inject, coarsen

    if not bool((fine < 0).any()):
        return fine
    pos = fine.clamp(min=0.0)
    mean = coarsen(pos, 3, lat)
    ratio = torch.where(mean > 0, coarse / mean.clamp(min=1e-30), torch.zeros_like(mean))
    affected = coarsen((fine < 0).to(fine.dtype), 3, lat) > 0
    ratio = torch.where(affected, ratio, torch.ones_like(ratio))
    return pos * _inject(ratio, 3)


@torch.no_grad()
def upscale_frames(spatial: Stage, coarse: np.ndarray, chunk: int = 2,
                   lat_pad: str = "auto") -> np.ndarray:
    """Coarse node frames ``(n, h, w)`` ug m-3 (periodic longitude) -> fine
    ``(n, 3(h-1)+1, 3w)`` ug m-3.

    Tiles of :func:`spatial_tile` nodes with a halo of :data:`SPATIAL_HALO` nodes;
    ``lat_pad`` as in :mod:`aprior.models.deepcams.grid`.
    """
    from aprior.models.deepcams.spatial import upscale_nodes

    tile = spatial_tile(spatial)
    out = []
    for a in range(0, coarse.shape[0], chunk):
        y = upscale_nodes(spatial.net, _as_tensor(coarse[a:a + chunk], spatial), tile=tile,
                          halo=SPATIAL_HALO, lat_pad=lat_pad)
        out.append(spatial.norm.inverse(y.float())[:, 0].cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def hourly_coarse(temporal: Stage | None, frames: np.ndarray, times: np.ndarray, *,
                  gap: int = 3, interpolate=None,
                  lon: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """3-hourly coarse frames -> hourly coarse frames (the temporal step).

    Args:
        temporal: the temporal stage (or None with ``interpolate`` given).
        frames: ``(n, h, w)`` ug m-3 at ``times`` ``(n,)`` datetime64, every ``gap`` hours.
        interpolate: optional ``f(g0, g1, ts) -> (n, len(ts), h, w)`` replacing the
            network (the linear baseline in evaluation).
        lon: ``(w,)`` column longitudes (degrees east), for a net with solar time.

    Returns:
        ``(m, h, w)`` frames at the ``m = gap*(n-1)+1`` hourly ``times``; the given frames
        are kept at their hours.
    """
    times = np.asarray(times).astype("datetime64[h]")
    n = frames.shape[0]
    if n > 1 and not np.all(np.diff(times) == np.timedelta64(gap, "h")):
        raise ProfileFieldError(f"the coarse frames must be {gap}-hourly and consecutive; got "
                                f"times {', '.join(str(t) for t in times)}")
    if n == 1:
        return frames.copy(), times.copy()
    ts = [k / gap for k in range(1, gap)]
    if interpolate is None:
        mid = interpolate_hours(temporal, frames[:-1], frames[1:], ts, lon=lon, times0=times[:-1])
    else:
        mid = interpolate(frames[:-1], frames[1:], ts)
    out = np.empty((gap * (n - 1) + 1,) + frames.shape[1:], np.float32)
    out[::gap] = frames
    for k in range(1, gap):
        out[k::gap] = mid[:, k - 1]
    hours = times[0] + np.arange(out.shape[0]).astype("timedelta64[h]")
    return out, hours
