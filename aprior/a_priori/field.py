"""The in-memory bundle of a 3D NO2 profile field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aprior.constants import M_NO2  # noqa: F401  (re-exported: molar mass of NO2, g mol-1)
from aprior.grids.grid import Grid


@dataclass(frozen=True)
class ProfileField:
    """A 3D NO2 concentration field on a regular horizontal grid.

    Attributes:
        no2: ``(t, z, y, x)`` float32 mass concentration in ug m-3, finite and >= 0.
            Rows ascend in y and columns in x, as the grid's cells.
        heights: ``(z,)`` float64 level heights in m above ground, strictly increasing.
        grid: the horizontal grid; ``grid.shape == no2.shape[2:]``.
        times: ``(t,)`` datetime64[ns] valid times, ascending, or None for a field valid
            at all times (then ``t == 1``).
        source: short description used as the ``apriori_source`` attribute.
        path: the file it was read from, if any (for messages).
        attrs: provenance attributes carried along.
    """

    no2: np.ndarray
    heights: np.ndarray
    grid: Grid
    times: np.ndarray | None = None
    source: str = "unknown"
    path: str | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.no2.ndim != 4:
            raise ValueError(f"no2 must be (t, z, y, x), got shape {self.no2.shape}")
        t, z, ny, nx = self.no2.shape
        if (ny, nx) != self.grid.shape:
            raise ValueError(f"no2 horizontal shape {(ny, nx)} != grid shape {self.grid.shape}")
        if self.heights.shape != (z,):
            raise ValueError(f"heights shape {self.heights.shape} != ({z},)")
        if z > 1 and not np.all(np.diff(self.heights) > 0):
            raise ValueError("heights must be strictly increasing")
        if self.times is None:
            if t != 1:
                raise ValueError("a field without times must have t == 1")
        else:
            if self.times.shape != (t,):
                raise ValueError(f"times shape {self.times.shape} != ({t},)")
            if t > 1 and not np.all(np.diff(self.times) > np.timedelta64(0, "ns")):
                raise ValueError("times must be strictly increasing")

    @property
    def nz(self) -> int:
        return self.no2.shape[1]


def time_interpolation(times: np.ndarray | None, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation weights in time.

    Args:
        times: ``(t,)`` datetime64 field times, ascending, or None (static field).
        obs: ``(n,)`` datetime64 observation times.

    Returns:
        ``(i0, i1, w)``, each ``(n,)``: the value at ``obs`` is
        ``(1 - w) * f[i0] + w * f[i1]``. Times outside the field's range are clamped to the
        first or last field time (no extrapolation).
    """
    obs = np.asarray(obs)
    n = obs.shape[0]
    if times is None or len(times) == 1:
        z = np.zeros(n, dtype=np.intp)
        return z, z, np.zeros(n)
    tf = times.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    to = obs.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    i1 = np.clip(np.searchsorted(tf, to, side="right"), 1, len(tf) - 1)
    i0 = i1 - 1
    w = np.clip((to - tf[i0]) / (tf[i1] - tf[i0]), 0.0, 1.0)
    return i0.astype(np.intp), i1.astype(np.intp), w


def time_coverage(times: np.ndarray | None) -> tuple[np.datetime64, np.datetime64] | None:
    """The observation times a field can stand for: ``(lo, hi)`` datetime64[ns], or None for
    a field without times (it stands for any time).

    A field with one time stamped at 00:00 UTC is a daily mean (the convention of CAMS
    daily means, DACNO2's daily variant and the synthetic ``truth/no2_daily``): it stands
    for its whole UTC day, and for the 12 h before it as an instantaneous midnight field
    would. A field with one other time (e.g. an 11-13 UTC mean stamped 12:00) stands for
    +-12 h around it. A field with several times stands for its range extended by one time
    step at each end (beyond that the interpolation would clamp to a value far from the
    observation time).
    """
    if times is None:
        return None
    t = np.asarray(times).astype("datetime64[ns]")
    if t.size == 1:
        half = np.timedelta64(12, "h")
        midnight = t[0] == t[0].astype("datetime64[D]").astype("datetime64[ns]")
        return t[0] - half, t[0] + (np.timedelta64(24, "h") if midnight else half)
    step = np.max(np.diff(t))
    return t[0] - step, t[-1] + step


def time_coverage_gap(times: np.ndarray | None, obs: np.ndarray) -> np.timedelta64 | None:
    """How far observation times fall outside what a field can stand for
    (:func:`time_coverage`), or None if inside.

    Args:
        times: ``(t,)`` datetime64 field times or None.
        obs: ``(n,)`` datetime64 observation times (NaT ignored).

    Returns:
        The largest distance outside the allowed range, or None.
    """
    span = time_coverage(times)
    if span is None:
        return None
    obs = np.asarray(obs).astype("datetime64[ns]")
    obs = obs[~np.isnat(obs)]
    if obs.size == 0:
        return None
    lo, hi = span
    gap = max(lo - obs.min(), obs.max() - hi)
    return gap if gap > np.timedelta64(0, "ns") else None
