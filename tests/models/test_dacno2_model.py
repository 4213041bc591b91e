"""DACNO2 network: shapes, non-negativity, gradients, layer assignment, config, summary."""

from __future__ import annotations

import json

import pytest
import torch

from aprior.errors import ConfigError
from aprior.models.dacno2 import DACNO2, INPUT_KEYS, PARTS, DACNO2Config, example_inputs, summary
from aprior.models.dacno2.blocks import ConvLSTM, halve_sequence
from aprior.models.summary import count_parameters

TINY = DACNO2Config.preset("tiny")


def _model(cfg: DACNO2Config = TINY, seed: int = 0) -> DACNO2:
    torch.manual_seed(seed)
    return DACNO2(cfg)


def _inputs(cfg: DACNO2Config = TINY, batch: int = 2, seed: int = 1) -> dict[str, torch.Tensor]:
    return example_inputs(cfg, batch, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: far faster than 2 threads on a busy 2-core machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model() -> DACNO2:
    return _model()


def test_output_shape_and_non_negative(model):
    x = _inputs()
    for train in (True, False):
        model.train(train)
        y = model(**x)
        assert y.shape == (2, TINY.n_levels, TINY.patch, TINY.patch)
        assert y.dtype == torch.float32
        assert torch.isfinite(y).all() and (y >= 0).all()
    # very negative pre-activations still give >= 0 (softplus, not a clamp that kills gradients)
    with torch.no_grad():
        model.decoder["head"].bias.fill_(-50.0)
    model.eval()
    y = model(**x)
    assert (y >= 0).all() and y.max() < 1e-10
    with torch.no_grad():
        model.decoder["head"].bias.zero_()


def test_eval_is_deterministic_and_dropout_acts_in_training():
    m = _model()
    x = _inputs()
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(**x), m(**x))
    m.train()
    with torch.no_grad():
        assert not torch.equal(m(**x), m(**x))


def test_gradients_reach_every_branch_and_input():
    m = _model().train()
    x = {k: v.requires_grad_() for k, v in _inputs().items()}
    m(**x).square().mean().backward()
    for part in PARTS:
        params = list(getattr(m, part).parameters())
        assert params, part
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all(), part
            assert p.grad.abs().sum() > 0, f"a {part} parameter gets no gradient"
    for k in INPUT_KEYS:
        assert x[k].grad.abs().sum() > 0, f"the output does not depend on {k}"


def test_each_branch_fills_only_its_layers(model):
    outputs: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []
    for k, stage in enumerate(model.fusion):
        for name in ("met2d", "met3d", "emissions", "geography"):
            hooks.append(getattr(stage, name).register_forward_hook(
                lambda _m, _i, out, key=(k, name): outputs.__setitem__(key, out.detach())))
    model.eval()
    with torch.no_grad():
        model(**_inputs())
    for h in hooks:
        h.remove()
    assert len(outputs) == 16
    filled = {"met2d": TINY.single_level_layers, "emissions": TINY.surface_layers,
              "geography": TINY.surface_layers, "met3d": TINY.n_levels}
    for (k, name), out in outputs.items():
        s = TINY.scale_size(k)
        assert out.shape[2:] == (TINY.n_levels, s, s), (k, name)
        n = filled[name]
        assert torch.all(out[:, :, n:] == 0), f"{name} at scale {k} writes above layer {n}"
        assert (out[:, :, :n] != 0).any(dim=(0, 1, 3, 4)).all(), f"{name} at scale {k} leaves a layer empty"
    assert (TINY.surface_layers, TINY.single_level_layers, TINY.n_levels) == (1, 5, 8)


def test_pressure_levels_are_interpolated_to_the_output_levels():
    cfg = TINY.replace(n_pressure_levels=5, n_levels=6, single_level_layers=4)
    y = _model(cfg).eval()(**_inputs(cfg, batch=1))
    assert y.shape == (1, 6, cfg.patch, cfg.patch)


def test_fully_convolutional_on_other_patch_sizes(model):
    x = example_inputs(TINY.replace(patch=80), batch=1)
    assert model.eval()(**x).shape == (1, TINY.n_levels, 80, 80)


def test_input_shapes_are_checked(model):
    x = _inputs()
    bad = dict(x, met2d=x["met2d"][:, :12])
    with pytest.raises(ConfigError, match="met2d"):
        model(**bad)
    bad = dict(x, emis=x["emis"][..., :32])
    with pytest.raises(ConfigError, match="emis"):
        model(**bad)


def test_sequence_halving_keeps_the_last_step():
    t = torch.arange(24).view(1, 24)
    lengths = []
    for _ in range(3):
        t = halve_sequence(t)
        lengths.append(t.shape[1])
        assert t[0, -1] == 23
    assert lengths == [12, 6, 3]
    assert halve_sequence(torch.arange(5).view(1, 5)).tolist() == [[0, 2, 4]]
    assert TINY.sequence_lengths() == (24, 12, 6, 3)


def test_convlstm_matches_a_plain_step_by_step_reference():
    torch.manual_seed(3)
    lstm = ConvLSTM(2, 3, 4, kernel=3).double()
    x = torch.randn(2, 5, 3, 6, 6, dtype=torch.float64)
    w = torch.cat([lstm.x2g.weight, lstm.h2g.weight], dim=1)  # one conv over [x, h]
    h = torch.zeros(2, 4, 6, 6, dtype=torch.float64)
    c = torch.zeros_like(h)
    ref = []
    for step in range(5):
        g = torch.nn.functional.conv2d(torch.cat([x[:, step], h], 1), w, lstm.x2g.bias, padding=1)
        i, f, o, cand = g.chunk(4, 1)
        c = f.sigmoid() * c + i.sigmoid() * cand.tanh()
        h = o.sigmoid() * c.tanh()
        ref.append(h)
    torch.testing.assert_close(lstm(x), torch.stack(ref, 1))


def test_gradient_checkpointing_gives_the_same_step():
    base = _model(seed=5).train()
    ckpt = DACNO2(TINY.replace(gradient_checkpointing=True)).train()
    ckpt.load_state_dict(base.state_dict())
    x = _inputs(batch=2)
    results = []
    for m in (base, ckpt):
        torch.manual_seed(11)  # same dropout masks
        loss = m(**x).square().mean()
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in m.named_parameters()}, m.state_dict()))
    (l0, g0, s0), (l1, g1, s1) = results
    torch.testing.assert_close(l0, l1)
    for n in g0:
        torch.testing.assert_close(g0[n], g1[n], rtol=1e-4, atol=1e-6, msg=n)
    for n in s0:  # batch-norm statistics updated once, not twice
        torch.testing.assert_close(s0[n], s1[n], msg=n)


def test_config_validation():
    assert DACNO2Config() == DACNO2Config.preset("paper")
    with pytest.raises(ConfigError, match="patch"):
        DACNO2Config(patch=60)
    with pytest.raises(ConfigError, match="fusion_width"):
        DACNO2Config(fusion_width=(4, 4, 4))
    with pytest.raises(ConfigError, match="dropout"):
        DACNO2Config(dropout=1.0)
    with pytest.raises(ConfigError, match="single_level_layers"):
        DACNO2Config(n_levels=4)
    with pytest.raises(ConfigError, match="n_hours"):
        DACNO2Config(n_hours=True)
    with pytest.raises(ConfigError, match="lstm_kernel"):
        DACNO2Config(lstm_kernel=4)
    with pytest.raises(ConfigError, match="unknown DACNO2 preset 'huge'"):
        DACNO2Config.preset("huge")


def test_config_dict_round_trip():
    for name, cfg in DACNO2Config.PRESETS.items():
        d = json.loads(json.dumps(cfg.to_dict()))
        assert DACNO2Config.from_dict(d) == cfg, name
    assert DACNO2Config.from_dict({"patch": 128}) == DACNO2Config(patch=128)
    with pytest.raises(ConfigError, match="'widht'"):
        DACNO2Config.from_dict({**TINY.to_dict(), "widht": 3})
    with pytest.raises(ConfigError, match="decoder_width"):
        DACNO2Config.from_dict({"decoder_width": [1, 2]})


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_summary_counts_match_the_model(preset):
    s = summary(preset)
    cfg = DACNO2Config.preset(preset)
    m = DACNO2(cfg)
    assert s.n_params == count_parameters(m) == sum(s.parts.values())
    assert tuple(s.parts) == PARTS and all(v > 0 for v in s.parts.values())
    shapes = dict(s.shapes)
    assert shapes["output"] == (1, cfg.n_levels, cfg.patch, cfg.patch)
    lengths = [shapes[f"met3d stage {k} ConvLSTM input"][1] for k in range(4)]
    assert tuple(lengths) == cfg.sequence_lengths() == (24, 12, 6, 3)
    assert shapes["fused P/8"][2:] == (cfg.n_levels, cfg.coarse, cfg.coarse)
    assert f"{s.n_params:,} parameters" in s.render()


def test_summary_shapes_match_a_real_forward(model):
    model.eval()
    with torch.no_grad():
        real = model.trace_shapes(_inputs(batch=1))
    assert real == summary("tiny").shapes


def test_separable_max_pool_equals_the_3d_one():
    from aprior.models.dacno2.blocks import MaxPool3x3

    x = torch.randn(2, 3, 5, 7, 6, requires_grad=True)
    torch.testing.assert_close(MaxPool3x3(3)(x), torch.nn.MaxPool3d(3, 1, 1)(x), rtol=0, atol=0)
    x2 = torch.randn(2, 3, 7, 6)
    torch.testing.assert_close(MaxPool3x3(2)(x2), torch.nn.MaxPool2d(3, 1, 1)(x2), rtol=0, atol=0)
    MaxPool3x3(3)(x).sum().backward()
    assert x.grad is not None and float(x.grad.sum()) > 0
