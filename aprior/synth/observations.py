"""What the synthetic world's "CAMS" model and "EEA" stations make of it.

**The CAMS-like regional reanalysis** (:class:`CamsModel`) is not a degraded copy of
the truth but an independent, imperfect model: a second run of the
world's transport model (:class:`~.chemistry.Chemistry`) on the same ERA5-like weather,
with the errors a regional 0.1 degree chemistry-transport model has, each chosen from
what is published about the CAMS regional ensemble before any model was trained on it
(sources in ``docs/synthetic-world.md``, "What CAMS sees"):

1. **Resolution**: it runs on a 10 km EPSG:3035 grid (blocks of 5 x 5 cells of 2 km; the
   ensemble's 0.1 degree) and is written at the 0.1 degree cell centres by bilinear
   interpolation. A 10 km cell dilutes towns, roads and stacks, and its fresh surface
   layer is that of a 10 km mean emission, so surface NO2 is low near sources and in cities.
2. **Its own inventory** (a CAMS-REG-like one): the world's sector maps with the small
   sources missing (2 km cells under the sector's 30th percentile of positive emission
   are dropped), two years old (the sector trends of :mod:`.emissions` undone for two
   years: traffic +9 %, industry and power +6 %, homes +4 %) and unaware of the further
   -8 % from 2023 on, block-averaged to 10 km. The inventory thus misses small towns
   and is too high in the last year, which is what phase 3 of DACNO2 is meant to fix.
3. **Its own boundary layer**: ERA5's ``blh`` with only half the valley reduction (the
   coarse orography fills valleys); by day (``blh`` over 300 m) 30 % too deep in the
   10 km cells with the most emission (``x (1 + 0.3 w)``, ``w`` the cell's emission over
   20 t km-2 yr-1, capped at 1: near-source air over-diluted, a low bias by day); at
   night no urban heat island (a floor of 50 m everywhere instead of 50 m + 250 m times
   the urban fraction: too shallow over towns at night, a high bias at night).
4. **Its own chemistry**: daytime OH loss 20 % faster (``k_oh`` x 1.2) and night-time
   loss 20 % slower (``k_night`` x 0.8) than the truth's. Its fresh surface layer has the
   truth's physics (a 3 km fetch into 10 % of the boundary layer) fed by its 10 km mean
   emission.
5. **Analysis error**: times a smooth multiplicative error ``exp(0.12 n)``, ``n`` a
   unit-variance field with a 30 km correlation length, drawn per day and interpolated
   between days (the assimilation of stations corrects some and adds some).

Nothing here reads the truth: the two runs share the weather, the geography and the
regional background at the inflow boundaries only.

**EEA-like stations**: a network drawn once per seed and region. Cells are urban (over
1500 inhabitants per km2), suburban (over 300) or rural; stations are placed about one
per ``(spacing/2)^2`` of urban land, one per ``spacing^2`` of suburban land and one per
``(3 spacing)^2`` of rural land (``spacing`` 20 km by default), at least 2 km apart, so
most are urban or suburban. A fifth of the urban and suburban ones are traffic stations
and stations within 4 km of a stack may be industrial; the rest are background.

A station is a **point** inside its 2 km cell (uniform in the inner 90 % of the cell):
it measures the true surface NO2 interpolated bilinearly at that point (the gradient
between the cell and its neighbours: :func:`point_values`; the truth files keep the
cell value), times a fixed siting/representativeness factor (log-normal, 15 %), plus for
traffic stations a kerbside increment (10-30 ug m-3 scaled by the traffic cycle and
2 m/s over the wind speed), plus for industrial stations intermittent plume hits (the
nearby stack's plume reaches the station in a random 20 % of 3-hour blocks, adding 5-25
ug m-3 scaled by the industry cycle), plus 8 % for the heated-molybdenum converters of
40 % of the stations, plus noise (1 ug m-3 + 5 %). Values are rounded to 0.1 and never
negative. Data go missing at random (2-8 % of hours), in outages of 6-72 hours, and for
about 4 % of the stations most of the time (under 20 % coverage). Stations report on
every day of the world, in every season.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from aprior.grids.grid import Grid
from aprior.synth.chemistry import Chemistry, ChemState
from aprior.synth.emissions import hour_factors
from aprior.synth.geography import Geography, to_laea, to_lonlat
from aprior.synth.meteo import Era5Day
from aprior.synth.noise import component_rng, smooth_noise_2d
from aprior.synth.static_world import T_KM2_YR, Static2km


def cams_axes(bbox: tuple[float, float, float, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """0.1 degree cell centres (x.x5) covering ``bbox`` + margin: ``lat`` descending, ``lon``."""
    w, s, e, n = bbox
    lat = np.arange(np.ceil((n + margin) * 10) - 0.5, np.floor((s - margin) * 10), -1.0) / 10.0
    lon = np.arange(np.floor((w - margin) * 10) + 0.5, np.ceil((e + margin) * 10)) / 10.0
    return lat, lon


#: cells of 2 km in one CAMS-like model cell (10 km)
BLOCK = 5
#: inventory age (years) and the per-sector yearly trends of :mod:`.emissions` it misses
AGE_YEARS = 2.0
_TRENDS = {"traffic": 0.045, "residential": 0.02, "industry": 0.03, "other": 0.03}
SMALL_SOURCE_PERCENTILE = 30.0


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """``(ny, nx)`` -> ``(ceil(ny/f), ceil(nx/f))`` means over blocks (partial at the edges)."""
    ny, nx = a.shape
    pad = np.pad(a.astype(np.float64), ((0, -ny % f), (0, -nx % f)), constant_values=np.nan)
    b = pad.reshape(pad.shape[0] // f, f, pad.shape[1] // f, f)
    return np.nanmean(b, axis=(1, 3))


def cams_inventory(emissions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The CAMS-like model's base inventory on the 2 km grid, before coarsening: each
    sector ``(ny, nx)`` kg m-2 s-1 with its small sources dropped and two years old."""
    out = {}
    for k, e in emissions.items():
        pos = e[e > 0]
        cut = np.percentile(pos, SMALL_SOURCE_PERCENTILE) if pos.size else 0.0
        kept = np.where(e >= cut, e, 0.0) if k in _TRENDS else e
        out[k] = kept * np.exp(_TRENDS.get(k, 0.0) * AGE_YEARS)
    return out


class _CamsChemistry(Chemistry):
    """The transport model with the CAMS-like boundary layer and chemistry (module doc)."""

    k_oh = Chemistry.k_oh * 1.2
    k_night = Chemistry.k_night * 0.8

    def __init__(self, static: Static2km, lat, lon, levels_hpa, heights, source_weight) -> None:
        super().__init__(static, lat, lon, levels_hpa, heights)
        self.source_weight = source_weight

    def _blh(self, era5: Era5Day, k: int) -> np.ndarray:
        h = self._sample(era5.single["blh"][k]) * (1.0 - 0.175 * self.valley)
        h = np.where(h > 300.0, h * (1.0 + 0.3 * self.source_weight), h)
        return np.maximum(h, 50.0)


class CamsModel:
    """The CAMS-like model over the chemistry grid, written at 0.1 degree ``lat`` x ``lon``.

    Args:
        seed: the world seed (the analysis error's draws).
        static: the 2 km maps on the chemistry grid (their emissions become the inventory).
        era5_lat, era5_lon, levels_hpa: the ERA5-like grid and pressure levels.
        lat, lon: the 0.1 degree cell centres written (``lat`` descending).
        heights: ``(k,)`` the heights (m) of the field.
    """

    def __init__(self, seed: int, static: Static2km, era5_lat: np.ndarray, era5_lon: np.ndarray,
                 levels_hpa: np.ndarray, lat: np.ndarray, lon: np.ndarray, heights: np.ndarray) -> None:
        self.seed, self.lat, self.lon = seed, lat, lon
        g = static.grid
        coarse = Grid(g.crs, g.x0, g.y0, g.dx * BLOCK, g.dy * BLOCK, -(-g.nx // BLOCK), -(-g.ny // BLOCK))
        inv = {k: _block_mean(v, BLOCK) for k, v in cams_inventory(static.emissions).items()}
        total = sum(inv.values())
        weight = np.clip(total / (20.0 * T_KM2_YR), 0.0, 1.0)
        cstatic = Static2km(coarse, *(_block_mean(a, BLOCK) for a in (
            static.land, static.elevation, static.population, static.urban, static.forest,
            static.valley)), inv)
        self.grid = coarse
        self.chem = _CamsChemistry(cstatic, era5_lat, era5_lon, levels_hpa, heights, weight)
        self._emis = dict(self.chem.emis)
        # where the 0.1 degree cell centres fall on the 10 km grid (fractional row, column)
        lon2, lat2 = np.meshgrid(lon, lat)
        x, y = to_laea(lon2, lat2)
        self._rows = (y - coarse.y0) / coarse.dy - 0.5
        self._cols = (x - coarse.x0) / coarse.dx - 0.5

    def initial_state(self, day: dt.date, era5: Era5Day, hour: int = 0) -> ChemState:
        return self.chem.initial_state(day, era5, hour)

    def _noise(self, day: dt.date) -> np.ndarray:
        rng = component_rng(self.seed, "cams", "noise", day.toordinal())
        return smooth_noise_2d(rng, (self.lat.size, self.lon.size), 3.0)

    def _to_latlon(self, no2: np.ndarray) -> np.ndarray:
        """``(k, ny, nx)`` on the 10 km grid -> ``(k, nlat, nlon)`` at the 0.1 degree centres."""
        return np.stack([ndimage.map_coordinates(level, [self._rows, self._cols], order=1, mode="nearest")
                         for level in no2])

    def run_day(self, day: dt.date, era5: Era5Day, state: ChemState,
                first_hour: int = 0) -> Iterator[np.ndarray]:
        """Advance ``state`` through ``day``; yields each hour's ``(k, nlat, nlon)`` float32
        ug m-3 (hours before ``first_hour`` are skipped, as in the truth's run)."""
        n0, n1 = self._noise(day), self._noise(day + dt.timedelta(days=1))
        year = inventory_year_factor(day)
        self.chem.emis = {k: v * year for k, v in self._emis.items()}
        for ht in self.chem.run_day(day, era5, state, first_hour):
            hour = int((ht.time - ht.time.astype("datetime64[D]")) // np.timedelta64(1, "h"))
            f = hour / 24.0
            err = np.exp(0.12 * ((1.0 - f) * n0 + f * n1))
            yield (self._to_latlon(ht.no2) * err).astype(np.float32)


def inventory_year_factor(day: dt.date) -> float:
    """The CAMS-like inventory over the truth's time profiles on ``day``: 1 before 2023,
    1 / 0.92 from 2023 on (the further drop of :mod:`.emissions` that it does not know)."""
    return 1.0 / 0.92 if day.year >= 2023 else 1.0


@dataclass(frozen=True)
class Stations:
    """An EEA-like network on the region grid.

    ``meta``: DataFrame (station_id, lon, lat, station_type, area, country, altitude);
    ``j``, ``i``: (n,) row and column of each station's cell on the grid it was drawn on;
    ``repr_factor``, ``kerb``, ``moly``: (n,) representativeness factor, kerbside
    increment (ug m-3, 0 for non-traffic) and converter bias factor; ``sparse``: (n,) bool,
    stations reporting under 20 % of the time; ``fy``, ``fx``: (n,) the station's point in
    fractional cell coordinates of that grid (row, column; cell centres at integers), None
    for the cell centre; ``plume``: (n,) plume-hit increment of industrial stations (ug
    m-3, 0 for the others), None for none.
    """

    meta: pd.DataFrame
    j: np.ndarray
    i: np.ndarray
    repr_factor: np.ndarray
    kerb: np.ndarray
    moly: np.ndarray
    sparse: np.ndarray
    fy: np.ndarray | None = None
    fx: np.ndarray | None = None
    plume: np.ndarray | None = None


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
    fx, fy = (xs - grid.x0) / grid.dx - 0.5, (ys - grid.y0) / grid.dy - 0.5
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
                    repr_factor=rng.lognormal(0.0, 0.15, n),
                    kerb=np.where(kind == "traffic", rng.uniform(10.0, 30.0, n), 0.0),
                    moly=np.where(rng.uniform(size=n) < 0.4, 1.08, 1.0),
                    sparse=rng.uniform(size=n) < 0.04, fy=fy, fx=fx,
                    plume=np.where(kind == "industrial", rng.uniform(5.0, 25.0, n), 0.0))


def point_values(surface: np.ndarray, stations: Stations, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The surface field ``(ny, nx)`` (ug m-3) at the stations' points: ``(n,)``, bilinear
    between cell centres; ``offset`` (rows, columns) of the stations' grid in the field's."""
    if stations.fy is None or stations.fx is None:
        return surface[stations.j + offset[0], stations.i + offset[1]]
    coords = [stations.fy + offset[0], stations.fx + offset[1]]
    return ndimage.map_coordinates(surface, coords, order=1, mode="nearest")


def measure(seed: int, stations: Stations, day: dt.date, truth_sfc: np.ndarray,
            wind_speed: np.ndarray) -> np.ndarray:
    """Hourly station values ``(24, n)`` ug m-3 (NaN missing) for ``day``.

    ``truth_sfc``: ``(24, n)`` true surface NO2 at the stations' points
    (:func:`point_values`); ``wind_speed``: ``(24, n)`` boundary-layer wind speed there (m/s).
    """
    rng = component_rng(seed, "eea", "values", day.toordinal())
    n = truth_sfc.shape[1]
    traffic = np.array([hour_factors(day, h)["traffic"] for h in range(24)])[:, None]
    kerb = stations.kerb * traffic * np.clip(2.0 / np.maximum(wind_speed, 0.5), 0.3, 2.0)
    if stations.plume is not None:
        industry = np.array([hour_factors(day, h)["industry"] for h in range(24)])[:, None]
        hit = np.repeat(rng.uniform(size=(8, n)) < 0.2, 3, axis=0)
        kerb = kerb + stations.plume * industry * hit
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
