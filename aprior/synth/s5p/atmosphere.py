"""Synthetic atmosphere for S5P NO2 test files: TM5 layers, box AMFs, a DOAS-AMF retrieval.

Plausible models, documented as such; not radiative transfer. The retrieval follows the
equations of the a-priori replacement (Eskes and Boersma 2003; see FACTS) exactly, so that
files made with it are self-consistent.
"""

from __future__ import annotations

import numpy as np

_G = 9.80665
_M_AIR = 0.0289644


# ECMWF L60 half-level coefficients, top (index 0) to surface (index 60); A in Pa.
# fmt: off
_L60_A = np.array([
    0.0, 20.0, 38.425343, 63.647804, 95.636963, 134.483307, 180.584351,
    234.779053, 298.495789, 373.971924, 464.618134, 575.651001, 713.218079, 883.660522,
    1094.834717, 1356.474609, 1680.640259, 2082.273926, 2579.888672, 3196.421631, 3960.291504,
    4906.708496, 6018.019531, 7306.631348, 8765.053711, 10376.126953, 12077.446289, 13775.325195,
    15379.805664, 16819.474609, 18045.183594, 19027.695313, 19755.109375, 20222.205078, 20429.863281,
    20384.480469, 20097.402344, 19584.330078, 18864.75, 17961.357422, 16899.46875, 15706.447266,
    14411.124023, 13043.21875, 11632.758789, 10209.500977, 8802.356445, 7438.803223, 6144.314941,
    4941.77832, 3850.91333, 2887.696533, 2063.779785, 1385.912598, 855.361755, 467.333588,
    210.39389, 65.889244, 7.367743, 0.0, 0.0,
])
_L60_B = np.concatenate([np.zeros(24), [
    7.6e-05, 0.000461, 0.001815, 0.005081, 0.011143, 0.020678, 0.034121, 0.05169, 0.073534,
    0.099675, 0.130023, 0.164384, 0.202476, 0.243933, 0.288323, 0.335155, 0.383892, 0.433963,
    0.484772, 0.53571, 0.586168, 0.635547, 0.683269, 0.728786, 0.771597, 0.811253, 0.847375,
    0.879657, 0.907884, 0.93194, 0.951822, 0.967645, 0.979663, 0.98827, 0.994019, 0.99763,
    1.0,
]])
# fmt: on
# 35 of the 61 half levels, surface first: all of the lowest 8 layers, then every other one.
_TM5_HALF_LEVELS = (60, 59, 58, 57, 56, 55, 54, 53, *range(51, 0, -2), 0)


def tm5_hybrid_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """Plausible TM5 34-layer hybrid coefficients.

    TM5 builds its layers by merging layers of the ECMWF 60-level grid. The exact
    operational TM5-MP selection is carried by every real L2 file (``tm5_constant_a/b``)
    and the reader takes it from there; this synthetic set merges the ECMWF L60 half
    levels the same way (fine near the surface, every second level above ~900 hPa),
    giving a 20 m surface layer, the tropopause near layer 17-18 at mid-latitudes and
    a model top at 0 Pa.

    Returns:
        (a, b): each ``(34, 2)`` float64; ``a`` in Pa, ``b`` dimensionless; layer 0 is the
        surface layer, vertex 0 the layer base and 1 its top; ``p = a + b * ps``.
    """
    idx = np.asarray(_TM5_HALF_LEVELS)
    a = np.stack([_L60_A[idx[:-1]], _L60_A[idx[1:]]], axis=-1)
    b = np.stack([_L60_B[idx[:-1]], _L60_B[idx[1:]]], axis=-1)
    return a, b


def layer_pressures(
    tm5_a: np.ndarray, tm5_b: np.ndarray, surface_pressure: np.ndarray
) -> np.ndarray:
    """Layer interface pressures ``(..., 34, 2)`` (Pa) for surface pressures ``(...)`` (Pa)."""
    ps = np.asarray(surface_pressure, dtype=float)[..., None, None]
    return tm5_a + tm5_b * ps


def air_partial_columns(
    tm5_a: np.ndarray, tm5_b: np.ndarray, surface_pressure: np.ndarray
) -> np.ndarray:
    """Air partial columns ``(..., 34)`` in mol m-2: ``dp / (g M_air)``."""
    p = layer_pressures(tm5_a, tm5_b, surface_pressure)
    return (p[..., 0] - p[..., 1]) / (_G * _M_AIR)


def box_amf_model(
    pressure_mid: np.ndarray,
    surface_pressure: np.ndarray,
    *,
    sza: np.ndarray,
    vza: np.ndarray,
    albedo: np.ndarray,
    cloud_fraction: np.ndarray,
    cloud_pressure: np.ndarray,
) -> np.ndarray:
    """A synthetic scattering-weight (box AMF) model; not radiative transfer.

    With the geometric AMF ``G = 1/cos(sza) + 1/cos(vza)`` and ``x = p / ps``:

    - clear sky: ``m = G (1 - (1 - s0) x^3)``, where the surface sensitivity
      ``s0 = clip(0.3 + 1.2 albedo, 0.3, 1)`` is 0.3-0.6 of ``G`` over dark surfaces and
      grows over bright ones; sensitivity rises with altitude towards ``G``;
    - cloudy part: above the cloud ``G (1 + 0.4 exp(-(pc - p) / 80 hPa))`` (enhanced by
      reflection at the cloud top), below it ``0.02 G`` (screened);
    - mixed with the cloud radiance fraction ``w = 0.8 f / (0.8 f + (0.15 + albedo)(1 - f))``
      (cloud reflectance 0.8, clear-sky reflectance = surface albedo + 0.15 of Rayleigh
      path radiance): ``m = (1 - w) m_clear + w m_cloudy``.

    Args:
        pressure_mid: ``(n, l)``; Pa. Layer mid pressures.
        surface_pressure: ``(n,)``; Pa.
        sza, vza: ``(n,)``; degrees.
        albedo: ``(n,)``; 1. Surface albedo at 440 nm.
        cloud_fraction: ``(n,)``; 1. Effective cloud fraction.
        cloud_pressure: ``(n,)``; Pa. Clouds below the surface are put at the surface.

    Returns:
        ``(n, l)`` box AMFs (1).
    """
    p = np.asarray(pressure_mid, dtype=float)
    ps = np.asarray(surface_pressure, dtype=float)[:, None]
    geo = (1.0 / np.cos(np.radians(sza)) + 1.0 / np.cos(np.radians(vza)))[:, None]
    alb = np.asarray(albedo, dtype=float)[:, None]
    x = np.clip(p / ps, 0.0, 1.0)
    s0 = np.clip(0.3 + 1.2 * alb, 0.3, 1.0)
    clear = geo * (1.0 - (1.0 - s0) * x**3)
    pc = np.minimum(np.asarray(cloud_pressure, dtype=float)[:, None], ps)
    above = geo * (1.0 + 0.4 * np.exp(-np.maximum(pc - p, 0.0) / 8000.0))
    cloudy = np.where(p <= pc, above, 0.02 * geo)
    f = np.clip(np.asarray(cloud_fraction, dtype=float)[:, None], 0.0, 1.0)
    w = 0.8 * f / (0.8 * f + (0.15 + alb) * (1.0 - f))
    return (1.0 - w) * clear + w * cloudy


def cloud_radiance_fraction(cloud_fraction: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    """The radiance fraction ``w`` used by :func:`box_amf_model` (same shapes as inputs)."""
    f = np.clip(np.asarray(cloud_fraction, dtype=float), 0.0, 1.0)
    return 0.8 * f / (0.8 * f + (0.15 + np.asarray(albedo, dtype=float)) * (1.0 - f))


# --------------------------------------------------------------------------- retrieval


def synthetic_retrieval(
    box_amf: np.ndarray,
    apriori_tm5: np.ndarray,
    truth: np.ndarray,
    tropopause_index: np.ndarray,
    geometric_amf: np.ndarray,
    noise: np.ndarray | float = 0.0,
) -> dict[str, np.ndarray]:
    """The L2 quantities of a DOAS-AMF retrieval of ``truth`` with a-priori ``apriori_tm5``.

    Args:
        box_amf: ``(..., l)``; 1. Box AMFs ``m``.
        apriori_tm5: ``(..., l)``; mol m-2. The prior ``x`` (any unit proportional works).
        truth: ``(..., l)``; mol m-2. True partial columns ``t``.
        tropopause_index: ``(...)`` int; highest tropospheric layer, < 0 for none.
        geometric_amf: ``(...)``; 1. ``1/cos(sza) + 1/cos(vza)``.
        noise: ``(...)`` or scalar; relative error put on the tropospheric slant column.

    Returns:
        Our names (see :mod:`aprior.retrieval.s5p_names`) -> ``(...)`` float64 arrays
        (``averaging_kernel`` is ``(..., l)``); NaN where the pixel is invalid.
    """
    m = np.asarray(box_amf, dtype=float)
    x = np.asarray(apriori_tm5, dtype=float)
    t = np.asarray(truth, dtype=float)
    tp = np.asarray(tropopause_index)
    trop = np.arange(m.shape[-1]) <= tp[..., None]
    strat = ~trop
    valid = (tp >= 0) & np.all(np.isfinite(m) & np.isfinite(x) & np.isfinite(t), axis=-1)
    scd_error = 1.2e-5  # mol m-2, a typical TROPOMI NO2 slant column precision
    with np.errstate(divide="ignore", invalid="ignore"):
        s_trop = np.sum(m * t * trop, axis=-1) * (1.0 + np.asarray(noise, dtype=float))
        m_trop = np.sum(m * x * trop, axis=-1) / np.sum(x * trop, axis=-1)
        m_total = np.sum(m * x, axis=-1) / np.sum(x, axis=-1)
        m_strat = np.sum(m * x * strat, axis=-1) / np.sum(x * strat, axis=-1)
        n_strat = np.sum(t * strat, axis=-1)
        scd = s_trop + np.nan_to_num(m_strat) * n_strat
        n_trop = s_trop / m_trop
        prec_kernel = scd_error / m_trop
        out = {
            "no2_trop": n_trop,
            "no2_trop_precision": np.hypot(prec_kernel, 0.25 * n_trop),
            "no2_trop_precision_kernel": prec_kernel,
            "averaging_kernel": m / m_total[..., None],
            "amf_trop": m_trop,
            "amf_total": m_total,
            "amf_strat": m_strat,
            "no2_slant": scd,
            "no2_slant_precision": np.full(scd.shape, scd_error),
            "no2_strat": n_strat,
            "no2_strat_precision": np.full(scd.shape, 2.0e-6),
            "no2_total": scd / m_total,
            "no2_total_precision": np.hypot(scd_error / m_total, 0.1 * scd / m_total),
            "no2_total_precision_kernel": scd_error / m_total,
            "no2_summed_total": n_trop + n_strat,
            "no2_summed_total_precision": np.hypot(np.hypot(prec_kernel, 0.25 * n_trop), 2.0e-6),
            "no2_geometric": scd / geometric_amf,
        }
    for key, val in out.items():
        mask = valid[..., None] if val.ndim == valid.ndim + 1 else valid
        out[key] = np.where(mask, val, np.nan)
    return out
