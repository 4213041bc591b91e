"""What the synthetic world's "CAMS" model and "EEA" stations make of the truth.

**CAMS-like regional reanalysis** (0.1 degree, the truth's ten heights, hourly):

1. the truth averaged over the 2 km cells whose centres fall in each 0.1 degree cell
   (cells beyond the chemistry grid, at the corners of large regions, copy the nearest
   covered cell),
2. smoothed with a Gaussian of one cell (a 10 km model's numerical diffusion),
3. biased low where emissions are high (``x (1 - 0.3 w exp(-z / 600 m))`` with ``w``
   the cell's annual emission over 20 t km-2 yr-1, capped at 1: up to -30 % in cities
   near the ground) and slightly high in clean air (+0.6 ug m-3 x ``(1 - w)`` near the
   ground, fading over 300 m), as the paper reports for the real CAMS ensemble,
4. times a smooth multiplicative error ``exp(0.12 n)``, ``n`` a unit-variance field
   with a 30 km correlation length, drawn per day and interpolated between days.

**EEA-like stations**: a network drawn once per seed and region. Cells are urban (over
1500 inhabitants per km2), suburban (over 300) or rural; stations are placed about one
per ``(spacing/2)^2`` of urban land, one per ``spacing^2`` of suburban land and one per
``(3 spacing)^2`` of rural land (``spacing`` 20 km by default), at least 2 km apart, so
most are urban or suburban. A fifth of the urban and suburban ones are traffic stations
and stations within 4 km of a stack may be industrial; the rest are background. A station
measures the true surface NO2 of its 2 km cell times a fixed representativeness factor
(log-normal, 12 %), plus for traffic stations a kerbside increment (10-30 ug m-3 scaled
by the traffic cycle and 2 m/s over the wind speed), plus 8 % for the heated-molybdenum
converters of 40 % of the stations, plus noise (1 ug m-3 + 5 %). Values are rounded to
0.1 and never negative. Data go missing at random (2-8 % of hours), in outages of 6-72
hours, and for about 4 % of the stations most of the time (under 20 % coverage).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from aprior.grids.grid import Grid, lonlat_of
from aprior.synth.emissions import hour_factors
from aprior.synth.geography import Geography, to_lonlat
from aprior.synth.noise import component_rng, gaussian_smooth, smooth_noise_2d
from aprior.synth.static_world import T_KM2_YR, Static2km


def cams_axes(bbox: tuple[float, float, float, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """0.1 degree cell centres (x.x5) covering ``bbox`` + margin: ``lat`` descending, ``lon``."""
    w, s, e, n = bbox
    lat = np.arange(np.ceil((n + margin) * 10) - 0.5, np.floor((s - margin) * 10), -1.0) / 10.0
    lon = np.arange(np.floor((w - margin) * 10) + 0.5, np.ceil((e + margin) * 10)) / 10.0
    return lat, lon


class CamsLike:
    """Degrades the truth on ``grid`` (the chemistry grid) to the 0.1 degree ``lat`` x ``lon``."""

    def __init__(self, seed: int, static: Static2km, lat: np.ndarray, lon: np.ndarray,
                 heights: np.ndarray) -> None:
        self.seed, self.lat, self.lon = seed, lat, lon
        lon2, lat2 = lonlat_of(static.grid)
        j = np.floor((lat[0] + 0.05 - lat2) / 0.1).astype(np.int64)
        i = np.floor((lon2 - (lon[0] - 0.05)) / 0.1).astype(np.int64)
        ok = (j >= 0) & (j < lat.size) & (i >= 0) & (i < lon.size)
        self.cell = np.where(ok, j * lon.size + i, -1).ravel()
        self.sel = self.cell >= 0
        self.count = np.bincount(self.cell[self.sel], minlength=lat.size * lon.size)
        if not self.count.any():
            raise ValueError("the chemistry grid covers no CAMS-like cell")
        empty = (self.count == 0).reshape(lat.size, lon.size)
        # cells beyond the chemistry grid (corners of large regions) copy the nearest one
        self.nearest = ndimage.distance_transform_edt(empty, return_distances=False,
                                                      return_indices=True)
        self.count = np.maximum(self.count, 1)
        emis = self._mean(static.total_emission[None])[0]
        w = np.clip(emis / (20.0 * T_KM2_YR), 0.0, 1.0)
        z = np.asarray(heights, np.float64)[:, None, None]
        self.factor = 1.0 - 0.3 * w * np.exp(-z / 600.0)
        self.offset = 0.6 * (1.0 - w) * np.exp(-z / 300.0)

    def _mean(self, fields: np.ndarray) -> np.ndarray:
        """``(k, ny, nx)`` on the chemistry grid -> ``(k, nlat, nlon)`` cell means."""
        flat = fields.reshape(fields.shape[0], -1)[:, self.sel]
        n = self.lat.size * self.lon.size
        out = np.stack([np.bincount(self.cell[self.sel], weights=f, minlength=n) for f in flat])
        out = (out / self.count).reshape(fields.shape[0], self.lat.size, self.lon.size)
        jj, ii = self.nearest
        return out[:, jj, ii]

    def _noise(self, day: dt.date) -> np.ndarray:
        rng = component_rng(self.seed, "cams", "noise", day.toordinal())
        return smooth_noise_2d(rng, (self.lat.size, self.lon.size), 3.0)

    def hour(self, no2: np.ndarray, day: dt.date, hour: int) -> np.ndarray:
        """CAMS-like NO2 ``(k, nlat, nlon)`` float32 ug m-3 from the truth ``(k, ny, nx)``."""
        f = hour / 24.0
        n = (1.0 - f) * self._noise(day) + f * self._noise(day + dt.timedelta(days=1))
        field = gaussian_smooth(self._mean(np.asarray(no2, np.float64)), 1.0)
        return ((field * self.factor + self.offset) * np.exp(0.12 * n)).astype(np.float32)


@dataclass(frozen=True)
class Stations:
    """An EEA-like network on the region grid.

    ``meta``: DataFrame (station_id, lon, lat, station_type, area, country, altitude);
    ``j``, ``i``: (n,) row and column of each station's cell on the grid it was drawn on;
    ``repr_factor``, ``kerb``, ``moly``: (n,) representativeness factor, kerbside
    increment (ug m-3, 0 for non-traffic) and converter bias factor; ``sparse``: (n,) bool,
    stations reporting under 20 % of the time.
    """

    meta: pd.DataFrame
    j: np.ndarray
    i: np.ndarray
    repr_factor: np.ndarray
    kerb: np.ndarray
    moly: np.ndarray
    sparse: np.ndarray


def draw_stations(seed: int, static: Static2km, grid: Grid, spacing_km: float,
                  stacks_xy: tuple[np.ndarray, np.ndarray]) -> Stations:
    """Draw the station network on ``grid`` (a window of the chemistry grid).

    ``static`` holds the 2 km maps on ``grid``; ``stacks_xy`` the EPSG:3035 positions
    of the point sources.
    """
    rng = component_rng(seed, "eea", "network", *np.round(grid.bounds).astype(int))
    pop, land = static.population, static.land > 0.5
    area = np.where(~land, "", np.where(pop > 1500, "urban", np.where(pop > 300, "suburban", "rural")))
    cell_km2 = grid.dx * grid.dy / 1e6
    per_km2 = {"urban": 1 / (spacing_km / 2) ** 2, "suburban": 1 / spacing_km ** 2,
               "rural": 1 / (3 * spacing_km) ** 2}
    picks: list[tuple[int, int, str]] = []
    for cls, dens in per_km2.items():
        cells = np.flatnonzero(area.ravel() == cls)
        n = rng.poisson(cells.size * cell_km2 * dens)
        if n == 0 or cells.size == 0:
            continue
        weight = np.sqrt(pop.ravel()[cells]) + 1.0
        chosen = rng.choice(cells, size=min(n, cells.size), replace=False, p=weight / weight.sum())
        picks += [(int(c // grid.nx), int(c % grid.nx), cls) for c in chosen]
    order = rng.permutation(len(picks))
    X, Y = np.meshgrid(grid.x, grid.y)
    kept: list[tuple[float, float, int, int, str]] = []
    for k in order:
        j, i, cls = picks[k]
        x = grid.x0 + (i + rng.uniform(0.05, 0.95)) * grid.dx
        y = grid.y0 + (j + rng.uniform(0.05, 0.95)) * grid.dy
        if all(np.hypot(x - a, y - b) >= 2000.0 for a, b, *_ in kept):
            kept.append((x, y, j, i, cls))
    n = len(kept)
    xs, ys, js, is_, areas = (np.array(v) for v in zip(*kept, strict=True)) if n else (np.zeros(0),) * 5
    sx, sy = stacks_xy
    near_stack = np.array([np.min(np.hypot(sx - x, sy - y)) < 4000.0 if sx.size else False
                           for x, y in zip(xs, ys, strict=True)], dtype=bool)
    u = rng.uniform(size=n)
    kind = np.where((areas != "rural") & (u < 0.2), "traffic",
                    np.where(near_stack & (u > 0.5), "industrial", "background"))
    geo = Geography.from_seed(seed)
    lon, lat = to_lonlat(xs, ys)
    country = geo.country(xs, ys) if n else np.zeros(0, "U2")
    alt = static.elevation[js.astype(int), is_.astype(int)] + rng.normal(0.0, 5.0, n) if n else np.zeros(0)
    ids = [f"{c}SYN{k:04d}" for k, c in enumerate(country)]
    meta = pd.DataFrame({"station_id": ids, "lon": np.round(lon, 5), "lat": np.round(lat, 5),
                         "station_type": kind, "area": areas, "country": country,
                         "altitude": np.round(np.maximum(alt, 0.0), 1)})
    return Stations(meta=meta, j=js.astype(np.int64), i=is_.astype(np.int64),
                    repr_factor=rng.lognormal(0.0, 0.12, n),
                    kerb=np.where(kind == "traffic", rng.uniform(10.0, 30.0, n), 0.0),
                    moly=np.where(rng.uniform(size=n) < 0.4, 1.08, 1.0),
                    sparse=rng.uniform(size=n) < 0.04)


def measure(seed: int, stations: Stations, day: dt.date, truth_sfc: np.ndarray,
            wind_speed: np.ndarray) -> np.ndarray:
    """Hourly station values ``(24, n)`` ug m-3 (NaN missing) for ``day``.

    ``truth_sfc``: ``(24, n)`` true surface NO2 in the stations' cells; ``wind_speed``:
    ``(24, n)`` boundary-layer wind speed there (m/s).
    """
    rng = component_rng(seed, "eea", "values", day.toordinal())
    n = truth_sfc.shape[1]
    traffic = np.array([hour_factors(day, h)["traffic"] for h in range(24)])[:, None]
    kerb = stations.kerb * traffic * np.clip(2.0 / np.maximum(wind_speed, 0.5), 0.3, 2.0)
    val = (truth_sfc * stations.repr_factor + kerb) * stations.moly
    val = val + rng.normal(0.0, 1.0, val.shape) * (1.0 + 0.05 * val)
    val = np.round(np.clip(val, 0.0, None), 1)
    gap = rng.uniform(size=val.shape) < rng.uniform(0.02, 0.08, n)
    outage = rng.uniform(size=n) < 0.1
    start, length = rng.integers(0, 24, n), rng.integers(6, 72, n)
    hours = np.arange(24)[:, None]
    gap |= outage & (hours >= start) & (hours < start + length)
    gap |= stations.sparse & (rng.uniform(size=val.shape) < 0.9)
    return np.where(gap, np.nan, val)
