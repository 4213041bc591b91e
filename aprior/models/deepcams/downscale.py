"""Spatiotemporal downscaling of 3-hourly 0.75 degree PM2.5 (CAMS EAC4) to hourly 0.25 degree.

The paper's order (its Fig. 2): the temporal model first fills ``t = 1/3, 2/3`` between
every two consecutive coarse frames (3-hourly -> hourly on the 0.75 degree grid), then the
spatial model takes every hourly coarse frame to the 0.25 degree node grid
(:func:`~aprior.models.deepcams.spatial.upscale_nodes`). Each stage normalises its input
and inverts its output with the normalisation stored in its weights file, so the field
between the stages, and the result, are in ug m-3. The coarse frames given are kept as
they are at their own hours (the network only fills the hours between them).

Without weights paths the bundled demo weights are used
(``aprior/models/deepcams/weights/{temporal,spatial}-demo.pt``): they were trained on a
SYNTHETIC world and say so in their metadata, and so does everything made with them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aprior.errors import InputFileError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field
from aprior.models.checkpoint import load_weights, weights_hash
from aprior.models.deepcams.data import Normalisation, field_to_nodes, nodes_to_field
from aprior.models.deepcams.training import build_network, check_stage, config_from_metadata
from aprior.models.deepcams.writer import write_downscaled  # noqa: F401 (part of this API)
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
    net = build_network(stage, config_from_metadata(stage, metadata["config"]))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise InputFileError(f"does not fit the {stage} network of its own config "
                             f"({str(exc).splitlines()[0]})", path) from exc
    dev = resolve_device(device) if isinstance(device, str) else device
    net = net.to(dev).eval()
    return Stage(stage, net, Normalisation.from_dict(metadata["normalisation"]), metadata, path, sha256)


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


@torch.no_grad()
def interpolate_hours(temporal: Stage, g0: np.ndarray, g1: np.ndarray, ts: list[float],
                      chunk: int = 4) -> np.ndarray:
    """Frames at fractions ``ts`` between ``g0`` and ``g1``.

    Args:
        g0, g1: ``(n, h, w)`` ug m-3 node-grid frames (periodic longitude).
        ts: fractions in (0, 1).

    Returns:
        ``(n, len(ts), h, w)`` float32 ug m-3.
    """
    from aprior.models.deepcams.temporal import interpolate_frames

    out = []
    for a in range(0, g0.shape[0], chunk):
        x0, x1 = _as_tensor(g0[a:a + chunk], temporal), _as_tensor(g1[a:a + chunk], temporal)
        y = interpolate_frames(temporal.net, x0, x1, ts)
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
def upscale_frames(spatial: Stage, coarse: np.ndarray, chunk: int = 2) -> np.ndarray:
    """Coarse node frames ``(n, h, w)`` ug m-3 -> fine ``(n, 3(h-1)+1, 3w)`` ug m-3.

    Tiles of :func:`spatial_tile` nodes with a halo of :data:`SPATIAL_HALO` nodes.
    """
    from aprior.models.deepcams.spatial import upscale_nodes

    tile = spatial_tile(spatial)
    out = []
    for a in range(0, coarse.shape[0], chunk):
        y = upscale_nodes(spatial.net, _as_tensor(coarse[a:a + chunk], spatial), tile=tile,
                          halo=SPATIAL_HALO)
        out.append(spatial.norm.inverse(y.float())[:, 0].cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def hourly_coarse(temporal: Stage | None, frames: np.ndarray, times: np.ndarray, *,
                  gap: int = 3, interpolate=None) -> tuple[np.ndarray, np.ndarray]:
    """3-hourly coarse frames -> hourly coarse frames (the temporal step).

    Args:
        temporal: the temporal stage (or None with ``interpolate`` given).
        frames: ``(n, h, w)`` ug m-3 at ``times`` ``(n,)`` datetime64, every ``gap`` hours.
        interpolate: optional ``f(g0, g1, ts) -> (n, len(ts), h, w)`` replacing the
            network (the linear baseline in evaluation).

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
        mid = interpolate_hours(temporal, frames[:-1], frames[1:], ts)
    else:
        mid = interpolate(frames[:-1], frames[1:], ts)
    out = np.empty((gap * (n - 1) + 1,) + frames.shape[1:], np.float32)
    out[::gap] = frames
    for k in range(1, gap):
        out[k::gap] = mid[:, k - 1]
    hours = times[0] + np.arange(out.shape[0]).astype("timedelta64[h]")
    return out, hours


def _day_frames(eac4: PM25Field, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
    day = np.datetime64(date.isoformat(), "h")
    times = eac4.times.astype("datetime64[h]")
    sel = (times >= day) & (times <= day + np.timedelta64(24, "h"))
    if not np.any(sel):
        raise ProfileFieldError(f"the EAC4 field has no frame on {date} (it covers "
                                f"{times[0]} to {times[-1]})")
    if np.any(eac4.times[sel] != times[sel].astype("datetime64[ns]")):
        raise ProfileFieldError("the EAC4 frames must be on whole hours")
    return np.flatnonzero(sel), times[sel]


def downscale_day(date: dt.date | str, eac4: PM25Field, temporal_weights: PathLike | None = None,
                  spatial_weights: PathLike | None = None, device: str = "auto",
                  *, stages: tuple[Stage, Stage] | None = None) -> PM25Field:
    """Downscale one day of 3-hourly 0.75 degree PM2.5 to hourly 0.25 degree.

    Args:
        date: the UTC day.
        eac4: global PM2.5 (ug m-3) on a lat/lon node grid (EAC4: 241 x 480, 3-hourly);
            its frames from 00 UTC of ``date`` to 00 UTC of the next day are used.
        temporal_weights, spatial_weights: weights files (None: the bundled demo weights).
        device: "auto", "cpu", "cuda" or "cuda:N".
        stages: already loaded ``(temporal, spatial)`` stages (overrides the paths).

    Returns:
        hourly PM2.5 in ug m-3 on the 3x finer grid (0.25 degree: 721 x 1440, lat
        ascending, lon -180..179.75) for the hours the day's frames cover (00 to 21 UTC for
        eight frames, to 23 UTC with the next day's 00 UTC frame, 00-06 for three frames).
    """
    day = dt.date.fromisoformat(date) if isinstance(date, str) else date
    temporal, spatial = stages or (load_stage("temporal", temporal_weights, device),
                                   load_stage("spatial", spatial_weights, device))
    if temporal.metadata.get("temporal_grid") == "fine":
        log.warning("the temporal weights were trained at 0.25 degree; they are applied to the "
                    "0.75 degree frames here (the paper's order)")
    idx, times = _day_frames(eac4, day)
    nodes = field_to_nodes(PM25Field(eac4.times[idx], eac4.lat, eac4.lon, eac4.values[idx],
                                     eac4.source))
    gap = int(temporal.metadata.get("gap_hours", 3))
    hourly, hours = hourly_coarse(temporal, nodes, times, gap=gap)
    keep = hours < np.datetime64(day.isoformat(), "h") + np.timedelta64(24, "h")
    hourly, hours = hourly[keep], hours[keep]
    log.info("downscaling %d hourly frames of %s (%d coarse frames)", hours.size, day, times.size)
    fine = upscale_frames(spatial, hourly)
    return nodes_to_field(fine, hours, "deepcams")


def provenance(temporal: Stage, spatial: Stage, date: dt.date | str, sources: list[str],
               synthetic_input: bool = False) -> dict[str, Any]:
    """Global attributes recording how a downscaled file was made."""
    prov: dict[str, Any] = {"date": str(date), "source_files": ", ".join(sources) or "none"}
    for s in (temporal, spatial):
        d = s.describe()
        prov[f"deepcams_{s.stage}_model"] = f"{d['model']} (preset {d['preset']})"
        prov[f"deepcams_{s.stage}_weights"] = d["weights"]
        prov[f"deepcams_{s.stage}_weights_sha256"] = d["sha256"]
        prov[f"deepcams_{s.stage}_trained_on"] = d["trained_on"]
    notes = []
    if temporal.synthetic or spatial.synthetic:
        notes.append("the DeepCAMS weights were trained on a SYNTHETIC world")
    if synthetic_input:
        notes.append("the input PM2.5 is SYNTHETIC")
    if notes:
        prov["synthetic_note"] = ("SYNTHETIC: " + "; ".join(notes) +
                                  ". Not a product of real data; never present it as one.")
    return prov


def default_world() -> Path | None:
    """The bundled demo world (:func:`aprior.resources.bundled_world`); None when absent."""
    from aprior.resources import bundled_world

    try:
        return bundled_world()
    except InputFileError:
        return None
