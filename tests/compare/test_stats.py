"""Streaming statistics of ``aprior compare``: moments, exact percentiles, histograms."""

from __future__ import annotations

import numpy as np
import pytest

from aprior.compare import stats as st
from aprior.compare.stats import Moments, PixelStats, float_keys, key_values


def test_float_keys_order_and_inverse():
    v = np.array([3.5, -0.0, 0.0, -1e-30, 1e-30, -7.25, np.inf, -np.inf, 1e15, -2e14],
                 dtype=np.float32)
    keys = float_keys(v)
    assert np.array_equal(np.argsort(keys, kind="stable"), np.argsort(v, kind="stable"))
    np.testing.assert_array_equal(key_values(keys), v)


def test_hand_computed_values():
    """mean, median, p5, p95 of 1, 2, 3, 4, 10 by hand (numpy's linear rule)."""
    with PixelStats(["x"], ["all"]) as s:
        s.add({"x": np.array([10.0, 2.0, np.nan, 4.0, 1.0, 3.0])}, np.ones((6, 1), bool))
        row = s.summary("x")["all"]
    assert row["n"] == 5
    assert row["mean"] == pytest.approx(4.0)
    assert row["median"] == pytest.approx(3.0)
    assert row["p05"] == pytest.approx(1.2)  # h = 0.2: 1 + 0.2 * (2 - 1)
    assert row["p95"] == pytest.approx(8.8)  # h = 3.8: 4 + 0.8 * (10 - 4)
    assert row["std"] == pytest.approx(np.std([1, 2, 3, 4, 10], ddof=1))
    assert row["rms"] == pytest.approx(np.sqrt(np.mean(np.square([1, 2, 3, 4, 10]))))


def test_percentiles_match_numpy_across_blocks_chunks_and_regions(monkeypatch, tmp_path):
    monkeypatch.setattr(st, "_FLUSH_VALUES", 1000)
    monkeypatch.setattr(st, "_READ_VALUES", 777)
    rng = np.random.default_rng(3)
    qs = (1.0, 5.0, 50.0, 95.0, 99.0)
    values, members = [], []
    with PixelStats(["a", "b"], ["r0", "r1", "empty"], tmp_path / "spill") as s:
        for _ in range(7):
            n = int(rng.integers(300, 900))
            a = (rng.lognormal(35, 1.0, n) * rng.choice([-1, 1], n)).astype(np.float64)
            a[rng.random(n) < 0.05] = np.nan
            b = np.round(rng.normal(0, 3, n))  # many ties
            m = np.column_stack([rng.random(n) < 0.7, rng.random(n) < 0.3, np.zeros(n, bool)])
            s.add({"a": a, "b": b}, m)
            values.append((a, b))
            members.append(m)
        assert any((tmp_path / "spill").iterdir())
        got_a, got_b = s.percentiles("a", qs), s.percentiles("b", qs)
        sa, sb = s.summary("a"), s.summary("b")
    a = np.concatenate([v[0] for v in values]).astype(np.float32).astype(np.float64)
    b = np.concatenate([v[1] for v in values])
    m = np.concatenate(members)
    for j, r in enumerate(("r0", "r1")):
        for got, x in ((got_a, a), (got_b, b)):
            sel = m[:, j] & np.isfinite(x)
            np.testing.assert_allclose(got[r], np.percentile(x[sel], qs), rtol=1e-12)
        sel = m[:, j] & np.isfinite(a)
        assert sa[r]["n"] == sel.sum()
        np.testing.assert_allclose(sa[r]["mean"], np.mean(a[sel]), rtol=1e-6)
        np.testing.assert_allclose(sb[r]["std"], np.std(b[m[:, j]], ddof=1), rtol=1e-10)
    assert all(np.isnan(got_a["empty"])) and sa["empty"]["n"] == 0
    assert not (tmp_path / "spill").exists()  # closed: spill files removed


def test_histogram_counts_per_region():
    x = np.array([-1.0, 0.5, 1.5, 1.5, 2.5, 9.0])
    m = np.array([[1, 0], [1, 1], [1, 1], [0, 1], [1, 0], [1, 1]], bool)
    with PixelStats(["x"], ["a", "b"]) as s:
        s.add({"x": x}, m)
        h = s.histogram("x", np.array([0.0, 1.0, 2.0, 3.0]))
    assert h["a"].tolist() == [1, 1, 1]  # -1 and 9 outside
    assert h["b"].tolist() == [1, 2, 0]


def test_moments_merge_is_exact_for_large_offsets():
    rng = np.random.default_rng(0)
    x = 1e15 + rng.normal(0, 1e10, 10_000)
    mo = Moments()
    for part in np.array_split(x, 13):
        mo.add(part)
    assert mo.n == x.size
    np.testing.assert_allclose(mo.mean, x.mean(), rtol=1e-14)
    np.testing.assert_allclose(mo.std, x.std(ddof=1), rtol=1e-9)


def test_pixels_in_no_region_are_ignored():
    with PixelStats(["x"], ["a"]) as s:
        s.add({"x": np.array([1.0, 2.0, 3.0])}, np.array([[True], [False], [True]]))
        assert s.n_pixels == 2
        assert s.summary("x")["a"]["median"] == pytest.approx(2.0)
