"""DeepCAMS training data: global node grids, normalisation, pairs, held-out days, crops.

Orientation. Readers give a :class:`~aprior.inputs.pm25.PM25Field` with latitude
ascending (-90..90) and longitude ascending in [-180, 180). The networks work on the
*node grid* of :mod:`aprior.models.deepcams.grid`: latitude descending (90..-90, poles
included) and longitude ascending from 0 (0..360 - step), the layout of CAMS EAC4. A global
0.75 degree field is ``(241, 480)`` there and a 0.25 degree one ``(721, 1440)``; fine node
``3k`` is coarse node ``k``. :func:`field_to_nodes` and :func:`nodes_to_field` convert
explicitly, for any global regular node grid (tests use coarser ones).

Pairs (the paper's Sect. 2.2): temporal samples are ``(G(h0), G(h0 + 3 h)) -> G(h0 + k h)``
for ``k = 1, 2`` (``t = k / 3``); spatial samples are ``coarsen(G) -> G`` for every hour.

Normalisation (:class:`Normalisation`): ``x = (log1p(c / scale) - mean) / std`` with ``c``
in ug m-3, ``scale`` 10 ug m-3 and ``mean``/``std`` those of ``log1p(c / scale)`` over the
training frames. The log compresses the skewed PM2.5 distribution (a few hundred ug m-3 in
dust plumes next to 2-10 ug m-3 background) so the L1 loss weighs relative errors; the
inverse ``c = scale * expm1(x * std + mean)`` is exact (clipped at 0 ug m-3 for network
outputs below the physical floor).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from aprior.errors import ConfigError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field

log = logging.getLogger(__name__)

#: the spatial factor between the coarse (0.75 deg) and fine (0.25 deg) node grids
FACTOR = 3


# -- orientation -------------------------------------------------------------------------
def _global_step(field: PM25Field) -> float:
    ny, nx = field.lat.size, field.lon.size
    step = 360.0 / nx
    lat_ok = ny >= 3 and np.allclose(field.lat, np.linspace(-90.0, 90.0, ny), atol=1e-4)
    lon_ok = np.allclose(np.diff(field.lon), step, atol=1e-4) and np.any(np.abs(field.lon) < 1e-4)
    if not (lat_ok and lon_ok and np.isclose(180.0 / (ny - 1), step, atol=1e-6)):
        raise ProfileFieldError(
            f"the {field.source} PM2.5 field is not on a global lat/lon node grid "
            f"(lat -90..90 with poles, lon a full circle through 0, equal steps); got "
            f"{ny} x {nx} from lat {field.lat[0]:g}..{field.lat[-1]:g}, lon "
            f"{field.lon[0]:g}..{field.lon[-1]:g}")
    return step


def field_to_nodes(field: PM25Field) -> np.ndarray:
    """The values of a global field on the node grid.

    Args:
        field: global, lat ascending -90..90 (poles included), lon ascending in [-180, 180)
            through 0, equal steps (e.g. EAC4 241 x 480 or GEOS-CF 721 x 1440).

    Returns:
        ``(t, ny, nx)`` float32 ug m-3, lat descending 90..-90, lon 0..360 - step.
    """
    _global_step(field)
    i0 = int(np.argmin(np.abs(field.lon)))  # the column of longitude 0
    vals = field.values[:, ::-1, :]
    return np.ascontiguousarray(np.roll(vals, -i0, axis=-1), dtype=np.float32)


def nodes_to_field(values: np.ndarray, times: np.ndarray, source: str) -> PM25Field:
    """A :class:`PM25Field` (lat ascending, lon in [-180, 180)) from node-grid values.

    Args:
        values: ``(t, ny, nx)`` ug m-3, lat descending 90..-90, lon 0..360 - step
            (``nx`` even).
        times: ``(t,)`` datetime64.
    """
    t, ny, nx = values.shape
    if nx % 2:
        raise ValueError("a global node grid needs an even number of longitudes")
    lat = np.linspace(-90.0, 90.0, ny)
    lon = np.arange(nx) * (360.0 / nx) - 180.0
    out = np.roll(values[:, ::-1, :], nx // 2, axis=-1)
    return PM25Field(np.asarray(times), lat, lon, np.ascontiguousarray(out, np.float32), source)


def fine_shape(coarse: tuple[int, int]) -> tuple[int, int]:
    """The fine node grid of a coarse one: ``(h, w) -> (3(h-1)+1, 3w)``."""
    return (FACTOR * (coarse[0] - 1) + 1, FACTOR * coarse[1])


def coarse_shape(fine: tuple[int, int]) -> tuple[int, int]:
    """Inverse of :func:`fine_shape`; ValueError when ``fine`` is not a 3x node grid."""
    h, w = fine
    if (h - 1) % FACTOR or w % FACTOR:
        raise ValueError(f"{fine} is not a fine node grid (3(h-1)+1, 3w)")
    return ((h - 1) // FACTOR + 1, w // FACTOR)


def coarsen_nodes(fine: np.ndarray) -> np.ndarray:
    """Fine node frames ``(..., 3(h-1)+1, 3w)`` -> coarse ``(..., h, w)`` float32 ug m-3.

    The area mean (cos-lat weights, periodic longitude) of the fine cells of each coarse
    node's cell: :func:`aprior.models.deepcams.grid.coarsen`, the degradation of the
    training pairs.
    """
    from aprior.models.deepcams.grid import coarsen

    with torch.no_grad():
        out = coarsen(torch.from_numpy(np.ascontiguousarray(fine, np.float32)), FACTOR)
    return out.numpy()


# -- normalisation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Normalisation:
    """``x = (log1p(c / scale) - mean) / std``, c in ug m-3 (see the module docstring).

    Attributes:
        scale: ug m-3, > 0.
        mean, std: of ``log1p(c / scale)`` over the training frames (std > 0).
        max: the largest training value (ug m-3); NaN when not recorded (older weights).
    """

    scale: float = 10.0
    mean: float = 0.0
    std: float = 1.0
    kind: str = "log1p-zscore"
    max: float = float("nan")

    def __post_init__(self) -> None:
        if self.kind != "log1p-zscore":
            raise ConfigError(f"unknown normalisation {self.kind!r}; only 'log1p-zscore' exists")
        if not (self.scale > 0 and self.std > 0 and np.isfinite(self.mean)):
            raise ConfigError(f"bad normalisation scale {self.scale}, mean {self.mean}, std {self.std}")

    def forward(self, conc):
        """ug m-3 (numpy array or tensor, any shape) -> normalised, same type."""
        if isinstance(conc, torch.Tensor):
            return (torch.log1p(conc / self.scale) - self.mean) / self.std
        return ((np.log1p(np.asarray(conc) / self.scale) - self.mean) / self.std).astype(np.float32)

    def inverse(self, x):
        """Normalised -> ug m-3 (>= 0), same type and shape."""
        if isinstance(x, torch.Tensor):
            return torch.clamp(self.scale * torch.expm1(x * self.std + self.mean), min=0.0)
        y = self.scale * np.expm1(np.asarray(x, np.float64) * self.std + self.mean)
        return np.maximum(y, 0.0).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        try:
            return cls(**{k: d[k] for k in ("scale", "mean", "std", "kind", "max") if k in d})
        except TypeError as exc:
            raise ConfigError(f"bad normalisation record {d!r}") from exc

    @classmethod
    def fit(cls, frames: Sequence[np.ndarray], scale: float = 10.0) -> Normalisation:
        """Mean and std of ``log1p(c / scale)`` over ``frames`` (each ``(ny, nx)`` ug m-3)."""
        if not len(frames):
            raise ConfigError("no frames to fit the normalisation on")
        logs = np.concatenate([np.log1p(np.asarray(f, np.float64).ravel() / scale) for f in frames])
        top = float(scale * np.expm1(logs.max()))
        return cls(scale=float(scale), mean=float(logs.mean()), std=float(max(logs.std(), 1e-6)),
                   max=top)


# -- local solar time ---------------------------------------------------------------------
def local_solar_hour(lon, utc_hours):
    """Mean local solar time (hours in [0, 24)) at longitudes ``lon`` (degrees east) and UTC
    hours ``utc_hours`` (broadcast): ``UTC + lon / 15``. The equation of time (at most about
    16 minutes) is left out."""
    return np.mod(np.asarray(utc_hours, np.float64) + np.asarray(lon, np.float64) / 15.0, 24.0)


def solar_channels(lon, hours) -> np.ndarray:
    """The temporal network's solar-time inputs.

    Args:
        lon: ``(w,)`` column longitudes, degrees east (any range).
        hours: ``(b, k)`` UTC hours of the ``k`` times of each sample (frame 0, frame 1,
            target); any origin that is a multiple of 24 h.

    Returns:
        ``(b, 2k, w)`` float32: ``sin`` and ``cos`` of ``2 pi LST / 24`` for each time, in
        that order (constant along latitude).
    """
    lst = local_solar_hour(np.asarray(lon)[None, None, :], np.asarray(hours)[..., None])
    ang = 2.0 * np.pi * lst / 24.0
    b, k, w = ang.shape
    return np.stack([np.sin(ang), np.cos(ang)], 2).reshape(b, 2 * k, w).astype(np.float32)


def hour_of_day(times) -> np.ndarray:
    """UTC hours since the start of each time's day (float64) of datetime64 ``times``."""
    t = np.asarray(times).astype("datetime64[s]")
    return (t - t.astype("datetime64[D]")).astype(np.float64) / 3600.0


# -- held-out days and pairs -------------------------------------------------------------
@dataclass(frozen=True)
class DaySplit:
    """Training, validation and test (held-out) days, disjoint, in date order."""

    train: tuple[np.datetime64, ...]
    val: tuple[np.datetime64, ...]
    test: tuple[np.datetime64, ...]

    def to_dict(self) -> dict:
        return {k: [str(d) for d in getattr(self, k)] for k in ("train", "val", "test")}


def split_days(days: Sequence[np.datetime64], val_days: int = 1, test_days: int = 1) -> DaySplit:
    """Hold out the last ``test_days`` days for testing and the ``val_days`` before them for
    validation (model selection); the rest train. ConfigError if no training day is left."""
    d = sorted({np.datetime64(x, "D") for x in days})
    if val_days < 0 or test_days < 0:
        raise ConfigError("val_days and test_days must be >= 0")
    n_train = len(d) - val_days - test_days
    if n_train < 1:
        raise ConfigError(f"the data covers {len(d)} day(s); holding out {val_days} validation "
                          f"and {test_days} test day(s) leaves none to train on")
    return DaySplit(tuple(d[:n_train]), tuple(d[n_train:n_train + val_days]),
                    tuple(d[n_train + val_days:]))


def hours_of_days(hours: np.ndarray, days: Sequence[np.datetime64]) -> np.ndarray:
    """The hours (datetime64[h]) of ``hours`` that fall on ``days``."""
    h = np.asarray(hours).astype("datetime64[h]")
    return h[np.isin(h.astype("datetime64[D]"), np.asarray(days, "datetime64[D]"))]


@dataclass(frozen=True)
class TemporalPairs:
    """Temporal samples: frames ``h0`` and ``h0 + gap`` -> frame ``h0 + k`` at ``t = k/gap``.

    Attributes (all ``(n,)``):
        h0, h1, ht: datetime64[h] hours of the first, last and target frame.
        t: float64 fraction ``(ht - h0) / (h1 - h0)`` in (0, 1).
    """

    h0: np.ndarray
    h1: np.ndarray
    ht: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return int(self.t.size)


def temporal_pairs(hours: np.ndarray, gap: int = 3, stride: int = 1) -> TemporalPairs:
    """Every complete window ``h0 .. h0 + gap`` of ``hours``, one sample per inner hour.

    Args:
        hours: available hours (datetime64), any order.
        gap: hours between the two input frames (3: EAC4 3-hourly -> hourly).
        stride: ``h0`` is a multiple of ``stride`` hours since 00 UTC (3: the EAC4 frame
            times, as in evaluation; 1: every hour, for training).

    Returns:
        the samples ordered by ``h0`` then ``t`` (``gap - 1`` per window).
    """
    if gap < 2 or stride < 1:
        raise ConfigError("gap must be >= 2 and stride >= 1")
    h = np.unique(np.asarray(hours).astype("datetime64[h]"))
    have = set(h.tolist())
    hod = (h - h.astype("datetime64[D]")).astype(int)
    step = np.timedelta64(1, "h")
    starts = [x for x, o in zip(h, hod, strict=True) if o % stride == 0
              and all((x + k * step).item() in have for k in range(1, gap + 1))]
    k = np.arange(1, gap)
    h0 = np.repeat(np.asarray(starts, "datetime64[h]"), k.size)
    kk = np.tile(k, len(starts))
    return TemporalPairs(h0, h0 + gap * step, h0 + kk * step, kk / gap)


def linear_interpolation(g0: np.ndarray, g1: np.ndarray, t) -> np.ndarray:
    """The correct linear baseline ``(1 - t) * G0 + t * G1`` (t = 0 gives G0).

    ``t`` is a scalar or broadcasts against ``g0`` (e.g. ``(n, 1, 1)``).
    """
    return (1.0 - t) * g0 + t * g1


def swapped_linear_interpolation(g0: np.ndarray, g1: np.ndarray, t) -> np.ndarray:
    """The paper's Eq. 9, ``t * G0 + (1 - t) * G1``: the weights are SWAPPED (t = 1/3 gets
    two thirds of the *later* frame). Kept only to reproduce the paper's baseline."""
    return t * g0 + (1.0 - t) * g1


# -- what to train on --------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """How DeepCAMS training samples are made (every field maps to a ``[data]`` TOML key).

    Attributes:
        temporal_grid: where the temporal model trains: "coarse" (GEOS-CF coarsened to
            0.75 degree: the grid and the motion per 3 hours of the EAC4 frames it is
            applied to) or "fine" (0.25 degree, as the paper did).
        temporal_patch: temporal crop side (cells of ``temporal_grid``).
        spatial_patch: spatial crop side in coarse cells (the target is 3x that).
        gap_hours: hours between the two input frames (3 for EAC4).
        train_stride: training windows start every ``train_stride`` hours (1: every hour;
            evaluation uses the EAC4 times, every ``gap_hours`` from 00 UTC).
        val_days, test_days: the last days held out (test last, validation before it).
        train_samples, val_samples: crops per training epoch / per validation.
        augment: flips (and time reversal) of training crops.
        norm_scale: the ``scale`` of the normalisation (ug m-3).
        cache_files: GEOS-CF files kept in memory.
        seed: crop seed (validation crops use ``seed + 1``).
        model_input: probability that a crop's coarse input comes from the data's hourly
            0.75 degree model files instead of the area mean of the truth (0: never; the
            two kinds of coarse input, :mod:`aprior.models.deepcams.patches`).
    """

    temporal_grid: str = "coarse"
    temporal_patch: int = 64
    spatial_patch: int = 32
    gap_hours: int = 3
    train_stride: int = 1
    val_days: int = 1
    test_days: int = 1
    train_samples: int = 2048
    val_samples: int = 256
    augment: bool = True
    norm_scale: float = 10.0
    cache_files: int = 8
    seed: int = 0
    model_input: float = 0.0

    def __post_init__(self) -> None:
        if self.temporal_grid not in ("coarse", "fine"):
            raise ConfigError(f"temporal_grid must be 'coarse' or 'fine', got {self.temporal_grid!r}")
        for name in ("temporal_patch", "spatial_patch", "train_stride", "train_samples",
                     "val_samples", "cache_files"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.gap_hours < 2:
            raise ConfigError(f"gap_hours must be at least 2, got {self.gap_hours}")
        if self.val_days < 1 or self.test_days < 0:
            raise ConfigError("val_days must be at least 1 and test_days at least 0")
        if not 0.0 <= self.model_input <= 1.0:
            raise ConfigError(f"model_input must be a probability in [0, 1], got {self.model_input}")
        if not self.norm_scale > 0:
            raise ConfigError(f"norm_scale must be positive, got {self.norm_scale}")

    @classmethod
    def from_mapping(cls, values: dict) -> DataSpec:
        """A spec from a mapping (a TOML ``[data]`` table); unknown keys are a ConfigError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown data setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)
