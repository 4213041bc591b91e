"""The true 3D NO2 of the synthetic world: a two-layer transport model on the 2 km grid.

State (per 2 km cell): the NOx mass in the mixed boundary layer ``m_bl`` and in the
residual layer above it ``m_res`` (ug m-2, NOx counted as NO2), the residual layer's top
``h_res`` and the last boundary-layer height. Every hour, in steps short enough that air moves at most 1.5 cells a step:

1. **Transport**: semi-Lagrangian advection (bilinear interpolation at the departure
   point) of ``m_bl`` with the boundary-layer wind (0.4 x 10 m wind + 0.6 x the wind at
   the level nearest 950 hPa) and of ``m_res`` with the wind nearest 900 hPa, both ERA5
   winds interpolated to the grid and rotated into the EPSG:3035 axes. Air entering from
   outside the grid carries a regional background (3-6 ug m-3 of NO2, more in winter).
   Repeated interpolation smears plumes downwind, like a model's numerical diffusion.
2. **Emission**: the hourly sector maps (:mod:`.emissions`) go into the boundary layer;
   stacks emit into the residual layer when the boundary layer is below 250 m.
3. **Boundary-layer dynamics**: when the boundary layer (ERA5 ``blh``, 35 % lower in deep
   valleys, at least 50 m plus 250 m times the urban fraction: the urban heat island) falls, the air it leaves becomes residual layer; when it grows, it entrains
   the residual layer. The residual layer top relaxes to the boundary layer in a day.
4. **Chemistry**: first-order loss with ``k = cos(sza)+ (1 - tcc/2) / 4 h + 1 / 24 h``
   (OH by day, N2O5 by night): lifetimes of about 4.5 h on summer noons and 24 h in winter
   nights, plus dry deposition at 0.2 cm/s.

NO2 is ``f NOx`` with ``f = 0.9 - 0.25 cos(sza)+``. Concentrations at heights ``z``
above ground (:func:`vertical_profile`): the boundary-layer mean, near-uniform up to the
boundary-layer top and falling off over 8 % of it, with an entrainment-zone tail above
(15 % of the boundary-layer value, e-folding over 60 % of its depth); the residual layer between the
boundary-layer top and ``h_res``; a fresh surface layer from ground-level sources,
``0.3 E L / (U z_s)`` with ``L`` = 3 km (the cell and its upwind neighbour) and ``z_s`` = 10 % of the boundary layer
(30-100 m), decaying as ``exp(-z / z_s)``; and the free-tropospheric background
``0.12-0.18 exp(-z / 2500 m)`` ug m-3. So cities and roads are sharp at the surface,
smeared within the boundary layer and absent at 5 km.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from aprior.grids.grid import Grid, lonlat_of
from aprior.synth.emissions import day_factors, hour_factors
from aprior.synth.meteo import Era5Day
from aprior.synth.static_world import Static2km
from aprior.synth.weather import cos_sza, hours_since_epoch, winter_weight

#: largest displacement (cells) of one transport step
MAX_COURANT = 1.5
_L_CELL = 3000.0
_F_FRESH = 0.3
_K_OH = 1.0 / (4.0 * 3600.0)
_K_NIGHT = 1.0 / (24.0 * 3600.0)
_V_DEP = 0.002


@dataclass
class ChemState:
    """Transport-model state on the grid, each ``(ny, nx)``: masses in ug m-2, heights in m."""

    m_bl: np.ndarray
    m_res: np.ndarray
    h_res: np.ndarray
    h_prev: np.ndarray


@dataclass(frozen=True)
class HourTruth:
    """True NO2 of one hour: ``no2`` ``(z, ny, nx)`` float32 ug m-3 at ``heights`` (m above
    ground) on the chemistry grid; ``blh`` ``(ny, nx)`` the boundary layer used (m);
    ``wind`` ``(ny, nx)`` the boundary-layer wind speed (m/s)."""

    time: np.datetime64
    no2: np.ndarray
    blh: np.ndarray
    wind: np.ndarray


def background_no2(hours: float, day: dt.date) -> float:
    """Regional background NO2 in the boundary layer (ug m-3)."""
    w = float(winter_weight(hours))
    return (3.0 + 3.0 * w) * day_factors(day)["shipping"]


def free_troposphere(heights: np.ndarray, hours: float) -> np.ndarray:
    """Free-tropospheric background NO2 (ug m-3) at ``heights`` (z,) m: ``(z,)``."""
    return 0.12 * (0.8 + 0.5 * float(winter_weight(hours))) * np.exp(-np.asarray(heights) / 2500.0)


def vertical_profile(heights: np.ndarray, *, c_bl: np.ndarray, h: np.ndarray, c_res: np.ndarray,
                     h_res: np.ndarray, fresh: np.ndarray, z_s: np.ndarray, ft: np.ndarray) -> np.ndarray:
    """NO2 (ug m-3) at ``heights`` (z,) m above ground: ``(z, ny, nx)``.

    ``c_bl``, ``c_res``: boundary- and residual-layer NO2 (ug m-3); ``h``, ``h_res``: their
    tops (m); ``fresh``: surface increment of fresh emissions (ug m-3) with depth scale
    ``z_s`` (m); ``ft``: ``(z,)`` free-tropospheric background. All maps ``(ny, nx)``.
    """
    z = np.asarray(heights, np.float64)[:, None, None]
    s_bl = 1.0 / (1.0 + np.exp(np.clip((z - h) / (0.08 * h + 30.0), -50, 50)))
    s_top = 1.0 / (1.0 + np.exp(np.clip((z - h_res) / (0.08 * h_res + 30.0), -50, 50)))
    tail = 0.15 * c_bl * np.exp(-np.clip(z - h, 0.0, None) / (0.6 * h)) * (1.0 - s_bl)
    out = c_bl * s_bl + tail + c_res * np.clip(s_top - s_bl, 0.0, 1.0) + fresh * np.exp(-z / z_s)
    return out + ft[:, None, None]


class Chemistry:
    """The transport model on ``static.grid`` driven by ERA5-like days on ``lat`` x ``lon``.

    ``k_oh`` and ``k_night`` (s-1, the daytime OH and night-time loss rates) and ``l_cell``
    (m, the fetch of the fresh surface layer) are class attributes, so that another model
    of the same atmosphere (:class:`.observations.CamsModel`) can change them.
    """

    k_oh = _K_OH
    k_night = _K_NIGHT
    l_cell = _L_CELL

    def __init__(self, static: Static2km, lat: np.ndarray, lon: np.ndarray,
                 levels_hpa: np.ndarray, heights: np.ndarray) -> None:
        self.static, self.grid = static, static.grid
        self.heights = np.asarray(heights, np.float64)
        self.lon2, self.lat2 = lonlat_of(self.grid)
        self.jj = (lat[0] - self.lat2) / (lat[0] - lat[1])
        self.ii = (self.lon2 - lon[0]) / (lon[1] - lon[0])
        lv = np.asarray(levels_hpa, np.float64)
        self.k950, self.k900 = int(np.argmin(np.abs(lv - 950))), int(np.argmin(np.abs(lv - 900)))
        self.rot = self._grid_rotation(self.grid)
        self.valley = static.valley
        self.emis = {k: v * 1e9 for k, v in static.emissions.items()}  # ug m-2 s-1
        jy, ix = np.mgrid[0:self.grid.ny, 0:self.grid.nx]
        self._j, self._i = jy.astype(np.float64), ix.astype(np.float64)

    @staticmethod
    def _grid_rotation(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin of the angle from geographic east to grid x at each cell."""
        from aprior.synth.geography import to_laea

        lon, lat = lonlat_of(grid)
        x1, y1 = to_laea(lon + 0.01, lat)
        x0, y0 = to_laea(lon, lat)
        ang = np.arctan2(y1 - y0, x1 - x0)
        return np.cos(ang), np.sin(ang)

    def _sample(self, field: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(field, [self.jj, self.ii], order=1, mode="nearest")

    def initial_state(self, day: dt.date, era5: Era5Day, hour: int = 0) -> ChemState:
        """A background state at ``hour`` UTC of ``day`` to spin up from."""
        h = self._blh(era5, hour)
        m = background_no2(hours_since_epoch(era5.times[hour:hour + 1])[0], day) / 0.9 * h
        return ChemState(m_bl=m, m_res=np.zeros_like(h), h_res=h.copy(), h_prev=h)

    def _blh(self, era5: Era5Day, k: int) -> np.ndarray:
        h = self._sample(era5.single["blh"][k]) * (1.0 - 0.35 * self.valley)
        return np.maximum(h, 50.0 + 250.0 * self.static.urban)

    def _winds(self, era5: Era5Day, k: int) -> tuple[np.ndarray, ...]:
        ue = 0.4 * era5.single["u10"][k] + 0.6 * era5.pressure["u"][k, self.k950]
        vn = 0.4 * era5.single["v10"][k] + 0.6 * era5.pressure["v"][k, self.k950]
        slow = 1.0 - 0.4 * self.valley
        c, s = self.rot
        out = []
        for uu, vv, f in ((ue, vn, slow), (era5.pressure["u"][k, self.k900], era5.pressure["v"][k, self.k900], 1.0)):
            u, v = self._sample(uu) * f, self._sample(vv) * f
            out += [u * c - v * s, u * s + v * c]
        return tuple(out)

    def _advect(self, m: np.ndarray, u: np.ndarray, v: np.ndarray, dt_s: float, inflow: np.ndarray) -> np.ndarray:
        jd = self._j - v * dt_s / self.grid.dy
        id_ = self._i - u * dt_s / self.grid.dx
        out = ndimage.map_coordinates(m, [jd, id_], order=1, mode="constant", cval=np.nan)
        return np.where(np.isnan(out), inflow, out)

    def run_day(self, day: dt.date, era5: Era5Day, state: ChemState,
                first_hour: int = 0) -> Iterator[HourTruth]:
        """Advance ``state`` (in place) through ``day`` from ``first_hour`` UTC, yielding the
        truth at each hour."""
        hours = hours_since_epoch(era5.times)
        for k, hrs in enumerate(hours):
            if k < first_hour:
                continue
            h = self._blh(era5, k)
            u, v, ur, vr = self._winds(era5, k)
            cosz = np.clip(cos_sza(self.lon2, self.lat2, hrs), 0.0, None)
            tcc = self._sample(era5.single["tcc"][k])
            fac = hour_factors(day, int(k))
            ground = sum(self.emis[s] * fac[s] for s in self.emis if s != "industry")
            stacks = self.emis["industry"] * fac["industry"]
            into_bl = np.clip(h / 250.0, 0.0, 1.0)
            bg = background_no2(hrs, day) / 0.9
            loss = self.k_oh * cosz * (1.0 - 0.5 * tcc) + self.k_night
            self._mix(state, h)
            vmax = float(max(np.abs(u).max(), np.abs(v).max(), np.abs(ur).max(), np.abs(vr).max()))
            n_steps = int(np.clip(np.ceil(vmax * 3600.0 / (MAX_COURANT * self.grid.dx)), 3, 40))
            dt_s = 3600.0 / n_steps
            for _ in range(n_steps):
                state.m_bl = self._advect(state.m_bl, u, v, dt_s, bg * h)
                state.m_res = self._advect(state.m_res, ur, vr, dt_s, 0.0)
                state.m_bl += (ground + stacks * into_bl) * dt_s
                state.m_res += stacks * (1.0 - into_bl) * dt_s
                state.m_bl *= np.exp(-(loss + _V_DEP / h) * dt_s)
                state.m_res *= np.exp(-loss * dt_s)
            f = 0.9 - 0.25 * cosz
            speed = np.maximum(np.hypot(u, v), 1.0)
            z_s = np.clip(0.1 * h, 30.0, 100.0)
            no2 = vertical_profile(
                self.heights, c_bl=f * state.m_bl / h, h=h,
                c_res=f * state.m_res / np.maximum(state.h_res - h, 100.0), h_res=state.h_res,
                fresh=_F_FRESH * ground * self.l_cell / (speed * z_s), z_s=z_s,
                ft=free_troposphere(self.heights, hrs))
            yield HourTruth(era5.times[k], no2.astype(np.float32), h.astype(np.float32),
                            np.hypot(u, v).astype(np.float32))

    @staticmethod
    def _mix(state: ChemState, h: np.ndarray) -> None:
        """Move mass between the boundary and residual layers as the boundary layer moves."""
        h0 = state.h_prev
        falling = h < h0
        detrain = np.where(falling, (h0 - h) / h0, 0.0) * state.m_bl
        state.h_res = np.where(falling, np.maximum(state.h_res, h0), state.h_res)
        room = np.maximum(state.h_res - h0, 1.0)
        entrain = np.where(~falling, np.clip((h - h0) / room, 0.0, 1.0), 0.0) * state.m_res
        state.m_bl = state.m_bl - detrain + entrain
        state.m_res = state.m_res + detrain - entrain
        state.h_res = np.maximum(h, state.h_res + (h - state.h_res) / 24.0)
        state.h_prev = h
