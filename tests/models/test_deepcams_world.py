"""The synthetic PM2.5 world for DeepCAMS (aprior.synth.pm25_world / pm25_files), on a
coarse 3 degree truth grid (9 degree model) so it runs in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from aprior.synth.pm25_world import PM25Atmosphere, Sources, coarse_model, coarsen_state


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from aprior.synth.pm25_files import write_pm25_world

    root = tmp_path_factory.mktemp("pm25world")
    seen = []
    write_pm25_world(root, seed=3, start="2023-03-01", days=2, spinup_hours=12, fine_step=3.0,
                     progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (12 + 48 - 1, 12 + 48 - 1)
    return root


def test_world_files_are_found_and_in_the_real_layouts(world):
    from aprior.inputs.pm25 import read_eac4_pm25, read_geoscf_pm25
    from aprior.models.deepcams.archive import FrameStore, open_pm25_data

    d = open_pm25_data(world)
    assert d.synthetic and len(d.geoscf_files) == 2 and len(d.eac4_files) == 2 and len(d.model_files) == 2
    with xr.open_dataset(d.eac4_files[0], mask_and_scale=False) as raw:
        assert raw["pm2p5"].dtype == np.int16 and "scale_factor" in raw["pm2p5"].attrs
        assert "time" in raw.variables and float(raw["latitude"][0]) == 90.0
    eac4 = read_eac4_pm25(d.eac4_files[0])
    assert eac4.values.shape == (8, 21, 40) and eac4.values.min() >= 0
    truth = read_geoscf_pm25(d.geoscf_files[1])
    assert truth.values.shape == (24, 61, 120) and str(truth.times[0])[:13] == "2023-03-02T00"
    store = FrameStore(d.geoscf_files, model_files=d.model_files)
    h = store.hours[5]
    assert store.has_model(h) and store.model(h).shape == store.coarse(h).shape


def test_the_coarse_model_has_its_own_errors(world):
    from aprior.models.deepcams.archive import FrameStore, open_pm25_data

    d = open_pm25_data(world)
    store = FrameStore(d.geoscf_files, model_files=d.model_files)
    h = store.hours[30]
    model, mean = store.model(h), store.coarse(h)
    r = np.corrcoef(np.log(model.ravel()), np.log(mean.ravel()))[0, 1]
    assert 0.5 < r < 0.999  # related to the truth, but not a degradation of it
    assert not np.allclose(model, mean, rtol=0.05)


def test_boundary_layer_cycle_is_sharp_and_diurnal():
    src = Sources(0, 0.0, 24)
    atm = PM25Atmosphere(src, 0, step=3.0)
    land = atm.land
    lon0 = np.argmin(np.abs(atm.lon))  # LST = UTC here
    col = land[:, lon0]
    assert col.any()
    blh = np.array([atm.blh(float(h))[col, lon0].mean() for h in range(24)])
    assert blh.min() == pytest.approx(400.0, rel=0.02) and blh.max() == pytest.approx(1400.0, rel=0.02)
    assert blh[9] - blh[8] > 150 and blh[11] - blh[10] < blh[10] - blh[9]  # growth within hours
    assert blh[19] < 500 < blh[16]  # evening collapse


def test_fields_span_orders_of_magnitude_and_move_with_the_wind():
    src = Sources(1, 0.0, 48)
    atm = PM25Atmosphere(src, 1, step=1.5)
    s = atm.initial(0.0)
    frames = []
    for k in range(1, 13):
        s = atm.step_to(s, float(k))
        frames.append(atm.surface(s, float(k)))
    f = np.stack(frames)
    assert f.min() >= 1.0 and f.max() / np.median(f) > 50
    u, v = atm.wind(6.0)
    assert np.percentile(np.hypot(u, v), 99) > 10 and not np.allclose(atm.wind(9.0)[0], u)
    lin = (2 * f[0] + f[3]) / 3
    assert np.sqrt(np.mean((lin - f[1]) ** 2)) > 0.01 * f[1].std()  # not linear in time
    model = coarse_model(src, 1, step=4.5)
    assert (model.ny, model.nx) == (41, 80)
    assert coarsen_state(f[0]).shape == (41, 80)
