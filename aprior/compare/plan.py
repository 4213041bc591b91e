"""What a comparison computes: column sets, pairs, per-pixel quantities, configuration.

Column sets (all in molecules cm-2, on the same selected pixels), in the default
``apriori`` mode:

* ``tm5``: the original column of the input files (retrieved with the TM5 a-priori);
* ``main``: the reprocessed column of the input files;
* ``against``: the reprocessed column of the ``--against`` files, when given.

Pairs ``(test, reference)``; the difference is ``test - reference`` and the relative
difference ``100 (test - reference) / reference``:

* without ``--against``: ``main`` against ``tm5``;
* with ``--against``: ``main`` against ``against`` first (the two a-prioris), then each
  reprocessed set against ``tm5`` (as in Fig. 7 of the DACNO2 paper).

With truth files, every set is also compared with the true column: ``bias:<set>`` =
column - truth, ``ratio:<set>`` = column / truth (where the truth is positive).

In the ``model`` mode (model versus satellite) the sets keep their names but not their
meaning: ``tm5`` is the satellite's operational column and ``main`` (and ``against``) the
model's tropospheric column seen through the original tropospheric kernel,
``sum_{l<=l_tp} A_l M / M_trop x_l`` (``apriori_tropospheric_column_smoothed``); the main
pair is then model minus satellite (Eskes & Boersma 2003; Douros et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from aprior.compare.reading import PixelBlock

DEFAULT_REGIONS: tuple[str, ...] = ("domain", "northern", "paris", "alps")
#: ``aprior compare`` modes: reprocessed versus original columns, or model versus satellite.
MODES = ("apriori", "model")


@dataclass(frozen=True)
class CompareConfig:
    """Options of ``aprior compare`` (defaults follow Sect. 4.3 of the DACNO2 paper).

    Attributes:
        qa_min: pixels with ``qa_value >= qa_min`` are compared (0.75, the usual choice).
        regions: region specs (a name of :data:`aprior.grids.regions.REGIONS`, a
            ``"w,s,e,n"`` box or a GeoJSON path); the first is the one of the histograms
            and the summary.
        resolution: cell size of the lon/lat maps, degrees.
        extent: map box (west, south, east, north), degrees; None: the DACNO2 domain.
            Maps are cropped to the cells that received pixels.
        label, against_label: names of the reprocessed sets; None: from the files'
            ``apriori_source`` attribute.
        tm5_label: name of the original column set.
        overwrite: replace an existing output directory.
        command: the command line recorded in the report.
        dpi: resolution of the PNG figures.
        mode: ``"apriori"`` (reprocessed columns against the original ones) or ``"model"``
            (the smoothed model columns against the satellite's; module docstring).
    """

    qa_min: float = 0.75
    regions: tuple[str, ...] = DEFAULT_REGIONS
    resolution: float = 0.05
    extent: tuple[float, float, float, float] | None = None
    label: str | None = None
    against_label: str | None = None
    tm5_label: str = "TM5"
    overwrite: bool = False
    command: str | None = None
    dpi: int = 110
    mode: str = "apriori"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.qa_min <= 1.0:
            raise ValueError(f"qa_min must lie in [0, 1], got {self.qa_min}")
        if not 0.0 < self.resolution <= 5.0:
            raise ValueError(f"resolution must lie in (0, 5] degrees, got {self.resolution}")
        if not self.regions:
            raise ValueError("at least one region is needed")
        object.__setattr__(self, "regions", tuple(str(r) for r in self.regions))
        if self.extent is not None:
            w, s, e, n = (float(v) for v in self.extent)
            if not (-180.0 <= w < e <= 180.0 and -90.0 <= s < n <= 90.0):
                raise ValueError(f"extent must be west < east, south < north, got {self.extent}")
            object.__setattr__(self, "extent", (w, s, e, n))
        for name in ("label", "against_label", "tm5_label"):
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                raise ValueError(f"{name} must not be empty")
        if not 30 <= self.dpi <= 600:
            raise ValueError(f"dpi must lie in [30, 600], got {self.dpi}")


def short_label(apriori_source: str, fallback: str) -> str:
    """A short set name from an ``apriori_source`` attribute ("CAMS Europe (...)" -> "CAMS Europe")."""
    text = apriori_source.split(" (", 1)[0].strip()
    if not text:
        return fallback
    return text if len(text) <= 32 else text[:31] + "…"


@dataclass(frozen=True)
class Plan:
    """The sets, pairs and quantities of one comparison.

    Attributes:
        sets: ``("tm5", "main")`` or ``("tm5", "main", "against")``.
        labels: set -> display name (also "truth" with truth files).
        pairs: ``(test, reference)`` pairs, the main one first.
        truth: truth files are given.
    """

    sets: tuple[str, ...]
    labels: Mapping[str, str]
    pairs: tuple[tuple[str, str], ...]
    truth: bool = False

    @classmethod
    def make(cls, labels: Mapping[str, str], *, against: bool, truth: bool) -> Plan:
        sets = ("tm5", "main", "against") if against else ("tm5", "main")
        pairs = (("main", "against"), ("against", "tm5"), ("main", "tm5")) if against \
            else (("main", "tm5"),)
        names = dict(labels)
        if truth:
            names.setdefault("truth", "truth")
        missing = [s for s in sets if s not in names]
        if missing:
            raise ValueError(f"labels missing for {missing}")
        return cls(sets, names, pairs, truth)

    @staticmethod
    def pair_key(test: str, ref: str) -> str:
        return f"{test}_vs_{ref}"

    def quantities(self) -> tuple[str, ...]:
        """Names of the per-pixel quantities given to the statistics."""
        out = [f"col:{s}" for s in self.sets]
        for test, ref in self.pairs:
            out += [f"abs:{test}:{ref}", f"rel:{test}:{ref}"]
        if self.truth:
            out.append("col:truth")
            for s in self.sets:
                out += [f"bias:{s}", f"ratio:{s}"]
        return tuple(out)

    def map_names(self) -> tuple[str, ...]:
        """Names of the binned quantities: the columns and, with truth, truth and biases."""
        out = [f"col:{s}" for s in self.sets]
        if self.truth:
            out.append("col:truth")
            out += [f"bias:{s}" for s in self.sets]
        return tuple(out)

    def values(self, block: PixelBlock) -> dict[str, np.ndarray]:
        """Every quantity of :meth:`quantities` for the pixels of a block, ``(n,)`` each.

        Units: molecules cm-2 (columns, differences, biases), % (relative differences),
        1 (ratios). Relative differences are NaN where the reference column is 0.
        """
        cols = block.columns
        out = {f"col:{s}": cols[s] for s in self.sets}
        for test, ref in self.pairs:
            diff = cols[test] - cols[ref]
            out[f"abs:{test}:{ref}"] = diff
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"rel:{test}:{ref}"] = np.where(cols[ref] != 0, 100.0 * diff / cols[ref],
                                                    np.nan)
        if self.truth:
            t = block.truth if block.truth is not None else np.full(block.size, np.nan)
            out["col:truth"] = t
            for s in self.sets:
                out[f"bias:{s}"] = cols[s] - t
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[f"ratio:{s}"] = np.where(t > 0, cols[s] / t, np.nan)
        return out


def relative_difference_of_means(test_mean: float, ref_mean: float) -> float:
    """``100 (test - ref) / ref`` of two means, NaN when undefined."""
    if not (math.isfinite(test_mean) and math.isfinite(ref_mean)) or ref_mean == 0:
        return math.nan
    return 100.0 * (test_mean - ref_mean) / ref_mean
