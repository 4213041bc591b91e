"""DACNO2's three phase tasks, their settings and their predecessor checks (tiny preset)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from conftest import dacno2_tiny_world as tiny_world
from torch import nn

from aprior.errors import ConfigError
from aprior.models.checkpoint import load_weights, save_weights
from aprior.models.dacno2.config import DACNO2Config
from aprior.models.dacno2.metrics import PairStats, fine_scale_corr, fine_scale_std
from aprior.models.dacno2.phases import (
    PhaseConfig,
    PhaseTask,
    Predecessor,
    check_predecessor,
    load_predecessor,
    phase3_cells,
    phase3_days,
)
from aprior.models.dacno2.prepare import open_prepared
from aprior.models.dacno2.training import (
    ConfigTables,
    prepared_data,
    read_config,
    train_phase,
    train_settings,
)
from aprior.models.engine import TrainSettings
from aprior.models.losses import avg_pool_xy

TINY = DACNO2Config.preset("tiny")
PAPER_RECIPE = {"station_profile_top_m": 0.0, "normalise": False}
FAST = {"epochs": 1, "max_batches": 1, "micro_batch": 1, "batch_size": 1, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 threads on a busy 2-core machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "dacno2-cache"


@pytest.fixture(scope="module")
def prepared(world, cache):
    from aprior.models.dacno2.catalog import open_catalog
    from aprior.models.dacno2.training import data_spec

    return prepared_data(open_catalog(world), data_spec(TINY, {}, None), cache)


@pytest.fixture(scope="module")
def runs(world, cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train_phase(1, world, root / "p1", preset="tiny", overrides=FAST, cache_dir=cache)
    train_phase(2, world, root / "p2", overrides=FAST, cache_dir=cache, from_=root / "p1")
    return root


class Fixed(nn.Module):
    """Returns ``out`` whatever the inputs (a stand-in network)."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = nn.Parameter(out.clone())

    def forward(self, met2d, met3d, emis, geo, temporal):
        return self.out


def batch_of(ds, i=0):
    item = ds[i]
    return {k: v[None] for k, v in item.items()}


def test_phase1_loss_is_mse_plus_ssim_with_the_targets_lo_hi(prepared):
    task = PhaseTask(1, prepared, TINY, options=PhaseConfig(ssim_window=3, **PAPER_RECIPE))
    b = batch_of(task.train_dataset())
    assert b["cams_mask"].any()
    exact = torch.repeat_interleave(torch.repeat_interleave(b["cams"], 4, -1), 4, -2)
    loss, parts = task.loss(Fixed(exact), b)
    assert parts["mse_cams"] == pytest.approx(0.0, abs=1e-6)
    assert parts["ssim_cams"] == pytest.approx(1.0, abs=1e-4)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-4)
    # a constant bias keeps the structure but not the target's lo/hi: SSIM must drop
    loss, parts = task.loss(Fixed(exact + 2.0), b)
    mask = b["cams_mask"]
    assert parts["mse_cams"] == pytest.approx(4.0, rel=1e-4)
    assert parts["ssim_cams"] < 0.99
    assert float(loss.detach()) == pytest.approx(4.0 + 1.0 - parts["ssim_cams"], rel=1e-4)
    assert "mse_stations" not in parts and mask.dtype == torch.bool


def test_phase2_station_term_uses_only_training_cells(prepared):
    task = PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1),
                     options=PhaseConfig(**PAPER_RECIPE))
    nx = prepared.grid.nx
    seen = 0
    for ds in (task.train_dataset(), task.val_dataset()):
        for i in range(len(ds)):
            item = ds[i]
            p = prepared.patches[int(item["patch"])]
            jj, ii = np.nonzero(item["station_mask"].numpy())
            cells = (jj + p.j0) * nx + (ii + p.i0)
            assert np.isin(cells, prepared.train_cells).all()
            assert not np.isin(cells, prepared.eval_cells).any()
            seen += cells.size
    assert seen > 0 and prepared.eval_cells.size > 0
    b = batch_of(task.train_dataset())
    pred = torch.full((1, TINY.n_levels, TINY.patch, TINY.patch), 5.0)
    _, parts = task.loss(Fixed(pred), b)
    m = b["station_mask"]
    expected = float(((5.0 - b["stations"][m]) ** 2).mean())
    assert parts["mse_stations"] == pytest.approx(expected, rel=1e-5)
    assert "ssim_cams" in parts and "mse_cams" in parts


def test_station_term_carries_the_station_up_with_the_cams_shape(prepared):
    """Our recipe: every level up to 1000 m fits station x cams_z / cams_0 at the station
    cells, and each MSE is divided by its targets' variance."""
    task = PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1))
    heights = np.asarray(prepared.spec.levels_m)
    assert task.profile_levels == list(np.flatnonzero(heights <= 1000.0)) and len(task.profile_levels) > 1
    b = batch_of(task.train_dataset())
    m = b["station_mask"]
    assert m.any()
    cams2 = torch.repeat_interleave(torch.repeat_interleave(b["cams"], 4, -1), 4, -2)
    shape = (cams2 / cams2[:, :1].clamp(min=0.1)).clamp(0.0, 3.0)
    # a profile with the station value at the surface and CAMS's shape above fits exactly
    ideal = b["stations"][:, None] * shape
    assert task.station_mse(ideal, b) == pytest.approx(0.0, abs=1e-6)
    # a surface-only fit (the stations at level 0, the rest unchanged) does not
    spike = cams2.clone()
    spike[:, 0] = torch.where(m, b["stations"], spike[:, 0])
    assert float(task.station_mse(spike, b)) > 0.0
    scales = task.loss_scales()
    assert scales["cams"] > 0 and scales["stations"] > 0 and scales != {"cams": 1.0, "stations": 1.0}
    _, parts = task.loss(Fixed(ideal), b)
    assert parts["mse_stations"] == pytest.approx(0.0, abs=1e-6)
    assert PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1),
                     options=PhaseConfig(**PAPER_RECIPE)).loss_scales() == {
                         "cams": 1.0, "stations": 1.0, "log": 1.0, "shape": 1.0, "detail": 1.0}
    with pytest.raises(ConfigError, match="station_profile_top_m"):
        PhaseConfig(station_profile_top_m=-1.0)


def test_phase3_regularises_towards_the_frozen_phase2_model(prepared, runs):
    pred = load_predecessor(3, runs / "p2")
    task = PhaseTask(3, prepared, TINY, predecessor=pred)
    assert set(task.train_days) | set(task.val_days) == set(prepared.test_dates)
    assert not set(task.train_days) & set(task.val_days)
    b = batch_of(task.train_dataset())
    model = task.build_model()
    model.load_state_dict(pred.state)
    model.eval()
    loss, parts = task.loss(model, b)
    assert parts["ssim_phase2"] == pytest.approx(1.0, abs=1e-5)
    assert "mse_cams" not in parts
    before = {k: v.clone() for k, v in pred.state.items()}
    off = Fixed(model(**{k: b[k] for k in ("met2d", "met3d", "emis", "geo", "temporal")}).detach() * 1.5)
    loss, parts = task.loss(off, b)
    loss.backward()
    assert parts["ssim_phase2"] < 0.999
    assert off.out.grad is not None
    assert all(not p.requires_grad for p in task._frozen.parameters())
    assert all(torch.equal(before[k], v) for k, v in pred.state.items())


def test_phase3_eval_layers_trains_in_the_mode_of_its_frozen_anchor(prepared, runs, world, cache,
                                                                     tmp_path):
    """With ``phase3_eval_layers`` the anchor is exactly zero for the unchanged phase-2
    weights; in the plain training mode (batch statistics, dropout) it is not, so the
    anchor alone would pull the weights."""
    pred = load_predecessor(3, runs / "p2")
    anchor_only = {"stations": 0.0, "frozen_ssim": 0.0, "frozen_log_mse": 1.0}
    b = batch_of(PhaseTask(3, prepared, TINY, predecessor=pred).train_dataset())
    losses = {}
    for held in (True, False):
        task = PhaseTask(3, prepared, TINY, predecessor=pred,
                         options=PhaseConfig(phase3_eval_layers=held, **anchor_only))
        model = task.build_model()
        model.load_state_dict(pred.state)
        task.train_mode(model)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout)]
        assert norms and model.training
        assert all(m.training != held for m in norms)
        losses[held] = task.loss(model, b)[1]["log_mse_phase2"]
    assert losses[True] == pytest.approx(0.0, abs=1e-12)
    assert losses[False] > 1e-6
    cfg = tmp_path / "p3.toml"
    cfg.write_text("[phase]\nphase3_eval_layers = true\n")
    train_phase(3, world, tmp_path / "p3", config_path=cfg, overrides=FAST, cache_dir=cache,
                from_=runs / "p2")
    state, meta = load_weights(tmp_path / "p3" / "weights.pt")
    assert meta["loss"]["phase3_eval_layers"] is True
    stats = [k for k in state if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(state[k], pred.state[k]) for k in stats)
    with pytest.raises(ConfigError, match="phase3_eval_layers must be true or false"):
        PhaseConfig(phase3_eval_layers=1)


def test_phase_order_and_mismatches_are_refused(world, cache, runs, prepared, tmp_path):
    with pytest.raises(ConfigError, match="pass --from"):
        load_predecessor(2, None)
    with pytest.raises(ConfigError, match="phase 3 starts from phase 2"):
        load_predecessor(3, runs / "p1")
    with pytest.raises(ConfigError, match="no such weights"):
        load_predecessor(2, tmp_path / "nothing")
    with pytest.raises(ConfigError, match="warm start of phase 1 takes phase-1 weights"):
        load_predecessor(1, runs / "p2")
    other = dict(load_weights(runs / "p1" / "weights.pt")[1], model="deepcams-spatial")
    save_weights(tmp_path / "other.pt", {}, other)
    with pytest.raises(ConfigError, match="deepcams-spatial"):
        load_predecessor(2, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="same network configuration"):
        train_phase(2, world, tmp_path / "x", preset="small", overrides=FAST, cache_dir=cache,
                    from_=runs / "p1")
    with pytest.raises(ConfigError, match="same data spec"):
        PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1, variant="daily"))
    assert not (tmp_path / "x").exists()


def test_phase_settings_defaults_and_precedence(runs, tmp_path):
    pred = load_predecessor(2, runs / "p1")
    assert pred.base_lr == pytest.approx(TrainSettings().lr)
    opts = PhaseConfig()
    s2 = train_settings(2, ConfigTables(), {}, pred, opts)
    assert s2.lr == pytest.approx(0.1 * TrainSettings().lr) and s2.epochs == 200
    p3 = load_predecessor(3, runs / "p2")
    s3 = train_settings(3, ConfigTables(), {}, p3, opts)
    assert s3.epochs == 100 and s3.lr == pytest.approx(1e-4)
    cfg = tmp_path / "train.toml"
    cfg.write_text("[train]\nlr = 0.01\nepochs = 7\n[phase]\nlr_factor = 0.5\n")
    tables = read_config(cfg)
    s = train_settings(2, tables, {"epochs": 3}, pred, PhaseConfig(**tables.phase))
    assert (s.lr, s.epochs) == (0.01, 3)
    cfg.write_text("[optimiser]\nlr = 1\n")
    with pytest.raises(ConfigError, match="unknown table"):
        read_config(cfg)
    cfg.write_text("[phase]\nphase3_val_cells = 1.5\n")  # a bad value names the file
    with pytest.raises(ConfigError, match="phase3_val_cells") as err:
        train_phase(1, tmp_path / "no-world", tmp_path / "r", config_path=cfg)
    assert err.value.path == str(cfg) and not (tmp_path / "r").exists()


def test_phase2_records_phase1_in_its_lineage(runs):
    from aprior.models.checkpoint import load_weights, weights_hash

    p1 = load_weights(runs / "p1" / "weights.pt")[1]
    p2 = load_weights(runs / "p2" / "weights.pt")[1]
    assert "lineage" not in p1
    (step,) = p2["lineage"]
    assert step["phase"] == 1 and step["sha256"] == weights_hash(runs / "p1" / "weights.pt")
    assert step["days"] == p1["days"] and step["budget"]["stopped"] == "epochs"
    assert step["budget"]["epochs_run"] == p1["training"]["budget"]["epochs_run"]


def _cams_on_2km(b):
    """The batch's 8 km CAMS targets repeated onto the 2 km cells: a prediction that fits them."""
    return torch.repeat_interleave(torch.repeat_interleave(b["cams"], 4, -1), 4, -2)


def _phase1_fitting_cams(prepared, option, part):
    """A phase-1 task with ``option`` at weight 1, a batch and the prediction that fits its
    CAMS targets exactly, for which the term ``part`` is zero."""
    task = PhaseTask(1, prepared, TINY, options=PhaseConfig(ssim_window=3, log_floor=1e-6,
                                                             **{option: 1.0}))
    b = batch_of(task.train_dataset())
    exact = _cams_on_2km(b)
    assert task.loss(Fixed(exact), b)[1][part] == pytest.approx(0.0, abs=1e-8)
    return task, b, exact


def _assert_phase1_loss_adds(task, loss, parts, part, scale):
    """Phase 1's loss is the paper's two CAMS terms plus ``part`` over its own scale."""
    scales = task.loss_scales()
    assert scales[scale] > 0 and scales[scale] != 1.0
    expected = (parts["mse_cams"] / scales["cams"] + 1 - parts["ssim_cams"]
                + parts[part] / scales[scale])
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)


def test_log_term_weighs_clean_and_polluted_cells_alike(prepared):
    """cams_log_mse: a 10 % error costs the same in a clean and a polluted cell; it is
    divided by the variance of log(CAMS + floor) and absent at weight 0 (the paper)."""
    task, b, exact = _phase1_fitting_cams(prepared, "cams_log_mse", "log_mse_cams")
    loss, parts = task.loss(Fixed(exact * 1.1), b)
    assert parts["log_mse_cams"] == pytest.approx(np.log(1.1) ** 2, rel=1e-3)
    _assert_phase1_loss_adds(task, loss, parts, "log_mse_cams", "log")
    _, parts = PhaseTask(1, prepared, TINY).loss(Fixed(exact * 1.1), b)
    assert "log_mse_cams" not in parts
    with pytest.raises(ConfigError, match="log_floor"):
        PhaseConfig(log_floor=0)


def test_shape_term_sees_the_vertical_share_whatever_the_amount(prepared):
    """cams_shape_mse: a column scaled as a whole costs (almost) nothing, the same amount
    moved from the top to the surface costs the same in a clean and a polluted column;
    the term is divided by the variance of CAMS's shapes and absent at weight 0."""
    task, b, exact = _phase1_fitting_cams(prepared, "cams_shape_mse", "shape_mse_cams")
    _, parts = task.loss(Fixed(exact * 3.0), b)
    assert parts["shape_mse_cams"] == pytest.approx(0.0, abs=1e-8)
    tilted = exact * torch.linspace(1.3, 0.7, exact.shape[1])[None, :, None, None]
    loss, parts = task.loss(Fixed(tilted), b)
    assert parts["shape_mse_cams"] > 1e-3
    _assert_phase1_loss_adds(task, loss, parts, "shape_mse_cams", "shape")
    # the same tilt of a clean column (1 % of the amount) costs as much as of a polluted one
    col = torch.tensor([4.0, 3.0, 2.0, 1.0]).reshape(1, 4, 1, 1)
    tilt = torch.tensor([1.2, 1.0, 1.0, 0.6]).reshape(1, 4, 1, 1)
    ok = torch.ones_like(col, dtype=torch.bool)
    clean = task.shape_mse(col * tilt * 0.01, col * 0.01, ok)
    assert float(clean) == pytest.approx(float(task.shape_mse(col * tilt, col, ok)), rel=1e-3)
    assert float(clean) > 0.01
    _, parts = PhaseTask(1, prepared, TINY).loss(Fixed(tilted), b)
    assert "shape_mse_cams" not in parts
    with pytest.raises(ConfigError, match="cams_shape_mse"):
        PhaseConfig(cams_shape_mse=-1.0)


def test_detail_term_asks_for_the_contrast_between_neighbouring_cells(prepared):
    """cams_detail_mse: CAMS scaled as a whole costs (almost) nothing, CAMS smoothed to
    32 km blocks costs the variance of CAMS's own log detail; the term is divided by its
    scale and absent at weight 0."""
    task, b, exact = _phase1_fitting_cams(prepared, "cams_detail_mse", "detail_mse_cams")
    _, parts = task.loss(Fixed(exact * 3.0), b)
    assert parts["detail_mse_cams"] == pytest.approx(0.0, abs=1e-6)
    p = exact.shape[-1] // 16 * 16
    assert p > 0
    smooth = exact.clone()
    block = avg_pool_xy(exact[..., :p, :p].nan_to_num(0.0), 16)
    smooth[..., :p, :p] = block.repeat_interleave(16, -2).repeat_interleave(16, -1)
    loss, parts = task.loss(Fixed(smooth), b)
    assert parts["detail_mse_cams"] > 1e-3
    _assert_phase1_loss_adds(task, loss, parts, "detail_mse_cams", "detail")
    _, parts = PhaseTask(1, prepared, TINY).loss(Fixed(smooth), b)
    assert "detail_mse_cams" not in parts
    with pytest.raises(ConfigError, match="cams_detail_mse"):
        PhaseConfig(cams_detail_mse=-1.0)


def test_level_normalisation_weighs_each_level_by_its_own_variance(prepared):
    """normalise_levels: the CAMS MSE and the log term divide each level's squared errors
    by that level's variance, so an error at one level costs its raw MSE over that
    level's variance, at the top as at the surface; one variance without it."""
    task = PhaseTask(1, prepared, TINY, options=PhaseConfig(
        ssim_window=3, log_floor=1e-6, cams_log_mse=1.0, normalise_levels=True))
    b = batch_of(task.train_dataset())
    exact = _cams_on_2km(b)
    scales = task.loss_scales()
    nz = exact.shape[1]
    assert len(scales["cams"]) == len(scales["log"]) == nz
    assert len(set(scales["cams"])) == nz and min(scales["cams"]) > 0
    plain = PhaseTask(1, prepared, TINY, options=PhaseConfig(ssim_window=3, log_floor=1e-6,
                                                              cams_log_mse=1.0))
    for k in (0, nz - 1):
        one = torch.ones(nz)
        one[k] = 1.2
        pred = exact * one[None, :, None, None]
        loss, parts = task.loss(Fixed(pred), b)
        assert parts["mse_cams"] > 0 and parts["log_mse_cams"] > 0
        expected = (parts["mse_cams"] / scales["cams"][k] + 1 - parts["ssim_cams"]
                    + parts["log_mse_cams"] / scales["log"][k])
        assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)
        _assert_phase1_loss_adds(plain, *plain.loss(Fixed(pred), b), "log_mse_cams", "log")
    with pytest.raises(ConfigError, match="normalise_levels"):
        PhaseConfig(normalise=False, normalise_levels=True)
    with pytest.raises(ConfigError, match="normalise_levels"):
        PhaseConfig(normalise_levels=1)


def test_level_normalisation_of_phase3s_log_anchor(prepared, runs):
    """normalise_levels divides phase 3's log anchor to the frozen phase 2 per level too."""
    pred = load_predecessor(3, runs / "p2")
    task = PhaseTask(3, prepared, TINY, predecessor=pred, options=PhaseConfig(
        stations=0.0, frozen_ssim=0.0, frozen_log_mse=1.0, normalise_levels=True))
    b = batch_of(task.train_dataset())
    ref = task.frozen_predictions(b)
    scales = task.loss_scales()
    k = ref.shape[1] - 1
    one = torch.ones(ref.shape[1])
    one[k] = 1.2
    loss, parts = task.loss(Fixed(ref * one[None, :, None, None]), b)
    assert parts["log_mse_phase2"] > 0
    assert float(loss.detach()) == pytest.approx(parts["log_mse_phase2"] / scales["log"][k], rel=1e-4)


def test_phase1_warm_start_continues_another_phase1_run(world, cache, runs, tmp_path):
    """--from on phase 1: the weights start as the other run's best and the lineage
    records it; resuming finds the recorded predecessor without --from."""
    src = runs / "p1" / "weights.pt"
    state = load_weights(src)[0]
    cfg = tmp_path / "warm.toml"
    cfg.write_text("[phase]\ncams_log_mse = 1.0\n")
    over = {**FAST, "lr": 1e-12}
    train_phase(1, world, tmp_path / "w", config_path=cfg, overrides=over, cache_dir=cache,
                from_=runs / "p1")
    new, meta = load_weights(tmp_path / "w" / "weights.pt")
    assert all(torch.allclose(state[k], v, atol=1e-6) for k, v in new.items()
               if v.is_floating_point() and "running" not in k)
    assert meta["lineage"][-1]["phase"] == 1 and meta["predecessor"]["phase"] == 1
    assert meta["loss"]["cams_log_mse"] == 1.0 and "log" in meta["loss_scales"]
    train_phase(1, world, tmp_path / "w", config_path=cfg, overrides={**over, "epochs": 2},
                cache_dir=cache, resume=True)
    assert load_weights(tmp_path / "w" / "weights.pt")[1]["predecessor"]["sha256"] == \
        meta["predecessor"]["sha256"]



def test_phase1_warm_start_may_come_from_other_data_but_not_another_network(
        world, cache, runs, prepared, tmp_path, caplog):
    """A warm start is a starting point: other days (another cache, other statistics) are
    allowed and logged; another network is refused; phases 2-3 stay strict."""
    cfg = tmp_path / "other.toml"
    day = prepared.test_dates[0].isoformat()  # a day phase 1 does not use: its split stays
    cfg.write_text(f'[data]\nexclude_dates = ["{day}"]\n')
    with caplog.at_level("WARNING", logger="aprior.models.dacno2.phases"):
        train_phase(1, world, tmp_path / "w", config_path=cfg, overrides={**FAST, "lr": 1e-12},
                    cache_dir=tmp_path / "other-cache", from_=runs / "p1")
    assert "trained with another data spec" in caplog.text
    meta = load_weights(tmp_path / "w" / "weights.pt")[1]
    assert meta["spec"]["exclude_dates"] == [day] and "exclude_dates" not in meta["lineage"][-1]["days"]
    assert meta["lineage"][-1]["data"]["prepared"] != meta["data"]["prepared"]
    assert dt.date.fromisoformat(day) not in open_prepared(meta["data"]["prepared"]).dates
    other_net = PhaseTask(1, prepared, TINY).metadata()
    other_net["config"] = {**other_net["config"], "patch": 2 * TINY.patch}
    fake = Predecessor(tmp_path / "x.pt", "0" * 64, {}, other_net)
    with pytest.raises(ConfigError, match="network configuration"):
        check_predecessor(fake, phase=1, config=TINY, prepared=prepared)
    with pytest.raises(ConfigError, match="data spec"):
        PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1, seed=5))

def test_resume_keeps_the_runs_own_preset(world, cache, tmp_path):
    """--resume without --preset continues with the run's recorded network, not the
    default paper preset."""
    train_phase(1, world, tmp_path / "c", preset="tiny", overrides=FAST, cache_dir=cache)
    train_phase(1, world, tmp_path / "c", overrides={**FAST, "epochs": 2}, cache_dir=cache,
                resume=True)
    meta = load_weights(tmp_path / "c" / "weights.pt")[1]
    assert DACNO2Config.from_dict(meta["config"]) == TINY and meta["training"]["budget"]["epochs_run"] == 2


def test_phase3_day_split_is_by_day_and_seeded():
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=k) for k in range(10)]
    tr, va = phase3_days(days, 0.2, 0)
    assert len(va) == 2 and sorted(tr + va) == days
    assert (tr, va) == phase3_days(days, 0.2, 0)
    with pytest.raises(ConfigError, match="at least 2"):
        phase3_days(days[:1], 0.2, 0)



def _masked_cells(ds, prepared) -> set[int]:
    nx, out = prepared.grid.nx, set()
    for i in range(len(ds)):
        item = ds[i]
        p = prepared.patches[int(item["patch"])]
        jj, ii = np.nonzero(item["station_mask"].numpy())
        out |= set(((jj + p.j0) * nx + (ii + p.i0)).tolist())
    return out


def test_phase3_can_validate_on_station_cells_it_does_not_fit(prepared, runs):
    cells = np.arange(100, 120)
    fit, val = phase3_cells(cells, 0.25, 0)
    assert len(val) == 5 and sorted([*fit, *val]) == cells.tolist()
    assert np.array_equal(phase3_cells(cells, 0.25, 0)[1], val)  # seeded
    same = phase3_cells(cells, 0.0, 0)
    assert np.array_equal(same[0], cells) and np.array_equal(same[1], cells)
    with pytest.raises(ConfigError, match="phase3_val_cells"):
        PhaseConfig(phase3_val_cells=1.0)
    pred = load_predecessor(3, runs / "p2")
    task = PhaseTask(3, prepared, TINY, predecessor=pred, options=PhaseConfig(phase3_val_cells=0.5))
    fitted, validated = _masked_cells(task.train_dataset(), prepared), _masked_cells(task.val_dataset(), prepared)
    assert fitted and validated and not fitted & validated
    assert fitted <= set(task.fit_cells.tolist()) and validated <= set(task.val_cells.tolist())
    assert not (fitted | validated) & set(prepared.eval_cells.tolist())
    stations = task.metadata()["stations"]
    assert stations["fit_cells"] == len(task.fit_cells) and stations["val_cells"] == task.val_cells.tolist()
    # phase 2 ignores the setting: it fits and validates on all training cells
    two = PhaseTask(2, prepared, TINY, predecessor=_fake_predecessor(prepared, 1),
                    options=PhaseConfig(phase3_val_cells=0.5))
    assert np.array_equal(two.fit_cells, prepared.train_cells) and two.metadata()["stations"]["val_cells"] == "same"

def test_pair_stats_match_numpy_and_fine_scale_metric():
    rng = np.random.default_rng(1)
    o = rng.normal(10, 3, 500)
    m = o + rng.normal(1, 2, 500)
    m[3] = np.nan
    s = PairStats().add(m[:200], o[:200]).merge(PairStats().add(m[200:], o[200:])).scores()
    ok = np.isfinite(m)
    mm, oo = m[ok], o[ok]
    assert s["n"] == 499
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean((mm - oo) ** 2)))
    assert s["r"] == pytest.approx(np.corrcoef(mm, oo)[0, 1])
    assert s["r2"] == pytest.approx(1 - np.sum((mm - oo) ** 2) / np.sum((oo - oo.mean()) ** 2))
    assert s["bias"] == pytest.approx(np.mean(mm - oo))
    smooth = np.kron(rng.normal(size=(4, 4)), np.ones((8, 8)))
    assert fine_scale_std(smooth) == pytest.approx(0.0, abs=1e-12)
    rough = smooth + rng.normal(size=smooth.shape)
    assert fine_scale_std(rough) > 0.5
    assert fine_scale_corr(rough, rough) == pytest.approx(1.0)


def _fake_predecessor(prepared, phase, **spec_changes):
    """An in-memory predecessor of ``phase`` with random tiny weights."""
    from aprior.models.dacno2.model import DACNO2
    from aprior.models.dacno2.phases import Predecessor

    meta = PhaseTask(1, prepared, TINY).metadata()
    meta["phase"] = phase
    meta["spec"] = {**meta["spec"], **spec_changes}
    return Predecessor(prepared.root / "fake.pt", "0" * 64, DACNO2(TINY).state_dict(), meta)
