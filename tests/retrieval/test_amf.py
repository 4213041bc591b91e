"""The AMF step: property tests, the inclusive tropopause convention, invalid input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aprior.retrieval.amf import AmfResult, box_amf, replace_apriori, tropospheric_mask

L = 34


@st.composite
def pixels(draw, n=4):
    """Consistent L2 quantities of ``n`` pixels, made the way the synthetic writer does."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    tp = rng.integers(0, L, n)
    m = rng.uniform(0.05, 4.0, (n, L))  # box AMFs
    x0 = rng.uniform(0.0, 1.0, (n, L)) * 10.0 ** rng.uniform(-3, 0, (n, L))
    x0[:, 0] += 1e-3  # the writer's prior is positive near the surface
    trop = np.arange(L)[None, :] <= tp[:, None]
    m_total = (m * x0).sum(1) / x0.sum(1)
    m_trop = (m * x0 * trop).sum(1) / (x0 * trop).sum(1)
    col = rng.uniform(1e-6, 1e-3, n)
    x = rng.uniform(0.0, 1.0, (n, L)) ** 3
    x[np.arange(n), rng.integers(0, tp + 1)] += 0.01  # a positive value below the tropopause
    return dict(averaging_kernel=m / m_total[:, None], amf_total=m_total, amf_trop=m_trop,
                tropopause_index=tp, no2_trop=col, no2_trop_precision=0.3 * col), m, x0, x


SETTINGS = settings(deadline=None, max_examples=100)


@SETTINGS
@given(pixels(), st.floats(1e-8, 1e8))
def test_scaling_the_profile_leaves_the_amf_unchanged(data, scale):
    inputs, _, _, x = data
    a = replace_apriori(apriori=x, **inputs)
    b = replace_apriori(apriori=x * scale, **inputs)
    assert a.valid.all() and b.valid.all()
    np.testing.assert_allclose(b.amf_trop, a.amf_trop, rtol=1e-12)
    np.testing.assert_allclose(b.no2_trop, a.no2_trop, rtol=1e-12)


@SETTINGS
@given(pixels())
def test_slant_column_is_conserved(data):
    inputs, _, _, x = data
    r = replace_apriori(apriori=x, **inputs)
    np.testing.assert_allclose(r.no2_trop * r.amf_trop, inputs["no2_trop"] * inputs["amf_trop"], rtol=1e-6)
    np.testing.assert_allclose(r.no2_trop_precision / r.no2_trop,
                               inputs["no2_trop_precision"] / inputs["no2_trop"], rtol=1e-12)


@SETTINGS
@given(pixels())
def test_new_amf_lies_between_the_tropospheric_box_amfs(data):
    inputs, m, _, x = data
    r = replace_apriori(apriori=x, **inputs)
    trop = tropospheric_mask(inputs["tropopause_index"], L)
    lo = np.where(trop, m, np.inf).min(1)
    hi = np.where(trop, m, -np.inf).max(1)
    assert np.all(r.amf_trop >= lo * (1 - 1e-12)) and np.all(r.amf_trop <= hi * (1 + 1e-12))


@SETTINGS
@given(pixels())
def test_the_files_own_profile_gives_the_files_amf_back(data):
    inputs, _, x0, _ = data
    r = replace_apriori(apriori=x0, **inputs)
    np.testing.assert_allclose(r.amf_trop, inputs["amf_trop"], rtol=1e-10)
    np.testing.assert_allclose(r.no2_trop, inputs["no2_trop"], rtol=1e-10)
    np.testing.assert_allclose(r.no2_trop_precision, inputs["no2_trop_precision"], rtol=1e-10)


@SETTINGS
@given(pixels())
def test_new_kernel_is_zero_above_the_tropopause_and_consistent(data):
    inputs, m, _, x = data
    r = replace_apriori(apriori=x, **inputs)
    trop = tropospheric_mask(inputs["tropopause_index"], L)
    assert np.all(r.averaging_kernel_trop[~trop] == 0)
    np.testing.assert_allclose(r.averaging_kernel_trop[trop], (m / r.amf_trop[:, None])[trop], rtol=1e-10)
    # the kernel applied to the a-priori returns the a-priori column
    xt = np.where(trop, x, 0)
    np.testing.assert_allclose((r.averaging_kernel_trop * xt).sum(1), xt.sum(1), rtol=1e-10)


def _one_pixel(tp=10):
    m = np.linspace(0.5, 2.5, L)
    return dict(averaging_kernel=m[None] / 1.7, amf_total=np.array([1.7]), amf_trop=np.array([1.2]),
                tropopause_index=np.array([tp]), no2_trop=np.array([5e-5]),
                no2_trop_precision=np.array([1e-5])), m


def test_tropopause_layer_counts_as_tropospheric():
    inputs, m = _one_pixel(tp=10)
    x = np.zeros((1, L))
    x[0, 10] = 1.0
    r = replace_apriori(apriori=x, **inputs)
    assert r.valid[0]
    assert r.amf_trop[0] == pytest.approx(m[10], rel=1e-12)
    assert r.averaging_kernel_trop[0, 10] == pytest.approx(1.0)
    # a profile above the tropopause only is no tropospheric profile at all
    x = np.zeros((1, L))
    x[0, 11] = 1.0
    r = replace_apriori(apriori=x, **inputs)
    assert not r.valid[0] and np.isnan(r.amf_trop[0])
    # and what lies at l_tp + 1 is ignored
    base = np.ones((1, L))
    bumped = base.copy()
    bumped[0, 11] = 50.0
    at_tp = base.copy()
    at_tp[0, 10] = 50.0
    r0, r1, r2 = (replace_apriori(apriori=v, **inputs) for v in (base, bumped, at_tp))
    assert r1.amf_trop[0] == r0.amf_trop[0]
    assert r2.amf_trop[0] != pytest.approx(r0.amf_trop[0], rel=1e-6)


def test_tropopause_mask_is_inclusive():
    mask = tropospheric_mask(np.array([0, 33, -1, 34, 5]), L)
    assert mask[0].sum() == 1 and mask[1].all() and not mask[2].any() and not mask[3].any()
    assert mask[4].sum() == 6 and mask[4, 5] and not mask[4, 6]


@pytest.mark.parametrize("case", [
    "nan_kernel", "inf_amf", "nan_amf_trop", "nan_column", "nan_precision", "nan_apriori",
    "tp_fill", "tp_too_high", "zero_profile", "negative_profile", "zero_amf_trop", "zero_kernel",
])
def test_invalid_pixels_are_nan_not_errors(case):
    inputs, m = _one_pixel()
    inputs = {k: np.repeat(v, 3, axis=0) for k, v in inputs.items()}
    x = np.ones((3, L))
    bad = 1
    if case == "nan_kernel":
        inputs["averaging_kernel"][bad, 3] = np.nan
    elif case == "inf_amf":
        inputs["amf_total"][bad] = np.inf
    elif case == "nan_amf_trop":
        inputs["amf_trop"][bad] = np.nan
    elif case == "nan_column":
        inputs["no2_trop"][bad] = np.nan
    elif case == "nan_precision":
        inputs["no2_trop_precision"][bad] = np.nan
    elif case == "nan_apriori":
        x[bad, 0] = np.nan
    elif case == "tp_fill":
        inputs["tropopause_index"][bad] = -1
    elif case == "tp_too_high":
        inputs["tropopause_index"][bad] = L
    elif case == "zero_profile":
        x[bad, :11] = 0.0
    elif case == "negative_profile":
        x[bad, 2] = -0.5
    elif case == "zero_amf_trop":
        inputs["amf_trop"][bad] = 0.0
    elif case == "zero_kernel":
        inputs["averaging_kernel"][bad] = 0.0
    r = replace_apriori(apriori=x, **inputs)
    assert r.valid.tolist() == [True, False, True]
    for arr in (r.amf_trop, r.no2_trop, r.no2_trop_precision):
        assert np.isnan(arr[bad]) and np.isfinite(arr[[0, 2]]).all()
    assert np.isnan(r.averaging_kernel_trop[bad]).all()


def test_nan_above_the_tropopause_is_not_used():
    inputs, _ = _one_pixel(tp=10)
    x = np.ones((1, L))
    x[0, 20:] = np.nan
    inputs["averaging_kernel"] = inputs["averaging_kernel"].copy()
    inputs["averaging_kernel"][0, 25] = np.nan
    r = replace_apriori(apriori=x, **inputs)
    assert r.valid[0] and np.isfinite(r.averaging_kernel_trop[0]).all()


def test_float_tropopause_with_nan_is_fill():
    inputs, _ = _one_pixel()
    inputs["tropopause_index"] = np.array([np.nan])
    r = replace_apriori(apriori=np.ones((1, L)), **inputs)
    assert not r.valid[0]


def test_box_amf_and_shapes():
    ak = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(box_amf(ak, np.array([2.0, 3.0])), [[0, 2, 4], [9, 12, 15]])
    inputs, _ = _one_pixel()
    with pytest.raises(ValueError):
        replace_apriori(apriori=np.ones((1, L - 1)), **inputs)
    with pytest.raises(ValueError):
        replace_apriori(apriori=np.ones((1, L)), **{**inputs, "amf_total": np.ones(2)})
    with pytest.raises(ValueError):
        AmfResult(np.ones(2), np.ones(2), np.ones(3), np.ones((2, L)), np.ones(2, bool))
