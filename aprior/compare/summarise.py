"""Turn the streamed sums into the statistics dict, and the dict into summary lines.

Per pixel (:class:`~aprior.compare.stats.PixelStats`): every column set, every
difference (absolute and relative) and, with truth, every bias and ratio, per region.
Per grid cell (:class:`~aprior.compare.binning.GridAccumulator`): the absolute
and relative differences of the mean maps, over the cells whose centre lies in a region
(the statistic behind the regional figures of the DACNO2 paper, Fig. 7c).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from aprior.compare.binning import GridAccumulator
from aprior.compare.plan import Plan, relative_difference_of_means
from aprior.compare.stats import PixelStats
from aprior.grids.grid import lonlat_of

NOTES: tuple[str, ...] = (
    "Pixels: qa_value ≥ the threshold and every compared column finite; all sets are "
    "compared on the same pixels. A pixel belongs to a region when its centre does.",
    "Absolute difference = test − reference (molecules cm-2); relative difference = "
    "100 · (test − reference) / reference per pixel (%). For a reprocessed column against "
    "the original this is 100 · (M_trop / M_trop' − 1), whatever the sign of the column.",
    "Δ of means = 100 · (mean test − mean reference) / mean reference over the same pixels.",
    "Percentiles: exact order statistics of the float32-rounded values, linear "
    "interpolation between ranks (numpy's default, Hyndman & Fan type 7).",
    "Maps: pixel footprints binned by overlap area onto a regular lon/lat grid; a cell's "
    "value is the overlap-area-weighted mean of the pixels touching it. Difference maps are "
    "differences of the mean maps; the relative difference map is 100 · (mean test − mean "
    "reference) / mean reference per cell. Per-cell statistics use the cells whose centre "
    "lies in the region.",
    "Truth: bias = mean(column − true column), RMSE = sqrt(mean((column − true column)²)), "
    "median ratio = median(column / true column) over pixels with a positive true column.",
)


def _cell_stats(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"n": 0, "mean": math.nan, "median": math.nan, "p05": math.nan, "p95": math.nan}
    p05, med, p95 = np.percentile(v, [5.0, 50.0, 95.0])
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(med), "p05": float(p05),
            "p95": float(p95)}


def pixel_statistics(stats: PixelStats, plan: Plan) -> dict:
    """columns, differences and truth sections of the statistics dict."""
    columns = {s: stats.summary(f"col:{s}") for s in plan.sets}
    differences = []
    for test, ref in plan.pairs:
        absolute = stats.summary(f"abs:{test}:{ref}")
        relative = stats.summary(f"rel:{test}:{ref}")
        regions = {}
        for r in stats.regions:
            m_test, m_ref = columns[test][r]["mean"], columns[ref][r]["mean"]
            regions[r] = {"absolute": absolute[r], "relative": relative[r],
                          "mean_test": m_test, "mean_reference": m_ref,
                          "relative_difference_of_means": relative_difference_of_means(m_test,
                                                                                      m_ref)}
        differences.append({"key": Plan.pair_key(test, ref), "test": test, "reference": ref,
                            "regions": regions})
    out: dict = {"columns": columns, "differences": differences, "truth": None}
    if plan.truth:
        truth_col = stats.summary("col:truth")
        columns["truth"] = truth_col
        sets = {}
        for s in plan.sets:
            diff = stats.summary(f"bias:{s}")
            ratio = stats.summary(f"ratio:{s}")
            sets[s] = {r: {"n": diff[r]["n"], "bias": diff[r]["mean"], "rmse": diff[r]["rms"],
                           "relative_bias": relative_difference_of_means(
                               diff[r]["mean"] + truth_col[r]["mean"], truth_col[r]["mean"]),
                           "median_ratio": ratio[r]["median"], "difference": diff[r],
                           "ratio": ratio[r]} for r in stats.regions}
        out["truth"] = {"sets": sets}
    return out


def difference_maps(acc: GridAccumulator, test: str, ref: str) -> tuple[np.ndarray, np.ndarray]:
    """(absolute, relative %) difference of two mean maps, each ``(ny, nx)``."""
    m_test, m_ref = acc.mean(f"col:{test}"), acc.mean(f"col:{ref}")
    absolute = m_test - m_ref
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(m_ref != 0, 100.0 * absolute / m_ref, np.nan)
    return absolute, relative


def gridded_statistics(acc: GridAccumulator, plan: Plan,
                       regions: Sequence[tuple[str, object]]) -> list[dict]:
    """Per-region statistics of the difference maps over the cells with pixels."""
    lon, lat = lonlat_of(acc.grid)
    inside = {name: np.asarray(reg.contains(lon, lat)) for name, reg in regions}
    out = []
    for test, ref in plan.pairs:
        absolute, relative = difference_maps(acc, test, ref)
        out.append({"key": Plan.pair_key(test, ref), "test": test, "reference": ref,
                    "regions": {name: {"absolute": _cell_stats(absolute[m]),
                                       "relative": _cell_stats(relative[m])}
                                for name, m in inside.items()}})
    return out


def _fmt_pct(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.1f} %"


def _fmt_col(v: float | None, sign: bool = True) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:+.2e}" if sign else f"{v:.2e}"


def summary_lines(stats: Mapping) -> list[str]:
    """Three short lines: the main difference in the first region, per region, vs truth."""
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    d = stats["differences"][0]
    regions = list(d["regions"])
    first = d["regions"][regions[0]]
    rel = first["relative"]
    test, ref = labels[d["test"]], labels[d["reference"]]
    line1 = (f"{test} vs {ref}, {regions[0]} ({rel['n']:,} px): mean {_fmt_pct(rel['mean'])}, "
             f"median {_fmt_pct(rel['median'])}, p5..p95 {_fmt_pct(rel['p05'])}.."
             f"{_fmt_pct(rel['p95'])}; Δ of means {_fmt_pct(first['relative_difference_of_means'])}")
    others = [f"{r} {_fmt_pct(d['regions'][r]['relative']['mean'])}" for r in regions[1:]]
    line2 = ("mean relative difference by region: " + ", ".join(others)) if others else \
        f"mean absolute difference: {_fmt_col(first['absolute']['mean'])} molecules cm-2"
    truth = stats.get("truth")
    if truth:
        parts = []
        for s, per_region in truth["sets"].items():
            t = per_region[regions[0]]
            parts.append(f"{labels[s]} bias {_fmt_col(t['bias'])} "
                         f"({_fmt_pct(t['relative_bias'])}), RMSE {_fmt_col(t['rmse'], sign=False)}")
        line3 = f"vs truth ({regions[0]}, molecules cm-2): " + "; ".join(parts)
    else:
        line3 = f"report: {stats.get('report', 'report.html')}"
    return [line1, line2, line3]
