"""Units through pint with cf-xarray's UDUNITS registry."""

from __future__ import annotations

import pytest

from aprior import units as u


@pytest.mark.parametrize(("text", "kind", "to", "factor"), [
    ("ug m-3", u.MASS_CONCENTRATION, "ug m-3", 1.0),
    ("kg m**-3", u.MASS_CONCENTRATION, "ug m-3", 1e9),
    ("1e-9 kg m-3", u.MASS_CONCENTRATION, "ug m-3", 1.0),
    ("mol mol-1", u.MOLE_FRACTION, "mol mol-1", 1.0),
    ("ppb", u.MOLE_FRACTION, "mol mol-1", 1e-9),
    ("ppbv", u.MOLE_FRACTION, "mol mol-1", 1e-9),
    ("ppmv", u.MOLE_FRACTION, "mol mol-1", 1e-6),
    ("ppm", u.MOLE_FRACTION, "mol mol-1", 1e-6),
    ("nmol mol-1", u.MOLE_FRACTION, "mol mol-1", 1e-9),
    ("1e-9", u.MOLE_FRACTION, "mol mol-1", 1e-9),
    ("1", u.MOLE_FRACTION, "mol mol-1", 1.0),
    ("kg kg-1", u.MASS_MIXING_RATIO, "1", 1.0),
    ("kg/kg", u.MASS_MIXING_RATIO, "1", 1.0),
    ("molec cm-3", u.NUMBER_DENSITY, "molec m-3", 1e6),
    ("molecules cm-3", u.NUMBER_DENSITY, "molec m-3", 1e6),
])
def test_kinds_and_factors(text, kind, to, factor):
    assert u.amount_kind(text) == kind
    assert u.factor(text, to) == pytest.approx(factor, rel=1e-12)


def test_lengths_pressures_and_durations():
    assert u.factor("km", "m") == 1000.0
    assert u.factor("hPa", "Pa") == 100.0
    assert u.is_convertible("millibar", "hPa") and not u.is_convertible("m", "Pa")
    assert u.duration_seconds("hours") == 3600.0 and u.duration_seconds("m") is None
    assert u.amount_kind("furlongs per fortnight squared") is None
    with pytest.raises(ValueError, match="not convertible"):
        u.factor("kg m-3", "mol mol-1")
    with pytest.raises(ValueError, match="unknown units"):
        u.parse_units("bananas m-3")
