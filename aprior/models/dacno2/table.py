"""Rendering and writing DACNO2's Table 2 (plain text in the paper's layout, CSV, JSON).

The text layout follows the paper's Table 2: one column per model (CAMS-2km, Phase-1,
Phase-2, Phase-3), one row per score, panels one under the other; the best value of each
row is marked with an asterisk (lowest RMSE, highest r and R2, smallest absolute bias).
The CSV holds one row per panel, layer and model (long format); the JSON everything.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from aprior._io import atomic_path
from aprior.models.dacno2.metrics import MIN_DAYS_INTERVAL, SCORES

LABELS = {"rmse": "RMSE", "r": "r", "r2": "R2", "bias": "bias"}
CSV_FIELDS = ("panel", "layer", "reference", "model", "year", "n", "rmse", "r", "r2", "bias", "mean_model",
              "mean_ref", "fine_std", "fine_corr_truth")


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _best(score: str, values: Sequence[float]) -> int | None:
    ok = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(ok) < 2:
        return None
    if score == "rmse":
        return min(ok, key=lambda t: t[1])[0]
    if score == "bias":
        return min(ok, key=lambda t: abs(t[1]))[0]
    return max(ok, key=lambda t: t[1])[0]


def _block(title: str, rows: list[dict], columns: Sequence[str], width: int) -> list[str]:
    by = {r["model"]: r for r in rows}
    cols = [c for c in columns if c in by]
    lines = [title, f"  {'':<{width}}" + "".join(f"{c:>13}" for c in cols)]
    lines.append(f"  {'n':<{width}}" + "".join(f"{by[c]['n']:>13}" for c in cols))
    for score in SCORES:
        values = [by[c][score] for c in cols]
        best = _best(score, values)
        cells = [_num(v) + ("*" if i == best else " ") for i, v in enumerate(values)]
        lines.append(f"  {LABELS[score]:<{width}}" + "".join(f"{c:>13}" for c in cells))
    return lines


STATION_DIFFERENCE_FIELDS = ("model", "reference", "score", "n_days", "diff", "ci_low",
                             "ci_high", "days_better", "sign_p")
_STATION_SCORE_NAMES = {"rmse": "RMSE", "abs_bias": "|bias|", "r2": "R2"}


def station_difference_lines(rows: list[dict], w: int) -> list[str]:
    """Each model's station RMSE, |bias| and R2 minus the reference's, with the interval over
    days and the days on which it is the better (empty without rows)."""
    if not rows:
        return []
    ref, n_days = rows[0]["reference"], rows[0]["n_days"]
    lines = ["", f"  minus {ref}'s on the same pairs (RMSE, |bias|: negative is better; R2: "
             "positive is better); " + (f"95 % interval from resampling the {n_days} days"
                                        if n_days >= MIN_DAYS_INTERVAL else
                                        f"{n_days} days are too few for an interval"),
             f"  {'':<{w}}{'score':>8}{'difference':>28}{'days better':>16}{'sign p':>9}"]
    for r in rows:
        diff = _interval(r, "diff", 3)
        lines.append(f"  {r['model']:<{w}}{_STATION_SCORE_NAMES[r['score']]:>8}{diff:>28}"
                     f"{r['days_better']:>8d} of {r['n_days']:<4d}{_num(r['sign_p'], 3):>9}")
    return lines


def render_table2(result: dict) -> str:
    """The result of :func:`~aprior.models.dacno2.evaluate.evaluate_dacno2` as text."""
    cols, t = result["columns"], result["tables"]
    w = 12
    head = [f"Table 2: DACNO2-{result['variant'].upper()} on the test year {result['test_year']}"
            f" ({len(result['dates'])} days, {result['n_eval_cells']} evaluation station cells)",
            f"data: {result['data']}"]
    head += [f"note: {n}" for n in result["notes"]]
    for m, info in result["models"].items():
        head.append(f"{m}: {info['weights']} (preset {info['preset']}, sha256 "
                    f"{info['sha256'][:12]}); trained on: {info['trained_on']}")
    lines = [*head, ""]
    lines += _block("Against EEA evaluation stations (2 km, surface)", t["eea"]["rows"], cols, w)
    lines += station_difference_lines(t["eea"].get("differences") or [], w)
    if "truth_stations" in t:
        lines += ["", *_block("Against the truth at the evaluation station cells",
                              t["truth_stations"]["rows"], cols, w)]
    for key, title in (("cams", "Against CAMS (8 km)"), ("truth", "Against the truth (2 km)")):
        if key not in t:
            continue
        for layer in t[key]["layers"]:
            name = "all layers" if layer["layer"] == "all" else f"layer {layer['layer']}"
            lines += ["", *_block(f"{title}, {name}", layer["rows"], cols, w)]
    if "shape" in t:
        lines += ["", f"Shape: {t['shape']['title']}", *shape_lines(t["shape"]["rows"], w)]
    lines += ["", "Fine-scale structure (surface; std below 16 km, ug m-3; corr. with truth)"]
    for r in t["fine_scale"]["rows"]:
        lines.append(f"  {r['model']:<{w}}{_num(r['fine_std']):>13}{_num(r['fine_corr_truth']):>13}")
    if "bias_by_year" in t:
        lines += _years(t["bias_by_year"], cols, w)
    return "\n".join(lines)


def _years(table: dict, cols: Sequence[str], w: int) -> list[str]:
    """The per-year bias block: one sub-table per reference, years as columns + shift."""
    years = sorted({r["year"] for r in table["rows"]})
    by = {(r["reference"], r["model"], r["year"]): r for r in table["rows"]}
    lines = ["", "Mean surface bias per year (ug m-3, model - reference; training years: "
                 "validation days)"]
    for ref, title in table["references"].items():
        shift = table["shift"].get(ref, {})
        lines.append(f" {title}")
        lines.append(f"  {'':<{w}}" + "".join(f"{y:>13}" for y in years) + f"{'shift':>13}")
        for m in cols:
            if any((ref, m, y) in by for y in years):
                cells = [_num(by[(ref, m, y)]["bias"]) if (ref, m, y) in by else "-" for y in years]
                lines.append(f"  {m:<{w}}" + "".join(f"{c:>13}" for c in cells)
                             + f"{_num(shift.get(m)):>13}")
    lines.append("  shift: the test year's bias minus the other years' (a level change not learnt)")
    return lines


def _csv(fields: Sequence[str], rows: list[dict]) -> str:
    """``rows`` as CSV text with the header ``fields``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def table2_rows(result: dict) -> list[dict]:
    """Long-format rows (:data:`CSV_FIELDS`) of every panel but ``shape`` (its own CSV)."""
    out = []
    for panel, table in result["tables"].items():
        if panel == "shape":
            continue
        for layer in table.get("layers", [{"layer": "surface", "rows": table.get("rows", [])}]):
            for r in layer["rows"]:
                out.append({"panel": panel, "layer": layer["layer"],
                            **{k: r.get(k, "") for k in CSV_FIELDS if k not in ("panel", "layer")}})
    return out


def write_table2(result: dict, out_dir: str | os.PathLike[str], stem: str = "table2") -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.json``, ``<stem>.txt``, with station pairs
    ``<stem>_station_differences.csv`` (each model against CAMS-2km, with intervals over
    days) and on a synthetic world ``<stem>_shape.csv`` into ``out_dir`` (created), each
    atomically; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {".csv": _csv(CSV_FIELDS, table2_rows(result)),
             ".json": json.dumps(result, indent=1) + "\n", ".txt": render_table2(result) + "\n"}
    if "shape" in result["tables"]:
        texts["_shape.csv"] = _csv(SHAPE_FIELDS, result["tables"]["shape"]["rows"])
    if result["tables"]["eea"].get("differences"):
        texts["_station_differences.csv"] = _csv(STATION_DIFFERENCE_FIELDS,
                                                  result["tables"]["eea"]["differences"])
    paths = []
    for suffix, text in texts.items():
        path = out / f"{stem}{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


# -- the closed loop (aprior.models.dacno2.closed_loop) ----------------------------------
CLOSED_LOOP_FIELDS = ("apriori", "subset", "n", "bias_pct", "mare_pct", "rmse", "r")
SHAPE_FIELDS = ("apriori", "ratio_50m_surface", "share_0_500m", "share_corr_truth",
                "share_diff_clean", "share_diff_polluted", "top_diff_clean",
                "top_diff_polluted", "top_level_diff_clean", "top_level_diff_polluted",
                "column_diff_clean", "column_diff_polluted", "column_corr_truth",
                "detail_corr_truth", "detail_std_ratio")


def shape_lines(rows: list[dict], w: int) -> list[str]:
    """The shape and spatial-detail block (:data:`SHAPE_FIELDS`), one line per field, with
    its footnote; ``w``: the width of the name column."""
    lines = [f"{'a-priori':<{w}}{'50m/sfc':>10}{'0-500m share':>14}{'r(share, truth)':>17}"
             f"{'share-truth clean':>19}{'polluted':>10}{'top/mean clean %':>18}{'polluted':>10}"
             f"{'top clean %':>13}{'column clean %':>16}"
             f"{'r(column)':>11}{'r(detail)':>11}{'detail sd':>11}"]
    for s in rows:
        lines.append(f"{s['apriori']:<{w}}{_num(s['ratio_50m_surface'], 3):>10}"
                     f"{_num(s['share_0_500m'], 3):>14}{_num(s['share_corr_truth'], 3):>17}"
                     f"{_num(s.get('share_diff_clean'), 2):>19}{_num(s.get('share_diff_polluted'), 2):>10}"
                     f"{_num(s.get('top_diff_clean'), 1):>18}{_num(s.get('top_diff_polluted'), 1):>10}"
                     f"{_num(s.get('top_level_diff_clean'), 1):>13}{_num(s.get('column_diff_clean'), 1):>16}"
                     f"{_num(s.get('column_corr_truth'), 3):>11}{_num(s.get('detail_corr_truth'), 3):>11}"
                     f"{_num(s.get('detail_std_ratio'), 3):>11}")
    lines.append("share-truth: the 0-500 m share minus the truth's, percentage points; top/mean: the "
                 "5 km level over the 0-5 km mean against the truth's, %, and its two parts, the 5 km "
                 "level and the 0-5 km column against the truth's, %; all in the cells of the "
                 "clean / polluted tercile of the true 0-5 km column")
    return lines


DIFFERENCE_FIELDS = ("apriori", "reference", "subset", "n_days", "mare_diff", "ci_low",
                     "ci_high", "days_better", "sign_p")


def _interval(row: dict, key: str = "mare_diff", digits: int = 2) -> str:
    """``+0.41 [-0.10, +0.90]``: a difference ``row[key]`` and its interval (a MARE
    difference in points by default)."""
    if row["ci_low"] != row["ci_low"]:  # NaN: too few days for an interval
        return f"{row[key]:+.{digits}f}"
    return f"{row[key]:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"


def difference_lines(rows: list[dict], w: int) -> list[str]:
    """The block of MARE differences from the reference (:data:`DIFFERENCE_FIELDS`): overall,
    clean and polluted, with the days on which each a-priori is the better; empty without
    rows."""
    if not rows:
        return []
    get = {(r["apriori"], r["subset"]): r for r in rows}
    ref, n_days = rows[0]["reference"], rows[0]["n_days"]
    lines = [f"MARE minus {ref}'s on the same pixels, percentage points (negative: closer to the "
             + (f"truth); 95 % interval from resampling the {n_days} days:" if n_days >= MIN_DAYS_INTERVAL
                else f"truth); {n_days} days are too few for an interval (at least {MIN_DAYS_INTERVAL}):"),
             "", f"{'a-priori':<{w}}{'all':>26}{'clean':>26}{'polluted':>26}{'days better':>14}{'sign p':>9}"]
    for name in dict.fromkeys(r["apriori"] for r in rows):
        a = get[(name, "all")]
        lines.append(f"{name:<{w}}" + "".join(f"{_interval(get[(name, sub)]):>26}"
                                            for sub in ("all", "clean", "polluted"))
                     + f"{a['days_better']:>8d} of {a['n_days']:<4d}{_num(a['sign_p'], 3):>8}")
    return lines


def render_closed_loop(result: dict) -> str:
    """The closed-loop scores as text: one row per a-priori, MARE/bias by tercile, then
    RMSE and r over all pixels, then the shape diagnostics."""
    rows = result["rows"]
    names = list(dict.fromkeys(r["apriori"] for r in rows))
    get = {(r["apriori"], r["subset"]): r for r in rows}
    w = max(len(n) for n in names) + 2
    lo, hi = result["tercile_edges"]
    lines = [f"Closed loop: retrieved S5P column against the TRUE column, {result['n_pixels']} pixels "
             f"(qa >= {result['qa_min']}) of {len(result['orbits'])} held-out orbit(s) on "
             f"{len(result['days'])} day(s); SYNTHETIC world",
             f"terciles of the true column: clean < {lo:.2f} <= middle < {hi:.2f} <= polluted "
             "(1e15 molec cm-2)", "",
             f"{'a-priori':<{w}}" + "".join(f"{h:>10}" for h in (
                 "MARE %", "clean", "middle", "polluted", "bias %", "clean", "polluted",
                 "RMSE", "r"))]
    for n in names:
        a = get[(n, "all")]
        vals = [a["mare_pct"], get[(n, "clean")]["mare_pct"], get[(n, "middle")]["mare_pct"],
                get[(n, "polluted")]["mare_pct"], a["bias_pct"], get[(n, "clean")]["bias_pct"],
                get[(n, "polluted")]["bias_pct"]]
        lines.append(f"{n:<{w}}" + "".join(f"{_num(v, 2):>10}" for v in vals)
                     + f"{_num(a['rmse'], 3):>10}{_num(a['r'], 4):>10}")
    diff = difference_lines(result.get("differences") or [], w)
    lines += ["", "RMSE in 1e15 molec cm-2.", *([""] + diff if diff else []),
              "", "Shape and spatial detail of the a-priori fields "
              "(11-13 UTC, 2 km; column: 0-5 km; detail: the column minus its 32 km block mean):", "",
              *shape_lines(result["shape"], w)]
    return "\n".join(lines)


def _difference_panel(ax, diffs: dict, names: list[str]) -> None:
    """MARE minus the reference's per a-priori and tercile, with the intervals over days."""
    import numpy as np

    x = np.arange(len(names))
    for k, sub in enumerate(("all", "clean", "polluted")):
        rows = [diffs[(n, sub)] for n in names]
        mid = np.array([r["mare_diff"] for r in rows])
        lo, hi = (np.array([r[key] for r in rows]) for key in ("ci_low", "ci_high"))
        err = np.vstack([mid - lo, hi - mid]) if np.all(np.isfinite(lo)) else None
        ax.errorbar(x + (k - 1) * 0.22, mid, yerr=err, fmt="o", ms=4, capsize=3, label=sub)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    first = next(iter(diffs.values()))
    ref, n_days = first["reference"], first["n_days"]
    ax.set_title(f"MARE minus {ref}'s, points (95 % interval over {n_days} days)"
                 if err is not None else f"MARE minus {ref}'s, points ({n_days} days: no interval)",
                 fontsize=9)
    ax.legend(fontsize=8)


def _closed_loop_figure(result: dict, path: Path) -> None:
    """MARE and bias by tercile of the true column, one bar group per a-priori (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    names = [n for n in dict.fromkeys(r["apriori"] for r in rows) if n != "TM5"]
    get = {(r["apriori"], r["subset"]): r for r in rows}
    diffs = {(d["apriori"], d["subset"]): d for d in result.get("differences") or []}
    fig, axes = plt.subplots(1, 3 if diffs else 2, figsize=(16 if diffs else 11, 4.2),
                             constrained_layout=True)
    x = np.arange(len(names))
    subsets = ("all", "clean", "middle", "polluted")
    for ax, key, title in zip(axes, ("mare_pct", "bias_pct"), ("MARE %", "bias %"), strict=False):
        for k, sub in enumerate(subsets):
            ax.bar(x + (k - 1.5) * 0.2, [get[(n, sub)][key] for n in names], 0.2, label=sub)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{title} against the true column (TM5: "
                     f"{get[('TM5', 'all')][key]:.1f} %)", fontsize=9)
        ax.axhline(0.0, color="k", lw=0.5)
    axes[0].legend(fontsize=8, title="truth tercile", title_fontsize=8)
    if diffs:
        _difference_panel(axes[2], diffs, [n for n in names if (n, "all") in diffs])
    fig.suptitle(f"SYNTHETIC world closed loop: {result['n_pixels']} pixels, "
                 f"{len(result['days'])} held-out day(s)", fontsize=10)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_closed_loop(result: dict, out_dir: str | os.PathLike[str], stem: str = "closed_loop") -> list[Path]:
    """Write ``<stem>.csv`` (scores, long format), ``<stem>_shape.csv``,
    ``<stem>_differences.csv`` (from CAMS-like, with intervals over days),
    ``<stem>_days.csv`` (each day's MARE per a-priori), ``<stem>.json``,
    ``<stem>.txt`` and ``<stem>.png`` into ``out_dir`` (created), each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {".csv": _csv(CLOSED_LOOP_FIELDS, result["rows"]),
             "_shape.csv": _csv(SHAPE_FIELDS, result["shape"]),
             "_differences.csv": _csv(DIFFERENCE_FIELDS, result.get("differences") or []),
             "_days.csv": _csv(("day", "apriori", "n", "mare_pct"), result.get("by_day") or [])}
    texts[".json"] = json.dumps(result, indent=1) + "\n"
    texts[".txt"] = render_closed_loop(result) + "\n"
    paths = []
    for suffix, text in texts.items():
        path = out / f"{stem}{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths.append(path)
    png = out / f"{stem}.png"
    with atomic_path(png) as tmp:
        _closed_loop_figure(result, Path(tmp))
    return [*paths, png]
