"""Profiles of any field to TM5 partial columns: fields on pressure, and the dispatcher.

:mod:`aprior.retrieval.vertical` turns profiles on heights above ground into TM5 partial
columns; this module does the same for fields on model levels or pressure levels
(:func:`pressure_partial_columns`), and :func:`tm5_partial_columns` picks the path from the
sampled profiles' vertical coordinate (:class:`ColumnProfiles`), so the reprocessing engine
has one call for every field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aprior.constants import G0, M_AIR
from aprior.retrieval.vertical import (
    VerticalConfig,
    _standard_height,
    interface_pressures,
    mass_to_number_density,
    number_density_air,
    partial_columns,
)


def _standard_temperature(p: np.ndarray, ps: np.ndarray, config: VerticalConfig) -> np.ndarray:
    """Temperature (K) at pressures ``p`` (n, k) of the default atmosphere over ``ps`` (n,)."""
    z = _standard_height(p, ps, config)
    return np.maximum(config.surface_temperature - config.lapse_rate * z,
                      config.surface_temperature - config.lapse_rate * config.isothermal_above)


def pressure_partial_columns(
    conc: np.ndarray,
    interfaces: np.ndarray,
    surface_pressure: np.ndarray,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    *,
    terrain_following: bool = True,
    config: VerticalConfig | None = None,
    quantity: str = "mole_fraction",
) -> np.ndarray:
    """NO2 partial columns of the TM5 layers from a field on pressure layers, mass-conserving.

    The mixing ratio ``x_k`` of a model layer stands for the whole layer, so the NO2
    column between two pressures inside it is ``x_k dp / (g M_air)`` (mol m-2; times
    ``N_A`` for molecules). The integral of the piecewise-constant profile is evaluated
    exactly at the TM5 interfaces ``p = a + b ps``, so every molecule of the model column
    between the satellite's surface and the model top lands in exactly one TM5 layer, and a
    constant mixing ratio gives partial columns proportional to each TM5 layer's pressure
    thickness.

    - Model levels (``terrain_following``): the model's interfaces are scaled by
      ``ps / p_0`` (its own surface pressure ``p_0``), so the model column sits on the
      satellite's surface, as a terrain-following coordinate does; with hybrid levels this
      is ``a ps / p_0 + b ps``.
    - Pressure levels: interfaces are absolute; layers below the satellite's surface are
      dropped and the lowest one above it is extended down to the surface (the reader
      puts the bottom interface far below any surface).
    - Above the model top (``interfaces[:, -1] > 0``): the top layer's mixing ratio is kept
      up to 0 Pa (``extension="constant_vmr"``, the default) or nothing (``"zero"``); a
      field whose top interface is 0 Pa needs no extension.

    Args:
        conc: ``(n, K)`` NO2 per model layer: mole fraction (mol mol-1, dry air) or, with
            ``quantity="mass_concentration"``, ug m-3 (converted with the air density
            ``p / (R T)`` at the layer's mid pressure, ``T`` from the default atmosphere of
            ``config``).
        interfaces: ``(n, K + 1)`` model interface pressures (Pa), bottom first, decreasing.
        surface_pressure: ``(n,)`` the satellite's surface pressure (Pa).
        tm5_a, tm5_b: ``(L, 2)`` TM5 hybrid coefficients (Pa, 1).
        terrain_following: model levels (True) or fixed pressure levels (False).
        config: the extension above the model top, the default atmosphere.
        quantity: ``"mole_fraction"`` or ``"mass_concentration"``.

    Returns:
        ``(n, L)`` float64 partial columns (mol m-2); NaN rows where an input is not finite.
    """
    config = config or VerticalConfig()
    if config.extension == "upper_field":
        raise ValueError("extension 'upper_field' is for fields on heights; a field on "
                         "pressure levels is extended with 'constant_vmr' or 'zero'")
    ps = np.asarray(surface_pressure, dtype=np.float64)
    pm = np.array(interfaces, dtype=np.float64)
    x = np.asarray(conc, dtype=np.float64)
    n, nk = x.shape
    if pm.shape != (n, nk + 1):
        raise ValueError(f"interfaces must be {(n, nk + 1)}, got {pm.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        if terrain_following:
            pm *= (ps / pm[:, 0])[:, None]
        if quantity == "mass_concentration":
            mid = 0.5 * (pm[:, :-1] + pm[:, 1:])
            x = mass_to_number_density(x) / number_density_air(mid, _standard_temperature(mid, ps, config))
        elif quantity != "mole_fraction":
            raise ValueError(f"unknown quantity {quantity!r}")
        pt = interface_pressures(ps, tm5_a, tm5_b)  # (n, L + 1), surface first
        # F(p) = ∫_p^{p_0} x dp', exact for piecewise-constant x
        cum = np.concatenate([np.zeros((n, 1)), np.cumsum(x * (pm[:, :-1] - pm[:, 1:]), axis=1)], axis=1)
        p = np.clip(pt, pm[:, -1:], pm[:, :1])
        # the model layer holding each TM5 interface; a loop over the model's interfaces keeps
        # memory at (n, L + 1) whatever the number of model levels (137 for IFS)
        k = np.zeros(p.shape, dtype=np.int64)
        for j in range(1, nk + 1):
            k += pm[:, j:j + 1] > p
        k = np.clip(k, 0, nk - 1)
        f = (np.take_along_axis(cum, k, axis=1)
             + np.take_along_axis(x, k, axis=1) * (np.take_along_axis(pm, k, axis=1) - p))
        columns = (f[:, 1:] - f[:, :-1]) / (G0 * M_AIR)
        if config.extension == "constant_vmr":
            top = pm[:, -1:]
            dp = np.clip(np.minimum(pt[:, :-1], top) - pt[:, 1:], 0.0, None)
            columns += x[:, -1:] * dp / (G0 * M_AIR)
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(pm).all(axis=1) & (ps > 0))
    columns[bad] = np.nan
    return columns


@dataclass(frozen=True)
class ColumnProfiles:
    """Footprint-mean profiles of ``n`` pixels on a field's own vertical coordinate.

    Attributes:
        values: ``(n, z)`` NO2, ug m-3 or mol mol-1 (``quantity``).
        quantity: ``"mass_concentration"`` or ``"mole_fraction"``.
        heights: ``(z,)`` or ``(n, z)`` m above ground, for fields on heights.
        pressure: ``(n, z + 1)`` Pa interfaces (bottom first), for fields on pressure.
        terrain_following: model levels (True) or fixed pressure levels (False).
    """

    values: np.ndarray
    quantity: str = "mass_concentration"
    heights: np.ndarray | None = None
    pressure: np.ndarray | None = None
    terrain_following: bool = True

    def __post_init__(self) -> None:
        if (self.heights is None) == (self.pressure is None):
            raise ValueError("column profiles have either heights or pressure interfaces")

    def take(self, sel: np.ndarray) -> ColumnProfiles:
        """The profiles of the pixels ``sel`` (a boolean or index array over ``n``)."""
        h = self.heights
        if h is not None and h.ndim == 2:
            h = h[sel]
        p = None if self.pressure is None else self.pressure[sel]
        return ColumnProfiles(self.values[sel], self.quantity, h, p, self.terrain_following)


def tm5_partial_columns(
    profiles: ColumnProfiles,
    surface_pressure: np.ndarray,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    *,
    config: VerticalConfig | None = None,
    temperature: np.ndarray | None = None,
    upper: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``(n, L)`` TM5 partial columns (mol m-2) of profiles on heights or on pressure
    (:func:`partial_columns`, :func:`pressure_partial_columns`)."""
    if profiles.pressure is not None:
        return pressure_partial_columns(profiles.values, profiles.pressure, surface_pressure,
                                        tm5_a, tm5_b, terrain_following=profiles.terrain_following,
                                        config=config, quantity=profiles.quantity)
    return partial_columns(profiles.values, profiles.heights, surface_pressure, tm5_a, tm5_b,
                           config=config, temperature=temperature, upper=upper,
                           quantity=profiles.quantity)
