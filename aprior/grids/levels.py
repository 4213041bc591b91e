"""Vertical levels of the NO2 fields: heights in metres above ground.

The DACNO2 paper lists ten CAMS heights but its decoder has eight levels and its results
name 0, 50, 250, 500, 1000, 2000, 3000 and 5000 m: those eight are our default
(:data:`DEFAULT_LEVELS_M`); the ten CAMS heights are :data:`CAMS_LEVELS_M`. Levels are
configurable: any strictly increasing set of heights >= 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Model levels (m above ground) used by default: the eight of the paper's decoder.
DEFAULT_LEVELS_M: tuple[float, ...] = (0.0, 50.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0)

#: The ten heights (m above ground) of the CAMS European air-quality NO2 fields.
CAMS_LEVELS_M: tuple[float, ...] = (
    0.0, 50.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 5000.0,
)

#: Two heights closer than this (m) are the same level.
LEVEL_ATOL_M = 1e-3


def _as_heights(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    h = np.asarray(values, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"{what} must be a non-empty 1D sequence of heights, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError(f"{what} must be finite, got {h.tolist()}")
    if np.any(h < 0):
        raise ValueError(f"{what} must be >= 0 m, got {h.tolist()}")
    if h.size > 1 and not np.all(np.diff(h) > 0):
        raise ValueError(f"{what} must be strictly increasing, got {h.tolist()}")
    return h


@dataclass(frozen=True)
class Levels:
    """A set of model levels.

    Attributes:
        heights_m: ``(z,)`` heights in m above ground, strictly increasing, >= 0.
    """

    heights_m: tuple[float, ...] = DEFAULT_LEVELS_M

    def __post_init__(self) -> None:
        h = _as_heights(self.heights_m, "levels")
        object.__setattr__(self, "heights_m", tuple(float(v) for v in h))

    def __len__(self) -> int:
        return len(self.heights_m)

    @property
    def array(self) -> np.ndarray:
        """``(z,)`` float64 heights in m."""
        return np.asarray(self.heights_m, dtype=np.float64)

    @classmethod
    def cams(cls) -> Levels:
        """The ten CAMS European heights."""
        return cls(CAMS_LEVELS_M)


def select_levels(field_levels: Sequence[float] | np.ndarray,
                  wanted: Sequence[float] | np.ndarray | Levels) -> np.ndarray:
    """Indices into ``field_levels`` of each wanted height.

    Args:
        field_levels: ``(zf,)`` heights (m) the field has.
        wanted: ``(z,)`` heights (m) to select, or a :class:`Levels`.

    Returns:
        ``(z,)`` intp indices, in the order of ``wanted``.

    Raises:
        ValueError: a wanted height is not among the field's (within 1 mm); the message
            lists the missing and the available heights.
    """
    have = np.asarray(field_levels, dtype=np.float64).ravel()
    want = np.asarray(wanted.heights_m if isinstance(wanted, Levels) else wanted,
                      dtype=np.float64).ravel()
    if have.size == 0:
        raise ValueError("the field has no levels")
    dist = np.abs(want[:, None] - have[None, :])
    idx = np.argmin(dist, axis=1)
    missing = want[dist[np.arange(want.size), idx] > LEVEL_ATOL_M]
    if missing.size:
        raise ValueError(f"levels {_fmt(missing)} m are not in the field, which has "
                         f"{_fmt(have)} m")
    return idx.astype(np.intp)


def _fmt(values: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in values)


def interpolate_levels(values: np.ndarray, field_levels: Sequence[float] | np.ndarray,
                       wanted: Sequence[float] | np.ndarray | Levels,
                       axis: int = -3) -> np.ndarray:
    """Linear interpolation in height to the wanted levels (no extrapolation).

    Levels present in the field are copied exactly.

    Args:
        values: array with the level dimension at ``axis`` (e.g. ``(t, z, y, x)``), any unit.
        field_levels: ``(zf,)`` heights (m) along ``axis``, strictly increasing.
        wanted: ``(z,)`` heights (m), or a :class:`Levels`.
        axis: the level axis of ``values``.

    Returns:
        ``values`` with ``axis`` of length ``z``, same dtype as ``values`` for floats.

    Raises:
        ValueError: a wanted height lies outside the field's range.
    """
    have = _as_heights(field_levels, "field levels")
    want = np.asarray(wanted.heights_m if isinstance(wanted, Levels) else wanted, dtype=np.float64)
    lo, hi = have[0] - LEVEL_ATOL_M, have[-1] + LEVEL_ATOL_M
    if np.any(want < lo) or np.any(want > hi):
        raise ValueError(f"levels {_fmt(want)} m reach outside the field's range "
                         f"{have[0]:g}-{have[-1]:g} m; extrapolation is not done")
    v = np.moveaxis(np.asarray(values), axis, 0)
    if v.shape[0] != have.size:
        raise ValueError(f"values have {v.shape[0]} levels on axis {axis}, expected {have.size}")
    if have.size == 1:
        out = np.repeat(v[:1], want.size, axis=0)
    else:
        i1 = np.clip(np.searchsorted(have, want, side="right"), 1, have.size - 1)
        i0 = i1 - 1
        w = np.clip((want - have[i0]) / (have[i1] - have[i0]), 0.0, 1.0)
        w = w.reshape((-1,) + (1,) * (v.ndim - 1))
        out = (1.0 - w) * v[i0] + w * v[i1]
    if np.issubdtype(v.dtype, np.floating):
        out = out.astype(v.dtype, copy=False)
    return np.moveaxis(out, 0, axis)
