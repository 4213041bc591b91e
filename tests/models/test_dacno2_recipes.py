"""The training recipes shipped in docs/recipes stay valid configs of `aprior train`."""

from __future__ import annotations

from pathlib import Path

import pytest

from aprior.models.dacno2.dataset import DataSpec
from aprior.models.dacno2.phases import PhaseConfig
from aprior.models.dacno2.training import read_config
from aprior.models.settings import TrainSettings

RECIPES = sorted((Path(__file__).resolve().parents[2] / "docs" / "recipes").rglob("*.toml"))


def test_the_issue11_recipes_are_shipped():
    assert {p.stem for p in RECIPES} >= {"r4-1", "r4-2", "r4-3", "m6-1", "m6-2", "m6-3",
                                       "m7-1", "m7-2", "m7-3", "m8-1", "m8-2ctl", "m9-3",
                                       "f1-1", "f1-2", "f1-3", "f2-1", "g1-1", "g1-2",
                                       "h1-1", "d1-1", "l1-1", "n1-1", "nf-1", "nf-2", "nf-3"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_is_a_valid_training_config(path):
    tables = read_config(path)
    settings = TrainSettings.from_mapping(dict(tables.train))
    assert settings.time_limit_s and settings.time_limit_s > 0
    PhaseConfig(**tables.phase)
    spec = DataSpec.from_dict({**DataSpec().to_dict(), **tables.data})
    # no closed-loop orbit day of the test worlds may be trained on
    assert {"2023-01-13", "2023-07-12", "2023-01-03", "2023-12-29"} <= {str(d) for d in spec.exclude_dates}


def test_recipes_that_ran_before_the_eval_layers_default_pin_the_old_mode():
    """Phase-3 recipes of rounds four to six ran with training-mode batch norms and dropouts;
    they say so, so that they still reproduce those runs now that the default changed."""
    old = {"r4-3", "r5-3", "m6-3", "m7-3", "m7-3ctl", "m7-3ctl2"}
    found = {p.stem: PhaseConfig(**read_config(p).phase) for p in RECIPES if p.stem in old | {"m9-3"}}
    assert set(found) == old | {"m9-3"}
    assert not any(found[k].phase3_eval_layers for k in old)
    assert found["m9-3"].phase3_eval_layers


def test_the_fast_recipe_repeats_the_bundled_phases_2_and_3_at_their_rates():
    """f1-2 / f1-3 are the bundled recipe's phases (m8-2ctl, m9-3) after a faster phase 1
    whose rate is twice m8's; they pin phase 2's and 3's absolute rate to the bundled one."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    for fast, bundled in (("f1-2", "m8-2ctl"), ("f1-3", "m9-3")):
        f, b = by_stem[fast], by_stem[bundled]
        assert dict(f.phase) == dict(b.phase)
        assert TrainSettings.from_mapping(dict(f.train)).lr == pytest.approx(1e-4)
        assert {k: v for k, v in f.train.items() if k != "lr"} == dict(b.train)
    assert TrainSettings.from_mapping(dict(by_stem["f1-1"].train)).lr_schedule == "cosine"


def test_the_two_hour_recipe_is_the_fast_one_with_a_longer_decay():
    """f2-1 is f1-1 with the cosine decay over 45 epochs instead of 30 (and a looser guard)."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    f1, f2 = by_stem["f1-1"], by_stem["f2-1"]
    assert dict(f1.phase) == dict(f2.phase) and dict(f1.data) == dict(f2.data)
    changed = {k for k in f1.train if f1.train[k] != f2.train.get(k)}
    assert changed == {"epochs", "time_limit_s"}
    assert (f1.train["epochs"], f2.train["epochs"]) == (30, 45)


def test_the_shape_recipe_is_the_fast_one_with_the_shape_term_only():
    """g1-1 / g1-2 are f1-1 / f1-2 with cams_shape_mse = 1 and nothing else changed."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    for fast, shaped in (("f1-1", "g1-1"), ("f1-2", "g1-2")):
        f, g = by_stem[fast], by_stem[shaped]
        assert dict(f.train) == dict(g.train) and dict(f.data) == dict(g.data)
        assert dict(g.phase) == {**dict(f.phase), "cams_shape_mse": 1.0}
        assert "cams_shape_mse" not in f.phase


@pytest.mark.parametrize(("stem", "change"), [("h1-1", {"normalise_levels": True}),
                                               ("d1-1", {"cams_detail_mse": 1.0})])
def test_the_eleventh_round_recipes_are_the_fast_one_with_one_change(stem, change):
    """h1-1 and d1-1 are f1-1 with one [phase] setting changed and nothing else."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    f, h = by_stem["f1-1"], by_stem[stem]
    assert dict(f.train) == dict(h.train) and dict(f.data) == dict(h.data)
    assert dict(h.phase) == {**dict(f.phase), **change}
    assert not set(change) & set(f.phase)


def test_the_twelfth_round_recipe_is_the_fast_one_with_log_inputs_only():
    """l1-1 is f1-1 with [data] log_inputs (all four emission layers) and nothing else."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    f, g = by_stem["f1-1"], by_stem["l1-1"]
    assert dict(f.train) == dict(g.train) and dict(f.phase) == dict(g.phase)
    assert dict(g.data) == {**dict(f.data), "log_inputs": ["emissions", "roads", "population",
                                                           "nightlight"]}
    assert DataSpec.from_dict({**DataSpec().to_dict(), **g.data}).log_inputs == (
        "emissions", "roads", "population", "nightlight")


def test_the_dropout_recipe_is_the_fast_one_without_dropout_only():
    """n1-1 is f1-1 with [model] dropout = 0 and nothing else (the medium preset has 0.1)."""
    from aprior.models.dacno2.config import DACNO2Config

    by_stem = {p.stem: read_config(p) for p in RECIPES}
    f, n = by_stem["f1-1"], by_stem["n1-1"]
    assert dict(f.train) == dict(n.train) and dict(f.phase) == dict(n.phase)
    assert dict(f.data) == dict(n.data) and not f.model and dict(n.model) == {"dropout": 0.0}
    assert DACNO2Config.preset("medium").dropout == 0.1


def test_the_thirteenth_round_is_the_fast_recipe_without_dropout_at_its_epoch_budgets():
    """nf-1..3 are f1-1..3 with dropout 0 (phase 1's [model]; phases 2 and 3 inherit it), f1's
    epochs as run (30 / 6 / 4) and looser time guards, and nothing else changed."""
    by_stem = {p.stem: read_config(p) for p in RECIPES}
    for k, epochs in ((1, 30), (2, 6), (3, 4)):
        f, n = by_stem[f"f1-{k}"], by_stem[f"nf-{k}"]
        assert dict(f.phase) == dict(n.phase) and dict(f.data) == dict(n.data)
        changed = {key for key in {*f.train, *n.train} if f.train.get(key) != n.train.get(key)}
        assert changed <= {"epochs", "time_limit_s"}
        assert n.train["epochs"] == epochs and n.train["time_limit_s"] > f.train["time_limit_s"]
        assert dict(n.model) == ({"dropout": 0.0} if k == 1 else {})


def test_the_shipped_day_lists_are_the_bundled_weights_training_and_validation_days():
    """traindays.txt / valdays.txt: training and validation days of the bundled weights'
    phases 1-2 (their lineage), never a day of the other list."""
    from aprior.models.checkpoint import load_weights
    from aprior.models.dacno2.predict import bundled_weights

    meta = load_weights(bundled_weights())[1]
    step = [s for s in meta["lineage"] if s["phase"] == 2][0]
    here = Path(__file__).resolve().parents[2] / "docs" / "recipes" / "dacno2-issue11"
    for name, key in (("traindays.txt", "train"), ("valdays.txt", "val")):
        words = (here / name).read_text().split()
        days = words[1::2]
        assert set(words[::2]) == {"--date"} and len(days) == 25
        assert set(days) <= set(step["days"][key])
        other = "val" if key == "train" else "train"
        assert not set(days) & set(step["days"][other])
