"""CAMS European NO2 as DACNO2 training targets on the 8 km grid, and the layer ratios.

The paper averages the hourly CAMS reanalysis NO2 to daily values, interpolates it
bilinearly from 0.1 degree to the 8 km grid (grid alignment only) and divides each level
by its layer ratio, the mean NO2 at that level over the mean at the surface, both over
the training set; predictions are multiplied back by the ratios. The S5P variant of the
targets is the 11-13 UTC mean (``mode="window"``).

- :func:`cams_targets`: a CAMS :class:`~aprior.a_priori.field.ProfileField` (EPSG:4326,
  ``(t, z, lat, lon)`` ug m-3) -> daily or window means on the 8 km grid at the model's
  levels, as a ProfileField on that grid. Pure; :func:`read_cams_targets` reads the file.
- :class:`LayerRatios` and :class:`LayerMeans` (streaming fit over the training set).

The reductions and the reader come from :mod:`aprior.a_priori.cams_eu` (imported lazily).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from aprior.a_priori.field import ProfileField
from aprior.errors import ConfigError, ProfileFieldError
from aprior.grids.grid import Grid
from aprior.grids.levels import DEFAULT_LEVELS_M, Levels, interpolate_levels, select_levels
from aprior.grids.regrid import bilinear_to_grid

log = logging.getLogger(__name__)

#: Time reductions: the paper's daily mean, or the 11-13 UTC mean (S5P overpass).
MODES = ("daily", "window")
WINDOW_HOURS = (11.0, 13.0)


def reduce_time(field: ProfileField, mode: str = "daily",
                window_hours: tuple[float, float] = WINDOW_HOURS) -> ProfileField:
    """Daily mean (``mode="daily"``) or per-day ``window_hours`` UTC mean (``"window"``)."""
    from aprior.a_priori import cams_eu

    if mode == "daily":
        return cams_eu.daily_mean(field)
    if mode == "window":
        return cams_eu.window_mean(field, window_hours[0], window_hours[1])
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def targets_on_grid(field: ProfileField, grid8: Grid,
                    levels: Sequence[float] | Levels = DEFAULT_LEVELS_M, *,
                    interpolate_missing: bool = False) -> ProfileField:
    """A lat/lon field at the model's levels, bilinearly interpolated to a projected grid.

    Args:
        field: ``no2`` ``(t, z, lat, lon)`` ug m-3 on an EPSG:4326 grid (x = lon, y = lat).
        grid8: target grid (8 km EPSG:3035 in DACNO2).
        levels: the model's heights (m); they must be among the field's, unless
            ``interpolate_missing`` (then linear in height, no extrapolation).

    Returns:
        a ProfileField ``(t, len(levels), ny, nx)`` float32 on ``grid8``, same times.

    Raises:
        ProfileFieldError: the field lacks a level, is not on a lat/lon grid, or does not
            cover ``grid8``.
    """
    want = Levels(tuple(levels.heights_m if isinstance(levels, Levels) else levels))
    if not field.grid.is_geographic:
        raise ProfileFieldError("CAMS targets need a field on a lat/lon grid", field.path)
    try:
        if interpolate_missing:
            no2 = interpolate_levels(field.no2, field.heights, want, axis=1)
        else:
            no2 = field.no2[:, select_levels(field.heights, want)]
    except ValueError as exc:
        raise ProfileFieldError(f"cannot build targets at the model's levels: {exc}",
                                field.path) from exc
    try:
        out = bilinear_to_grid(no2.astype(np.float32, copy=False), field.grid.y, field.grid.x,
                               grid8)
    except ValueError as exc:
        raise ProfileFieldError(f"the CAMS field does not cover the target grid: {exc}",
                                field.path) from exc
    np.maximum(out, 0.0, out=out)
    return ProfileField(out.astype(np.float32, copy=False), want.array, grid8, field.times,
                        source=field.source, path=field.path,
                        attrs={**field.attrs, "regridding": "bilinear from lat/lon"})


def cams_targets(field: ProfileField, grid8: Grid,
                 levels: Sequence[float] | Levels = DEFAULT_LEVELS_M, mode: str = "daily",
                 window_hours: tuple[float, float] = WINDOW_HOURS) -> ProfileField:
    """Daily (or window) mean CAMS NO2 on ``grid8`` at ``levels``: ``(days, z, ny, nx)``."""
    return targets_on_grid(reduce_time(field, mode, window_hours), grid8, levels)


def read_cams_targets(path: str | PathLike[str], grid8: Grid,
                      levels: Sequence[float] | Levels = DEFAULT_LEVELS_M, mode: str = "daily",
                      window_hours: tuple[float, float] = WINDOW_HOURS) -> ProfileField:
    """Read a CAMS European NO2 file and build its targets (see :func:`cams_targets`)."""
    from aprior.a_priori.cams_eu import read_cams_eu

    return cams_targets(read_cams_eu(path), grid8, levels, mode, window_hours)


# -- layer ratios ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerRatios:
    """Mean NO2 at each level over the mean at the surface, over the training set.

    Attributes:
        heights_m: ``(z,)`` level heights (m), strictly increasing, the first the surface.
        ratios: ``(z,)`` positive ratios; ``ratios[0] == 1``.
    """

    heights_m: tuple[float, ...]
    ratios: tuple[float, ...]

    def __post_init__(self) -> None:
        h = Levels(tuple(self.heights_m)).heights_m
        r = tuple(float(v) for v in self.ratios)
        if len(r) != len(h):
            raise ValueError(f"{len(r)} ratios for {len(h)} levels")
        if not all(np.isfinite(v) and v > 0 for v in r):
            raise ValueError(f"layer ratios must be finite and positive, got {r}")
        object.__setattr__(self, "heights_m", h)
        object.__setattr__(self, "ratios", r)

    def _shaped(self, values: np.ndarray, axis: int) -> np.ndarray:
        v = np.asarray(values)
        if v.shape[axis] != len(self.ratios):
            raise ValueError(f"values have {v.shape[axis]} levels on axis {axis}, "
                             f"the ratios {len(self.ratios)}")
        shape = [1] * v.ndim
        shape[axis] = len(self.ratios)
        dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float64
        return np.asarray(self.ratios, dtype=dtype).reshape(shape)

    def apply(self, targets: np.ndarray, axis: int = -3) -> np.ndarray:
        """Rescale targets for training: ``targets / ratios`` along the level ``axis``
        (``(..., z, y, x)`` by default)."""
        return np.asarray(targets) / self._shaped(targets, axis)

    def invert(self, predictions: np.ndarray, axis: int = -3) -> np.ndarray:
        """Restore the profile of predictions: ``predictions * ratios`` along ``axis``."""
        return np.asarray(predictions) * self._shaped(predictions, axis)

    def to_dict(self) -> dict:
        """JSON-able dict."""
        return {"kind": "layer_ratios", "heights_m": list(self.heights_m),
                "ratios": list(self.ratios)}

    @classmethod
    def from_dict(cls, d: Mapping) -> LayerRatios:
        """Inverse of :meth:`to_dict`. Raises ConfigError if malformed."""
        try:
            return cls(tuple(d["heights_m"]), tuple(d["ratios"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid layer ratios {dict(d)!r}: {exc}") from exc

    @classmethod
    def identity(cls, heights_m: Sequence[float] = DEFAULT_LEVELS_M) -> LayerRatios:
        return cls(tuple(heights_m), (1.0,) * len(heights_m))


class LayerMeans:
    """Streaming per-level means (NaN-aware) over the training set -> :class:`LayerRatios`.

    Example::

        acc = LayerMeans(levels)
        for day in training_days:
            acc.update(targets_of(day).no2)   # (t, z, y, x)
        ratios = acc.ratios()
    """

    def __init__(self, heights_m: Sequence[float] = DEFAULT_LEVELS_M, axis: int = -3) -> None:
        self.heights_m = Levels(tuple(heights_m)).heights_m
        self.axis = axis
        self.sums = np.zeros(len(self.heights_m), dtype=np.float64)
        self.counts = np.zeros(len(self.heights_m), dtype=np.int64)

    def update(self, targets: np.ndarray) -> None:
        """Add ``(..., z, y, x)`` values (level axis ``axis``), ug m-3; NaNs ignored."""
        v = np.moveaxis(np.asarray(targets, dtype=np.float64), self.axis, 0)
        if v.shape[0] != self.sums.size:
            raise ValueError(f"targets have {v.shape[0]} levels, expected {self.sums.size}")
        v = v.reshape(v.shape[0], -1)
        ok = np.isfinite(v)
        self.sums += np.where(ok, v, 0.0).sum(axis=1)
        self.counts += ok.sum(axis=1)

    def means(self) -> np.ndarray:
        """``(z,)`` mean per level (NaN where no value was seen)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts

    def ratios(self) -> LayerRatios:
        m = self.means()
        if not np.all(np.isfinite(m)) or m[0] <= 0 or np.any(m <= 0):
            raise ValueError(f"cannot form layer ratios from the level means {m.tolist()}")
        return LayerRatios(self.heights_m, tuple(m / m[0]))


def fit_layer_ratios(targets: Iterable[np.ndarray],
                     heights_m: Sequence[float] = DEFAULT_LEVELS_M,
                     axis: int = -3) -> LayerRatios:
    """Layer ratios over an iterable of ``(..., z, y, x)`` target arrays (ug m-3)."""
    acc = LayerMeans(heights_m, axis)
    for t in targets:
        acc.update(t)
    return acc.ratios()
