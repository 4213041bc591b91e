"""From an NO2 profile on heights above ground to partial columns on the TM5 layers.

The new a-priori ``x_l`` of the AMF step (:mod:`aprior.retrieval.amf`) is the NO2 column
in each of the 34 TM5 pressure layers of the L2 file. It is made from a concentration
profile (ug m-3 at fixed heights above ground, e.g. the 8 DACNO2 levels 0-5000 m) in
four steps, all vectorised over pixels:

1. Layer interfaces. The TM5 hybrid coefficients give the interface pressures
   ``p = a + b * ps`` (Pa): interface ``k`` (0..34) is the base of layer ``k``, interface
   34 the top of layer 33 (0 Pa).
2. Interface heights above ground, from the hypsometric equation for dry air (the
   virtual temperature is taken equal to the temperature, no humidity). By default the
   temperature follows a U.S.-Standard-Atmosphere-like profile anchored at the ground,
   ``T(z) = T_s - Γ z`` up to 11 km above ground and isothermal above
   (``T_s = 288.15 K``, ``Γ = 6.5 K/km``), integrated exactly:
   ``z(p) = T_s / Γ (1 - (p / p_s)^(R_d Γ / g))`` below 11 km and
   ``z(p) = z_11 + R_d T_11 / g ln(p_11 / p)`` above. Given layer-mean temperatures
   ``T_l`` instead, ``z_{l+1} = z_l + R_d T_l / g ln(p_l / p_{l+1})``. The top interface,
   at 0 Pa, lies at +inf.
3. The profile. Mass concentration becomes number density,
   ``n [mol m-3] = c [ug m-3] * 1e-6 / 46.0055``. Between levels ``n`` is linear in
   height; below the lowest level it is constant down to the ground. Its integral
   ``F(z) = ∫_0^z n dz'`` is piecewise quadratic and is evaluated exactly, so the column
   of a layer is ``F(min(z_top, z_{l+1})) - F(min(z_top, z_l))`` and the layers sum to the
   integral of the profile: nothing is lost or made up.
4. Above the top level ``z_top`` of the profile (the extension):

   - ``"constant_vmr"`` (default): the volume mixing ratio at the top level,
     ``VMR = n(z_top) / n_air(z_top)`` with ``n_air = p / (R T)``, is kept up to the top
     of the atmosphere; the part of a layer above ``z_top`` gets ``VMR * dp / (g M_air)``
     (its air column in mol m-2).
   - ``"upper_field"``: a second profile (e.g. CAMS global, ug m-3 at its own heights
     above ground) continues the first above ``z_top``, linearly joined to it, then the
     VMR at its own top is kept constant.
   - ``"zero"``: no NO2 above ``z_top``.

Only the shape of ``x`` matters for the AMF, but the extension changes that shape: a
profile that stops at 5 km must reach the tropopause (Douros et al. 2023; the TEMIS
CAMS-a-priori product uses CAMS global above 3 km).

A profile may also be a mole fraction (mol mol-1): it becomes a number density with the
air density ``n_air = p / (R T)`` of the same atmosphere (dry ideal gas; the standard
temperature profile unless layer temperatures are given). Heights may differ from pixel to
pixel (``(n, z)``), as they do for fields on heights above sea level over varying terrain
(:func:`above_ground`). Fields on model or pressure levels are integrated in pressure by
:mod:`aprior.retrieval.vertical_fields`, which also picks the path for any field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from aprior.constants import G0, M_AIR, M_NO2, R_DRY, R_GAS

Extension = Literal["constant_vmr", "upper_field", "zero"]
_EXTENSIONS = ("constant_vmr", "upper_field", "zero")


@dataclass(frozen=True)
class VerticalConfig:
    """How profiles become TM5 partial columns (defaults as in the module docstring).

    Attributes:
        surface_temperature: ``T_s`` of the default temperature profile (K).
        lapse_rate: ``Γ`` (K m-1), >= 0; 0 gives an isothermal atmosphere.
        isothermal_above: height above ground (m) from which the default profile is
            isothermal (11 km in the U.S. Standard Atmosphere).
        extension: what lies above the profile's top level: ``"constant_vmr"``,
            ``"upper_field"`` or ``"zero"``.
        interpolation: fixed, ``"linear_number_density"``: number density piecewise
            linear in height between levels, constant below the lowest one.
    """

    surface_temperature: float = 288.15
    lapse_rate: float = 0.0065
    isothermal_above: float = 11000.0
    extension: Extension = "constant_vmr"
    interpolation: Literal["linear_number_density"] = "linear_number_density"

    def __post_init__(self) -> None:
        if self.extension not in _EXTENSIONS:
            raise ValueError(f"extension must be one of {_EXTENSIONS}, got {self.extension!r}")
        if self.interpolation != "linear_number_density":
            raise ValueError("the only interpolation is 'linear_number_density'")
        if not self.lapse_rate >= 0 or not self.isothermal_above >= 0:
            raise ValueError("lapse_rate and isothermal_above must be >= 0")
        if not self.surface_temperature - self.lapse_rate * self.isothermal_above > 0:
            raise ValueError("the temperature profile must stay above 0 K")


def number_density_air(pressure: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Air number density (mol m-3) from pressure (Pa) and temperature (K), any shape."""
    return np.asarray(pressure, dtype=np.float64) / (R_GAS * np.asarray(temperature, dtype=np.float64))


def mass_to_number_density(conc: np.ndarray) -> np.ndarray:
    """NO2 number density (mol m-3) from mass concentration (ug m-3), any shape."""
    return np.asarray(conc, dtype=np.float64) * (1e-6 / M_NO2)


def interface_pressures(surface_pressure: np.ndarray, tm5_a: np.ndarray, tm5_b: np.ndarray) -> np.ndarray:
    """``(n, L + 1)`` interface pressures (Pa), surface first.

    Args:
        surface_pressure: ``(n,)`` Pa.
        tm5_a, tm5_b: ``(L, 2)`` hybrid coefficients (Pa, 1); vertex 0 is a layer's base,
            vertex 1 its top.
    """
    a, b = np.asarray(tm5_a, dtype=np.float64), np.asarray(tm5_b, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or b.shape != a.shape:
        raise ValueError(f"tm5_a and tm5_b must both be (L, 2), got {a.shape} and {b.shape}")
    a_int = np.append(a[:, 0], a[-1, 1])
    b_int = np.append(b[:, 0], b[-1, 1])
    ps = np.asarray(surface_pressure, dtype=np.float64)
    return a_int[None, :] + b_int[None, :] * ps[:, None]


def air_partial_columns(surface_pressure: np.ndarray, tm5_a: np.ndarray, tm5_b: np.ndarray) -> np.ndarray:
    """``(n, L)`` air column of each TM5 layer (mol m-2): ``dp / (g M_air)``."""
    p = interface_pressures(surface_pressure, tm5_a, tm5_b)
    return (p[:, :-1] - p[:, 1:]) / (G0 * M_AIR)


def _standard_levels(config: VerticalConfig, ps: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(T_11, z_11, p_11): temperature, height and (n,) pressure where isothermy starts."""
    ts, gamma, z11 = config.surface_temperature, config.lapse_rate, config.isothermal_above
    t11 = ts - gamma * z11
    if gamma > 0:
        p11 = ps * (t11 / ts) ** (G0 / (R_DRY * gamma))
    else:
        p11 = ps * np.exp(-G0 * z11 / (R_DRY * ts))
    return t11, z11, p11


def _standard_height(p: np.ndarray, ps: np.ndarray, config: VerticalConfig) -> np.ndarray:
    """Heights (m above ground) of pressures ``p`` (n, k) in the default atmosphere."""
    ts, gamma = config.surface_temperature, config.lapse_rate
    t11, z11, p11 = _standard_levels(config, ps)
    ratio = p / ps[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if gamma > 0:
            low = ts / gamma * (1.0 - ratio ** (R_DRY * gamma / G0))
        else:
            low = -R_DRY * ts / G0 * np.log(ratio)
        high = z11 + R_DRY * t11 / G0 * np.log(p11[:, None] / p)
    return np.where(p >= p11[:, None], low, high)


def layer_heights(
    surface_pressure: np.ndarray,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    temperature: np.ndarray | None = None,
    *,
    config: VerticalConfig | None = None,
) -> np.ndarray:
    """Heights of the TM5 layer interfaces above ground.

    Args:
        surface_pressure: ``(n,)`` Pa.
        tm5_a, tm5_b: ``(L, 2)`` hybrid coefficients (Pa, 1).
        temperature: ``(n, L)`` layer-mean temperatures (K), or None for the default
            lapse-rate profile of ``config``.
        config: the temperature profile used when ``temperature`` is None.

    Returns:
        ``(n, L + 1)`` float64 m, ascending; the interface at 0 Pa is +inf. NaN rows
        where the inputs are not finite or not positive.
    """
    config = config or VerticalConfig()
    ps = np.asarray(surface_pressure, dtype=np.float64)
    p = interface_pressures(ps, tm5_a, tm5_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if temperature is None:
            z = _standard_height(p, ps, config)
        else:
            t = np.asarray(temperature, dtype=np.float64)
            if t.shape != (p.shape[0], p.shape[1] - 1):
                raise ValueError(f"temperature must be {(p.shape[0], p.shape[1] - 1)}, got {t.shape}")
            dz = R_DRY * t / G0 * np.log(p[:, :-1] / p[:, 1:])
            z0 = R_DRY * t[:, :1] / G0 * np.log(ps[:, None] / p[:, :1])
            z = z0 + np.concatenate([np.zeros_like(z0), np.cumsum(dz, axis=1)], axis=1)
            z[~np.all(t > 0, axis=1)] = np.nan
    z[~(ps > 0)] = np.nan
    return z


def _state_at(z: np.ndarray, ps, p_int, z_int, temperature, config) -> tuple[np.ndarray, np.ndarray]:
    """Pressure (Pa) and temperature (K) at heights ``z`` (n,) above ground."""
    if temperature is None:
        t11, z11, p11 = _standard_levels(config, ps)
        gamma, ts = config.lapse_rate, config.surface_temperature
        t = np.maximum(ts - gamma * z, t11)
        if gamma > 0:
            low = ps * (np.maximum(1.0 - gamma * z / ts, 0.0)) ** (G0 / (R_DRY * gamma))
        else:
            low = ps * np.exp(-G0 * z / (R_DRY * ts))
        high = p11 * np.exp(-G0 * (z - z11) / (R_DRY * t11))
        return np.where(z <= z11, low, high), t
    n_layers = temperature.shape[1]
    k = np.clip((z_int[:, 1:] <= z[:, None]).sum(axis=1), 0, n_layers - 1)
    rows = np.arange(z.shape[0])
    t = temperature[rows, k]
    p = p_int[rows, k] * np.exp(-G0 * (z - z_int[rows, k]) / (R_DRY * t))
    return p, t


def _profile(conc, heights, upper) -> tuple[np.ndarray, np.ndarray]:
    """Levels ``(n, z)`` from 0 m and values ``(n, z)`` of the joined profile (the unit of
    ``conc``: number density or mole fraction)."""
    nd = np.asarray(conc, dtype=np.float64)
    z = np.asarray(heights, dtype=np.float64)
    if nd.ndim != 2 or z.shape not in ((nd.shape[1],), nd.shape):
        raise ValueError(f"conc {nd.shape} and heights {z.shape} do not match as (n, z) and (z,) or (n, z)")
    z = np.broadcast_to(z, nd.shape)
    if z.shape[1] > 1 and not np.all(np.diff(z, axis=1) > 0):
        raise ValueError("heights must be strictly increasing")
    if upper is not None:
        u_nd, u_z = np.asarray(upper[0], dtype=np.float64), np.asarray(upper[1], dtype=np.float64)
        if u_nd.shape != (nd.shape[0], u_z.size):
            raise ValueError(f"upper concentrations {u_nd.shape} do not match (n, {u_z.size})")
        if np.ptp(z[:, -1]) > 0:
            raise ValueError("an upper field needs the same heights above ground in every pixel")
        above = u_z > z[0, -1]
        z = np.concatenate([z, np.broadcast_to(u_z[above], (nd.shape[0], int(above.sum())))], axis=1)
        nd = np.concatenate([nd, u_nd[:, above]], axis=1)
        if not np.all(np.diff(z, axis=1) > 0):
            raise ValueError("upper heights must be strictly increasing")
    ground = z[:, :1] > 0
    if ground.any():
        z = np.concatenate([np.where(ground, 0.0, np.minimum(z[:, :1], 0.0) - 1.0), z], axis=1)
        nd = np.concatenate([nd[:, :1], nd], axis=1)
        # rows already starting at or below 0 m get a dummy level below, never reached
    return z, nd


def _integral(z: np.ndarray, nd: np.ndarray, h: np.ndarray) -> np.ndarray:
    """F(h) = ∫_0^h n dz for heights ``h`` (n, k) within ``[0, z[:, -1]]``, levels ``z (n, Z)``."""
    if z.shape[1] == 1:
        return np.zeros_like(h)
    seg = np.diff(z, axis=1)
    part = seg * 0.5 * (nd[:, :-1] + nd[:, 1:])
    cum = np.concatenate([np.zeros((nd.shape[0], 1)), np.cumsum(part, axis=1)], axis=1)
    idx = np.clip((h[:, :, None] >= z[:, None, :]).sum(axis=2) - 1, 0, z.shape[1] - 2)
    dz = h - np.take_along_axis(z, idx, axis=1)
    n0 = np.take_along_axis(nd, idx, axis=1)
    slope = (np.take_along_axis(nd, idx + 1, axis=1) - n0) / np.take_along_axis(seg, idx, axis=1)
    return np.take_along_axis(cum, idx, axis=1) + dz * (n0 + 0.5 * slope * dz)


def above_ground(values: np.ndarray, heights_asl: np.ndarray,
                 elevation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A profile on heights above sea level as a profile on heights above ground.

    Levels below the ground are dropped: their place is taken by the profile's value at
    the ground (linear in height between the levels around it), stacked 1 mm apart just
    below 0 m, so the heights stay strictly increasing and add nothing to the column
    (only heights above 0 m are integrated).

    Args:
        values: ``(n, z)`` profile values at ``heights_asl``.
        heights_asl: ``(z,)`` m above sea level, strictly increasing.
        elevation: ``(n,)`` surface elevation, m above sea level.

    Returns:
        ``(heights (n, z) m above ground, values (n, z))``; NaN rows where the ground lies
        above the highest level or the elevation is not finite.
    """
    v = np.asarray(values, dtype=np.float64)
    zs = np.asarray(heights_asl, dtype=np.float64)
    el = np.asarray(elevation, dtype=np.float64)
    agl = zs[None, :] - el[:, None]
    below = agl < 0
    k = np.clip(below.sum(axis=1), 1, zs.size - 1)  # first level above ground
    rows = np.arange(v.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.clip(-agl[rows, k - 1] / (agl[rows, k] - agl[rows, k - 1]), 0.0, 1.0)
    at_ground = (1 - w) * v[rows, k - 1] + w * v[rows, k] if zs.size > 1 else v[:, 0]
    stack = -1e-3 * (below.sum(axis=1, keepdims=True) - np.arange(zs.size)[None, :])
    h = np.where(below, stack, agl)
    vals = np.where(below, at_ground[:, None], v)
    bad = ~np.isfinite(el) | below[:, -1]
    h[bad], vals[bad] = np.nan, np.nan
    return h, vals


def partial_columns(
    conc: np.ndarray,
    heights: np.ndarray,
    surface_pressure: np.ndarray,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    *,
    config: VerticalConfig | None = None,
    temperature: np.ndarray | None = None,
    upper: tuple[np.ndarray, np.ndarray] | None = None,
    quantity: str = "mass_concentration",
) -> np.ndarray:
    """NO2 partial columns of the TM5 layers from a profile on heights (module docstring).

    Args:
        conc: ``(n, z)`` NO2 at ``heights``: mass concentration (ug m-3), or mole fraction
            (mol mol-1) with ``quantity="mole_fraction"``; a mole fraction becomes a number
            density with the air density ``p / (R T)`` of the temperature profile used for
            the layer heights (the standard atmosphere unless ``temperature`` is given).
        heights: ``(z,)`` level heights (m above ground), strictly increasing, >= 0; or
            ``(n, z)`` per pixel, where levels below 0 m (as :func:`above_ground` makes
            them) add nothing.
        surface_pressure: ``(n,)`` Pa.
        tm5_a, tm5_b: ``(L, 2)`` hybrid coefficients (Pa, 1); L = 34 for S5P.
        config: temperature profile and extension (``VerticalConfig()`` by default).
        temperature: ``(n, L)`` layer-mean temperatures (K), or None for the default
            profile.
        upper: ``(upper_conc (n, zu) ug m-3, upper_heights (zu,) m above ground)``, the
            profile above ``heights[-1]``; required by, and only allowed with,
            ``extension="upper_field"``.
        quantity: ``"mass_concentration"`` or ``"mole_fraction"``.

    Returns:
        ``(n, L)`` float64 partial columns (mol m-2), surface layer first. A row is NaN
        where its concentrations, surface pressure or temperatures are not finite.
    """
    config = config or VerticalConfig()
    if (config.extension == "upper_field") != (upper is not None):
        raise ValueError("upper is required by, and only allowed with, extension='upper_field'")
    ps = np.asarray(surface_pressure, dtype=np.float64)
    if temperature is not None:
        temperature = np.asarray(temperature, dtype=np.float64)
    z_int = layer_heights(ps, tm5_a, tm5_b, temperature, config=config)
    p_int = interface_pressures(ps, tm5_a, tm5_b)
    values = np.asarray(conc, dtype=np.float64)
    if quantity == "mole_fraction":
        zz = np.broadcast_to(np.asarray(heights, dtype=np.float64), values.shape)
        with np.errstate(invalid="ignore"):
            air = np.stack([number_density_air(*_state_at(zz[:, k], ps, p_int, z_int, temperature, config))
                            for k in range(values.shape[1])], axis=1)
        nd = values * air
    elif quantity == "mass_concentration":
        nd = mass_to_number_density(values)
    else:
        raise ValueError(f"unknown quantity {quantity!r}")
    if np.ndim(heights) == 1 and np.asarray(heights)[0] < 0:
        raise ValueError(f"heights are above ground and cannot be negative, got {np.asarray(heights)[0]}")
    if upper is not None:
        upper = (mass_to_number_density(upper[0]), upper[1])
    z, nd = _profile(nd, heights, upper)
    z_top = z[:, -1]
    with np.errstate(invalid="ignore"):
        columns = np.diff(_integral(z, nd, np.clip(z_int, 0.0, z_top[:, None])), axis=1)
        if config.extension != "zero":
            p_top, t_top = _state_at(z_top, ps, p_int, z_int, temperature, config)
            vmr = nd[:, -1] / number_density_air(p_top, t_top)
            dp = np.clip(np.minimum(p_int[:, :-1], p_top[:, None]) - p_int[:, 1:], 0.0, None)
            columns += vmr[:, None] * dp / (G0 * M_AIR)
    bad = ~(np.isfinite(nd).all(axis=1) & np.isfinite(z).all(axis=1)
            & np.isfinite(z_int[:, :-1]).all(axis=1))
    columns[bad] = np.nan
    return columns

