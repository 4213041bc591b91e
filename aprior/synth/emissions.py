"""Time profiles of the synthetic NOx emissions and of the national flight counts.

Hourly factors (mean about 1 over a normal year) multiply the annual base maps of
:mod:`.static_world`. Local time is UTC+1, UTC+2 from April to October.

- diurnal cycles by sector (traffic with morning and evening rush hours, homes with
  morning and evening peaks, industry and power a little higher by day, soil by day);
- weekly cycles: traffic Monday-Friday 1.05-1.12, Saturday 0.88, Sunday 0.71; industry
  0.92 on Saturday, 0.83 on Sunday; public holidays (fixed ones, Easter Monday, Ascension,
  Whit Monday) count as Sundays; traffic -20 % between Christmas and New Year, -12 % in
  the summer holidays (15 July - 20 August);
- ``other`` area sources follow industry;
- seasons: homes 1.85x in mid-winter, 0.15x in mid-summer; power +15 % in winter;
  soil 0.2x in winter, 1.8x in summer;
- trends: traffic -4.5 %, homes -2 %, industry and power -3 % a year from 2019, and all
  of them a further -8 % from 2023 on (energy prices, fleet renewal), so the last year of
  a 2019-2023 world is clearly the lowest (about -12 % on 2022);
- the COVID-19 year: traffic x0.5 in the spring 2020 lockdown (17 March - 10 May),
  recovering by July, x0.75 in the November 2020 lockdown, x0.85 until June 2021;
  industry x0.8 in spring 2020.

Flights per country and day (the Eurocontrol-like temporal indicator) follow national
levels, a weekly cycle, summer peaks, the COVID-19 collapse and its recovery, and noise.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from aprior.synth.geography import COUNTRIES
from aprior.synth.noise import component_rng

_TRAFFIC_D = np.array([0.19, 0.09, 0.06, 0.05, 0.09, 0.22, 0.86, 1.84, 1.86, 1.41, 1.24, 1.20,
                       1.32, 1.44, 1.45, 1.59, 2.03, 2.08, 1.51, 1.06, 0.74, 0.62, 0.61, 0.44])
_HOMES_D = np.array([0.38, 0.36, 0.36, 0.36, 0.37, 0.50, 1.19, 1.53, 1.57, 1.56, 1.35, 1.16,
                     1.07, 1.06, 1.00, 0.98, 0.99, 1.12, 1.41, 1.52, 1.39, 1.35, 1.00, 0.42])
_DAY_D = np.where((np.arange(24) >= 7) & (np.arange(24) <= 19), 1.12, 0.85)
_SOIL_D = 0.6 + 0.8 * np.clip(np.sin(np.pi * (np.arange(24) - 6) / 12), 0, None) * 1.25
_TRAFFIC_W = np.array([1.05, 1.07, 1.08, 1.09, 1.12, 0.88, 0.71])
_INDUSTRY_W = np.array([1.05, 1.05, 1.05, 1.05, 1.05, 0.92, 0.83])

#: typical daily flights per country (Eurocontrol-like national totals)
_FLIGHTS = {"FR": 3100, "BE": 750, "NL": 1400, "DE": 3000, "LU": 160, "CH": 650,
            "ES": 2200, "IT": 1600, "GB": 2600}


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month = (h + ll - 7 * m + 114) // 31
    day = (h + ll - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[dt.date]:
    """Public holidays common to most of the study area (a synthetic union)."""
    e = _easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25), (12, 26)]
    days = {dt.date(year, m, d) for m, d in fixed}
    days |= {e + dt.timedelta(days=n) for n in (1, 39, 50)}
    return frozenset(days)


def _ramp(day: dt.date, points: list[tuple[dt.date, float]]) -> float:
    """Piecewise-linear factor through (date, value) points, 1 outside them."""
    if day < points[0][0] or day > points[-1][0]:
        return 1.0
    xs = np.array([p[0].toordinal() for p in points], float)
    return float(np.interp(day.toordinal(), xs, [p[1] for p in points]))


def covid_traffic(day: dt.date) -> float:
    d = dt.date
    return _ramp(day, [(d(2020, 3, 13), 1.0), (d(2020, 3, 17), 0.5), (d(2020, 5, 10), 0.5),
                       (d(2020, 7, 1), 0.92), (d(2020, 10, 29), 0.92), (d(2020, 11, 2), 0.75),
                       (d(2020, 12, 15), 0.75), (d(2020, 12, 20), 0.85), (d(2021, 6, 1), 0.85),
                       (d(2021, 7, 1), 1.0)])


def covid_flights(day: dt.date) -> float:
    d = dt.date
    return _ramp(day, [(d(2020, 3, 10), 1.0), (d(2020, 3, 25), 0.1), (d(2020, 6, 15), 0.12),
                       (d(2020, 8, 10), 0.5), (d(2020, 11, 1), 0.35), (d(2021, 3, 31), 0.35),
                       (d(2021, 8, 1), 0.65), (d(2022, 1, 1), 0.75), (d(2022, 8, 1), 0.88),
                       (d(2023, 12, 31), 0.93)])


def day_factors(day: dt.date) -> dict[str, float]:
    """Daily (non-diurnal) factors by sector for ``day``."""
    year_frac = day.year + (day.timetuple().tm_yday - 0.5) / 365.25
    doy = day.timetuple().tm_yday
    winter = 0.5 * (1.0 + np.cos(2.0 * np.pi * (doy - 15) / 365.25))
    dow = 6 if day in holidays(day.year) else day.weekday()
    crisis = 0.92 if day.year >= 2023 else 1.0
    traffic = _TRAFFIC_W[dow] * covid_traffic(day) * np.exp(-0.045 * (year_frac - 2019.0)) * crisis
    if (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day <= 2):
        traffic *= 0.8
    if (day.month, day.day) >= (7, 15) and (day.month, day.day) <= (8, 20):
        traffic *= 0.88
    spring20 = 0.8 if dt.date(2020, 3, 17) <= day <= dt.date(2020, 5, 10) else 1.0
    industry = _INDUSTRY_W[dow] * np.exp(-0.03 * (year_frac - 2019.0)) * crisis * spring20
    return {
        "traffic": float(traffic),
        "residential": float((0.15 + 1.7 * winter) * np.exp(-0.02 * (year_frac - 2019.0)) * crisis),
        "industry": float(industry * (0.925 + 0.15 * winter)),
        "shipping": float(np.exp(-0.02 * (year_frac - 2019.0))),
        "soil": float(0.2 + 1.6 * (1.0 - winter)),
    }


def local_hour(day: dt.date, hour_utc: int) -> int:
    """Local clock hour (UTC+1, UTC+2 from April to October)."""
    return (hour_utc + (2 if 4 <= day.month <= 10 else 1)) % 24


def hour_factors(day: dt.date, hour_utc: int) -> dict[str, float]:
    """Hourly factors by sector (daily factor times diurnal cycle)."""
    f = day_factors(day)
    h = local_hour(day, hour_utc)
    return {"traffic": f["traffic"] * _TRAFFIC_D[h], "residential": f["residential"] * _HOMES_D[h],
            "industry": f["industry"] * _DAY_D[h], "other": f["industry"] * _DAY_D[h],
            "shipping": f["shipping"],
            "soil": f["soil"] * _SOIL_D[h] / _SOIL_D.mean()}


def flights(seed: int, days: list[dt.date]) -> dict[str, np.ndarray]:
    """Daily flights per country, ``(n_days,)`` int64 each (see the module doc)."""
    out = {}
    for c in COUNTRIES:
        vals = []
        for day in days:
            rng = component_rng(seed, "flights", c, day.toordinal())
            doy = day.timetuple().tm_yday
            summer = 1.0 + 0.18 * np.exp(-((doy - 205) / 45.0) ** 2)
            weekly = (1.02, 1.0, 1.0, 1.03, 1.06, 0.85, 0.96)[day.weekday()]
            growth = 1.0 + 0.02 * (day.year - 2019)
            level = _FLIGHTS[c] * summer * weekly * growth * covid_flights(day)
            vals.append(max(0, int(round(level * rng.lognormal(0.0, 0.03)))))
        out[c] = np.asarray(vals, dtype=np.int64)
    return out
