"""Global surface PM2.5 of the synthetic world (GEOS-CF-like 0.25 degree, EAC4-like 0.75).

The truth is a tracer on the global 0.25 degree node grid (721 latitudes -90..90, 1440
longitudes -180..179.75) advected every hour, semi-Lagrangian and periodic in longitude,
by a global wind: zonal westerlies (10 m/s at 47 degrees) and trade easterlies (-6 m/s
at 15 degrees) plus three planetary waves (wavenumbers 4-7) travelling east at 8 m/s,
from a streamfunction so the flow is non-divergent. Sources, drawn once per seed:

- 8 desert-dust regions (15-40 N, 8-15 degrees wide, stronger in spring and summer),
- 40 industrial regions (20-55 N, 2-5 degrees), 20 fire regions in the tropics
  (seasonal, peaking in the local dry season),
- 600 cities on single 0.25 degree cells, with a traffic-like diurnal cycle: the fine
  structure that a 0.75 degree field cannot hold;

removal with a 4-day lifetime, and a surface diurnal factor ``1 + 0.3 cos(2 pi (LST - 6
h) / 24)`` (shallow night-time mixing). Values are in ug m-3, with a 2 ug m-3 floor.

The EAC4-like field (241 latitudes 90..-90, 480 longitudes 0..359.25, every 3 hours) is
the area mean of the 3 x 3 block of 0.25 degree nodes centred on each 0.75 degree node
(0.75 degree node ``k`` is 0.25 degree node ``3k``), in kg m-3. Both are rounded to 6
significant bits before writing so that the global files compress (relative error below
0.8 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from aprior.synth.noise import component_rng, round_bits  # noqa: F401 (re-exported)
from aprior.synth.weather import EARTH_RADIUS, day_of_year

LAT_025 = np.linspace(-90.0, 90.0, 721)
LON_025 = np.arange(1440) * 0.25 - 180.0
LAT_075 = np.linspace(90.0, -90.0, 241)
LON_075 = np.arange(480) * 0.75
_LIFETIME_H = 96.0
_WAVE_SPEED = 8.0


@dataclass(frozen=True)
class _Blobs:
    lat: np.ndarray
    lon: np.ndarray
    width: np.ndarray
    rate: np.ndarray  # ug m-3 per hour at the centre
    season: float  # day of year of the group's seasonal peak (NaN: none)


class GlobalPM25:
    """The global PM2.5 tracer of the world ``seed`` (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        rng = component_rng(seed, "pm25", "sources")
        self.lat2, self.lon2 = np.meshgrid(LAT_025, LON_025, indexing="ij")
        parts = [
            (8, (15, 40), (8, 15), 0.12, 140.0),
            (40, (20, 55), (2, 5), 0.08, np.nan),
            (20, (-15, 15), (3, 8), 0.12, 250.0),
        ]
        self.blobs = []
        for n, lats, widths, rate, peak in parts:
            self.blobs.append(_Blobs(rng.uniform(*lats, n), rng.uniform(-180, 180, n),
                                     rng.uniform(*widths, n), rate * rng.lognormal(0, 0.5, n),
                                     peak))
        nc = 600
        clat = rng.uniform(-35, 60, nc)
        self.city_j = np.clip(np.rint((clat + 90) / 0.25).astype(int), 0, 720)
        self.city_i = rng.integers(0, 1440, nc)
        self.city_rate = 4.0 * rng.lognormal(0.0, 0.8, nc)
        self._static = self._blob_map()
        self.coslat = np.maximum(np.cos(np.deg2rad(LAT_025)), 0.05)[:, None]
        self.waves = [(k, rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.0)) for k in (4, 5, 7)]

    def _blob_map(self) -> list[np.ndarray]:
        maps = []
        lat1 = LAT_025[:, None]
        for b in self.blobs:
            m = np.zeros(self.lat2.shape, np.float32)
            for lat, lon, w, r in zip(b.lat, b.lon, b.width, b.rate, strict=True):
                rows = np.flatnonzero(np.abs(LAT_025 - lat) <= 4.0 * w)
                dlon = (LON_025[None, :] - lon + 180.0) % 360.0 - 180.0
                d2 = (lat1[rows] - lat) ** 2 + (dlon * np.cos(np.deg2rad(lat))) ** 2
                m[rows] += (r * np.exp(-d2 / (2 * w * w))).astype(np.float32)
            maps.append(m)
        return maps

    def source(self, hours: float) -> np.ndarray:
        """Source rate (ug m-3 per hour), ``(721, 1440)`` float32, at ``hours`` since epoch."""
        doy = float(day_of_year(hours))
        out = np.zeros(self.lat2.shape, np.float32)
        for b, m in zip(self.blobs, self._static, strict=True):
            peak = b.season
            f = 1.0 if np.isnan(peak) else 0.4 + 0.6 * np.exp(-((doy - peak + 182.5) % 365.25 - 182.5) ** 2 / (2 * 45.0 ** 2))
            out += np.float32(f) * m
        lst = (hours % 24.0 + LON_025[self.city_i] / 15.0) % 24.0
        diurnal = 1.0 + 0.6 * np.cos(2 * np.pi * (lst - 12.0) / 24.0)
        np.add.at(out, (self.city_j, self.city_i), (self.city_rate * diurnal).astype(np.float32))
        return out

    def wind(self, hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward wind (m/s) on the 0.25 degree nodes, ``(721, 1440)`` each."""
        phi = np.deg2rad(LAT_025)[:, None]
        lam = np.deg2rad(LON_025)[None, :]
        alat = np.abs(np.rad2deg(phi))
        u = 10.0 * np.exp(-((alat - 47.0) / 13.0) ** 2) - 6.0 * np.exp(-((alat - 15.0) / 10.0) ** 2)
        u = np.broadcast_to(u, self.lat2.shape).copy()
        v = np.zeros_like(u)
        t = hours * 3600.0
        for k, phase, amp in self.waves:
            a = amp * 10.0 * EARTH_RADIUS / k
            omega = k * _WAVE_SPEED / (EARTH_RADIUS * np.cos(np.deg2rad(45.0)))
            arg = k * lam - omega * t + phase
            s2, c1 = np.sin(2 * phi), np.cos(phi)
            g = s2 ** 2 * c1
            dg = 4 * s2 * np.cos(2 * phi) * c1 - s2 ** 2 * np.sin(phi)
            u -= a / EARTH_RADIUS * dg * np.sin(arg)
            v += a * k / (EARTH_RADIUS * np.maximum(c1, 0.05)) * g * np.cos(arg)
        return u, v

    def initial(self, hours: float) -> np.ndarray:
        """An approximate equilibrium state to start from."""
        eq = self.source(hours) * np.float32(_LIFETIME_H * 0.5)
        return ndimage.gaussian_filter(eq, (4, 8), mode="wrap").astype(np.float32) + 2.0

    def step(self, state: np.ndarray, hours: float) -> np.ndarray:
        """Advance ``state`` (721, 1440) by one hour ending at ``hours``."""
        u, v = self.wind(hours - 0.5)
        dj = v * 3600.0 / (EARTH_RADIUS * np.deg2rad(0.25))
        di = np.clip(u * 3600.0 / (EARTH_RADIUS * self.coslat * np.deg2rad(0.25)), -60, 60)
        jj, ii = np.mgrid[0:721, 0:1440].astype(np.float32)
        jd = np.clip(jj - dj, 0.0, 720.0)
        new = ndimage.map_coordinates(state, [jd, ii - di], order=1, mode="grid-wrap")
        new = new + self.source(hours)
        return (new * np.float32(np.exp(-1.0 / _LIFETIME_H))).astype(np.float32)

    @staticmethod
    def surface(state: np.ndarray, hours: float) -> np.ndarray:
        """The written surface field (ug m-3) from the state: diurnal mixing factor, floor."""
        lst = (hours % 24.0 + LON_025 / 15.0) % 24.0
        diurnal = 1.0 + 0.3 * np.cos(2 * np.pi * (lst - 6.0) / 24.0)
        return (state * diurnal[None, :].astype(np.float32) + 2.0).astype(np.float32)


def to_075(field: np.ndarray) -> np.ndarray:
    """0.25 degree ``(..., 721, 1440)`` (lat ascending, lon -180..) -> 0.75 degree
    ``(..., 241, 480)`` (lat descending 90..-90, lon 0..359.25): mean of the 3 x 3 block
    of nodes centred on each 0.75 degree node (two rows at the poles)."""
    f = np.asarray(field, np.float64)
    lon_sum = f + np.roll(f, 1, axis=-1) + np.roll(f, -1, axis=-1)
    rows = np.arange(0, 721, 3)
    up, down = np.minimum(rows + 1, 720), np.maximum(rows - 1, 0)
    count = 1.0 + (rows < 720) + (rows > 0)
    block = (lon_sum[..., rows, :] + np.where(rows < 720, 1.0, 0.0)[:, None] * lon_sum[..., up, :]
             + np.where(rows > 0, 1.0, 0.0)[:, None] * lon_sum[..., down, :]) / (3.0 * count[:, None])
    nodes = block[..., ::-1, ::3]  # lat 90..-90, lon -180.. every 0.75
    return np.roll(nodes, -240, axis=-1).astype(np.float32)  # lon 0..359.25
