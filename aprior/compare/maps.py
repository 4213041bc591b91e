"""Figures of a comparison: mean column maps, difference maps, difference histograms.

Matplotlib's object API with the Agg canvas (no pyplot, no global state, no display).
Maps are drawn as images of the regular lon/lat grid with an aspect of
``1 / cos(mid latitude)``, cells without pixels in grey, the compared regions outlined,
over GSHHS coastlines and country borders (:mod:`aprior.compare.coastlines`, offline).
Columns are shown in 1e15 molecules cm-2 on one colour scale shared by all panels (0 to the 99th percentile);
differences use a diverging colour map centred at 0 with symmetric limits at the 98th
percentile of their magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from aprior.compare import coastlines

SCALE = 1e15
COLUMN_UNIT = "10$^{15}$ molecules cm$^{-2}$"
_MISSING = {"viridis": "#e4e4e4"}  # cells without pixels; darker under diverging maps
_MISSING_DIVERGING = "#9e9e9e"
#: Regions with fewer pixels in a histogram's range are left out of it (too noisy to read).
MIN_HISTOGRAM_PIXELS = 30


@dataclass(frozen=True)
class MapFrame:
    """Where maps are drawn.

    Attributes:
        lon_edges: ``(nx + 1,)`` degrees east; lat_edges: ``(ny + 1,)`` degrees north.
        regions: (name, region) pairs to outline; region has ``bbox`` and ``polygon``.
    """

    lon_edges: np.ndarray
    lat_edges: np.ndarray
    regions: Sequence[tuple[str, object]] = ()


def save_png(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` with Agg into a PNG file."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
    return Path(path)


def _outline(ax, frame: MapFrame) -> None:
    x0, x1 = frame.lon_edges[0], frame.lon_edges[-1]
    y0, y1 = frame.lat_edges[0], frame.lat_edges[-1]
    coastlines.draw(ax, (float(x0), float(y0), float(x1), float(y1)))
    for name, region in frame.regions:
        w, s, e, n = region.bbox
        if e < x0 or w > x1 or n < y0 or s > y1:
            continue  # outside the frame
        if w <= x0 and s <= y0 and e >= x1 and n >= y1:
            continue  # holds the whole frame: nothing to outline
        poly = getattr(region, "polygon", None)
        if poly is not None:
            for geom in getattr(poly, "geoms", [poly]):
                xs, ys = geom.exterior.xy
                ax.plot(xs, ys, color="black", lw=0.8)
        else:
            ax.add_patch(Rectangle((w, s), e - w, n - s, fill=False, ec="black", lw=0.8))
        ax.text(max(w, x0), min(n, y1), f" {name}", va="top", ha="left", fontsize=7)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


@dataclass(frozen=True)
class Panel:
    """One map: ``(ny, nx)`` data, its colour map and limits, a title; ``colorbar`` False
    shares the colour bar drawn after the last panel."""

    data: np.ndarray
    cmap: str
    vmin: float
    vmax: float
    title: str
    unit: str
    colorbar: bool = True


# layout, inches
_PANEL_W, _LEFT, _GAP, _RIGHT, _TOP, _BOTTOM = 3.6, 0.7, 0.55, 0.25, 0.65, 0.5
_CBAR_GAP, _CBAR_W, _CBAR_LABEL = 0.12, 0.14, 0.8


def map_figure(frame: MapFrame, panels: Sequence[Panel], title: str) -> Figure:
    """Maps side by side, laid out explicitly (no layout engine: fast and predictable).

    The panel height follows the map's aspect (``1 / cos(mid latitude)``), within
    1.8 to 5 inches. Cells without pixels are light grey under sequential colour maps and
    mid grey under diverging ones (whose centre is near white).
    """
    mid = 0.5 * (frame.lat_edges[0] + frame.lat_edges[-1])
    aspect = 1.0 / max(0.1, math.cos(math.radians(mid)))
    span_x = frame.lon_edges[-1] - frame.lon_edges[0]
    span_y = frame.lat_edges[-1] - frame.lat_edges[0]
    height = min(5.0, max(1.8, _PANEL_W * aspect * span_y / span_x))
    cbar = [p.colorbar or i == len(panels) - 1 for i, p in enumerate(panels)]
    slot = _CBAR_GAP + _CBAR_W + _CBAR_LABEL
    x, lefts = _LEFT, []
    for has in cbar:
        lefts.append(x)
        x += _PANEL_W + (slot if has else 0.0) + _GAP
    fig_w, fig_h = x - _GAP + _RIGHT, height + _TOP + _BOTTOM
    fig = Figure(figsize=(fig_w, fig_h))
    for i, (p, left) in enumerate(zip(panels, lefts, strict=True)):
        ax = fig.add_axes((left / fig_w, _BOTTOM / fig_h, _PANEL_W / fig_w, height / fig_h))
        ax.set_facecolor(_MISSING.get(p.cmap, _MISSING_DIVERGING))
        extent = (frame.lon_edges[0], frame.lon_edges[-1], frame.lat_edges[0],
                  frame.lat_edges[-1])
        mesh = ax.imshow(np.ma.masked_invalid(p.data), origin="lower", extent=extent,
                         cmap=p.cmap, vmin=p.vmin, vmax=p.vmax, interpolation="nearest",
                         aspect=aspect)
        _outline(ax, frame)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel("longitude (°E)", fontsize=8)
        if i == 0:
            ax.set_ylabel("latitude (°N)", fontsize=8)
        ax.tick_params(labelsize=7)
        if cbar[i]:
            cax = fig.add_axes(((left + _PANEL_W + _CBAR_GAP) / fig_w, _BOTTOM / fig_h,
                                _CBAR_W / fig_w, height / fig_h))
            fig.colorbar(mesh, cax=cax).set_label(p.unit, fontsize=8)
            cax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=11, y=1.0 - 0.12 / fig_h, va="top")
    return fig


def _symmetric_limit(*arrays: np.ndarray, q: float = 98.0) -> float:
    vals = np.concatenate([np.abs(a[np.isfinite(a)]).ravel() for a in arrays])
    lim = float(np.percentile(vals, q)) if vals.size else 1.0
    return lim if lim > 0 else 1.0


def columns_figure(frame: MapFrame, means: Mapping[str, np.ndarray], title: str) -> Figure:
    """Mean column maps, one panel per set (``(ny, nx)`` molecules cm-2 each), one scale."""
    finite = [m[np.isfinite(m)] / SCALE for m in means.values()]
    allv = np.concatenate(finite) if finite else np.zeros(0)
    vmax = float(np.percentile(allv, 99)) if allv.size else 1.0
    vmin = min(0.0, float(np.percentile(allv, 1))) if allv.size else 0.0
    panels = [Panel(m / SCALE, "viridis", vmin, max(vmax, vmin + 1e-6), label, COLUMN_UNIT,
                    colorbar=False) for label, m in means.items()]
    return map_figure(frame, panels, title)


def difference_figure(frame: MapFrame, absolute: np.ndarray, relative: np.ndarray,
                      title: str) -> Figure:
    """Absolute (``(ny, nx)`` molecules cm-2) and relative (%) difference maps side by side."""
    a = absolute / SCALE
    lim_a, lim_r = _symmetric_limit(a), _symmetric_limit(relative)
    return map_figure(frame, [
        Panel(a, "RdBu_r", -lim_a, lim_a, "absolute difference", COLUMN_UNIT),
        Panel(relative, "RdBu_r", -lim_r, lim_r, "relative difference", "%")], title)


def bias_figure(frame: MapFrame, biases: Mapping[str, np.ndarray], title: str) -> Figure:
    """Maps of column - truth (``(ny, nx)`` molecules cm-2), one panel per set, one scale."""
    lim = _symmetric_limit(*(b / SCALE for b in biases.values()))
    panels = [Panel(b / SCALE, "RdBu_r", -lim, lim, f"{label} − truth", COLUMN_UNIT,
                    colorbar=False) for label, b in biases.items()]
    return map_figure(frame, panels, title)


def histogram_figure(abs_edges: np.ndarray, abs_counts: Mapping[str, np.ndarray],
                     rel_edges: np.ndarray, rel_counts: Mapping[str, np.ndarray],
                     title: str) -> Figure:
    """Histograms of the per-pixel differences, as densities, one line per region.

    Args:
        abs_edges: ``(k + 1,)`` molecules cm-2; abs_counts: region -> ``(k,)`` counts.
        rel_edges: ``(k + 1,)`` %; rel_counts: region -> ``(k,)`` counts. The first region
            is filled, the others drawn as steps (those with fewer than
            :data:`MIN_HISTOGRAM_PIXELS` pixels left out).
    """
    fig = Figure(figsize=(10.0, 3.8))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.85, wspace=0.22)
    axes = fig.subplots(1, 2)
    panels = ((axes[0], abs_edges / SCALE, abs_counts, f"absolute difference ({COLUMN_UNIT})"),
              (axes[1], rel_edges, rel_counts, "relative difference (%)"))
    for ax, edges, counts, xlabel in panels:
        widths = np.diff(edges)
        for i, (region, c) in enumerate(counts.items()):
            total = c.sum()
            if total == 0 or (i > 0 and total < MIN_HISTOGRAM_PIXELS):
                continue
            density = c / (total * widths)
            if i == 0:
                ax.stairs(density, edges, fill=True, alpha=0.35, color="tab:blue",
                          label=f"{region} (n={int(total):,})")
            else:
                ax.stairs(density, edges, lw=1.2, label=f"{region} (n={int(total):,})")
        ax.axvline(0.0, color="black", lw=0.7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig
