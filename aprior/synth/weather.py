"""The weather of the synthetic world: moving pressure systems, clouds and the sun.

Sea-level pressure is a seasonal climatology (an Azores-like high and an Iceland-like
low, stronger in winter, which give the mean south-westerly flow over Western Europe) plus
travelling synoptic systems:

- lows: born 0.55 a day over the Atlantic (10-30 W, 42-62 N), 8-25 hPa deep (30 % deeper
  in winter), 400-800 km wide, moving east at 8-16 m/s for 2.5-6 days;
- highs: born 0.25 a day (0-25 W, 38-55 N), 6-15 hPa, 800-1400 km wide, slower (3-8 m/s)
  and longer-lived (4-10 days).

Each system rises and decays as ``sin(pi * age / life)``. Systems are drawn per day of
birth from :func:`~.noise.component_rng` ``(seed, "weather", day)``, so any hour of any year
is computed on its own from the systems born in the eleven days before it: the weather is
streamable and does not depend on the period generated.

Clouds are a field travelling with a 10 m/s south-westerly (the field is evaluated at the
upstream position) raised in lows and lowered in highs and in summer. Solar geometry uses
the declination formula of Cooper (1969) and the hour angle without the equation of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aprior.synth.noise import FourierNoise, component_rng

EARTH_RADIUS = 6.371e6
OMEGA = 7.2921e-5
_EPOCH = np.datetime64("1970-01-01T00", "h")
_LOOKBACK_DAYS = 11
#: translation of the cloud field (m/s, eastward and northward)
CLOUD_DRIFT = (8.0, 6.0)


def hours_since_epoch(times: np.ndarray) -> np.ndarray:
    """``(t,)`` datetime64 -> float hours since 1970-01-01."""
    return (np.asarray(times).astype("datetime64[s]") - _EPOCH.astype("datetime64[s]")).astype(np.float64) / 3600.0


def day_of_year(hours: np.ndarray | float) -> np.ndarray:
    """Fractional day of year (0 = 1 January 00 UTC, approximately) of hours since epoch."""
    days = np.asarray(hours, np.float64) / 24.0
    return np.mod(days - 0.0, 365.2425)


def winter_weight(hours: np.ndarray | float) -> np.ndarray:
    """1 in mid-January, 0 in mid-July (a cosine)."""
    return 0.5 * (1.0 + np.cos(2.0 * np.pi * (day_of_year(hours) - 15.0) / 365.2425))


def cos_sza(lon: np.ndarray, lat: np.ndarray, hours: np.ndarray | float) -> np.ndarray:
    """Cosine of the solar zenith angle (may be negative at night).

    ``lon``, ``lat`` in degrees and ``hours`` (hours since epoch) broadcast together.
    """
    doy = day_of_year(hours)
    decl = np.deg2rad(23.44) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)
    hour_utc = np.mod(np.asarray(hours, np.float64), 24.0)
    ha = np.deg2rad(15.0 * (hour_utc + np.asarray(lon) / 15.0 - 12.0))
    phi = np.deg2rad(lat)
    return np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)


@dataclass(frozen=True)
class Systems:
    """Synoptic systems; every attribute is ``(n,)``: birth time (h since epoch), life (h),
    start lon/lat (deg), velocity (m/s), amplitude (Pa, negative for lows), radius (m)."""

    t0: np.ndarray
    life: np.ndarray
    lon0: np.ndarray
    lat0: np.ndarray
    u: np.ndarray
    v: np.ndarray
    amp: np.ndarray
    radius: np.ndarray


@lru_cache(maxsize=64)
def _systems_born(seed: int, day: int) -> Systems:
    rng = component_rng(seed, "weather", "systems", day)
    winter = float(winter_weight(day * 24.0 + 12.0))
    nl, nh = rng.poisson(0.55), rng.poisson(0.25)
    low = {
        "lon0": rng.uniform(-30, -10, nl), "lat0": rng.uniform(42, 62, nl),
        "u": rng.uniform(8, 16, nl), "v": rng.uniform(-3, 5, nl),
        "amp": -rng.uniform(800, 2500, nl) * (1 + 0.3 * winter),
        "radius": rng.uniform(4e5, 8e5, nl), "life": rng.uniform(60, 150, nl),
    }
    high = {
        "lon0": rng.uniform(-25, 0, nh), "lat0": rng.uniform(38, 55, nh),
        "u": rng.uniform(3, 8, nh), "v": rng.uniform(-2, 2, nh),
        "amp": rng.uniform(600, 1500, nh), "radius": rng.uniform(8e5, 1.4e6, nh),
        "life": rng.uniform(96, 240, nh),
    }
    t0 = day * 24.0 + rng.uniform(0, 24, nl + nh)
    cat = {k: np.concatenate([low[k], high[k]]) for k in low}
    return Systems(t0=t0, **cat)


class Weather:
    """Pressure, clouds and sun of the world ``seed`` at any place and hour."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = component_rng(seed, "weather", "clouds")
        self._cloud = FourierNoise.draw(rng, n_waves=48, lmin=60e3, lmax=1200e3, slope=1.0)
        self._rain = FourierNoise.draw(rng, n_waves=48, lmin=20e3, lmax=300e3, slope=0.8)
        self._tanom = FourierNoise.draw(rng, n_waves=16, lmin=500e3, lmax=3000e3, slope=1.0)

    def systems(self, hours: float) -> Systems:
        """The systems alive at ``hours`` (possibly with zero amplitude)."""
        day = int(np.floor(hours / 24.0))
        parts = [_systems_born(self.seed, d) for d in range(day - _LOOKBACK_DAYS, day + 1)]
        return Systems(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in Systems.__dataclass_fields__))

    def slp_anomaly(self, lon: np.ndarray, lat: np.ndarray, hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Sea-level pressure minus 101325 Pa, and its synoptic (travelling) part, in Pa.

        ``lon``, ``lat`` (degrees) of any shape; returns two arrays of that shape.
        """
        lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        season = 0.7 + 0.6 * float(winter_weight(hours))
        clim = season * (1000.0 * _gauss(lon, lat, -25.0, 37.0, 1.6e6)
                         - 1200.0 * _gauss(lon, lat, -25.0, 62.0, 1.6e6))
        s = self.systems(hours)
        age = hours - s.t0
        alive = (age > 0) & (age < s.life)
        syn = np.zeros_like(lon)
        for k in np.flatnonzero(alive):
            env = np.sin(np.pi * age[k] / s.life[k])
            dist = age[k] * 3600.0
            clat = s.lat0[k] + np.rad2deg(s.v[k] * dist / EARTH_RADIUS)
            clon = s.lon0[k] + np.rad2deg(s.u[k] * dist / (EARTH_RADIUS * np.cos(np.deg2rad(clat))))
            syn += s.amp[k] * env * _gauss(lon, lat, clon, clat, s.radius[k])
        return clim + syn, syn

    def cloud_index(self, x: np.ndarray, y: np.ndarray, hours: float) -> np.ndarray:
        """Cloud noise (unit variance) travelling with :data:`CLOUD_DRIFT`; x, y in m."""
        dx, dy = (c * hours * 3600.0 for c in CLOUD_DRIFT)
        return self._cloud(np.asarray(x) - dx, np.asarray(y) - dy)

    def rain_index(self, x: np.ndarray, y: np.ndarray, hours: float) -> np.ndarray:
        """Small-scale convective noise (unit variance), travelling like the clouds."""
        dx, dy = (c * hours * 3600.0 for c in CLOUD_DRIFT)
        return self._rain(np.asarray(x) - dx, np.asarray(y) - dy)

    def temperature_anomaly(self, x: np.ndarray, y: np.ndarray, hours: float) -> np.ndarray:
        """Slow large-scale temperature anomaly (K): +-3 K, changing over about a week."""
        day = hours / 24.0
        return 3.0 * self._tanom(np.asarray(x) - 2e5 * np.sin(day / 3.0), np.asarray(y) + 1e5 * day / 7.0)


def _gauss(lon: np.ndarray, lat: np.ndarray, clon: float, clat: float, radius: float) -> np.ndarray:
    """exp(-d^2 / 2r^2) with d the local-tangent distance (m) to (clon, clat)."""
    dy = np.deg2rad(lat - clat) * EARTH_RADIUS
    dx = np.deg2rad(lon - clon) * EARTH_RADIUS * np.cos(np.deg2rad(0.5 * (lat + clat)))
    return np.exp(-(dx * dx + dy * dy) / (2.0 * radius * radius))


def coriolis(lat: np.ndarray) -> np.ndarray:
    """Coriolis parameter (s-1), kept at least that of 20 degrees."""
    return 2.0 * OMEGA * np.maximum(np.sin(np.deg2rad(np.abs(np.asarray(lat)))), np.sin(np.deg2rad(20.0)))
