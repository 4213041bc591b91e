"""CF/UDUNITS-like unit strings: NO2 mass concentrations and CF time coordinates.

Two small parsers, no units library:

- :func:`concentration_factor` gives the factor that turns a mass concentration into
  ug m-3 ("ug m-3", "µg/m3", "microgram m-3", "mg m-3", "kg m-3", "1e-9 kg m-3", ...).
  Mixing ratios (ppb, mol mol-1, kg kg-1, ...) are refused: turning them into a mass
  concentration needs the air density, which a profile file does not carry.
- :func:`decode_time` / :func:`encode_time` convert CF time coordinates
  ("<unit> since <reference>", standard/gregorian/proleptic_gregorian calendars) to and
  from ``datetime64[ns]``; :func:`duration_seconds` reads bare duration units ("hours").
"""

from __future__ import annotations

import re
from os import PathLike

import numpy as np
import pandas as pd

from aprior.errors import ProfileFieldError

#: Mass units and their value in micrograms.
_MASS_IN_UG = {"kg": 1e9, "g": 1e6, "mg": 1e3, "ug": 1.0, "ng": 1e-3}

#: Spelled-out words and symbols normalised before matching (order matters).
_WORDS = (
    ("µ", "u"), ("μ", "u"),
    ("kilograms", "kg"), ("kilogram", "kg"), ("milligrams", "mg"), ("milligram", "mg"),
    ("micrograms", "ug"), ("microgram", "ug"), ("nanograms", "ng"), ("nanogram", "ng"),
    ("grams", "g"), ("gram", "g"), ("metres", "m"), ("meters", "m"), ("metre", "m"),
    ("meter", "m"), ("mcg", "ug"),
)

_CONCENTRATION = re.compile(
    r"^(?:(?P<scale>[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\*?)?"  # optional numeric factor
    r"(?P<mass>kg|mg|ug|ng|g)"
    r"(?:/m3|\.?m-3|\*m-3|/\(m3\))$"
)

_MIXING_RATIO = re.compile(
    r"^(?:[0-9.e+-]+\*?)?(?:ppbv?|pptv?|ppmv?|ppv|[pnu]?mol(?:/mol|\.?mol-1)|"
    r"(?:kg|g|mg|ug)(?:/kg|\.?kg-1)|mole?fraction|1|)$"
)

#: Seconds in each duration unit understood in time coordinates.
_DURATION_S = {
    **dict.fromkeys(("seconds", "second", "secs", "sec", "s"), 1.0),
    **dict.fromkeys(("minutes", "minute", "mins", "min"), 60.0),
    **dict.fromkeys(("hours", "hour", "hrs", "hr", "h"), 3600.0),
    **dict.fromkeys(("days", "day", "d"), 86400.0),
}

_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")


def _normalise(units: str) -> str:
    s = units.strip().lower()
    for word, short in _WORDS:
        s = s.replace(word, short)
    s = s.replace("**", "").replace("^", "")
    s = re.sub(r"\s+", "", s)
    return s.replace("percubicm", "/m3").replace("/cubicm", "/m3")


def concentration_factor(
    units: str | None, *, path: str | PathLike[str] | None = None, variable: str = "no2"
) -> float:
    """Factor that converts a NO2 concentration in ``units`` to ug m-3.

    Args:
        units: the variable's ``units`` attribute (CF/UDUNITS-like spelling).
        path: the file, named in error messages.
        variable: the variable's name, named in error messages.

    Returns:
        ``factor`` such that ``value_in_ug_m3 = value * factor``.

    Raises:
        ProfileFieldError: missing or unknown units, or a mixing ratio (which needs the
            air density to convert).
    """
    if units is None or not str(units).strip():
        raise ProfileFieldError(
            f"variable {variable!r} has no units attribute; expected a mass concentration "
            "such as 'ug m-3'", path)
    s = _normalise(str(units))
    m = _CONCENTRATION.match(s)
    if m:
        scale = float(m.group("scale")) if m.group("scale") else 1.0
        return scale * _MASS_IN_UG[m.group("mass")]
    if _MIXING_RATIO.match(s):
        raise ProfileFieldError(
            f"variable {variable!r} is a mixing ratio ({units!r}); converting it to ug m-3 "
            "needs the air density, which the file does not provide; convert the field to "
            "a mass concentration (ug m-3) first", path)
    raise ProfileFieldError(
        f"variable {variable!r} has unknown units {units!r}; expected a mass concentration "
        "such as 'ug m-3', 'mg m-3' or 'kg m-3'", path)


def duration_seconds(units: str | None) -> float | None:
    """Seconds in one bare duration unit ("hours" -> 3600), None if ``units`` is not one."""
    if units is None:
        return None
    return _DURATION_S.get(str(units).strip().lower())


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
    if m is None or duration_seconds(m.group(1)) is None:
        raise ProfileFieldError(
            f"time units {units!r} are not CF time units like 'hours since 2020-01-01'", path)
    step = duration_seconds(m.group(1))
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
