"""DeepCAMS evaluation on held-out days: the paper's Tables 2 and 3, with correct baselines.

Up to four tables, each giving R, RMSE and MAE (ug m-3) of every method against the hourly
GEOS-CF truth:

* ``temporal`` (Table 2): frames ``t0`` and ``t0 + 3 h`` (``t0`` = 00, 03, ..., 21 UTC, the
  EAC4 times) -> ``t0 + 1 h``, ``t0 + 2 h``, on the grid the temporal model was trained
  on (0.75 degree by default). Methods: DeepCAMS; the correct linear interpolation
  ``(1 - t) G0 + t G1``; and the paper's Eq. 9 ``t G0 + (1 - t) G1`` whose weights are
  SWAPPED (reported only to show what the paper compared against).
* ``spatial`` (Table 3): ``coarsen(G) -> G`` for every hour. Methods: DeepCAMS,
  node-registered bicubic, area-conserving upsampling.
* ``pipeline``: 3-hourly 0.75 degree frames -> hourly 0.25 degree, temporal then spatial,
  against the hourly 0.25 degree truth, from GEOS-CF coarsened to 0.75 degree (the
  paper's simulation); ``pipeline_eac4`` the same from the EAC4(-like) files of the data
  directory when it has them.
  Methods: DeepCAMS, linear + bicubic, linear + area-conserving.

As in the paper, each metric is computed per sample (one frame: all grid nodes,
unweighted) and averaged over the samples.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from aprior.errors import ConfigError
from aprior.models.deepcams.archive import FrameStore, file_hours, open_pm25_data, read_eac4_files
from aprior.models.deepcams.data import (
    field_to_nodes,
    hours_of_days,
    linear_interpolation,
    swapped_linear_interpolation,
    temporal_pairs,
)
from aprior.models.deepcams.downscale import (
    Stage,
    hourly_coarse,
    interpolate_hours,
    load_stage,
    upscale_frames,
)
from aprior.models.deepcams.report import render_evaluation, summary_rows, write_evaluation  # noqa: F401

log = logging.getLogger(__name__)

LINEAR = "linear (1-t)*G0 + t*G1"
SWAPPED = "paper Eq. 9 t*G0 + (1-t)*G1 (SWAPPED weights)"
#: the tables :func:`evaluate_deepcams` can compute
TABLES = ("temporal", "spatial", "pipeline", "pipeline_eac4")
METRIC_NOTE = ("R, RMSE and MAE (ug m-3) per sample (one frame, all grid nodes, unweighted), "
               "averaged over the samples, as in the paper's Tables 2 and 3")


def frame_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pearson R, RMSE and MAE of one frame (any shape, same units)."""
    p, t = np.asarray(pred, np.float64).ravel(), np.asarray(truth, np.float64).ravel()
    d = p - t
    sp, st = p.std(), t.std()
    r = float(np.mean((p - p.mean()) * (t - t.mean())) / (sp * st)) if sp > 0 and st > 0 else float("nan")
    return {"R": r, "RMSE": float(np.sqrt(np.mean(d * d))), "MAE": float(np.mean(np.abs(d)))}


class _Table:
    def __init__(self, name: str, title: str, methods: Sequence[str]) -> None:
        self.name, self.title, self.methods = name, title, list(methods)
        self.samples: list[dict] = []

    def add(self, method: str, time: np.datetime64, pred: np.ndarray, truth: np.ndarray,
            t: float | None = None) -> None:
        self.samples.append({"table": self.name, "method": method, "time": str(time),
                             "t": t, **frame_metrics(pred, truth)})

    def summary(self) -> dict:
        rows = []
        for m in self.methods:
            s = [x for x in self.samples if x["method"] == m]
            rows.append({"method": m, "n_samples": len(s),
                         **{k: float(np.nanmean([x[k] for x in s])) if s else float("nan")
                            for k in ("R", "RMSE", "MAE")}})
        return {"name": self.name, "title": self.title, "rows": rows}


def _eval_days(store: FrameStore, temporal: Stage, dates: Sequence | None) -> list[np.datetime64]:
    have = set(store.days.tolist())
    if dates is not None:
        days = [np.datetime64(str(d), "D") for d in dates]
        missing = [str(d) for d in days if d.item() not in have]
        if missing:
            raise ConfigError(f"the data has no GEOS-CF frames on {', '.join(missing)}")
        return days
    split = temporal.metadata.get("data", {}).get("split", {})
    test = [np.datetime64(d, "D") for d in split.get("test", [])]
    days = [d for d in test if d.item() in have]
    if days:
        return days
    log.warning("the temporal weights' test days are not in this data; evaluating its last day")
    return [store.days[-1]]


def _trained_days(*stages: Stage) -> set:
    out = set()
    for s in stages:
        split = s.metadata.get("data", {}).get("split", {})
        out |= {np.datetime64(d, "D").item() for k in ("train", "val") for d in split.get(k, [])}
    return out


def _lin(g0: np.ndarray, g1: np.ndarray, ts: list[float]) -> np.ndarray:
    return np.stack([linear_interpolation(g0, g1, t) for t in ts], axis=1)


class _Upscaler:
    """DeepCAMS and baseline upscaling of single coarse frames, cached by key (the
    coarsened truth at an hour is upscaled once for the spatial and pipeline tables)."""

    def __init__(self, spatial: Stage) -> None:
        self.spatial = spatial
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, method: str, coarse: np.ndarray, key: str | None = None) -> np.ndarray:
        """``method`` "DeepCAMS", "bicubic" or "area" on ``coarse`` ``(h, w)`` ug m-3."""
        if key is not None and (method, key) in self.cache:
            return self.cache[(method, key)]
        if method == "DeepCAMS":
            out = upscale_frames(self.spatial, coarse[None])[0]
        else:
            from aprior.models.deepcams.grid import upsample_area, upsample_bicubic

            x = torch.from_numpy(np.ascontiguousarray(coarse[None], np.float32))
            with torch.no_grad():
                out = (upsample_bicubic(x) if method == "bicubic" else upsample_area(x))[0].numpy()
        if key is not None:
            self.cache[(method, key)] = out
        return out


def _temporal_table(store: FrameStore, temporal: Stage, hours: np.ndarray, gap: int,
                    report: Callable[[str, int, int], None]) -> _Table:
    grid = temporal.metadata.get("temporal_grid") or "coarse"
    table = _Table("temporal", f"Temporal: {gap}-hourly -> hourly on the {grid} grid "
                   f"({'0.75' if grid == 'coarse' else '0.25'} degree)", ["DeepCAMS", LINEAR, SWAPPED])
    pairs = temporal_pairs(hours, gap, gap)
    windows = np.unique(pairs.h0)
    ts = [k / gap for k in range(1, gap)]
    for i, h0 in enumerate(windows):
        h1 = h0 + np.timedelta64(gap, "h")
        g0, g1 = store.frame(h0, grid), store.frame(h1, grid)
        pred = interpolate_hours(temporal, g0[None], g1[None], ts)[0]
        for k, t in enumerate(ts, start=1):
            ht = h0 + np.timedelta64(k, "h")
            truth = store.frame(ht, grid)
            table.add("DeepCAMS", ht, pred[k - 1], truth, t)
            table.add(LINEAR, ht, linear_interpolation(g0, g1, t), truth, t)
            table.add(SWAPPED, ht, swapped_linear_interpolation(g0, g1, t), truth, t)
        report("temporal", i + 1, windows.size)
    return table


def _spatial_table(store: FrameStore, up: _Upscaler, hours: np.ndarray,
                   report: Callable[[str, int, int], None]) -> _Table:
    table = _Table("spatial", "Spatial: coarsened 0.75 degree -> 0.25 degree, every hour",
                   ["DeepCAMS", "bicubic", "area-conserving"])
    for i, h in enumerate(hours):
        coarse, truth, key = store.coarse(h), store.fine(h), str(h)
        table.add("DeepCAMS", h, up("DeepCAMS", coarse, key), truth)
        table.add("bicubic", h, up("bicubic", coarse, key), truth)
        table.add("area-conserving", h, up("area", coarse, key), truth)
        report("spatial", i + 1, hours.size)
    return table


def _pipeline_table(store: FrameStore, temporal: Stage, up: _Upscaler,
                    runs: list[tuple[np.ndarray, np.ndarray]], gap: int, name: str, source: str,
                    report: Callable[[str, int, int], None], cached: bool = False) -> _Table:
    """``runs``: consecutive coarse frames ``(n, h, w)`` ug m-3 and their times ``(n,)``;
    ``cached``: the frames are the coarsened truth, so the upscaled frames at their own
    hours are those of the spatial table."""
    table = _Table(name, f"Pipeline: {gap}-hourly 0.75 degree ({source}) -> hourly 0.25 degree",
                   ["DeepCAMS", "linear + bicubic", "linear + area-conserving"])
    total = sum(gap * (f.shape[0] - 1) + 1 for f, _ in runs)
    done = 0
    for frames, times in runs:
        deep, hours = hourly_coarse(temporal, frames, times, gap=gap)
        lin, _ = hourly_coarse(None, frames, times, gap=gap, interpolate=_lin)
        for i, h in enumerate(hours):
            truth = store.fine(h)
            key = str(h) if cached and i % gap == 0 else None
            table.add("DeepCAMS", h, up("DeepCAMS", deep[i], key), truth)
            table.add("linear + bicubic", h, up("bicubic", lin[i], key), truth)
            table.add("linear + area-conserving", h, up("area", lin[i], key), truth)
            done += 1
            report(name, done, total)
    return table


def _segments(times: np.ndarray, gap: int) -> list[np.ndarray]:
    """Runs of consecutive ``gap``-hourly times (index arrays), each of two or more."""
    if times.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(times) != np.timedelta64(gap, "h")) + 1
    return [s for s in np.split(np.arange(times.size), breaks) if s.size > 1]


def _eac4_input(data, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The data directory's EAC4 frames at ``hours`` (node grid, ug m-3), or None."""
    files = [f for f in data.eac4_files if np.any(np.isin(file_hours(f), hours))]
    if not files:
        return None
    field = read_eac4_files(files)
    times = field.times.astype("datetime64[h]")
    sel = np.isin(times, hours)
    return field_to_nodes(field)[sel], times[sel]


def evaluate_deepcams(data: Path, temporal_weights: Path | None = None,
                      spatial_weights: Path | None = None, *, dates: Sequence[dt.date | str] | None = None,
                      device: str = "auto", max_hours: int | None = None,
                      tables: Sequence[str] = TABLES,
                      progress: Callable[[dict], None] | None = None) -> dict:
    """Evaluate both DeepCAMS stages and their chain on held-out days of ``data``.

    Args:
        data: a synthetic world or a directory of GEOS-CF (and optionally EAC4) files.
        temporal_weights, spatial_weights: weights files (None: the bundled demo weights).
        dates: the days to evaluate (None: the test days recorded in the temporal weights,
            else the data's last day).
        device: "auto", "cpu", "cuda" or "cuda:N".
        max_hours: evaluate only the first ``max_hours`` hours of those days (quick runs).
        tables: which of :data:`TABLES` to compute ("pipeline_eac4" only when the data
            directory has EAC4 files for those hours).
        progress: gets ``{"event": "eval", "table", "done", "total"}``.

    Returns:
        a JSON-able dict: ``data``, ``synthetic``, ``dates``, ``overlaps_training``,
        ``weights`` (per stage: model, preset, weights, sha256, trained_on), ``metric_note``,
        ``tables`` (name, title, rows of method / n_samples / R / RMSE / MAE) and
        ``samples`` (every per-frame metric).
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ConfigError(f"unknown evaluation table(s) {', '.join(unknown)}; use {', '.join(TABLES)}")
    d = open_pm25_data(data)
    store = FrameStore(d.geoscf_files)
    temporal = load_stage("temporal", temporal_weights, device)
    spatial = load_stage("spatial", spatial_weights, device)
    days = _eval_days(store, temporal, dates)
    hours = hours_of_days(store.hours, days)
    if max_hours is not None:
        hours = hours[:max_hours]
    gap = int(temporal.metadata.get("gap_hours", 3))

    def report(table: str, done: int, total: int) -> None:
        if progress is not None:
            progress({"event": "eval", "table": table, "done": done, "total": total})

    up = _Upscaler(spatial)
    out_tables = []
    if "temporal" in tables:
        out_tables.append(_temporal_table(store, temporal, hours, gap, report))
    if "spatial" in tables:
        out_tables.append(_spatial_table(store, up, hours, report))
    hod = (hours - hours.astype("datetime64[D]")).astype(int)
    coarse_t = hours[hod % gap == 0]
    if "pipeline" in tables:
        runs = [(np.stack([store.coarse(h) for h in coarse_t[s]]), coarse_t[s])
                for s in _segments(coarse_t, gap)]
        if runs:
            out_tables.append(_pipeline_table(store, temporal, up, runs, gap, "pipeline",
                                              "GEOS-CF coarsened", report, cached=True))
    eac = _eac4_input(d, coarse_t) if "pipeline_eac4" in tables else None
    if eac is not None:
        runs = [(eac[0][s], eac[1][s]) for s in _segments(eac[1], gap)]
        if runs:
            out_tables.append(_pipeline_table(store, temporal, up, runs, gap, "pipeline_eac4",
                                              "EAC4 files", report))
    trained = _trained_days(temporal, spatial)
    return {
        "data": d.description, "synthetic": d.synthetic,
        "dates": [str(x) for x in days], "hours": int(hours.size),
        "overlaps_training": any(x.item() in trained for x in days),
        "weights": {"temporal": temporal.describe(), "spatial": spatial.describe()},
        "metric_note": METRIC_NOTE,
        "tables": [t.summary() for t in out_tables],
        "samples": [s for t in out_tables for s in t.samples],
    }


__all__ = ["TABLES", "evaluate_deepcams", "frame_metrics", "render_evaluation", "summary_rows", "write_evaluation"]
