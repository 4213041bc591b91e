"""Unit strings of real files, parsed and converted with pint and cf-xarray's UDUNITS registry.

Parsing and conversion are `pint`'s, with the UDUNITS-2 spellings that `cf-xarray` teaches it
(``ug m-3``, ``µg/m3``, ``kg m**-3``, ``m s-1``, ``molec cm-3``, ``hPa``...). What pint cannot
say by itself is added here, and only that:

- a leading scale factor (``"1e-9 kg m-3"``, ``"1e-9"``), common in model output, which the
  UDUNITS grammar allows and pint refuses;
- the atmospheric-chemistry spellings ``ppb``/``ppbv``/``ppmv``/``pptv``, which are mole
  fractions (1e-9, 1e-6, 1e-12 mol mol-1);
- which *kind* of amount a dimensionless unit is: ``kg kg-1`` is a mass mixing ratio,
  ``mol mol-1`` a mole fraction; pint reduces both to "dimensionless".

NO2 amounts come in four kinds (:func:`amount_kind`): mass concentration (``ug m-3``), mole
fraction (``mol mol-1``, ``ppb``), mass mixing ratio (``kg kg-1``) and number density
(``molec cm-3``). :func:`concentration_factor` is the profile sources' rule: a mass
concentration converts to ug m-3; the others need the air density and are refused with a
message that says so.

CF time coordinates (``"<unit> since <reference>"``, standard calendars) are decoded by
:func:`decode_time` with the duration read by pint and the reference date by pandas.
"""

from __future__ import annotations

import functools
import re
from os import PathLike

import numpy as np
import pandas as pd
import pint

from aprior.errors import ProfileFieldError

#: The kinds of NO2 amounts (see :func:`amount_kind`).
MASS_CONCENTRATION = "mass concentration"
MOLE_FRACTION = "mole fraction"
MASS_MIXING_RATIO = "mass mixing ratio"
NUMBER_DENSITY = "number density"

#: Mole-fraction spellings of atmospheric chemistry, as pint definitions.
_EXTRA_DEFINITIONS = (
    "ppbv = 1e-9 = ppb",
    "pptv = 1e-12 = ppt",
    "ppmv = 1e-6",
    "ppv = 1",
)

_SCALE = re.compile(r"^\s*(?P<scale>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\s*\*\s*|\s+|$)")
_MASS_RATIO = re.compile(r"^(?:[kmuµμn]?g|kilograms?|grams?)\s*(?:/|\s|\.)\s*(?:[kmuµμn]?g|kilograms?|grams?)"
                         r"(?:-1|\*\*-1|\^-1)?$", re.IGNORECASE)
_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")


@functools.lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """cf-xarray's UDUNITS-flavoured pint registry, with the ppb/ppbv family defined."""
    from cf_xarray.units import units as ureg

    for definition in _EXTRA_DEFINITIONS:
        name = definition.split("=")[0].strip()
        if name not in ureg:
            ureg.define(definition)
    return ureg


def _split_scale(text: str) -> tuple[float, str]:
    """``"1e-9 kg m-3"`` -> ``(1e-9, "kg m-3")``; a bare number -> ``(number, "1")``."""
    m = _SCALE.match(text)
    if m is None:
        return 1.0, text
    rest = text[m.end():].strip()
    return float(m.group("scale")), rest or "1"


@functools.lru_cache(maxsize=256)
def parse_units(text: str) -> tuple[float, pint.Unit]:
    """A unit string as ``(scale, unit)``: ``value * scale`` is in ``unit``.

    Raises:
        ValueError: pint cannot read the string.
    """
    ureg = registry()
    scale, rest = _split_scale(str(text).strip())
    rest = rest.replace("µ", "u").replace("μ", "u")
    try:
        q = ureg.Quantity(1.0, rest)
    except (pint.errors.PintError, ValueError, AttributeError, TypeError, SyntaxError) as exc:
        raise ValueError(f"unknown units {text!r}") from exc
    # pint may read "1.e-9 kg" style leftovers as odd units; a number left in the
    # expression would be silently wrong, so the magnitude must stay 1.
    if q.magnitude != 1.0:
        raise ValueError(f"unknown units {text!r}")
    return scale, q.units


def factor(text: str, to: str) -> float:
    """The factor that turns a value in ``text`` units into ``to`` units.

    Raises:
        ValueError: unknown units, or units of another dimension.
    """
    scale, unit = parse_units(text)
    _, target = parse_units(to)
    try:
        return scale * float(registry().Quantity(1.0, unit).to(target).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise ValueError(f"units {text!r} are not convertible to {to!r}") from exc


def is_convertible(text: str | None, to: str) -> bool:
    """True when ``text`` parses and has the dimension of ``to``."""
    if text is None or not str(text).strip():
        return False
    try:
        factor(str(text), to)
    except ValueError:
        return False
    return True


def amount_kind(text: str) -> str | None:
    """The kind of an NO2 amount unit: one of :data:`MASS_CONCENTRATION`,
    :data:`MOLE_FRACTION`, :data:`MASS_MIXING_RATIO`, :data:`NUMBER_DENSITY`, or None.

    A dimensionless unit is a mass mixing ratio when it is spelled as mass per mass
    (``kg kg-1``, ``g/kg``), otherwise a mole fraction (``mol mol-1``, ``ppb``, ``1e-9``).
    """
    try:
        _, unit = parse_units(text)
    except ValueError:
        return None
    dims = dict(unit.dimensionality)
    if dims == {"[mass]": 1, "[length]": -3}:
        return MASS_CONCENTRATION
    if dims == {"[substance]": 1, "[length]": -3}:
        return NUMBER_DENSITY
    if not dims:
        _, rest = _split_scale(str(text).strip())
        return MASS_MIXING_RATIO if _MASS_RATIO.match(rest.strip()) else MOLE_FRACTION
    return None


def concentration_factor(
    units: str | None, *, path: str | PathLike[str] | None = None, variable: str = "no2"
) -> float:
    """Factor that converts a NO2 concentration in ``units`` to ug m-3.

    Args:
        units: the variable's ``units`` attribute (UDUNITS spelling).
        path: the file, named in error messages.
        variable: the variable's name, named in error messages.

    Returns:
        ``factor`` such that ``value_in_ug_m3 = value * factor``.

    Raises:
        ProfileFieldError: missing or unknown units, or a mixing ratio or number density
            (which needs the air density to convert).
    """
    if units is None or not str(units).strip():
        raise ProfileFieldError(
            f"variable {variable!r} has no units attribute; expected a mass concentration "
            "such as 'ug m-3'", path)
    kind = amount_kind(str(units))
    if kind == MASS_CONCENTRATION:
        return factor(str(units), "ug m-3")
    if kind is not None:
        raise ProfileFieldError(
            f"variable {variable!r} is a mixing ratio or number density ({kind}, {units!r}); "
            "converting it to ug m-3 "
            "needs the air density, which the file does not provide; convert the field to "
            "a mass concentration (ug m-3) first", path)
    raise ProfileFieldError(
        f"variable {variable!r} has unknown units {units!r}; expected a mass concentration "
        "such as 'ug m-3', 'mg m-3' or 'kg m-3'", path)


def duration_seconds(units: str | None) -> float | None:
    """Seconds in one bare duration unit ("hours" -> 3600), None if ``units`` is not one."""
    if units is None or not str(units).strip():
        return None
    try:
        scale, unit = parse_units(str(units))
    except ValueError:
        return None
    if scale != 1.0 or dict(unit.dimensionality) != {"[time]": 1}:
        return None
    return float(registry().Quantity(1.0, unit).to("s").magnitude)


def _reference(ref: str, units: str, path: str | PathLike[str] | None) -> np.datetime64:
    text = re.sub(r"\s*(utc|gmt|z)$", "", ref.strip(), flags=re.IGNORECASE)
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ProfileFieldError(f"cannot read the reference date of time units {units!r}",
                                path) from exc
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64(), "ns")


def decode_time(
    values: np.ndarray,
    units: str | None,
    calendar: str | None = None,
    *,
    path: str | PathLike[str] | None = None,
) -> np.ndarray:
    """Decode CF time values ``"<unit> since <reference>"`` to datetime64[ns].

    Args:
        values: ``(t,)`` numbers as stored in the file.
        units: the time variable's ``units`` attribute.
        calendar: the ``calendar`` attribute; only the standard (Gregorian) calendars.
        path: the file, named in error messages.

    Returns:
        ``(t,)`` datetime64[ns], rounded to the microsecond.
    """
    if calendar is not None and str(calendar).strip().lower() not in _CALENDARS:
        raise ProfileFieldError(
            f"time calendar {calendar!r} is not supported; use a standard (Gregorian) calendar",
            path)
    m = re.match(r"^\s*(\w+)\s+since\s+(.+)$", str(units or ""), flags=re.IGNORECASE)
    step = duration_seconds(m.group(1)) if m else None
    if m is None or step is None:
        raise ProfileFieldError(
            f"time units {units!r} are not CF time units like 'hours since 2020-01-01'", path)
    ref = _reference(m.group(2), str(units), path)
    return offsets_to_times(values, step, ref, path=path)


def offsets_to_times(
    values: np.ndarray, step_s: float, ref: np.datetime64, *,
    path: str | PathLike[str] | None = None,
) -> np.ndarray:
    """``ref + values * step_s`` seconds as datetime64[ns], rounded to the microsecond.

    Args:
        values: ``(t,)`` offsets in units of ``step_s`` seconds.
        step_s: seconds per unit.
        ref: reference time.
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ProfileFieldError("time coordinate has missing or non-finite values", path)
    us = np.round(v * (step_s * 1e6)).astype(np.int64)
    return (np.datetime64(ref, "us") + us.astype("timedelta64[us]")).astype("datetime64[ns]")


def encode_time(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Encode datetime64 times as CF ``seconds since 1970-01-01 00:00:00``.

    Args:
        times: ``(t,)`` datetime64.

    Returns:
        ``(values, units)``: int64 seconds when every time is a whole second, else float64.
    """
    ns = np.asarray(times).astype("datetime64[ns]").astype(np.int64)
    units = "seconds since 1970-01-01 00:00:00"
    if np.all(ns % 1_000_000_000 == 0):
        return ns // 1_000_000_000, units
    return ns / 1e9, units
