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
                                       "m7-1", "m7-2", "m7-3"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_is_a_valid_training_config(path):
    tables = read_config(path)
    settings = TrainSettings.from_mapping(dict(tables.train))
    assert settings.time_limit_s and settings.time_limit_s > 0
    PhaseConfig(**tables.phase)
    spec = DataSpec.from_dict({**DataSpec().to_dict(), **tables.data})
    # no closed-loop orbit day of the test worlds may be trained on
    assert {"2023-01-13", "2023-07-12", "2023-01-03", "2023-12-29"} <= {str(d) for d in spec.exclude_dates}
