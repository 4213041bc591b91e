"""Hourly ERA5-like meteorology of the synthetic world on a 0.25 degree lat/lon grid.

One day at a time (00-23 UTC), from :class:`~.weather.Weather` and the geography:

- ``sp`` (Pa): sea-level pressure (climatology + travelling systems) reduced to the
  orography (the grid-cell mean of the terrain) with a 6.5 K/km standard atmosphere;
- ``u10``, ``v10`` (m/s): the geostrophic wind of that pressure field (f of the latitude,
  density 1.25 kg m-3), slowed (x0.55 over land, x0.8 over sea) and turned towards low
  pressure (22 and 10 degrees); a quarter weaker at night over land;
- ``t2m``, ``d2m`` (K): a seasonal climatology (10 C at 47 N in the annual mean, +-7.5 K
  over land, +-4 K over sea, -0.6 K per degree north), a slow +-3 K anomaly, warm
  advection with southerly wind, a land diurnal cycle of 2-6 K (larger when clear), lapse
  6.5 K/km with height; the dew-point depression is larger by clear afternoons;
- ``tcc`` (0-1): the travelling cloud field, more in lows and mountains, less in highs and
  summer; ``tp`` (m, accumulated over the hour): stratiform rain under thick cloud in lows
  and summer afternoon showers;
- ``ssrd`` (J m-2, accumulated over the hour ending at the time): clear-sky irradiance
  ``1361 cos(sza) 0.7^(airmass^0.678)`` times the Kasten-Czeplak cloud factor
  ``1 - 0.75 tcc^3.4``;
- ``blh`` (m): the larger of a mechanical height (60 m + 35 s x wind speed over land,
  350 m + 40 s x wind speed over sea) and, over land by day, a convective boundary layer
  growing from an hour after sunrise to 15 h local time up to 800-1700 m (deeper in
  summer, shallower under cloud) and collapsing after sunset (e-folding 45 minutes);
- pressure levels: ``z`` (m2 s-2, hypsometric), ``t`` (K), ``q`` (kg/kg, relative
  humidity falling with height), ``u``, ``v`` (geostrophic wind growing with height plus
  a westerly thermal-wind shear of 6-14 m/s at 500 hPa, blended into the 10 m wind in the
  lowest kilometre) and ``w`` (Pa/s: ascent in lows, descent in highs, orographic lifting).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from aprior.synth.geography import Geography, to_laea
from aprior.synth.weather import (
    EARTH_RADIUS,
    Weather,
    coriolis,
    cos_sza,
    hours_since_epoch,
    winter_weight,
)

G = 9.80665
R_D = 287.05
LAPSE = 0.0065
RHO0 = 1.25
SINGLE_LEVEL = ("u10", "v10", "t2m", "d2m", "sp", "blh", "ssrd", "tcc", "tp")
PRESSURE_LEVEL = ("u", "v", "t", "q", "w", "z")


def era5_axes(bbox: tuple[float, float, float, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """0.25 degree ``lat`` (descending) and ``lon`` (ascending) covering ``bbox`` + margin."""
    w, s, e, n = bbox
    lat = np.arange(np.ceil((n + margin) * 4), np.floor((s - margin) * 4) - 1, -1) / 4.0
    lon = np.arange(np.floor((w - margin) * 4), np.ceil((e + margin) * 4) + 1) / 4.0
    return lat, lon


def _e_sat(t: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (Pa), Magnus formula, t in K."""
    tc = t - 273.15
    return 611.2 * np.exp(17.67 * tc / (tc + 243.5))


@dataclass(frozen=True)
class Era5Day:
    """ERA5-like fields of one day.

    times: ``(24,)`` datetime64[h]; lat ``(ny,)`` descending; lon ``(nx,)``;
    single: name -> ``(24, ny, nx)`` float32; pressure: name -> ``(24, k, ny, nx)``
    float32 on ``levels_hpa`` ``(k,)``.
    """

    times: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    levels_hpa: np.ndarray
    single: dict[str, np.ndarray]
    pressure: dict[str, np.ndarray]


class Meteo:
    """ERA5-like meteorology of the world ``seed`` on the grid ``lat`` x ``lon``."""

    def __init__(self, seed: int, lat: np.ndarray, lon: np.ndarray, levels_hpa: tuple[int, ...]) -> None:
        self.weather = Weather(seed)
        self.lat, self.lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        self.levels = np.asarray(levels_hpa, np.float64)
        self.LON, self.LAT = np.meshgrid(self.lon, self.lat)
        self.X, self.Y = to_laea(self.LON, self.LAT)
        geo = Geography.from_seed(seed)
        sub = (np.arange(5) - 2) * 0.05
        slon = (self.LON[..., None, None] + sub[None, :]).repeat(5, axis=-2)
        slat = (self.LAT[..., None, None] + sub[:, None]).repeat(5, axis=-1)
        sx, sy = to_laea(slon, slat)
        sd = geo.coast_distance(sx, sy)
        self.orography = geo.elevation(sx, sy, sd).mean(axis=(-2, -1))
        self.land = (sd > 0).mean(axis=(-2, -1))
        gy, gx = self._grad(self.orography)
        self.slope = (gx, gy)
        self.f = coriolis(self.LAT)

    def _grad(self, field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d/dy, d/dx) in per metre of a ``(..., ny, nx)`` field on the grid."""
        ddlat = np.gradient(field, np.deg2rad(self.lat), axis=-2) / EARTH_RADIUS
        ddlon = np.gradient(field, np.deg2rad(self.lon), axis=-1) / (EARTH_RADIUS * np.cos(np.deg2rad(self.LAT)))
        return ddlat, ddlon

    def day(self, date: dt.date) -> Era5Day:
        """All fields of ``date`` (00-23 UTC)."""
        t0 = np.datetime64(date.isoformat(), "h")
        times = t0 + np.arange(24).astype("timedelta64[h]")
        hours = hours_since_epoch(times)
        per_hour = [self._hour(h) for h in hours]
        single = {k: np.stack([p[0][k] for p in per_hour]).astype(np.float32) for k in SINGLE_LEVEL}
        pressure = {k: np.stack([p[1][k] for p in per_hour]).astype(np.float32) for k in PRESSURE_LEVEL}
        return Era5Day(times, self.lat, self.lon, self.levels.copy(), single, pressure)

    def _hour(self, hours: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        wx, lf, lat = self.weather, self.land, self.LAT
        winter = float(winter_weight(hours))
        anom, syn = wx.slp_anomaly(self.LON, lat, hours)
        p_sl = 101325.0 + anom
        dpy, dpx = self._grad(p_sl)
        ug, vg = -dpy / (RHO0 * self.f), dpx / (RHO0 * self.f)
        cosz = cos_sza(self.LON, lat, hours)
        day = np.clip(cosz * 3.0, 0.0, 1.0)
        fac = (0.8 - 0.25 * lf) * (1.0 - 0.25 * lf * (1.0 - day))
        ang = np.deg2rad(10.0 + 12.0 * lf)
        u10 = fac * (ug * np.cos(ang) - vg * np.sin(ang))
        v10 = fac * (ug * np.sin(ang) + vg * np.cos(ang))
        tcc = 0.55 + 0.25 * wx.cloud_index(self.X, self.Y, hours) - 0.25 * syn / 1500.0
        tcc = np.clip(tcc - 0.12 * (1.0 - winter) + 0.1 * (self.orography > 800.0), 0.0, 1.0)
        lst = np.mod(hours + self.LON / 15.0, 24.0)
        diurnal = np.cos(2.0 * np.pi * (lst - 15.0) / 24.0)
        amp_d = lf * (2.0 + 4.0 * (1.0 - tcc)) * (0.7 + 0.6 * (1.0 - winter))
        season = -(4.0 + 3.5 * lf) * np.cos(2.0 * np.pi * (hours / 24.0 % 365.2425 - 15.0) / 365.2425)
        t_sl = (283.15 - 0.6 * (lat - 47.0) + season + wx.temperature_anomaly(self.X, self.Y, hours)
                + np.clip(0.25 * vg, -4.0, 4.0))
        t2m = t_sl - LAPSE * self.orography + amp_d * diurnal
        dpd = 1.5 + lf * (0.5 + 4.0 * (1.0 - tcc) * np.clip(diurnal, 0.0, None)) * (1.3 - 0.6 * winter)
        d2m = t2m - dpd
        sp = p_sl * (1.0 - LAPSE * self.orography / t_sl) ** (G / (R_D * LAPSE))
        ssrd = self._ssrd(hours, tcc)
        strat = 0.0012 * np.clip((tcc - 0.8) / 0.2, 0.0, 1.0) ** 1.5 * np.clip(-syn / 1500.0, 0.2, 1.5)
        conv = 0.003 * np.clip(wx.rain_index(self.X, self.Y, hours) - 1.3, 0.0, None) * (1.0 - winter)
        tp = strat + conv * lf * np.clip(diurnal, 0.0, None)
        blh = self._blh(hours, lst, lat, np.hypot(u10, v10), tcc, winter)
        single = {"u10": u10, "v10": v10, "t2m": t2m, "d2m": d2m, "sp": sp, "blh": blh,
                  "ssrd": ssrd, "tcc": tcc, "tp": tp}
        return single, self._levels(p_sl, t_sl, syn, ug, vg, u10, v10, t2m, d2m, amp_d * diurnal, winter)

    def _ssrd(self, hours: float, tcc: np.ndarray) -> np.ndarray:
        acc = np.zeros_like(tcc)
        for dt_min in (52.5, 37.5, 22.5, 7.5):
            cz = np.clip(cos_sza(self.LON, self.LAT, hours - dt_min / 60.0), 0.0, None)
            air = 1.0 / np.maximum(cz, 0.035)
            acc += np.where(cz > 0, 1361.0 * cz * 0.7 ** (air ** 0.678), 0.0)
        return acc / 4.0 * 3600.0 * (1.0 - 0.75 * tcc ** 3.4)

    def _blh(self, hours, lst, lat, speed, tcc, winter) -> np.ndarray:
        doy = hours / 24.0 % 365.2425
        decl = np.deg2rad(23.44) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)
        half = np.rad2deg(np.arccos(np.clip(-np.tan(np.deg2rad(lat)) * np.tan(decl), -1, 1))) / 15.0
        rise, sset = 12.0 - half, 12.0 + half
        span = np.maximum(15.0 - rise - 1.0, 1.0)
        grow = np.clip((lst - rise - 1.0) / span, 0.0, 1.0) ** 0.6
        at_sunset = np.clip((sset - rise - 1.0) / span, 0.0, 1.0) ** 0.6
        grow = np.where(lst < sset, grow, at_sunset * np.exp(-np.clip(lst - sset, 0.0, None) / 0.75))
        h_conv = (800.0 + 900.0 * (1.0 - winter)) * (1.0 - 0.4 * tcc) * grow
        lf = self.land
        h_mech = lf * (60.0 + 35.0 * speed) + (1.0 - lf) * (350.0 + 40.0 * speed)
        return np.maximum(h_mech, lf * h_conv)

    def _levels(self, p_sl, t_sl, syn, ug, vg, u10, v10, t2m, d2m, dt_diurnal, winter):
        k = self.levels.size
        p = self.levels[:, None, None] * 100.0
        expo = R_D * LAPSE / G
        z = (t_sl / LAPSE) * (1.0 - (p / p_sl) ** expo)
        hag = z - self.orography
        temp = t_sl - LAPSE * z + dt_diurnal * np.exp(-np.clip(hag, 0.0, None) / 300.0)
        rh_s = np.clip(_e_sat(d2m) / _e_sat(t2m), 0.05, 1.0)
        up = np.clip((100000.0 - p) / 50000.0, 0.0, 1.0)
        rh = np.clip(rh_s * (1.0 - 0.45 * up), 0.05, 1.0)
        e = rh * _e_sat(temp)
        q = 0.622 * e / (p - 0.378 * e)
        shear = (6.0 + 8.0 * winter) * up ** 1.5
        ugp, vgp = (1.0 + 0.4 * up) * ug + shear, (1.0 + 0.4 * up) * vg
        frac = np.clip(hag / 1000.0, 0.0, 1.0)
        u = (1.0 - frac) * u10 + frac * ugp
        v = (1.0 - frac) * v10 + frac * vgp
        rho = p / (R_D * temp)
        gx, gy = self.slope
        w_oro = -rho * G * (u10 * gx + v10 * gy) * np.exp(-np.clip(hag, 0.0, None) / 1500.0)
        w_syn = 0.5 * (syn / 2000.0) * np.sin(np.pi * np.clip((100000.0 - p) / 80000.0, 0.0, 1.0))
        out = {"u": u, "v": v, "t": temp, "q": q, "w": w_syn + w_oro, "z": G * z}
        return {name: np.broadcast_to(val, (k, *self.LAT.shape)) for name, val in out.items()}
