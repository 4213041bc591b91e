"""NO2 amounts of model files: what a unit means, the exact conversion, and plausibility.

A profile field holds a mass concentration (ug m-3) or a mole fraction (mol mol-1, dry
air). Every unit of the four kinds (:func:`aprior.units.amount_kind`) reaches one of
those two exactly, without assuming anything about the air:

- mass concentration (``ug m-3``, ``kg m-3``...): to ug m-3 with pint;
- number density (``molec cm-3``, ``mol m-3``): to mol m-3 with pint, times the molar mass
  of NO2 (46.0055 g mol-1) to ug m-3;
- mole fraction (``mol mol-1``, ``ppb``, ``ppmv``, ``1e-9``): to mol mol-1 with pint;
- mass mixing ratio (``kg kg-1``): times ``M_air / M_NO2`` (28.9644 / 46.0055) to mol mol-1.

Between the two kinds the air density is needed; :mod:`aprior.retrieval.vertical` does it
where pressure and temperature are known (a dry ideal gas, ``n_air = p / (R T)``, with the
standard atmosphere's temperature unless a temperature field is given).

The plausibility checks catch a unit that lies about its numbers: mixing ratios labelled
as mass concentrations (a maximum below 1e-3 ug m-3), ug m-3 or ppb labelled as mol mol-1
(a maximum above 1e-3 mol mol-1, i.e. 1000 ppm), and fields that are zero everywhere.
"""

from __future__ import annotations

import re
from os import PathLike

import numpy as np

from aprior.a_priori.field import MASS_CONCENTRATION, MOLE_FRACTION
from aprior.constants import M_AIR, M_NO2
from aprior.errors import ProfileFieldError
from aprior.units import MASS_MIXING_RATIO, NUMBER_DENSITY, amount_kind, factor

#: The largest plausible NO2 mass concentration (ug m-3) and mole fraction (mol mol-1) in a
#: model field, and the smallest plausible maximum of a mass-concentration field.
MAX_MASS_CONCENTRATION = 1e5
MAX_MOLE_FRACTION = 1e-3
MIN_MAX_MASS_CONCENTRATION = 1e-3


def quantity_of(units: str | None, *, variable: str,
                path: str | PathLike[str] | None) -> tuple[str, float]:
    """``(quantity, factor)``: ``value * factor`` is in ug m-3 (mass concentration) or
    mol mol-1 (mole fraction).

    Raises:
        ProfileFieldError: no units, or units that are not an amount of NO2.
    """
    if units is None or not str(units).strip():
        raise ProfileFieldError(
            f"variable {variable!r} has no units attribute; give it one such as 'ug m-3', "
            "'mol mol-1', 'ppb', 'kg kg-1' or 'molec cm-3'", path)
    text = str(units).strip()
    # GEOS-Chem writes "mol mol-1 dry", "v/v dry": the basis is a remark, not a unit
    text = re.sub(r"\s*\b(dry|wet)(\s+air)?$", "", text, flags=re.IGNORECASE).strip()
    kind = amount_kind(text)
    try:
        if kind == "mass concentration":
            return MASS_CONCENTRATION, factor(text, "ug m-3")
        if kind == NUMBER_DENSITY:
            return MASS_CONCENTRATION, factor(text, "mol m-3") * M_NO2 * 1e6
        if kind == "mole fraction":
            return MOLE_FRACTION, factor(text, "1")
        if kind == MASS_MIXING_RATIO:
            return MOLE_FRACTION, factor(text, "1") * (M_AIR * 1e3) / M_NO2
    except ValueError:
        pass
    raise ProfileFieldError(
        f"variable {variable!r} has units {text!r}, which are not an NO2 amount; expected a "
        "mass concentration (ug m-3), mole fraction (mol mol-1, ppb), mass mixing ratio "
        "(kg kg-1) or number density (molec cm-3)", path)


def check_amounts(no2: np.ndarray, quantity: str, units: str, *, variable: str,
                  path: str | PathLike[str] | None) -> None:
    """Refuse NaN, negative, all-zero and implausible values.

    Args:
        no2: ``(t, z, y, x)`` values already converted to ``quantity``'s unit.
        quantity: ``"mass_concentration"`` or ``"mole_fraction"``.
        units: the units as the file wrote them, for messages.
    """
    n_nan = int(np.count_nonzero(~np.isfinite(no2)))
    if n_nan:
        raise ProfileFieldError(
            f"variable {variable!r} has {n_nan} missing or non-finite values out of {no2.size}; "
            "a profile field must be complete (fill or crop it first)", path)
    if np.any(no2 < 0):
        raise ProfileFieldError(
            f"variable {variable!r} has {int(np.count_nonzero(no2 < 0))} negative values "
            f"(minimum {float(no2.min()):.4g}); amounts must be >= 0", path)
    top = float(no2.max())
    if top == 0.0:
        raise ProfileFieldError(f"variable {variable!r} is zero everywhere", path)
    if quantity == MASS_CONCENTRATION:
        if top < MIN_MAX_MASS_CONCENTRATION:
            raise ProfileFieldError(
                f"variable {variable!r} is labelled {units!r} (a mass concentration) but its "
                f"largest value is {top:.3g} ug m-3, the size of a mixing ratio; fix its units "
                "attribute (e.g. 'mol mol-1' or 'kg kg-1')", path)
        if top > MAX_MASS_CONCENTRATION:
            raise ProfileFieldError(
                f"variable {variable!r} reaches {top:.3g} ug m-3 with units {units!r}, far above "
                "any NO2 concentration; check its units attribute", path)
    elif top > MAX_MOLE_FRACTION:
        raise ProfileFieldError(
            f"variable {variable!r} is labelled {units!r} (a mixing ratio) but reaches "
            f"{top:.3g} mol mol-1 (over 1000 ppm); are the values ppb or ug m-3? fix its units "
            "attribute", path)


def check_heights(heights: np.ndarray, units: str, *, name: str,
                  path: str | PathLike[str] | None, above_sea_level: bool = False) -> np.ndarray:
    """Refuse heights that are not strictly monotonic or implausible for their unit.

    Args:
        heights: ``(z,)`` heights already converted to m, in file order.
        units: the units as the file wrote them, for messages.
        name: the coordinate's name, for messages.
        above_sea_level: heights above sea level may start below 0 (Dead Sea, Caspian).

    Returns:
        the heights, unchanged.
    """
    h = np.asarray(heights, dtype=np.float64)
    if not np.all(np.isfinite(h)):
        raise ProfileFieldError(f"heights {name!r} have missing values", path)
    if h.size > 1:
        d = np.diff(h)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise ProfileFieldError(
                f"heights {name!r} ({', '.join(f'{v:g}' for v in h[:12])} m) are not strictly "
                "increasing; every level needs its own height", path)
    low = -500.0 if above_sea_level else 0.0
    if h.min() < low:
        raise ProfileFieldError(f"heights {name!r} go down to {h.min():g} m, below the ground", path)
    if h.size > 1 and h.max() < 50.0:
        raise ProfileFieldError(
            f"heights {name!r} are labelled {units!r} but the highest is {h.max():g} m; a "
            "profile field spans kilometres: are they in km? fix the units attribute", path)
    if h.max() > 120_000.0:
        raise ProfileFieldError(
            f"heights {name!r} reach {h.max():g} m with units {units!r}, above the "
            "atmosphere; are they in m labelled km? fix the units attribute", path)
    return h
