"""Rendering and writing DeepCAMS evaluation results (plain-text tables, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from aprior._io import atomic_path
from aprior.errors import ConfigError


def _fmt(x: float, digits: int) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_evaluation(result: dict) -> str:
    """Plain-text tables of :func:`~aprior.models.deepcams.evaluate.evaluate_deepcams`'s result."""
    lines = []
    if result.get("synthetic"):
        lines.append("SYNTHETIC data: skill on a synthetic world is not real-world skill.")
    lines.append(f"data: {result.get('data')}")
    lines.append(f"days: {', '.join(result.get('dates', []))} ({result.get('hours')} hours)"
                 + ("  WARNING: these days were used in training" if result.get("overlaps_training") else ""))
    for stage, w in result.get("weights", {}).items():
        lines.append(f"{stage} weights: {w.get('weights')} ({w.get('model')}, preset {w.get('preset')}, "
                     f"sha256 {str(w.get('sha256'))[:12]}); trained on: {w.get('trained_on')}")
    lines.append(f"metrics: {result.get('metric_note')}")
    for table in result.get("tables", []):
        rows = table["rows"]
        width = max(len("method"), *(len(r["method"]) for r in rows))
        lines += ["", table["title"],
                  f"  {'method':<{width}}  {'n':>4}  {'R':>8}  {'RMSE':>8}  {'MAE':>8}",
                  "  " + "-" * (width + 36)]
        lines += [f"  {r['method']:<{width}}  {r['n_samples']:>4}  {_fmt(r['R'], 5):>8}  "
                  f"{_fmt(r['RMSE'], 4):>8}  {_fmt(r['MAE'], 4):>8}" for r in rows]
    return "\n".join(lines)


def summary_rows(result: dict) -> list[dict]:
    """One row per table and method: table, method, n_samples, R, RMSE, MAE."""
    return [{"table": t["name"], **r} for t in result.get("tables", []) for r in t["rows"]]


def write_evaluation(result: dict, path: str | os.PathLike[str]) -> Path:
    """Write the result atomically: ``.json`` (everything, per-sample metrics included) or
    ``.csv`` (the summary rows); ConfigError for another suffix."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        text = json.dumps(result, indent=1, allow_nan=True) + "\n"
    elif suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, ["table", "method", "n_samples", "R", "RMSE", "MAE"], lineterminator="\n")
        w.writeheader()
        w.writerows(summary_rows(result))
        text = buf.getvalue()
    else:
        raise ConfigError("the evaluation output must end in .json or .csv", target)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
