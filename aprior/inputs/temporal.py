"""Temporal indicators of DACNO2: day of week (sin, cos) and daily flights.

The flights come from EUROCONTROL's daily traffic data (the paper cites
https://www.eurocontrol.int/Economics/DailyTrafficVariation-States.html), "aggregated for
nine countries in the study area". The paper does not list the nine; the countries the
domain (5W-9E, 42-54N) touches are our default (:data:`STUDY_COUNTRIES`).

Supported file: the EUROCONTROL "Airport traffic" CSV (one row per airport and day), with
columns ``YEAR``, ``MONTH_NUM``, ``MONTH_MON``, ``FLT_DATE``, ``APT_ICAO``, ``APT_NAME``,
``STATE_NAME``, ``FLT_DEP_1``, ``FLT_ARR_1``, ``FLT_TOT_1`` (IFR departures, arrivals, total)
and a few more. Other layouts work by naming the date, country and count columns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aprior._io import atomic_path
from aprior.errors import InputFileError

log = logging.getLogger(__name__)

#: The countries of the DACNO2 domain (EUROCONTROL STATE_NAME spelling).
STUDY_COUNTRIES = ("Belgium", "France", "Germany", "Italy", "Luxembourg", "Netherlands",
                   "Spain", "Switzerland", "United Kingdom")


def read_flights(path: str | os.PathLike[str], countries: Sequence[str] = STUDY_COUNTRIES, *,
                 date_col: str = "FLT_DATE", country_col: str = "STATE_NAME",
                 count_col: str = "FLT_TOT_1") -> pd.Series:
    """Daily number of flights summed over ``countries``.

    Returns:
        A float64 Series indexed by day (datetime64[ns] at 00:00), ascending, named after
        the file. Days in the file without rows for those countries count 0.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("no such file", p)
    try:
        df = pd.read_csv(p)
        if df.shape[1] == 1 and ";" in str(df.columns[0]):
            df = pd.read_csv(p, sep=";")
    except pd.errors.EmptyDataError as exc:
        raise InputFileError("is empty", p) from exc
    except Exception as exc:
        raise InputFileError(f"is not a readable CSV file ({exc})", p) from exc
    missing = [c for c in (date_col, country_col, count_col) if c not in df.columns]
    if missing and count_col == "FLT_TOT_1" and {"FLT_DEP_1", "FLT_ARR_1"} <= set(df.columns):
        df[count_col] = df["FLT_DEP_1"] + df["FLT_ARR_1"]
        missing = [c for c in missing if c != count_col]
    if missing:
        raise InputFileError(f"lacks the column(s) {missing} of a EUROCONTROL traffic file", p)
    if df.empty:
        raise InputFileError("has no rows", p)
    try:
        day = pd.to_datetime(df[date_col], utc=True, format="mixed").dt.tz_localize(None).dt.floor("D")
    except (ValueError, TypeError) as exc:
        raise InputFileError(f"has unreadable dates in {date_col!r} ({exc})", p) from exc
    count = pd.to_numeric(df[count_col], errors="coerce")
    if count.isna().any() or (count < 0).any():
        raise InputFileError(f"has missing or negative counts in {count_col!r}", p)
    names = df[country_col].astype(str).str.strip()
    wanted = {c.lower() for c in countries}
    present = {n.lower() for n in names.unique()}
    absent = sorted(c for c in countries if c.lower() not in present)
    if len(absent) == len(countries):
        raise InputFileError(f"has none of the countries {list(countries)} in {country_col!r}", p)
    if absent:
        log.warning("%s has no rows for %s", p, ", ".join(absent))
    sel = names.str.lower().isin(wanted).to_numpy()
    all_days = pd.DatetimeIndex(np.sort(day.unique()))
    series = count[sel].groupby(day[sel]).sum().reindex(all_days, fill_value=0.0).astype(np.float64)
    series.index.name = "date"
    series.name = str(p)
    return series


def day_of_week_features(dates: np.ndarray) -> np.ndarray:
    """``(n, 2)`` sin and cos of 2 pi d / 7, d = 0 (Monday) .. 6 (Sunday)."""
    days = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    d = (days + 3) % 7  # 1970-01-01 was a Thursday
    angle = 2.0 * np.pi * d / 7.0
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


def temporal_indicators(dates: np.ndarray, flights: pd.Series,
                        flight_stats: tuple[float, float] | None = None) -> np.ndarray:
    """The temporal inputs ``(n, 3)``: sin and cos of the day of week, normalised flights.

    Args:
        dates: ``(n,)`` datetime64 days.
        flights: daily counts from :func:`read_flights`.
        flight_stats: (mean, std) for the z-score, from the training period; None uses
            the mean and std of ``flights`` itself.
    """
    days = pd.DatetimeIndex(np.asarray(dates).astype("datetime64[D]").astype("datetime64[ns]"))
    counts = flights.reindex(days)
    if counts.isna().any():
        first = days[counts.isna().to_numpy()][0].date()
        raise InputFileError(f"has no flight count for {first} (covers {flights.index.min().date()}"
                             f" to {flights.index.max().date()})", flights.name)
    mean, std = flight_stats if flight_stats is not None else (float(flights.mean()), float(flights.std()))
    if not std > 0:
        raise ValueError("the flight standard deviation must be positive")
    z = (counts.to_numpy(np.float64) - mean) / std
    return np.concatenate([day_of_week_features(days.to_numpy()), z[:, None]], axis=1)


def write_flights_csv(path: str | os.PathLike[str], dates: np.ndarray,
                      counts: Mapping[str, np.ndarray]) -> Path:
    """Write an "Airport traffic"-like CSV: one airport per country, one row per day.

    Args:
        dates: ``(n,)`` datetime64 days.
        counts: country (STATE_NAME) -> ``(n,)`` total daily flights (ints).
    """
    days = pd.DatetimeIndex(np.asarray(dates).astype("datetime64[D]").astype("datetime64[ns]"))
    rows = []
    for k, (country, c) in enumerate(counts.items()):
        c = np.asarray(c, dtype=np.int64)
        if c.shape != (days.size,):
            raise ValueError(f"counts for {country} must have shape ({days.size},)")
        dep = c // 2
        rows.append(pd.DataFrame({
            "YEAR": days.year, "MONTH_NUM": days.month, "MONTH_MON": days.strftime("%b").str.upper(),
            "FLT_DATE": days.strftime("%Y-%m-%dT00:00:00Z"), "APT_ICAO": f"XX{k:02d}",
            "APT_NAME": f"{country} airport", "STATE_NAME": country,
            "FLT_DEP_1": dep, "FLT_ARR_1": c - dep, "FLT_TOT_1": c,
            "FLT_DEP_IFR_2": np.nan, "FLT_ARR_IFR_2": np.nan, "FLT_TOT_IFR_2": np.nan,
            "Pivot Label": f"{country} airport (XX{k:02d})"}))
    target = Path(path)
    with atomic_path(target) as tmp:
        pd.concat(rows, ignore_index=True).to_csv(tmp, index=False)
    return target
