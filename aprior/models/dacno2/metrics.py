"""Agreement statistics of Table 2 and the fine-scale structure of a field.

:class:`PairStats` accumulates model/reference pairs in one streaming pass (float64 sums,
NaN pairs skipped) and gives the paper's four scores:

- RMSE ``sqrt(mean((m - o)^2))``, in the unit of the data (ug m-3);
- Pearson's ``r``;
- ``R2 = 1 - sum((m - o)^2) / sum((o - mean(o))^2)``, the coefficient of determination
  of the model as a predictor of the reference (it can be negative; it is not ``r^2``);
- bias ``mean(m - o)`` (model minus reference).

:func:`fine_scale_std` measures how much spatial detail a field has below a block size:
the standard deviation of the field minus its block mean (16 km blocks of the 2 km grid
by default). Bilinearly interpolated CAMS has almost none; a model that resolves towns and
roads has more. :func:`fine_scale_corr` says whether that detail is in the right places
(the correlation of two fields' sub-block anomalies).

:class:`ShapeStats` measures a profile field's vertical shape and the spatial detail of its
0-5 km column against the truth, the quantities that decide whether it is a good a-priori
(``docs/dacno2.md``, "The closed loop"): the ratio of the region mean at 50 m to that at
the surface; the mean share of the 0-top column (trapezoids over the levels) in the lowest
500 m and its correlation over cells and days with the truth's; in the cells of the lowest
and the highest tercile of the true column, that share minus the truth's (percentage
points) and the top level over the column mean against the truth's (%; a retrieval's
constant-VMR extension carries the top level's mixing ratio up to the tropopause, where
the averaging kernel is largest); the correlation of the column with the truth's, the same
for its departure from its own 32 km block mean (the detail a 32 km model cannot have),
and the standard deviation of that departure relative to the truth's (below 1: smoother).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aprior.grids.regrid import block_mean

#: the four scores, in the order of the paper's Table 2
SCORES = ("rmse", "r", "r2", "bias")


@dataclass
class PairStats:
    """Streaming sums of model/reference pairs.

    Attributes:
        n: number of pairs.
        sums: running float64 sums ``m, o, m^2, o^2, m o, (m - o)^2``.
    """

    n: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(6, dtype=np.float64))

    def add(self, model: np.ndarray, ref: np.ndarray) -> PairStats:
        """Add pairs.

        Args:
            model: any shape, ug m-3 (or any unit shared with ``ref``).
            ref: the same shape. Pairs where either value is NaN are skipped.

        Returns:
            self.
        """
        m = np.asarray(model, dtype=np.float64).ravel()
        o = np.asarray(ref, dtype=np.float64).ravel()
        if m.shape != o.shape:
            raise ValueError(f"model and reference differ in size: {m.size} != {o.size}")
        ok = np.isfinite(m) & np.isfinite(o)
        m, o = m[ok], o[ok]
        d = m - o
        self.n += int(m.size)
        self.sums += np.array([m.sum(), o.sum(), (m * m).sum(), (o * o).sum(), (m * o).sum(),
                               (d * d).sum()])
        return self

    def merge(self, other: PairStats) -> PairStats:
        """Add another accumulator's pairs; returns self."""
        self.n += other.n
        self.sums += other.sums
        return self

    def scores(self) -> dict[str, float]:
        """``{"n", "rmse", "r", "r2", "bias", "mean_model", "mean_ref"}``; NaN where undefined."""
        nan = float("nan")
        if self.n == 0:
            return {"n": 0, **dict.fromkeys(SCORES, nan), "mean_model": nan, "mean_ref": nan}
        n = float(self.n)
        sm, so, smm, soo, smo, sdd = self.sums
        mm, mo = sm / n, so / n
        var_m = max(smm / n - mm * mm, 0.0)
        var_o = max(soo / n - mo * mo, 0.0)
        cov = smo / n - mm * mo
        r = cov / math.sqrt(var_m * var_o) if var_m > 0 and var_o > 0 else nan
        sst = var_o * n
        return {"n": self.n, "rmse": math.sqrt(max(sdd / n, 0.0)),
                "r": float(np.clip(r, -1.0, 1.0)) if math.isfinite(r) else nan,
                "r2": 1.0 - sdd / sst if sst > 0 else nan, "bias": mm - mo,
                "mean_model": mm, "mean_ref": mo}


#: fewer days than this give no bootstrap interval: with so few blocks a bootstrap
#: understates the spread (the day counts and sign tests need no minimum)
MIN_DAYS_INTERVAL = 8


def day_resamples(n_days: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_days)`` multiplicities of the days in ``n_boot`` bootstrap resamples
    (days drawn with replacement, ``n_days`` per resample; seeded, so reruns agree)."""
    if n_days == 0:
        return np.zeros((n_boot, 0))
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_days, np.full(n_days, 1.0 / n_days), size=n_boot).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``values`` (NaNs ignored)."""
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.nanpercentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def sign_test(better: int, worse: int) -> float:
    """Two-sided sign-test p-value of ``better`` against ``worse`` (ties left out); NaN
    without untied days."""
    from scipy.stats import binomtest

    return float(binomtest(better, better + worse).pvalue) if better + worse else float("nan")


def _sum_scores(n: np.ndarray, sums: np.ndarray) -> dict[str, np.ndarray]:
    """RMSE, R2 and |bias| from pair counts ``(...,)`` and :class:`PairStats` sums
    ``(..., 6)``, as :meth:`PairStats.scores` computes them; NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sm, so, _, soo, _, sdd = np.moveaxis(sums, -1, 0)
        sst = soo - so * so / n
        return {"rmse": np.sqrt(np.maximum(sdd / n, 0.0)),
                "abs_bias": np.abs((sm - so) / n),
                "r2": np.where(sst > 0, 1.0 - sdd / np.where(sst > 0, sst, 1.0), np.nan)}


#: station scores compared day-block-wise, and the sign of "better" for each
STATION_DIFFERENCES = {"rmse": -1.0, "abs_bias": -1.0, "r2": 1.0}


def station_differences(per_day: dict[str, list[PairStats]], reference: str, *,
                        n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> list[dict]:
    """Each model's station scores minus the reference's, with their uncertainty over days.

    The pairs of one day share its weather, so the interval comes from resampling whole
    days (a paired block bootstrap of the pooled sums; :data:`MIN_DAYS_INTERVAL` days at
    least, else NaN). ``days_better`` counts the days on which the model's own score of the
    day is the better (lower RMSE and |bias|, higher R2), ``sign_p`` is its sign test.

    Args:
        per_day: model -> one :class:`PairStats` per day (the same days for every model).
        reference: the model to compare against (a key of ``per_day``).

    Returns:
        rows (model, reference, score, n_days, diff, ci_low, ci_high, days_better, sign_p)
        for every model but the reference and every score of :data:`STATION_DIFFERENCES`:
        ``diff`` = model minus reference on the pooled pairs, in the score's unit.
    """
    if reference not in per_day:
        return []

    def stack(model: str) -> tuple[np.ndarray, np.ndarray]:
        days = per_day[model]
        return (np.array([d.n for d in days], np.float64),
                np.array([d.sums for d in days], np.float64).reshape(len(days), 6))

    n_ref, s_ref = stack(reference)
    has = n_ref > 0
    draws = day_resamples(int(has.sum()), n_boot, seed)
    ref_pool, ref_day = _sum_scores(n_ref.sum(), s_ref.sum(0)), _sum_scores(n_ref[has], s_ref[has])
    ref_boot = _sum_scores(draws @ n_ref[has], draws @ s_ref[has])
    rows = []
    for model in per_day:
        if model == reference:
            continue
        n, s = stack(model)
        pool, day, boot = (_sum_scores(n.sum(), s.sum(0)), _sum_scores(n[has], s[has]),
                           _sum_scores(draws @ n[has], draws @ s[has]))
        for score, sign in STATION_DIFFERENCES.items():
            gap = sign * (day[score] - ref_day[score])
            lo = hi = float("nan")
            if has.sum() >= MIN_DAYS_INTERVAL:
                lo, hi = percentile_interval(boot[score] - ref_boot[score], level)
            better, worse = int(np.sum(gap > 0)), int(np.sum(gap < 0))
            rows.append({"model": model, "reference": reference, "score": score,
                         "n_days": int(has.sum()), "diff": float(pool[score] - ref_pool[score]),
                         "ci_low": lo, "ci_high": hi, "days_better": better,
                         "sign_p": sign_test(better, worse)})
    return rows


def block_anomaly(field2d: np.ndarray, block: int) -> np.ndarray:
    """The field minus the mean of its ``block x block`` cell block.

    Args:
        field2d: ``(..., ny, nx)``; the part of the grid beyond the last whole block is
            dropped.
        block: block side in cells (8 = 16 km on the 2 km grid).

    Returns:
        ``(..., block * (ny // block), block * (nx // block))`` float64.
    """
    a = np.asarray(field2d, dtype=np.float64)
    ny, nx = a.shape[-2:]
    by, bx = ny // block, nx // block
    if by == 0 or bx == 0:
        raise ValueError(f"a {ny} x {nx} field holds no whole {block} x {block} block")
    a = a[..., :by * block, :bx * block]
    blocks = a.reshape(*a.shape[:-2], by, block, bx, block)
    mean = blocks.mean(axis=(-3, -1), keepdims=True)
    return (blocks - mean).reshape(a.shape)


def fine_scale_std(field2d: np.ndarray, block: int = 8) -> float:
    """Standard deviation (ug m-3) of ``field2d`` minus its ``block``-cell block means:
    the spatial variability below the block size (16 km for ``block=8`` at 2 km).

    Args:
        field2d: ``(ny, nx)`` (or ``(t, ny, nx)``, pooled) ug m-3.
    """
    return float(np.sqrt(np.mean(block_anomaly(field2d, block) ** 2)))


def fine_scale_corr(field2d: np.ndarray, reference: np.ndarray, block: int = 8) -> float:
    """Correlation of the sub-block anomalies of two fields (is the fine detail where the
    reference has it?). Shapes as :func:`fine_scale_std`; NaN if either is flat."""
    a = block_anomaly(field2d, block).ravel()
    b = block_anomaly(reference, block).ravel()
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return float("nan")
    return float(np.mean(a * b) / (sa * sb))


def coarsened(no2: np.ndarray, factor: int) -> np.ndarray:
    """``(..., ny, nx)`` block means over ``factor x factor`` cells, back on the same grid
    (edge blocks are the partial blocks that remain)."""
    ny, nx = no2.shape[-2:]
    py, px = -ny % factor, -nx % factor
    pad = [(0, 0)] * (no2.ndim - 2) + [(0, py), (0, px)]
    big = np.pad(no2.astype(np.float64), pad, constant_values=np.nan)
    means = block_mean(big, factor, skipna=True)
    full = np.repeat(np.repeat(means, factor, axis=-2), factor, axis=-1)
    return full[..., :ny, :nx].astype(np.float32)


# -- the vertical shape and spatial detail of profile fields (the closed loop, Table 2) --
DETAIL_KM = 32  # the block size of the spatial-detail diagnostic


def column_stats(f: np.ndarray, heights: np.ndarray, ok: np.ndarray, cells: int,
                 top: float = 500.0) -> dict[str, np.ndarray]:
    """Per-cell quantities of a field ``(z, ny, nx)`` at ``heights`` (m), over the cells
    ``ok``, from one pass of trapezoids: ``share`` (of the 0-``heights[-1]`` column below
    ``top``), ``col`` (that column, field units x m), ``top`` (the top level over the column
    mean) and ``det`` (the column minus its own ``cells x cells`` block means)."""
    dz = np.diff(heights)[:, None, None]
    seg = 0.5 * (f[1:] + f[:-1]) * dz
    total = seg.sum(axis=0)
    col = np.where(ok, total, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, seg[heights[1:] <= top + 1e-6].sum(axis=0) / total, np.nan)
        top_ratio = f[-1] * (heights[-1] - heights[0]) / col
    return {"share": share[ok], "col": col[ok], "top": top_ratio[ok],
            "det": (col - coarsened(col, cells))[ok]}


def pooled_corr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Pearson r of the pooled (concatenated) arrays over their finite pairs; NaN with fewer
    than 3 pairs or a constant side."""
    x, y = np.concatenate(a), np.concatenate(b)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


class ShapeStats:
    """Shape and spatial-detail diagnostics of fields ``(z, ny, nx)`` on the 2 km grid at
    ``heights`` (m) against the truth, accumulated over days (module docstring; the
    closed loop and, on a synthetic world, Table 2 report them)."""

    KEYS = ("s0", "s50", "share", "truth_share", "col", "truth_col", "det", "truth_det", "top",
            "truth_top")

    def __init__(self, heights: np.ndarray, detail_cells: int = DETAIL_KM // 2) -> None:
        self.heights = np.asarray(heights, np.float64)
        self.detail_cells = detail_cells
        self.k50 = int(np.argmin(np.abs(self.heights - 50.0)))  # the level nearest 50 m
        self.acc: dict[str, dict[str, list]] = {}

    def add(self, name: str, field: np.ndarray, truth: np.ndarray) -> None:
        a = self.acc.setdefault(name, {k: [] for k in self.KEYS})
        ok = np.all(np.isfinite(field), axis=0) & np.all(np.isfinite(truth), axis=0)
        a["s0"].append(float(field[0][ok].mean()))
        a["s50"].append(float(field[self.k50][ok].mean()))
        for prefix, f in (("", field), ("truth_", truth)):
            for key, v in column_stats(f, self.heights, ok, self.detail_cells).items():
                a[prefix + key].append(v)

    def rows(self) -> list[dict]:
        out = []
        for name, a in self.acc.items():
            det, tdet = np.concatenate(a["det"]), np.concatenate(a["truth_det"])
            tsd = float(np.nanstd(tdet))
            sd = float(np.nanstd(det)) / tsd if tsd > 0 else float("nan")
            # a field without detail (a block mean of >= 32 km) has only rounding noise there
            dcorr = pooled_corr(a["det"], a["truth_det"]) if sd > 1e-4 else float("nan")
            share, tshare = np.concatenate(a["share"]), np.concatenate(a["truth_share"])
            out.append({"apriori": name, "ratio_50m_surface": float(np.sum(a["s50"]) / np.sum(a["s0"])),
                        "share_0_500m": float(np.nanmean(share)),
                        "share_corr_truth": pooled_corr(a["share"], a["truth_share"]),
                        **shape_by_tercile(share, tshare, np.concatenate(a["truth_col"]),
                                           np.concatenate(a["top"]), np.concatenate(a["truth_top"]),
                                           np.concatenate(a["col"])),
                        "column_corr_truth": pooled_corr(a["col"], a["truth_col"]),
                        "detail_corr_truth": dcorr, "detail_std_ratio": sd})
        return out


def shape_by_tercile(share: np.ndarray, truth_share: np.ndarray, truth_col: np.ndarray,
                     top: np.ndarray, truth_top: np.ndarray, col: np.ndarray) -> dict:
    """Shape errors over the cells of the lowest and the highest tercile of the true 0-5 km
    column: ``share_diff_clean`` / ``_polluted``, the mean 0-500 m share minus the truth's
    (percentage points); ``top_diff_clean`` / ``_polluted``, the top level over the 0-5 km
    mean (the mixing ratio that the reprocessing's constant-VMR extension carries up to the
    tropopause, where the averaging kernel is largest) against the truth's, as
    ``100 (sum top / sum truth_top - 1)`` %. A share too high, or a top too low, means
    too little NO2 aloft for the air-mass factor, so a retrieved column biased high.
    The ratio's two parts: ``top_level_diff_*``, the 5 km level itself against the truth's,
    and ``column_diff_*``, the 0-5 km column (``col``, per cell) against the truth's, both
    ``100 (sum / sum truth - 1)`` %. A top/mean too low from a column too high, with the
    top right, is a field too smooth across the grid rather than a top too low."""
    ok = np.isfinite(share) & np.isfinite(truth_share) & np.isfinite(truth_col)
    ok &= np.isfinite(top) & np.isfinite(truth_top) & np.isfinite(col)
    keys = ("share_diff_clean", "share_diff_polluted", "top_diff_clean", "top_diff_polluted",
            "top_level_diff_clean", "top_level_diff_polluted", "column_diff_clean",
            "column_diff_polluted")
    if ok.sum() < 3:
        return dict.fromkeys(keys, float("nan"))
    lo, hi = np.quantile(truth_col[ok], [1 / 3, 2 / 3])
    d = 100.0 * (share - truth_share)
    out = {}
    for name, m in (("clean", ok & (truth_col < lo)), ("polluted", ok & (truth_col >= hi))):
        out[f"share_diff_{name}"] = float(np.mean(d[m]))
        out[f"top_diff_{name}"] = float(100.0 * (np.sum(top[m]) / np.sum(truth_top[m]) - 1.0))
        # top = level x height / column, so level ~ top x column
        out[f"top_level_diff_{name}"] = float(100.0 * (np.sum(top[m] * col[m])
                                                       / np.sum(truth_top[m] * truth_col[m]) - 1.0))
        out[f"column_diff_{name}"] = float(100.0 * (np.sum(col[m]) / np.sum(truth_col[m]) - 1.0))
    return out
