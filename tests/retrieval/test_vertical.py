"""Heights of TM5 layers and partial columns of profiles: exact integrals, conservation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from aprior import constants as C
from aprior.a_priori.field import M_NO2 as FIELD_M_NO2
from aprior.retrieval.vertical import (
    VerticalConfig,
    air_partial_columns,
    interface_pressures,
    layer_heights,
    mass_to_number_density,
    number_density_air,
    partial_columns,
)

PS = np.array([101325.0, 95000.0, 70000.0, 103500.0])


def hybrid_coefficients():
    """A TM5-like 34-layer hybrid set built here: thin surface layers, pure pressure aloft,
    top at 0 Pa."""
    eta = np.linspace(0.0, 1.0, 35) ** 1.6  # 0 at the surface
    p_ref = 101325.0 * (1.0 - eta)
    b = np.clip(1.0 - eta / 0.7, 0.0, 1.0) ** 2
    a = p_ref - b * 101325.0
    a[-1] = b[-1] = 0.0
    return np.stack([a[:-1], a[1:]], -1), np.stack([b[:-1], b[1:]], -1)


A, B = hybrid_coefficients()


def to_mol(c):
    return c * 1e-6 / C.M_NO2


def test_coefficients_are_monotonic():
    p = interface_pressures(PS, A, B)
    assert np.all(np.diff(p, axis=1) < 0) and np.all(p[:, -1] == 0)
    np.testing.assert_allclose(p[:, 0], PS)


def test_constants():
    assert C.M_NO2 == FIELD_M_NO2
    c = 37.0
    # FACTS: n [molec cm-3] = c [ug m-3] * 1e-12 / 46.0055 * N_A
    assert mass_to_number_density(c) * C.N_A * 1e-6 == pytest.approx(c * 1e-12 / 46.0055 * 6.02214076e23)
    assert abs(C.R_DRY - 287.05) < 0.01
    assert number_density_air(101325.0, 273.15) == pytest.approx(44.615, rel=1e-4)


def test_heights_are_monotonic_and_start_at_the_ground():
    for t in (None, np.full((PS.size, 34), 250.0) + np.linspace(40, -30, 34)):
        z = layer_heights(PS, A, B, t)
        assert z.shape == (PS.size, 35)
        np.testing.assert_allclose(z[:, 0], 0.0, atol=1e-9)
        assert np.all(np.diff(z[:, :-1], axis=1) > 0)
        assert np.all(np.isposinf(z[:, -1]))


def test_layer_heights_match_numeric_integration():
    cfg = VerticalConfig()
    z = layer_heights(PS, A, B, config=cfg)
    p = interface_pressures(PS, A, B)

    def temperature(h):
        return max(cfg.surface_temperature - cfg.lapse_rate * h, cfg.surface_temperature - cfg.lapse_rate * 11000)

    for k, ps in enumerate(PS):
        logp = np.log(p[k, :-1])
        sol = solve_ivp(lambda s, h: [-C.R_DRY * temperature(h[0]) / C.G0], (np.log(ps), logp[-1]), [0.0],
                        t_eval=logp, rtol=1e-11, atol=1e-6, max_step=0.05)
        np.testing.assert_allclose(z[k, :-1], sol.y[0], rtol=1e-7, atol=1e-4)


def test_isothermal_paths_agree():
    """Layer temperatures all equal T give the lapse-rate formula with lapse_rate 0."""
    cfg = VerticalConfig(surface_temperature=250.0, lapse_rate=0.0)
    z1 = layer_heights(PS, A, B, config=cfg)
    z2 = layer_heights(PS, A, B, np.full((PS.size, 34), 250.0))
    np.testing.assert_allclose(z1[:, :-1], z2[:, :-1], rtol=1e-12)
    for t in (None, np.full((PS.size, 34), 250.0)):
        x = partial_columns(np.full((PS.size, 2), 5.0), np.array([0.0, 3000.0]), PS, A, B, config=cfg,
                            temperature=t)
        assert np.all(np.isfinite(x))


def test_mass_conservation_constant_profile():
    c = 12.5
    heights = np.array([0.0, 1000.0, 2500.0, 5000.0])
    x = partial_columns(np.full((PS.size, 4), c), heights, PS, A, B, config=VerticalConfig(extension="zero"))
    np.testing.assert_allclose(x.sum(1), to_mol(c) * 5000.0, rtol=1e-12)
    z = layer_heights(PS, A, B)
    assert np.all(x[z[:, :-1] >= 5000.0] == 0)


def test_lowest_level_above_ground_is_extended_down():
    x = partial_columns(np.array([[4.0, 4.0]]), np.array([100.0, 200.0]), PS[:1], A, B,
                        config=VerticalConfig(extension="zero"))
    assert x.sum() == pytest.approx(to_mol(4.0) * 200.0, rel=1e-12)


def test_layers_are_exact_integrals_of_the_piecewise_linear_profile():
    heights = np.array([50.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0])
    rng = np.random.default_rng(3)
    conc = rng.uniform(0.5, 40.0, (PS.size, heights.size))
    x = partial_columns(conc, heights, PS, A, B, config=VerticalConfig(extension="zero"))
    z = layer_heights(PS, A, B)
    for k in range(PS.size):
        def n(h, k=k):
            return to_mol(np.interp(h, heights, conc[k]))
        expected = [quad(n, min(z[k, i], 5000.0), min(z[k, i + 1], 5000.0), points=heights, epsabs=0)[0]
                    for i in range(34)]
        np.testing.assert_allclose(x[k], expected, rtol=1e-9, atol=1e-18)
        total = to_mol(conc[k, 0]) * 50.0 + np.trapezoid(to_mol(conc[k]), heights)
        assert x[k].sum() == pytest.approx(total, rel=1e-12)


def _standard_state(z, ps):
    """p (Pa), T (K) at heights z (m) in the default atmosphere, written independently."""
    cfg = VerticalConfig()
    t11 = cfg.surface_temperature - cfg.lapse_rate * 11000.0
    t = np.maximum(cfg.surface_temperature - cfg.lapse_rate * z, t11)
    expo = C.G0 / (C.R_DRY * cfg.lapse_rate)
    p11 = ps * (t11 / cfg.surface_temperature) ** expo
    p = np.where(z <= 11000.0, ps * (t / cfg.surface_temperature) ** expo,
                 p11 * np.exp(-C.G0 * (z - 11000.0) / (C.R_DRY * t11)))
    return p, t


def test_constant_vmr_profile_stays_constant_vmr():
    vmr = 2e-9
    heights = np.arange(0.0, 5001.0, 50.0)
    conc = np.stack([vmr * number_density_air(*_standard_state(heights, ps)) * C.M_NO2 * 1e6 for ps in PS])
    x = partial_columns(conc, heights, PS, A, B)
    ratio = x / air_partial_columns(PS, A, B)
    z = layer_heights(PS, A, B)
    above = z[:, :-1] >= 5000.0
    np.testing.assert_allclose(ratio[above], vmr, rtol=1e-10)  # the extension is exact
    np.testing.assert_allclose(ratio, vmr, rtol=2e-5)  # linear interpolation of n(z) below


def test_extension_changes_only_the_part_above_the_top():
    heights = np.array([0.0, 1000.0, 5000.0])
    conc = np.array([[20.0, 8.0, 1.0]] * PS.size)
    x_zero = partial_columns(conc, heights, PS, A, B, config=VerticalConfig(extension="zero"))
    x_vmr = partial_columns(conc, heights, PS, A, B)
    z = layer_heights(PS, A, B)
    below = z[:, 1:] <= 5000.0
    np.testing.assert_array_equal(x_zero[below], x_vmr[below])
    assert np.all(x_vmr[~below] > 0) and np.all(x_zero[~below] >= 0)
    assert np.all(x_vmr.sum(1) > x_zero.sum(1))


def test_upper_field_continues_the_profile():
    full_h = np.array([0.0, 1000.0, 3000.0, 5000.0, 8000.0, 12000.0])
    rng = np.random.default_rng(5)
    full = rng.uniform(0.1, 10.0, (PS.size, full_h.size))
    x_full = partial_columns(full, full_h, PS, A, B)
    upper_h = np.array([2000.0, 8000.0, 12000.0])  # levels below the top are not used
    upper = np.stack([np.full(PS.size, 99.0), full[:, 4], full[:, 5]], axis=1)
    x_up = partial_columns(full[:, :4], full_h[:4], PS, A, B, config=VerticalConfig(extension="upper_field"),
                           upper=(upper, upper_h))
    np.testing.assert_allclose(x_up, x_full, rtol=1e-12)
    with pytest.raises(ValueError):
        partial_columns(full[:, :4], full_h[:4], PS, A, B, config=VerticalConfig(extension="upper_field"))
    with pytest.raises(ValueError):
        partial_columns(full[:, :4], full_h[:4], PS, A, B, upper=(upper, upper_h))


def test_given_temperature_profile_constant_vmr():
    """With layer temperatures the extension uses the same hydrostatics: exact above the top."""
    t = np.full((PS.size, 34), 230.0) + np.linspace(50, -20, 34)
    vmr = 1e-9
    z = layer_heights(PS, A, B, t)
    p = interface_pressures(PS, A, B)
    heights = np.array([0.0, 5000.0])
    k = (z[:, 1:] <= 5000.0).sum(1)
    rows = np.arange(PS.size)
    p_top = p[rows, k] * np.exp(-C.G0 * (5000.0 - z[rows, k]) / (C.R_DRY * t[rows, k]))
    n_top = vmr * number_density_air(p_top, t[rows, k])
    conc = np.stack([np.full(PS.size, 10.0), n_top * C.M_NO2 * 1e6], axis=1)
    x = partial_columns(conc, heights, PS, A, B, temperature=t)
    above = z[:, :-1] >= 5000.0
    np.testing.assert_allclose((x / air_partial_columns(PS, A, B))[above], vmr, rtol=1e-10)


def test_nan_rows():
    conc = np.full((PS.size, 3), 5.0)
    conc[1, 2] = np.nan
    ps = PS.copy()
    ps[3] = np.nan
    x = partial_columns(conc, np.array([0.0, 1000.0, 5000.0]), ps, A, B)
    assert np.isnan(x[1]).all() and np.isnan(x[3]).all()
    assert np.isfinite(x[[0, 2]]).all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        VerticalConfig(extension="cams")
    with pytest.raises(ValueError):
        VerticalConfig(lapse_rate=0.03)  # below 0 K at 11 km
    with pytest.raises(ValueError):
        partial_columns(np.ones((2, 3)), np.array([0.0, 10.0]), PS[:2], A, B)
    with pytest.raises(ValueError):
        partial_columns(np.ones((2, 2)), np.array([10.0, 0.0]), PS[:2], A, B)
    with pytest.raises(ValueError):
        partial_columns(np.ones((2, 2)), np.array([-10.0, 0.0]), PS[:2], A, B)
    with pytest.raises(ValueError):
        layer_heights(PS, A, B, np.ones((PS.size, 3)))
