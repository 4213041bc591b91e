"""A global synthetic PM2.5 atmosphere with the structure of the real one (for DeepCAMS).

The fixture world's PM2.5 (:mod:`aprior.synth.aerosol`) is nearly linear in time: smooth
sources, steady winds, a cosine diurnal factor. This world, a separate generator that
leaves the fixture world unchanged, adds what makes real hourly PM2.5 hard to
interpolate and to downscale:

* **its own winds**, changing by the hour: zonal jets and trade winds, eight synoptic
  eddies (wavenumbers 5-14) whose amplitudes and phases evolve over 1-4 days, a diurnal
  divergent wind (sea breezes and nocturnal jets over land, 2.5 m/s) and moving
  convergence lines; the tracer is advected semi-Lagrangian (cubic, periodic in
  longitude) on the grid the model runs on;
* **a diurnal boundary layer**: surface = column tracer x 800 m / BLH, BLH 400 m at
  night and 1400 m by day over land, with a morning growth centred at 09:30 local solar
  time and a collapse at 18:00, each within about an hour (700 m over the sea);
* **sharp plumes**: 1500 cities (a traffic cycle peaking 08 and 18 LST) and 300 industrial
  point sources on single 0.25 degree cells;
* **fires**: events with hour-scale onsets, durations from 6 hours to 5 days, an afternoon
  peak and heavy-tailed intensities (the largest reach thousands of ug m-3 near the fire);
* **long-range transport episodes**: dust raised where the wind over six desert regions
  exceeds a threshold (emission ~ excess speed cubed), carried by the jets; smoke from
  the fires;
* **wet removal** in rain bands that travel with the eddies (e-folding 3 h), and a 4-day
  background lifetime. Values span about 1 to several thousand ug m-3.

:class:`PM25Atmosphere` runs on any global node grid (``step`` degrees). The truth runs at
0.25 degree. The EAC4-like coarse field is **a second model at 0.75 degree with its own
errors** (:func:`coarse_model`): the same kind of physics on the coarse grid (more
numerical diffusion), sources aggregated to 0.75 degree with per-event fire errors
(lognormal, sigma 0.5) and a 3-hour detection delay, dust x 1.3, cities x 0.8, winds with
perturbed eddy phases and amplitudes, the boundary-layer transitions an hour late, and a
12-hourly analysis that nudges its column halfway to the area mean of the truth's (like
EAC4's aerosol assimilation). It is neither a node sample nor an area mean of the truth.

Arrays are ``(ny, nx)`` float32, latitude ascending (-90..90, poles included), longitude
ascending from -180; hours are float hours since 2000-01-01T00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from aprior.synth.noise import component_rng
from aprior.synth.weather import EARTH_RADIUS

LIFETIME_H = 96.0
H_REF = 800.0


@dataclass(frozen=True)
class Errors:
    """How a model run differs from the truth run (all neutral for the truth)."""

    fire_sigma: float = 0.0
    fire_delay_h: float = 0.0
    dust: float = 1.0
    city: float = 1.0
    wind_phase: float = 0.0
    wind_amp: float = 0.0
    blh_shift_h: float = 0.0
    lifetime_h: float = LIFETIME_H


MODEL_ERRORS = Errors(fire_sigma=0.5, fire_delay_h=3.0, dust=1.3, city=0.8, wind_phase=0.35,
                      wind_amp=0.15, blh_shift_h=1.0, lifetime_h=84.0)


def _grid(step: float) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = int(round(180 / step)) + 1, int(round(360 / step))
    return np.linspace(-90.0, 90.0, ny), np.arange(nx) * step - 180.0


class Sources:
    """Where and when the world emits (drawn once per seed, independent of the grid)."""

    def __init__(self, seed: int, start_h: float, hours: float) -> None:
        rng = component_rng(seed, "pm25-world", "sources")
        self.land_seed = int(rng.integers(2**31))
        self.city_lat, self.city_lon = rng.uniform(-40, 62, 1500), rng.uniform(-180, 180, 1500)
        self.city_rate = 3.0 * rng.lognormal(0.0, 1.0, 1500)
        self.ind_lat, self.ind_lon = rng.uniform(-35, 60, 300), rng.uniform(-180, 180, 300)
        self.ind_rate = 8.0 * rng.lognormal(0.0, 1.0, 300)
        self.desert_lat, self.desert_lon = rng.uniform(15, 38, 6), rng.uniform(-180, 180, 6)
        self.desert_w = rng.uniform(5, 12, 6)
        n = int(max(hours, 24) / 24 * 40)
        lat = np.where(rng.random(n) < 0.7, rng.uniform(-20, 15, n), rng.uniform(50, 65, n))
        self.fire_lat, self.fire_lon = lat, rng.uniform(-180, 180, n)
        self.fire_t0 = start_h - 72.0 + rng.uniform(0, hours + 72.0, n)
        self.fire_dur = np.clip(rng.lognormal(np.log(30.0), 0.9, n), 6.0, 120.0)
        self.fire_rate = 8.0 * rng.lognormal(0.0, 1.3, n)
        self.fire_size = rng.uniform(0.25, 1.0, n)
        self.fire_err = rng.lognormal(0.0, 1.0, n)  # scaled by Errors.fire_sigma


class PM25Atmosphere:
    """The PM2.5 tracer on a global node grid of ``step`` degrees (module docstring)."""

    def __init__(self, sources: Sources, seed: int, step: float = 0.25,
                 errors: Errors = Errors()) -> None:
        self.src, self.step, self.err = sources, step, errors
        self.lat, self.lon = _grid(step)
        self.ny, self.nx = self.lat.size, self.lon.size
        self.phi = np.deg2rad(self.lat)[:, None]
        self.lam = np.deg2rad(self.lon)[None, :]
        self.coslat = np.maximum(np.cos(self.phi), 0.02)
        rng = component_rng(seed, "pm25-world", "winds")
        k = np.array([5, 6, 7, 8, 9, 11, 12, 14])
        self.eddies = [(int(m), rng.uniform(0, 2 * np.pi), rng.uniform(4, 8), rng.uniform(24, 96),
                        rng.uniform(0, 2 * np.pi), rng.uniform(35, 60) * rng.choice([-1, 1]),
                        rng.uniform(4, 10)) for m in k]
        erng = component_rng(seed, "pm25-world", "wind-errors")
        d = erng.normal(0.0, 1.0, (len(k), 2))
        self.eddies = [(m, ph + errors.wind_phase * d[i, 0], amp * (1 + errors.wind_amp * d[i, 1]),
                        per, ph2, lat0, c) for i, (m, ph, amp, per, ph2, lat0, c) in enumerate(self.eddies)]
        self.land = self._land()
        self._static = self._static_sources()

    # -- geography and sources ------------------------------------------------------------
    def _land(self) -> np.ndarray:
        rng = np.random.default_rng(self.src.land_seed)
        coarse = ndimage.gaussian_filter(rng.normal(size=(37, 72)), 2.0, mode="wrap")
        big = ndimage.zoom(coarse, (self.ny / 37, self.nx / 72), order=1, mode="grid-wrap")[: self.ny, : self.nx]
        return (big > np.quantile(big, 0.68)) | (np.abs(self.lat)[:, None] > 70)

    def _cells(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = np.clip(np.rint((lat + 90.0) / self.step).astype(int), 0, self.ny - 1)
        i = np.rint((lon + 180.0) / self.step).astype(int) % self.nx
        return j, i

    def _blob(self, lat: float, lon: float, width: float) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(np.abs(self.lat - lat) <= 3.0 * width)
        dlon = (self.lon[None, :] - lon + 180.0) % 360.0 - 180.0
        d2 = (self.lat[rows, None] - lat) ** 2 + (dlon * np.cos(np.deg2rad(lat))) ** 2
        return rows, np.exp(-d2 / (2 * width * width))

    def _static_sources(self) -> dict[str, np.ndarray]:
        s, e = self.src, self.err
        area = (0.25 / self.step) ** 2  # a point source spreads over the model's cell
        city = np.zeros((self.ny, self.nx), np.float64)
        np.add.at(city, self._cells(s.city_lat, s.city_lon), s.city_rate * area * e.city)
        ind = np.zeros_like(city)
        np.add.at(ind, self._cells(s.ind_lat, s.ind_lon), s.ind_rate * area)
        desert = np.zeros_like(city)
        for la, lo, w in zip(s.desert_lat, s.desert_lon, s.desert_w, strict=True):
            rows, g = self._blob(la, lo, w)
            desert[rows] += g
        background = 0.05 * self.land * np.exp(-((self.lat[:, None] - 30.0) / 30.0) ** 2)
        return {"city": city, "ind": ind, "desert": np.minimum(desert, 1.0) * self.land,
                "background": background}

    def _lst(self, hours: float) -> np.ndarray:
        return ((hours % 24.0) + self.lon[None, :] / 15.0) % 24.0

    def source(self, hours: float, wind_speed: np.ndarray) -> np.ndarray:
        """Emission (ug m-3 per hour of column tracer) at ``hours``, ``(ny, nx)``."""
        st, s, e = self._static, self.src, self.err
        lst = self._lst(hours)
        traffic = 0.5 + np.exp(-((lst - 8.0) / 1.5) ** 2) + 0.8 * np.exp(-((lst - 18.0) / 2.0) ** 2)
        out = st["background"] + st["ind"] + st["city"] * traffic
        excess = np.maximum(wind_speed - 8.0, 0.0)
        out = out + e.dust * 0.01 * st["desert"] * excess ** 3
        active = (hours >= s.fire_t0 + e.fire_delay_h) & (hours < s.fire_t0 + s.fire_dur)
        for f in np.flatnonzero(active):
            rows, g = self._blob(s.fire_lat[f], s.fire_lon[f], max(s.fire_size[f], self.step))
            lst_f = ((hours % 24.0) + s.fire_lon[f] / 15.0) % 24.0
            cyc = 0.3 + 1.4 * np.exp(-((lst_f - 15.0) / 3.0) ** 2)
            err = s.fire_err[f] ** e.fire_sigma / np.exp(0.5 * e.fire_sigma ** 2)  # mean 1
            size = s.fire_size[f]
            out[rows] += s.fire_rate[f] * cyc * err * g * (size / max(size, self.step)) ** 2
        return out

    # -- weather --------------------------------------------------------------------------
    def wind(self, hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward wind (m/s), ``(ny, nx)`` each."""
        phi, lam, r = self.phi, self.lam, EARTH_RADIUS
        alat = np.abs(np.rad2deg(phi))
        u = 14.0 * np.exp(-((alat - 45.0) / 12.0) ** 2) - 6.0 * np.exp(-((alat - 14.0) / 9.0) ** 2)
        u = np.broadcast_to(u, (self.ny, self.nx)).astype(np.float64)
        v = np.zeros_like(u)
        t = hours * 3600.0
        for m, ph, amp, per, ph2, lat0, c in self.eddies:
            a = amp * (1.0 + 0.5 * np.sin(2 * np.pi * hours / per + ph2))
            env = np.exp(-((np.rad2deg(phi) - lat0) / 15.0) ** 2)
            omega = m * c / (r * np.cos(np.deg2rad(lat0)))
            arg = m * lam - omega * t + ph
            # streamfunction psi = a * L * env * sin(arg): u = -dpsi/dy, v = dpsi/dx
            length = r * np.cos(np.deg2rad(lat0)) / m
            denv = -2.0 * (np.rad2deg(phi) - lat0) / 15.0 ** 2 * env * (180.0 / np.pi)
            u -= a * length / r * denv * np.sin(arg)
            v += a * env * np.cos(arg)
        lst = self._lst(hours)
        breeze = 2.5 * np.sin(2 * np.pi * (lst - 9.0) / 24.0) * self.land
        u += breeze * np.cos(3 * phi)
        v += breeze * np.sin(3 * lam)
        return u, v

    def blh(self, hours: float) -> np.ndarray:
        """Boundary-layer height (m), ``(ny, nx)``."""
        lst = (self._lst(hours) - self.err.blh_shift_h) % 24.0
        grow = 1.0 / (1.0 + np.exp(-(lst - 9.5) / 0.4))
        fall = 1.0 / (1.0 + np.exp((lst - 18.0) / 0.3))
        day = np.clip(grow * fall, 0.0, 1.0)
        return np.where(self.land, 400.0 + 1000.0 * day, 700.0)

    def rain(self, hours: float) -> np.ndarray:
        """Wet-removal rate (per hour) in bands that travel with the eddies."""
        out = np.zeros((self.ny, self.nx))
        t = hours * 3600.0
        for m, ph, _, _, _, lat0, c in self.eddies[::2]:
            omega = m * c / (EARTH_RADIUS * np.cos(np.deg2rad(lat0)))
            band = np.sin(m * self.lam - omega * t + ph + 1.2 + 0.1 * np.rad2deg(self.phi))
            env = np.exp(-((np.rad2deg(self.phi) - lat0) / 12.0) ** 2)
            out += 0.3 * (band > 0.85) * env
        return out

    # -- time stepping --------------------------------------------------------------------
    def initial(self, hours: float) -> np.ndarray:
        u, v = self.wind(hours)
        eq = self.source(hours, np.hypot(u, v)) * (LIFETIME_H * 0.3)
        sig = 1.0 / self.step
        return (ndimage.gaussian_filter(eq, (sig, 2 * sig), mode="wrap") + 2.0).astype(np.float32)

    def step_to(self, state: np.ndarray, hours: float) -> np.ndarray:
        """Advance the column tracer ``state`` by one hour ending at ``hours``."""
        u, v = self.wind(hours - 0.5)
        dscale = EARTH_RADIUS * np.deg2rad(self.step) / 3600.0
        dj = v / dscale
        di = np.clip(u / (dscale * self.coslat), -40 / self.step, 40 / self.step)
        jj, ii = np.mgrid[0 : self.ny, 0 : self.nx].astype(np.float64)
        new = ndimage.map_coordinates(state, [np.clip(jj - dj, 0, self.ny - 1), ii - di],
                                      order=3, mode="grid-wrap", prefilter=True)
        new = np.maximum(new, 0.0)
        new += self.source(hours, np.hypot(u, v))
        loss = 1.0 / self.err.lifetime_h + self.rain(hours)
        return (new * np.exp(-loss)).astype(np.float32)

    def surface(self, state: np.ndarray, hours: float) -> np.ndarray:
        """Surface PM2.5 (ug m-3) from the column tracer: ``state * H_REF / BLH + 1``."""
        return (state * (H_REF / self.blh(hours)) + 1.0).astype(np.float32)


def coarsen_state(fine: np.ndarray) -> np.ndarray:
    """Area mean (cos-lat) of a 0.25 degree field's 3 x 3 cells -> 0.75 degree, both lat
    ascending and lon from -180 (node ``3k`` is coarse node ``k``)."""
    lat = np.linspace(-90.0, 90.0, fine.shape[0])
    w = np.maximum(np.cos(np.deg2rad(lat)), 1e-3)[:, None]
    f = np.asarray(fine, np.float64) * w
    lon3 = f + np.roll(f, 1, -1) + np.roll(f, -1, -1)
    w3 = np.broadcast_to(w, f.shape) * 3
    rows = np.arange(0, fine.shape[0], 3)
    up, dn = np.minimum(rows + 1, fine.shape[0] - 1), np.maximum(rows - 1, 0)
    num = lon3[rows] + (rows < fine.shape[0] - 1)[:, None] * lon3[up] + (rows > 0)[:, None] * lon3[dn]
    den = w3[rows] + (rows < fine.shape[0] - 1)[:, None] * w3[up] + (rows > 0)[:, None] * w3[dn]
    return (num / den)[:, ::3].astype(np.float32)


def coarse_model(sources: Sources, seed: int, step: float = 0.75) -> PM25Atmosphere:
    """The EAC4-like model with its own errors on a ``step`` degree grid (module docstring)."""
    return PM25Atmosphere(sources, seed, step, replace(MODEL_ERRORS))


__all__ = ["H_REF", "LIFETIME_H", "MODEL_ERRORS", "Errors", "PM25Atmosphere", "Sources",
           "coarse_model", "coarsen_state"]
