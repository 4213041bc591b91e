"""``aprior models`` through typer's CliRunner on a local app."""

from __future__ import annotations

import pytest
import typer
from conftest import command_app
from typer.testing import CliRunner

from aprior.cli.models_cmd import register
from aprior.models import summary as summary_mod
from aprior.models.dacno2 import DACNO2, DACNO2Config
from aprior.models.summary import count_parameters


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return command_app(register)


def test_models_dacno2_tiny(app):
    res = CliRunner().invoke(app, ["models", "dacno2", "--preset", "tiny"])
    assert res.exit_code == 0, res.output
    n = count_parameters(DACNO2(DACNO2Config.preset("tiny")))
    assert f"dacno2 (tiny): {n:,} parameters" in res.output
    for part in ("met2d", "met3d", "emissions", "geography", "temporal", "fusion", "decoder"):
        assert part in res.output
    assert "output" in res.output and "(1, 8, 64, 64)" in res.output


def test_models_all_presets(app):
    res = CliRunner().invoke(app, ["models", "dacno2", "--all-presets"])
    assert res.exit_code == 0, res.output
    # every preset DACNO2 knows, medium (the bundled weights' size) included
    for preset in DACNO2Config.PRESETS:
        n = count_parameters(DACNO2(DACNO2Config.preset(preset)))
        assert f"dacno2 ({preset}): {n:,} parameters" in res.output
    assert "dacno2 (medium):" in res.output


def test_all_presets_are_each_models_own(app):
    res = CliRunner().invoke(app, ["models", "deepcams-spatial", "--all-presets"])
    assert res.exit_code == 0, res.output
    assert [line.split(" (")[1].split(")")[0] for line in res.output.splitlines()
            if line.startswith("deepcams-spatial (")] == list(summary_mod.model_presets("deepcams-spatial"))
    assert "(medium)" not in res.output


def test_unknown_model_or_preset_is_one_line_and_exit_2(app):
    runner = CliRunner()
    res = runner.invoke(app, ["models", "nonet"])
    assert res.exit_code == 2 and "unknown model 'nonet'" in res.output
    res = runner.invoke(app, ["models", "dacno2", "--preset", "huge"])
    assert res.exit_code == 2 and "unknown DACNO2 preset 'huge'" in res.output
    assert "Traceback" not in res.output


def test_all_models_with_one_unavailable(app, monkeypatch):
    monkeypatch.setattr(summary_mod, "MODEL_SUMMARIES",
                        {"dacno2": summary_mod.MODEL_SUMMARIES["dacno2"],
                         "ghost": "aprior.models.no_such_module:summary"})
    res = CliRunner().invoke(app, ["models", "--preset", "tiny"])
    assert res.exit_code == 0, res.output
    assert "dacno2 (tiny):" in res.output
    assert "ghost: unavailable" in res.output
    res = CliRunner().invoke(app, ["models", "ghost", "--preset", "tiny"])
    assert res.exit_code == 2 and "unavailable" in res.output
