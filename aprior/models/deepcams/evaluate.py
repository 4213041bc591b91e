"""DeepCAMS evaluation on held-out days: each stage and the chains, with correct baselines.

Tables (every metric against the hourly truth, GEOS-CF):

* ``temporal`` (the paper's Table 2): frames ``t0`` and ``t0 + 3 h`` (``t0`` = 00, 03, ...,
  21 UTC, the EAC4 times) -> ``t0 + 1 h``, ``t0 + 2 h``, on the grid the temporal model was
  trained on (0.75 degree by default; inputs and targets are area means of the truth).
  Methods: the network; the correct linear interpolation ``(1 - t) G0 + t G1``; the
  paper's Eq. 9 ``t G0 + (1 - t) G1``, whose weights are SWAPPED (labelled so).
* ``spatial`` (Table 3): area mean of the truth -> truth, every hour. Methods: the
  network, bicubic, area-conserving.
* ``pipeline``: 3-hourly 0.75 degree area means of the truth -> hourly 0.25 degree,
  scored on the **interpolated hours only** (the hours the temporal step makes), with
  every chain: network + network, network + area, linear + network, linear + bicubic,
  linear + area and the SWAPPED Eq. 9 + area. ``pipeline_kept``: the same chains at the
  kept hours (00, 03, ...; only the spatial step acts there), reported apart so that they
  cannot hide a loss of the temporal step.
* ``pipeline_eac4`` / ``pipeline_eac4_kept``: the same from the data directory's EAC4(-like)
  files (a synthetic PM2.5 world's 0.75 degree model with its own errors).

Metrics per frame (all grid nodes, unweighted, as in the paper) averaged over frames: R,
RMSE and MAE (ug m-3) and PSNR (``20 log10(max(truth) / RMSE)``, dB). Per concentration
bin of the truth (:data:`BINS`, ug m-3), pooled over all nodes and frames: n, bias, RMSE,
MAE. Tails: the mean and the largest ratio of a frame's output peak to the peak of the
coarse frames it was made from (the truth's own ratio is the ``truth`` row).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from aprior.errors import ConfigError
from aprior.models.deepcams.archive import FrameStore, file_hours, open_pm25_data, read_eac4_files
from aprior.models.deepcams.data import (
    field_to_nodes,
    hours_of_days,
    linear_interpolation,
    swapped_linear_interpolation,
    temporal_pairs,
)
from aprior.models.deepcams.guard import limit_spatial, limit_temporal
from aprior.models.deepcams.report import render_evaluation, summary_rows, write_evaluation  # noqa: F401
from aprior.models.deepcams.stages import (
    Stage,
    interpolate_hours,
    load_stage,
    upscale_baseline,
    upscale_frames,
)

log = logging.getLogger(__name__)

LINEAR = "linear (1-t)*G0 + t*G1"
SWAPPED = "paper Eq. 9 t*G0 + (1-t)*G1 (SWAPPED weights)"
#: the chains of the pipeline tables: (label, temporal, spatial)
CHAINS = (("network + network", "network", "network"), ("network + area", "network", "area"),
          ("linear + network", "linear", "network"), ("linear + bicubic", "linear", "bicubic"),
          ("linear + area", "linear", "area"), ("Eq. 9 SWAPPED + area", "swapped", "area"))
#: the tables :func:`evaluate_deepcams` can compute
TABLES = ("temporal", "spatial", "pipeline", "pipeline_eac4")
#: concentration bins of the truth (ug m-3) for the binned scores
BINS = (0.0, 5.0, 15.0, 35.0, 75.0, 150.0, float("inf"))
METRIC_NOTE = ("R, RMSE, MAE (ug m-3) and PSNR (dB, 20 log10(max truth / RMSE)) per frame (all "
               "grid nodes, unweighted), averaged over the frames; bins pooled over all nodes")


def frame_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pearson R, RMSE, MAE and PSNR of one frame (any shape, same units)."""
    p, t = np.asarray(pred, np.float64).ravel(), np.asarray(truth, np.float64).ravel()
    d = p - t
    sp, st = p.std(), t.std()
    r = float(np.mean((p - p.mean()) * (t - t.mean())) / (sp * st)) if sp > 0 and st > 0 else float("nan")
    rmse = float(np.sqrt(np.mean(d * d)))
    peak = float(t.max()) if t.size else 0.0
    psnr = float(20 * np.log10(peak / rmse)) if rmse > 0 and peak > 0 else float("inf")
    return {"R": r, "RMSE": rmse, "MAE": float(np.mean(np.abs(d))), "PSNR": psnr}


class _Table:
    def __init__(self, name: str, title: str, methods: Sequence[str]) -> None:
        self.name, self.title, self.methods = name, title, list(methods)
        self.samples: list[dict] = []
        self.bins = {m: np.zeros((len(BINS) - 1, 4)) for m in self.methods}  # n, sum d, d2, |d|
        self.truth_ratio: list[float] = []

    def add(self, method: str, time: np.datetime64, pred: np.ndarray, truth: np.ndarray,
            t: float | None = None, input_peak: float | None = None) -> None:
        row = {"table": self.name, "method": method, "time": str(time), "t": t,
               **frame_metrics(pred, truth)}
        if input_peak:
            row["peak_ratio"] = float(np.max(pred)) / input_peak
        self.samples.append(row)
        tv, d = np.asarray(truth, np.float64).ravel(), (np.asarray(pred, np.float64) - truth).ravel()
        k = np.clip(np.searchsorted(BINS, tv, side="right") - 1, 0, len(BINS) - 2)
        acc = self.bins[method]
        acc[:, 0] += np.bincount(k, minlength=len(BINS) - 1)
        acc[:, 1] += np.bincount(k, d, minlength=len(BINS) - 1)
        acc[:, 2] += np.bincount(k, d * d, minlength=len(BINS) - 1)
        acc[:, 3] += np.bincount(k, np.abs(d), minlength=len(BINS) - 1)

    def summary(self) -> dict:
        rows = []
        for m in self.methods:
            s = [x for x in self.samples if x["method"] == m]
            row = {"method": m, "n_samples": len(s),
                   **{k: float(np.nanmean([x[k] for x in s])) if s else float("nan")
                      for k in ("R", "RMSE", "MAE", "PSNR")}}
            ratios = [x["peak_ratio"] for x in s if "peak_ratio" in x]
            if ratios:
                row["peak_ratio_mean"], row["peak_ratio_max"] = float(np.mean(ratios)), float(np.max(ratios))
            acc = self.bins[m]
            n = np.maximum(acc[:, 0], 1)
            row["bins"] = [{"lo": BINS[i], "hi": BINS[i + 1], "n": int(acc[i, 0]),
                            "bias": float(acc[i, 1] / n[i]), "RMSE": float(np.sqrt(acc[i, 2] / n[i])),
                            "MAE": float(acc[i, 3] / n[i])} for i in range(len(BINS) - 1) if acc[i, 0]]
            rows.append(row)
        out = {"name": self.name, "title": self.title, "rows": rows}
        if self.truth_ratio:
            out["truth_peak_ratio_mean"] = float(np.mean(self.truth_ratio))
            out["truth_peak_ratio_max"] = float(np.max(self.truth_ratio))
        return out


def _eval_days(store: FrameStore, temporal: Stage | None, dates: Sequence | None) -> list[np.datetime64]:
    have = set(store.days.tolist())
    if dates is not None:
        days = [np.datetime64(str(d), "D") for d in dates]
        missing = [str(d) for d in days if d.item() not in have]
        if missing:
            raise ConfigError(f"the data has no GEOS-CF frames on {', '.join(missing)}")
        return days
    split = (temporal.metadata if temporal else {}).get("data", {}).get("split", {})
    days = [np.datetime64(d, "D") for d in split.get("test", []) if np.datetime64(d, "D").item() in have]
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


class _Methods:
    """The stages and baselines on whole frames (node grids, ug m-3), with the guard's caps
    as the pipeline applies them, and a cache of upscaled frames by key."""

    def __init__(self, temporal: Stage, spatial: Stage) -> None:
        self.temporal, self.spatial = temporal, spatial
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def interpolate(self, method: str, g0: np.ndarray, g1: np.ndarray, ts: list[float],
                    time0: np.datetime64 | None = None) -> np.ndarray:
        """``(len(ts), h, w)`` frames between ``g0`` and ``g1`` ``(h, w)`` (global node grids,
        column ``j`` at longitude ``360 j / w``; ``time0`` the time of ``g0``)."""
        if method == "network":
            lon = np.arange(g0.shape[-1]) * (360.0 / g0.shape[-1])
            pred = interpolate_hours(self.temporal, g0[None], g1[None], ts, lon=lon,
                                     times0=None if time0 is None else np.array([time0]))
            return limit_temporal(pred, g0[None], g1[None], ts)[0][0]
        f = linear_interpolation if method == "linear" else swapped_linear_interpolation
        return np.stack([f(g0, g1, t) for t in ts])

    def upscale(self, method: str, coarse: np.ndarray, key: str | None = None) -> np.ndarray:
        if key is not None and (method, key) in self.cache:
            return self.cache[(method, key)]
        if method == "network":
            area = self.upscale("area", coarse, key)
            out = limit_spatial(upscale_frames(self.spatial, coarse[None]), coarse[None], area[None])[0][0]
        else:
            out = upscale_baseline(method, coarse[None])[0]
        if key is not None:
            self.cache[(method, key)] = out
        return out


def _temporal_table(store: FrameStore, m: _Methods, hours: np.ndarray, gap: int,
                    report: Callable[[str, int, int], None]) -> _Table:
    grid = m.temporal.metadata.get("temporal_grid") or "coarse"
    table = _Table("temporal", f"Temporal: {gap}-hourly -> hourly on the {grid} grid "
                   f"({'0.75' if grid == 'coarse' else '0.25'} degree)", ["network", LINEAR, SWAPPED])
    windows = np.unique(temporal_pairs(hours, gap, gap).h0)
    ts = [k / gap for k in range(1, gap)]
    for i, h0 in enumerate(windows):
        g0, g1 = store.frame(h0, grid), store.frame(h0 + np.timedelta64(gap, "h"), grid)
        peak = float(max(g0.max(), g1.max()))
        preds = {name: m.interpolate(meth, g0, g1, ts, h0) for name, meth in
                 (("network", "network"), (LINEAR, "linear"), (SWAPPED, "swapped"))}
        for k, t in enumerate(ts):
            ht = h0 + np.timedelta64(k + 1, "h")
            truth = store.frame(ht, grid)
            table.truth_ratio.append(float(truth.max()) / peak)
            for name, pred in preds.items():
                table.add(name, ht, pred[k], truth, t, peak)
        report("temporal", i + 1, windows.size)
    return table


def _spatial_table(store: FrameStore, m: _Methods, hours: np.ndarray,
                   report: Callable[[str, int, int], None]) -> _Table:
    table = _Table("spatial", "Spatial: area mean 0.75 degree -> 0.25 degree, every hour",
                   ["network", "bicubic", "area-conserving"])
    for i, h in enumerate(hours):
        coarse, truth, key = store.coarse(h), store.fine(h), str(h)
        peak = float(coarse.max())
        table.truth_ratio.append(float(truth.max()) / peak)
        for name, meth in (("network", "network"), ("bicubic", "bicubic"), ("area-conserving", "area")):
            table.add(name, h, m.upscale(meth, coarse, key), truth, None, peak)
        report("spatial", i + 1, hours.size)
    return table


def _pipeline_tables(store: FrameStore, m: _Methods, runs: list[tuple[np.ndarray, np.ndarray]],
                     gap: int, name: str, source: str, report: Callable[[str, int, int], None],
                     cached: bool = False, chains: Sequence[tuple[str, str, str]] = CHAINS) -> list[_Table]:
    """``runs``: consecutive coarse frames ``(n, h, w)`` ug m-3 and their times ``(n,)``;
    ``cached``: the frames are the area-mean truth (upscaled frames shared with the spatial
    table at the kept hours); ``chains``: the chains to score (of :data:`CHAINS`)."""
    labels = [c[0] for c in chains]
    inter = _Table(name, f"Pipeline, INTERPOLATED hours only: {gap}-hourly 0.75 degree ({source}) "
                   "-> hourly 0.25 degree", labels)
    kept = _Table(name + "_kept", f"Pipeline, KEPT hours (inputs' own hours; spatial step only): "
                  f"{source}", labels)
    ts = [k / gap for k in range(1, gap)]
    total = sum(f.shape[0] - 1 for f, _ in runs)
    done = 0
    for frames, times in runs:
        times = np.asarray(times, "datetime64[h]")
        for i in range(frames.shape[0]):
            key = str(times[i]) if cached else None
            truth = store.fine(times[i])
            kept.truth_ratio.append(float(truth.max()) / float(frames[i].max()))
            for label, _, sp in chains:
                kept.add(label, times[i], m.upscale(sp, frames[i], key), truth, None, float(frames[i].max()))
        for i in range(frames.shape[0] - 1):
            g0, g1 = frames[i], frames[i + 1]
            peak = float(max(g0.max(), g1.max()))
            mids = {tm: m.interpolate(tm, g0, g1, ts, times[i]) for tm in {c[1] for c in chains}}
            for k in range(len(ts)):
                h = times[i] + np.timedelta64(k + 1, "h")
                truth = store.fine(h)
                inter.truth_ratio.append(float(truth.max()) / peak)
                for label, tm, sp in chains:
                    inter.add(label, h, m.upscale(sp, mids[tm][k]), truth, ts[k], peak)
            done += 1
            report(name, done, total)
    return [inter, kept]


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
                      tables: Sequence[str] = TABLES, chains: Sequence[str] | None = None,
                      progress: Callable[[dict], None] | None = None) -> dict:
    """Evaluate both DeepCAMS stages and every chain on held-out days of ``data``.

    Args:
        data: a synthetic world or a directory of GEOS-CF (and optionally EAC4) files.
        temporal_weights, spatial_weights: weights files (None: the bundled demo weights).
        dates: the days to evaluate (None: the test days recorded in the temporal weights,
            else the data's last day).
        device: "auto", "cpu", "cuda" or "cuda:N".
        max_hours: evaluate only the first ``max_hours`` hours of those days (quick runs).
        tables: which of :data:`TABLES` to compute ("pipeline" and "pipeline_eac4" each
            give an interpolated-hours table and a ``_kept`` one).
        chains: labels of :data:`CHAINS` for the pipeline tables (None: all; e.g.
            ``["network + area", "linear + area"]`` skips the slow spatial network).
        progress: gets ``{"event": "eval", "table", "done", "total"}``.

    Returns:
        a JSON-able dict: ``data``, ``synthetic``, ``dates``, ``overlaps_training``,
        ``weights`` (per stage), ``metric_note``, ``bins``, ``tables`` (name, title, rows of
        method / n_samples / R / RMSE / MAE / PSNR / peak ratios / bins) and ``samples``.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ConfigError(f"unknown evaluation table(s) {', '.join(unknown)}; use {', '.join(TABLES)}")
    known = [c[0] for c in CHAINS]
    bad = sorted(set(chains or ()) - set(known))
    if bad:
        raise ConfigError(f"unknown pipeline chain(s) {', '.join(bad)}; use {', '.join(known)}")
    picked = [c for c in CHAINS if chains is None or c[0] in chains]
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

    m = _Methods(temporal, spatial)
    out_tables: list[_Table] = []
    if "temporal" in tables:
        out_tables.append(_temporal_table(store, m, hours, gap, report))
    if "spatial" in tables:
        out_tables.append(_spatial_table(store, m, hours, report))
    hod = (hours - hours.astype("datetime64[D]")).astype(int)
    coarse_t = hours[hod % gap == 0]
    if "pipeline" in tables:
        runs = [(np.stack([store.coarse(h) for h in coarse_t[s]]), coarse_t[s])
                for s in _segments(coarse_t, gap)]
        if runs:
            out_tables += _pipeline_tables(store, m, runs, gap, "pipeline", "area mean of the truth",
                                           report, cached=True, chains=picked)
    eac = _eac4_input(d, coarse_t) if "pipeline_eac4" in tables else None
    if eac is not None:
        runs = [(eac[0][s], eac[1][s]) for s in _segments(eac[1], gap)]
        if runs:
            out_tables += _pipeline_tables(store, m, runs, gap, "pipeline_eac4", "EAC4 files", report,
                                           chains=picked)
    trained = _trained_days(temporal, spatial)
    return {
        "data": d.description, "synthetic": d.synthetic,
        "dates": [str(x) for x in days], "hours": int(hours.size),
        "overlaps_training": any(x.item() in trained for x in days),
        "weights": {"temporal": temporal.describe(), "spatial": spatial.describe()},
        "metric_note": METRIC_NOTE, "bins": list(BINS),
        "tables": [t.summary() for t in out_tables],
        "samples": [s for t in out_tables for s in t.samples],
    }


__all__ = ["BINS", "CHAINS", "TABLES", "evaluate_deepcams", "frame_metrics", "render_evaluation",
           "summary_rows", "write_evaluation"]
