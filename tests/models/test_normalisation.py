"""Z-score statistics: streaming fit, apply/invert, dict and JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from aprior.errors import ConfigError
from aprior.models.normalisation import ZScoreFitter, ZScoreStats


def _batches(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return [{"t2m": rng.normal(280, 5, (24, 6, 7)), "blh": rng.gamma(2, 300, (24, 6, 7))}
            for _ in range(n)]


def test_streaming_fit_equals_batch_statistics():
    batches = _batches()
    batches[2]["t2m"][0, 0, 0] = np.nan  # NaNs are ignored
    stats = ZScoreStats.fit(batches)
    allt = np.concatenate([b["t2m"].ravel() for b in batches])
    allb = np.concatenate([b["blh"].ravel() for b in batches])
    assert stats.names == ("t2m", "blh")
    assert stats.mean[0] == pytest.approx(np.nanmean(allt), rel=1e-12)
    assert stats.std[0] == pytest.approx(np.nanstd(allt), rel=1e-10)
    assert stats.std[1] == pytest.approx(np.std(allb), rel=1e-10)
    assert stats.count == (allt.size - 1, allb.size)


def test_apply_invert_round_trip_dict_and_channels():
    stats = ZScoreStats.fit(_batches())
    b = _batches(seed=3, n=1)[0]
    z = stats.apply(b)
    assert abs(z["t2m"].mean()) < 0.2 and z["t2m"].std() == pytest.approx(1.0, rel=0.2)
    back = stats.invert(z)
    np.testing.assert_allclose(back["blh"], b["blh"], rtol=1e-12)
    stacked = np.stack([b["t2m"], b["blh"]], axis=1).astype(np.float32)  # (t, c, y, x)
    zc = stats.apply(stacked, axis=1)
    assert zc.dtype == np.float32
    np.testing.assert_allclose(zc[:, 1], z["blh"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.invert(zc, axis=1), stacked, rtol=1e-5)
    one = stats.apply(b["blh"], name="blh")
    np.testing.assert_allclose(one, z["blh"])
    with pytest.raises(KeyError, match="'sp'"):
        stats.apply({"sp": np.zeros(3)})
    with pytest.raises(ValueError, match="channels"):
        stats.apply(np.zeros((3, 5)), axis=0)


def test_dataset_with_levels_split():
    rng = np.random.default_rng(2)
    z = np.stack([rng.normal(m, 50, (24, 4, 4)) for m in (1000.0, 55000.0)], axis=1)
    ds = xr.Dataset({"z": (("time", "level", "y", "x"), z),
                     "t2m": (("time", "y", "x"), rng.normal(280, 5, (24, 4, 4)))},
                    coords={"level": [1000.0, 500.0]})
    stats = ZScoreStats.fit([ds], split_dim="level")
    assert set(stats.names) == {"z@1000", "z@500", "t2m"}
    out = stats.apply(ds, split_dim="level")
    assert isinstance(out, xr.Dataset)
    assert abs(float(out["z"].sel(level=500).mean())) < 1e-9
    assert float(out["z"].sel(level=500).std()) == pytest.approx(1.0, rel=1e-9)
    back = stats.invert(out, split_dim="level")
    np.testing.assert_allclose(back["z"].values, z, rtol=1e-12)


def test_dict_and_json_round_trip(tmp_path):
    stats = ZScoreStats.fit(_batches())
    d = json.loads(json.dumps(stats.to_dict()))
    assert ZScoreStats.from_dict(d) == stats
    path = stats.save(tmp_path / "stats.json")
    assert ZScoreStats.load(path) == stats
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match="format") as exc:
        ZScoreStats.load(tmp_path / "bad.json")
    assert "bad.json" in str(exc.value)
    with pytest.raises(ConfigError):
        ZScoreStats.load(tmp_path / "missing.json")


def test_constant_variable_and_validation():
    f = ZScoreFitter()
    f.update({"c": np.full(10, 3.0)})
    stats = f.result()
    assert stats.std == (1.0,)
    np.testing.assert_allclose(stats.apply(np.full(4, 3.0), name="c"), 0.0)
    with pytest.raises(ValueError, match="no finite"):
        g = ZScoreFitter()
        g.update({"n": np.full(3, np.nan)})
        g.result()
    with pytest.raises(ValueError):
        ZScoreStats(("a",), (0.0,), (0.0,))
    with pytest.raises(ValueError):
        ZScoreStats(("a", "a"), (0.0, 1.0), (1.0, 1.0))
