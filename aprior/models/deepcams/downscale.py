"""Spatiotemporal downscaling of 3-hourly 0.75 degree PM2.5 (CAMS EAC4) to hourly 0.25 degree.

The paper's order (its Fig. 2): a temporal step fills ``t = 1/3, 2/3`` between every two
consecutive coarse frames (3-hourly -> hourly on the 0.75 degree grid), then a spatial
step takes every hourly coarse frame to the 0.25 degree node grid. Each step is a method:

* temporal: ``"network"`` (the XVFI-like stage) or ``"linear"`` (``(1 - t) G0 + t G1``);
* spatial: ``"network"`` (the ABPN-like stage), ``"bicubic"`` or ``"area"`` (conserving).

The default (:data:`DEFAULT_TEMPORAL`, :data:`DEFAULT_SPATIAL`) is the combination that
wins on held-out data (``docs/deepcams.md`` gives the scores). The coarse frames given are
kept at their own hours. Global grids are periodic in longitude; regional ones (an ADS
``area``) are handled by :mod:`aprior.models.deepcams.region` (mirrored edges, the fine
grid covers the coarse nodes' box). A learned step warns once when its input lies beyond
its training statistics, and its output is capped at what the input supports
(:mod:`aprior.models.deepcams.guard`). Progress goes to a callback; nothing is printed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aprior.errors import ConfigError, InputFileError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field
from aprior.models.deepcams import guard, region
from aprior.models.deepcams.report import write_downscaled
from aprior.models.deepcams.stages import (  # noqa: F401 (part of this API)
    BUNDLED,
    Stage,
    hourly_coarse,
    interpolate_hours,
    load_stage,
    stage_from_state,
    upscale_baseline,
    upscale_frames,
)

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Progress = Callable[[dict], None]

TEMPORAL_METHODS = ("network", "linear")
SPATIAL_METHODS = ("network", "bicubic", "area")
#: the default methods: the fastest chain that wins on every held-out case (both synthetic
#: worlds, area-mean and EAC4-like input, interpolated hours; docs/deepcams.md)
DEFAULT_TEMPORAL = "network"
DEFAULT_SPATIAL = "area"
#: hourly frames upscaled per call (bounds memory: 4 x 721 x 1440 float32 is 17 MB)
CHUNK = 4


@dataclass(frozen=True)
class Pipeline:
    """The methods of a downscaling run and the stages they need (None for baselines)."""

    temporal: str = DEFAULT_TEMPORAL
    spatial: str = DEFAULT_SPATIAL
    temporal_stage: Stage | None = None
    spatial_stage: Stage | None = None

    def __post_init__(self) -> None:
        check_methods(self.temporal, self.spatial)
        for kind, method, st in (("temporal", self.temporal, self.temporal_stage),
                                 ("spatial", self.spatial, self.spatial_stage)):
            if method == "network" and st is None:
                raise ValueError(f"the {kind} network method needs a loaded stage")

    @property
    def label(self) -> str:
        return f"{self.temporal} + {self.spatial}"

    @property
    def synthetic(self) -> bool:
        return any(s is not None and s.synthetic for s in self.used_stages)

    @property
    def used_stages(self) -> list[Stage]:
        return [s for m, s in ((self.temporal, self.temporal_stage),
                               (self.spatial, self.spatial_stage)) if m == "network" and s]


def check_methods(temporal: str, spatial: str) -> None:
    """ConfigError naming the choices when a method name is unknown."""
    if temporal not in TEMPORAL_METHODS:
        raise ConfigError(f"the temporal method must be one of {', '.join(TEMPORAL_METHODS)}, "
                          f"got {temporal!r}")
    if spatial not in SPATIAL_METHODS:
        raise ConfigError(f"the spatial method must be one of {', '.join(SPATIAL_METHODS)}, "
                          f"got {spatial!r}")


def load_pipeline(temporal: str = DEFAULT_TEMPORAL, spatial: str = DEFAULT_SPATIAL,
                  temporal_weights: PathLike | None = None, spatial_weights: PathLike | None = None,
                  device: str = "auto") -> Pipeline:
    """A :class:`Pipeline`, loading only the stages its methods use."""
    check_methods(temporal, spatial)
    ts = load_stage("temporal", temporal_weights, device) if temporal == "network" else None
    ss = load_stage("spatial", spatial_weights, device) if spatial == "network" else None
    return Pipeline(temporal, spatial, ts, ss)


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


def _warn_once(pipe: Pipeline, frames: np.ndarray) -> None:
    """One warning for the run when the input lies beyond a used stage's training range."""
    msgs = [(s.stage, guard.out_of_range(s, frames, "input")) for s in pipe.used_stages]
    msgs = [(stage, m) for stage, m in msgs if m]
    if msgs:
        also = [stage for stage, _ in msgs[1:]]
        log.warning(msgs[0][1] + (f" (the {', '.join(also)} weights' range is exceeded too)" if also else ""))


def _temporal(pipe: Pipeline, ext: np.ndarray, times: np.ndarray, gap: int,
              report: Callable[[str, int, int], None],
              lon: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """3-hourly extended coarse frames -> hourly (network capped by the guard, or linear);
    ``lon``: the extended frames' column longitudes (the network's local solar time)."""
    n = ext.shape[0]
    if pipe.temporal == "linear" or n == 1:
        out, hours = hourly_coarse(None, ext, times, gap=gap, interpolate=lambda g0, g1, ts: np.stack(
            [(1.0 - t) * g0 + t * g1 for t in ts], axis=1))
        report("temporal", max(n - 1, 1), max(n - 1, 1))
        return out, hours
    stage = pipe.temporal_stage
    capped = 0

    def net(g0, g1, ts):
        nonlocal capped
        parts = []
        for k in range(g0.shape[0]):
            pred = interpolate_hours(stage, g0[k:k + 1], g1[k:k + 1], ts, lon=lon,
                                     times0=times[k:k + 1])
            pred, c = guard.limit_temporal(pred, g0[k:k + 1], g1[k:k + 1], ts)
            capped += c
            parts.append(pred)
            report("temporal", k + 1, g0.shape[0])
        return np.concatenate(parts)

    out, hours = hourly_coarse(stage, ext, times, gap=gap, interpolate=net)
    if capped:
        log.info("temporal network: %d value(s) capped at the input envelope", capped)
    return out, hours


def _spatial(pipe: Pipeline, hourly: np.ndarray, grid: region.CoarseGrid,
             report: Callable[[str, int, int], None]) -> np.ndarray:
    """Hourly extended coarse frames -> fine frames cropped to the grid's box."""
    n = hourly.shape[0]
    h = grid.shape[0]
    wf = 3 * grid.lon.size if grid.periodic else 3 * (grid.lon.size - 1) + 1
    out = np.empty((n, 3 * (h - 1) + 1, wf), np.float32)
    capped = 0
    for a in range(0, n, CHUNK):
        chunk = hourly[a:a + CHUNK]
        if pipe.spatial == "network":
            fine = upscale_frames(pipe.spatial_stage, chunk, lat_pad=grid.lat_pad)
            area = upscale_baseline("area", chunk, grid.lat, grid.lat_pad)
            fine, c = guard.limit_spatial(fine, chunk, area)
            capped += c
        else:
            fine = upscale_baseline(pipe.spatial, chunk, grid.lat, grid.lat_pad)
        out[a:a + chunk.shape[0]] = np.maximum(region.crop(fine, grid), 0.0)
        report("spatial", min(a + CHUNK, n), n)
    if capped:
        log.info("spatial network: %d value(s) capped at the input envelope", capped)
    return out


def downscale_day(date: dt.date | str, eac4: PM25Field, temporal_weights: PathLike | None = None,
                  spatial_weights: PathLike | None = None, device: str = "auto", *,
                  temporal: str = DEFAULT_TEMPORAL, spatial: str = DEFAULT_SPATIAL,
                  stages: tuple[Stage | None, Stage | None] | None = None,
                  pipeline: Pipeline | None = None, expected_step: float | None = None,
                  progress: Progress | None = None) -> PM25Field:
    """Downscale one day of 3-hourly coarse PM2.5 to hourly at 3x the resolution.

    Args:
        date: the UTC day.
        eac4: PM2.5 (ug m-3) on a regular lat/lon node grid, global or regional (EAC4:
            0.75 degree, 3-hourly); its frames from 00 UTC of ``date`` to 00 UTC of the
            next day are used.
        temporal_weights, spatial_weights: weights files for the network methods (None:
            the bundled demo weights).
        temporal: "network" or "linear"; spatial: "network", "bicubic" or "area".
        stages: already loaded ``(temporal, spatial)`` stages (instead of the paths).
        pipeline: a ready :class:`Pipeline` (overrides the four arguments above).
        expected_step: required grid step in degrees (0.75 for EAC4; None: any).
        progress: gets ``{"event": "downscale", "step": "temporal"|"spatial", "done", "total"}``.

    Returns:
        hourly PM2.5 in ug m-3 on the 3x finer node grid (global 0.75 degree: 721 x 1440,
        lat ascending, lon -180..179.75; regional: the box of the coarse nodes) for the
        hours the day's frames cover (00-21 UTC for eight frames, 00-23 UTC with the next
        day's 00 UTC frame).
    """
    day = dt.date.fromisoformat(date) if isinstance(date, str) else date
    if pipeline is None:
        if stages is not None:
            check_methods(temporal, spatial)
            pipeline = Pipeline(temporal, spatial, stages[0] if temporal == "network" else None,
                                stages[1] if spatial == "network" else None)
        else:
            pipeline = load_pipeline(temporal, spatial, temporal_weights, spatial_weights, device)
    idx, times = _day_frames(eac4, day)
    grid = region.grid_of(eac4, expected_step)
    ext = region.extend(region.to_nodes(PM25Field(eac4.times[idx], eac4.lat, eac4.lon,
                                                  eac4.values[idx], eac4.source)), grid)
    ts = pipeline.temporal_stage
    gap = int(ts.metadata.get("gap_hours", 3)) if ts is not None else 3
    if ts is not None and ts.metadata.get("temporal_grid") == "fine":
        log.warning("the temporal weights were trained at 0.25 degree; they are applied to the "
                    "0.75 degree frames here (the paper's order)")

    def report(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress({"event": "downscale", "step": step, "done": done, "total": total})

    _warn_once(pipeline, ext)
    lon = grid.lon if grid.periodic else np.concatenate([grid.lon, grid.lon[-2:0:-1]])
    hourly, hours = _temporal(pipeline, ext, times, gap, report, lon)
    keep = hours < np.datetime64(day.isoformat(), "h") + np.timedelta64(24, "h")
    hourly, hours = hourly[keep], hours[keep]
    log.info("downscaling %d hourly frames of %s (%d coarse frames, %s grid %d x %d, %s)",
             hours.size, day, times.size, "global" if grid.periodic else "regional",
             *grid.shape, pipeline.label)
    fine = _spatial(pipeline, hourly, grid, report)
    return region.to_field(fine, hours, grid, f"deepcams ({pipeline.label})")


def provenance(pipeline: Pipeline, date: dt.date | str, sources: list[str],
               synthetic_input: bool = False) -> dict[str, Any]:
    """Global attributes recording how a downscaled file was made."""
    prov: dict[str, Any] = {"date": str(date), "source_files": ", ".join(sources) or "none",
                            "temporal_method": pipeline.temporal, "spatial_method": pipeline.spatial}
    for s in pipeline.used_stages:
        d = s.describe()
        prov[f"deepcams_{s.stage}_model"] = f"{d['model']} (preset {d['preset']})"
        prov[f"deepcams_{s.stage}_weights"] = d["weights"]
        prov[f"deepcams_{s.stage}_weights_sha256"] = d["sha256"]
        prov[f"deepcams_{s.stage}_trained_on"] = d["trained_on"]
    notes = []
    if pipeline.synthetic:
        notes.append("the DeepCAMS weights were trained on a SYNTHETIC world")
    if synthetic_input:
        notes.append("the input PM2.5 is SYNTHETIC")
    if notes:
        prov["synthetic_note"] = ("SYNTHETIC: " + "; ".join(notes) +
                                  ". Not a product of real data; never present it as one.")
    return prov


def downscale_files(date: dt.date | str, files: list[Path], out: PathLike, pipeline: Pipeline,
                    *, synthetic_input: bool = False, progress: Progress | None = None) -> PM25Field:
    """Read EAC4 files, check they are 0.75 degree, downscale the day and write ``out``
    atomically (nothing is written when anything fails)."""
    from aprior.models.deepcams.archive import read_eac4_files

    eac4 = read_eac4_files(files)
    try:
        field = downscale_day(date, eac4, pipeline=pipeline, expected_step=0.75, progress=progress)
    except ProfileFieldError as exc:
        raise InputFileError(exc.message, ", ".join(str(f) for f in files)) from exc
    write_downscaled(out, field, provenance(pipeline, date, [Path(f).name for f in files],
                                            synthetic_input))
    return field


def default_world() -> Path | None:
    """The bundled demo world (:func:`aprior.resources.bundled_world`); None when absent."""
    from aprior.resources import bundled_world

    try:
        return bundled_world()
    except InputFileError:
        return None
