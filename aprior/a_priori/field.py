"""The in-memory bundle of a 3D NO2 profile field.

A field is NO2 on a regular horizontal grid, on one of three vertical coordinates:

- heights above ground (``heights``), e.g. DACNO2 and CAMS regional levels;
- heights above sea level (``heights`` with ``surface_elevation``), turned into heights
  above ground pixel by pixel where the field is sampled;
- pressure (``pressure``): hybrid sigma-pressure model levels (``p = a + b ps``), fixed
  pressure levels (``b = 0``) or a 3D interface-pressure field (WRF, LOTOS-EUROS).

Values are either a mass concentration (ug m-3) or a mole fraction (mol mol-1, dry air);
every other unit is converted exactly by the reader (mass mixing ratio via the molar masses,
number density via the molar mass and Avogadro's number). Conversions between the two kinds
need the air density and happen in :mod:`aprior.retrieval.vertical`, where pressure and
temperature are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from aprior.constants import M_NO2  # noqa: F401  (re-exported: molar mass of NO2, g mol-1)
from aprior.grids.grid import Grid

MASS_CONCENTRATION = "mass_concentration"
MOLE_FRACTION = "mole_fraction"
Quantity = Literal["mass_concentration", "mole_fraction"]
#: Unit of ``ProfileField.no2`` for each quantity.
QUANTITY_UNITS = {MASS_CONCENTRATION: "ug m-3", MOLE_FRACTION: "mol mol-1"}


@dataclass(frozen=True)
class PressureLevels:
    """The pressure coordinate of a field on model or pressure levels.

    Interfaces ``k = 0 .. z`` bound the ``z`` layers, bottom (surface) first; layer ``k``
    lies between interfaces ``k`` and ``k + 1``. The value of a layer stands for the whole
    layer (a model's layer mean).

    Attributes:
        a: ``(z + 1,)`` float64 Pa; with ``b``, ``p_k = a_k + b_k ps`` (hybrid
            sigma-pressure; ``b = 0`` for fixed pressure levels). Ignored when
            ``interfaces`` is given.
        b: ``(z + 1,)`` float64, 1.
        surface_pressure: ``(t, y, x)`` float32 Pa (the model's own), or None: for fixed
            pressure levels, or hybrid levels given without their surface pressure (then the
            levels are placed on the satellite's surface pressure, as KNMI does with TM5).
        interfaces: ``(t, z + 1, y, x)`` float32 Pa, a 3D interface-pressure field given by
            the model (WRF, LOTOS-EUROS), or None.
        terrain_following: True for model levels, whose column is placed on the satellite's
            surface pressure; False for fixed pressure levels, where levels below the
            surface are dropped and the lowest one above it is extended down to it.
    """

    a: np.ndarray
    b: np.ndarray
    surface_pressure: np.ndarray | None = None
    interfaces: np.ndarray | None = None
    terrain_following: bool = True

    def __post_init__(self) -> None:
        if self.interfaces is not None:
            if self.interfaces.ndim != 4:
                raise ValueError(f"interfaces must be (t, z + 1, y, x), got {self.interfaces.shape}")
            return
        if self.a.ndim != 1 or self.a.shape != self.b.shape or self.a.size < 2:
            raise ValueError(f"a and b must both be (z + 1,), got {self.a.shape} and {self.b.shape}")
        ref = self.a + self.b * 101325.0
        if not np.all(np.diff(ref) < 0):
            raise ValueError("pressure interfaces must decrease upwards (bottom first)")

    @property
    def nz(self) -> int:
        return (self.interfaces.shape[1] if self.interfaces is not None else self.a.size) - 1

    @property
    def top_pa(self) -> float:
        """The highest interface's pressure (Pa) for a standard surface (0 at the model top)."""
        if self.interfaces is not None:
            return float(np.nanmax(self.interfaces[:, -1]))
        return float(self.a[-1] + self.b[-1] * 101325.0)


@dataclass(frozen=True)
class ProfileField:
    """A 3D NO2 field on a regular horizontal grid (vertical coordinate: module docstring).

    Attributes:
        no2: ``(t, z, y, x)`` float32, finite and >= 0, in ``QUANTITY_UNITS[quantity]``
            (ug m-3 by default). Rows ascend in y and columns in x, as the grid's cells;
            levels ascend (surface first).
        heights: ``(z,)`` float64 level heights in m, strictly increasing: above ground, or
            above sea level when ``surface_elevation`` is given; None for a field on
            ``pressure``.
        grid: the horizontal grid; ``grid.shape == no2.shape[2:]``.
        times: ``(t,)`` datetime64[ns] valid times, ascending, or None for a field valid
            at all times (then ``t == 1``).
        source: short description used as the ``apriori_source`` attribute.
        path: the file it was read from, if any (for messages).
        attrs: provenance attributes carried along.
        quantity: ``"mass_concentration"`` (ug m-3) or ``"mole_fraction"`` (mol mol-1).
        pressure: the pressure coordinate, for fields on model or pressure levels.
        surface_elevation: ``(y, x)`` float32 m above sea level, for heights above sea level.
    """

    no2: np.ndarray
    heights: np.ndarray | None
    grid: Grid
    times: np.ndarray | None = None
    source: str = "unknown"
    path: str | None = None
    attrs: dict = field(default_factory=dict)
    quantity: Quantity = MASS_CONCENTRATION
    pressure: PressureLevels | None = None
    surface_elevation: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.no2.ndim != 4:
            raise ValueError(f"no2 must be (t, z, y, x), got shape {self.no2.shape}")
        t, z, ny, nx = self.no2.shape
        if (ny, nx) != self.grid.shape:
            raise ValueError(f"no2 horizontal shape {(ny, nx)} != grid shape {self.grid.shape}")
        if self.quantity not in QUANTITY_UNITS:
            raise ValueError(f"quantity must be one of {tuple(QUANTITY_UNITS)}, got {self.quantity!r}")
        if (self.heights is None) == (self.pressure is None):
            raise ValueError("a field has either heights or a pressure coordinate")
        if self.heights is not None:
            if self.heights.shape != (z,):
                raise ValueError(f"heights shape {self.heights.shape} != ({z},)")
            if z > 1 and not np.all(np.diff(self.heights) > 0):
                raise ValueError("heights must be strictly increasing")
        else:
            self._check_pressure(t, z, ny, nx)
        if self.surface_elevation is not None and (
                self.heights is None or self.surface_elevation.shape != (ny, nx)):
            raise ValueError("surface_elevation must be (y, x) and goes with heights above sea level")
        if self.times is None:
            if t != 1:
                raise ValueError("a field without times must have t == 1")
        else:
            if self.times.shape != (t,):
                raise ValueError(f"times shape {self.times.shape} != ({t},)")
            if t > 1 and not np.all(np.diff(self.times) > np.timedelta64(0, "ns")):
                raise ValueError("times must be strictly increasing")

    def _check_pressure(self, t: int, z: int, ny: int, nx: int) -> None:
        pr = self.pressure
        if pr.nz != z:
            raise ValueError(f"the pressure coordinate has {pr.nz} layers, no2 has {z}")
        if pr.interfaces is not None and pr.interfaces.shape != (t, z + 1, ny, nx):
            raise ValueError(f"interfaces shape {pr.interfaces.shape} != {(t, z + 1, ny, nx)}")
        if pr.surface_pressure is not None and pr.surface_pressure.shape != (t, ny, nx):
            raise ValueError(f"surface_pressure shape {pr.surface_pressure.shape} != {(t, ny, nx)}")

    @property
    def nz(self) -> int:
        return self.no2.shape[1]

    @property
    def units(self) -> str:
        """The unit of ``no2``."""
        return QUANTITY_UNITS[self.quantity]

    @property
    def vertical_kind(self) -> str:
        """A short name of the vertical coordinate, for messages and attributes."""
        if self.pressure is not None:
            if self.pressure.interfaces is not None:
                return "model levels (3D interface pressure)"
            return "hybrid sigma-pressure levels" if self.pressure.terrain_following else "pressure levels"
        return "heights above sea level" if self.surface_elevation is not None else "heights above ground"


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
