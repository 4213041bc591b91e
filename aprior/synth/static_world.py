"""Static maps of the synthetic world on a fine EPSG:3035 raster and on the 2 km grid.

The fine raster (500 m by default) is where the world is drawn: the roughened coast,
terrain, population, land cover (CORINE level-3 codes), night lights, road lengths and the
NOx emission sectors. The 2 km maps that drive the chemistry are its block means, so what
the chemistry sees and what the static input files say agree exactly.

Emissions (annual means, kg m-2 s-1 of NOx counted as NO2; 1 t km-2 yr-1 = 3.17e-11):

- ``traffic``: 16, 4.5 and 1.5 t yr-1 per km of highway, primary and secondary road,
  plus urban traffic of 6 kg per inhabitant and year;
- ``residential``: 2.5 kg per inhabitant and year (given a winter-heavy cycle in time);
- ``industry``: the point sources (see :mod:`.settlements`) in their cells;
- ``other``: small industry, off-road machinery and farming, 0.7-2.7 t km-2 yr-1 over land
  growing with population;
- ``shipping``: a lane 25 km off the coast (peak 3 t km-2 yr-1) and the ports;
- ``soil``: 0.15 t km-2 yr-1 over farmland (given a summer-heavy cycle in time).

Land cover follows the other maps: sea 523, beaches 331, coastal marshes 421, lakes 512,
continuous urban 111 (over 3000 inhabitants per km2), discontinuous urban 112 (over
600), industry 121 (around the stacks), farmland 211/231/242, forests 311/312/313 (more
with height), natural grassland 321, bare rock 332 and glaciers 335 in the high mountains.
Night lights (VIIRS-like, nW cm-2 sr-1) grow with population to the power 0.8 and light
up highways, industry and ports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aprior.grids.grid import Grid
from aprior.grids.rasterise import CLC_CODES
from aprior.synth.geography import Geography, to_lonlat
from aprior.synth.noise import FourierNoise, block_mean, component_rng, gaussian_smooth
from aprior.synth.settlements import Settlements

#: 1 t km-2 yr-1 in kg m-2 s-1
T_KM2_YR = 1e3 / 1e6 / (365.25 * 86400.0)
_ROAD_T_PER_KM_YR = {"highway": 16.0, "primary": 4.5, "secondary": 1.5}
SECTORS = ("traffic", "residential", "industry", "other", "shipping", "soil")


@dataclass(frozen=True)
class FineStatic:
    """Static maps on the fine raster ``grid`` (all ``(ny, nx)``, rows ascending in y).

    coast_m: signed distance to the coast (m, + on land); elevation (m); population
    (inhabitants km-2); clc: CORINE level-3 code (uint16); night_light (nW cm-2 sr-1);
    roads: km of road per km2 by kind; emissions: kg m-2 s-1 by sector (annual base).
    """

    grid: Grid
    coast_m: np.ndarray
    elevation: np.ndarray
    population: np.ndarray
    clc: np.ndarray
    night_light: np.ndarray
    roads: dict[str, np.ndarray]
    emissions: dict[str, np.ndarray]


@dataclass(frozen=True)
class Static2km:
    """The 2 km maps the chemistry uses (block means of :class:`FineStatic`).

    land: land fraction; elevation (m); population (km-2); urban, forest: fractions of
    urban and forest land cover; valley: valley index in [0, 1] (how far a cell lies below its 20 km
    surroundings, 0 on the plains); emissions: kg m-2 s-1 by sector (annual base);
    fresh: fraction of each cell's emission released at ground level (traffic, homes).
    """

    grid: Grid
    land: np.ndarray
    elevation: np.ndarray
    population: np.ndarray
    urban: np.ndarray
    forest: np.ndarray
    valley: np.ndarray
    emissions: dict[str, np.ndarray]

    def window(self, grid: Grid) -> Static2km:
        """The maps on ``grid``, a window of this one's grid."""
        from aprior.grids.grid import window_offset

        i0, j0 = window_offset(self.grid, grid)
        cut = (slice(j0, j0 + grid.ny), slice(i0, i0 + grid.nx))
        return Static2km(grid, self.land[cut], self.elevation[cut], self.population[cut],
                         self.urban[cut], self.forest[cut], self.valley[cut],
                         {k: v[cut] for k, v in self.emissions.items()})

    def albedo(self, winter: float) -> np.ndarray:
        """Surface albedo at 440 nm ``(ny, nx)``: water 0.06, towns 0.07, forest 0.035,
        farmland 0.065; snow (0.5) above 1200 m when ``winter`` (0-1) exceeds 0.6."""
        rest = np.clip(self.land - self.urban - self.forest, 0.0, 1.0)
        alb = (1.0 - self.land) * 0.06 + self.urban * 0.07 + self.forest * 0.035 + rest * 0.065
        return np.where((self.elevation > 1200.0) & (winter > 0.6), 0.5, alb)

    @property
    def total_emission(self) -> np.ndarray:
        return sum(self.emissions.values())  # type: ignore[return-value]


def _stamp_cities(grid: Grid, s: Settlements, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Population density (km-2) of the cities on ``grid``."""
    out = np.zeros(grid.shape)
    c = s.cities
    xmin, ymin, xmax, ymax = grid.bounds
    for x, y, p, sc in zip(c.x, c.y, c.pop, c.scale, strict=True):
        reach = 12.0 * sc + 2 * grid.dx
        if x + reach < xmin or x - reach > xmax or y + reach < ymin or y - reach > ymax:
            continue
        i0 = max(int((x - reach - xmin) // grid.dx), 0)
        i1 = min(int((x + reach - xmin) // grid.dx) + 1, grid.nx)
        j0 = max(int((y - reach - ymin) // grid.dy), 0)
        j1 = min(int((y + reach - ymin) // grid.dy) + 1, grid.ny)
        r = np.hypot(X[j0:j1, i0:i1] - x, Y[j0:j1, i0:i1] - y)
        core = 0.75 * p / (2 * np.pi * sc ** 2) * np.exp(-r / sc)
        halo = 0.25 * p / (2 * np.pi * (4 * sc) ** 2) * np.exp(-r / (4 * sc))
        out[j0:j1, i0:i1] += (core + halo) * 1e6
    return out


def _road_density(grid: Grid, s: Settlements) -> dict[str, np.ndarray]:
    """km of road per km2 on ``grid``, by kind (lines sampled every 100 m)."""
    out = {k: np.zeros(grid.size) for k in _ROAD_T_PER_KM_YR}
    xmin, ymin, _, _ = grid.bounds
    for line, kind in zip(s.roads.lines, s.roads.kinds, strict=True):
        seg = np.diff(line, axis=0)
        length = np.hypot(seg[:, 0], seg[:, 1])
        n = np.maximum(1, np.ceil(length / 100.0).astype(int))
        idx = np.repeat(np.arange(seg.shape[0]), n)
        frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) / np.repeat(n, n)
        pts = line[idx] + seg[idx] * frac[:, None]
        w = (length / n)[idx]
        i = np.floor((pts[:, 0] - xmin) / grid.dx).astype(np.int64)
        j = np.floor((pts[:, 1] - ymin) / grid.dy).astype(np.int64)
        ok = (i >= 0) & (i < grid.nx) & (j >= 0) & (j < grid.ny)
        if ok.any():
            out[kind] += np.bincount(j[ok] * grid.nx + i[ok], weights=w[ok], minlength=grid.size)
    cell_km2 = grid.dx * grid.dy / 1e6
    return {k: v.reshape(grid.shape) / 1e3 / cell_km2 for k, v in out.items()}


def _point_sources(grid: Grid, s: Settlements, kt: np.ndarray, spread_m: float = 1500.0) -> np.ndarray:
    """Flux (kg m-2 s-1) of point sources with annual emissions ``kt`` on ``grid``."""
    xmin, ymin, _, _ = grid.bounds
    i = np.floor((s.sources.x - xmin) / grid.dx).astype(np.int64)
    j = np.floor((s.sources.y - ymin) / grid.dy).astype(np.int64)
    ok = (i >= 0) & (i < grid.nx) & (j >= 0) & (j < grid.ny)
    flux = kt[ok] * 1e6 / (365.25 * 86400.0) / (grid.dx * grid.dy)
    out = np.bincount(j[ok] * grid.nx + i[ok], weights=flux, minlength=grid.size).reshape(grid.shape)
    # plume rise and meander: the stack's emission spreads over about 2 km
    return gaussian_smooth(out, spread_m / grid.dx, mode="constant") if spread_m > 0 else out


def _land_cover(seed: int, X, Y, sd, elev, pop, near_industry) -> np.ndarray:
    rng = component_rng(seed, "static", "landcover")
    forest_n = FourierNoise.draw(rng, n_waves=48, lmin=3e3, lmax=60e3, slope=0.6)(X, Y)
    farm_n = FourierNoise.draw(rng, n_waves=32, lmin=3e3, lmax=40e3, slope=0.6)(X, Y)
    lakes_n = FourierNoise.draw(rng, n_waves=48, lmin=2e3, lmax=15e3, slope=0.3)(X, Y)
    clc = np.where(farm_n > 0.6, 231, 211)
    clc = np.where((farm_n < -0.9) & (pop > 150), 242, clc)
    forest = forest_n + elev / 450.0 > 1.1
    clc = np.where(forest, np.where(elev > 700, 312, np.where(forest_n > 1.6, 313, 311)), clc)
    clc = np.where((elev > 1700) & ~forest | (elev > 1900), 321, clc)
    clc = np.where(elev > 2300, 332, clc)
    clc = np.where(elev > 2900, 335, clc)
    clc = np.where((lakes_n > 2.35) & (elev < 800) & (sd > 3e3), 512, clc)
    clc = np.where(pop > 600, 112, clc)
    clc = np.where(pop > 3000, 111, clc)
    clc = np.where(near_industry, 121, clc)
    clc = np.where((sd > 0) & (sd < 4e3) & (elev < 8) & (farm_n < -0.3), 421, clc)
    clc = np.where((sd > 0) & (sd < 700), 331, clc)
    clc = np.where(sd <= 0, 523, clc)
    return clc.astype(np.uint16)


def fine_static(seed: int, grid: Grid, s: Settlements) -> FineStatic:
    """Draw the static world on the fine EPSG:3035 raster ``grid`` (see the module doc)."""
    geo = Geography.from_seed(seed)
    X, Y = np.meshgrid(grid.x, grid.y)
    sd = geo.coast_distance(X, Y)
    elev = geo.elevation(X, Y, sd)
    land = sd > 0
    rng = component_rng(seed, "static", "population")
    shape_n = FourierNoise.draw(rng, n_waves=40, lmin=2e3, lmax=25e3, slope=0.5)(X, Y)
    rural_n = FourierNoise.draw(rng, n_waves=24, lmin=10e3, lmax=150e3, slope=0.8)(X, Y)
    pop = _stamp_cities(grid, s, X, Y) * np.exp(0.35 * shape_n)
    pop = pop + 45.0 * np.exp(-elev / 700.0 + 0.5 * rural_n)
    pop = np.where(land, pop, 0.0)
    roads = _road_density(grid, s)
    ind_flux = _point_sources(grid, s, s.sources.nox_kt)
    near_ind = _point_sources(grid, s, s.sources.nox_kt, 0.0) > 0
    near_ind = gaussian_smooth(near_ind.astype(float), 1000.0 / grid.dx) > 0.02
    clc = _land_cover(seed, X, Y, sd, elev, pop, near_ind & land)
    pop = np.where(clc == 512, 0.0, pop)
    traffic = sum(_ROAD_T_PER_KM_YR[k] * roads[k] for k in roads) * T_KM2_YR
    traffic = traffic + 6e-3 * pop * T_KM2_YR
    sea_d = np.clip(-sd, 0.0, None)
    ports = gaussian_smooth(((clc == 121) & (sd < 10e3)).astype(float), 1500.0 / grid.dx)
    shipping = (3.0 * np.exp(-((sea_d - 25e3) / 8e3) ** 2) * (sd < 0) + 20.0 * ports) * T_KM2_YR
    soil = np.isin(clc, (211, 231, 242)) * 0.15 * T_KM2_YR
    emissions = {
        "traffic": traffic,
        "residential": 2.5e-3 * pop * T_KM2_YR,
        "industry": ind_flux,
        "other": land * (0.7 + 1.0 * np.minimum(pop / 1000.0, 2.0)) * T_KM2_YR,
        "shipping": shipping,
        "soil": soil.astype(np.float64),
    }
    light = 0.3 + np.minimum(60.0 * (pop / 1e4) ** 0.8, 150.0) + 2.0 * np.minimum(roads["highway"], 3.0)
    light = light + 40.0 * (clc == 121)
    light = np.where(land, light, 0.1 + 0.3 * (shipping > T_KM2_YR))
    return FineStatic(grid, sd, elev, pop, clc, light.astype(np.float32), roads, emissions)


def static_2km(fine: FineStatic, grid: Grid) -> Static2km:
    """Block means of the fine maps on the 2 km ``grid`` (which the fine grid must tile)."""
    f = int(round(grid.dx / fine.grid.dx))
    if fine.grid.shape != (grid.ny * f, grid.nx * f) or not np.isclose(fine.grid.x0, grid.x0):
        raise ValueError("the fine raster does not tile the 2 km grid")
    elev = block_mean(fine.elevation, f)
    smooth = gaussian_smooth(elev, 10e3 / grid.dx)
    valley = np.clip((smooth - elev) / 250.0, 0.0, 1.0) * (smooth > 250.0)
    urban = block_mean(np.isin(fine.clc, (111, 112, 121)).astype(float), f)
    forest = block_mean(np.isin(fine.clc, (311, 312, 313)).astype(float), f)
    return Static2km(
        grid=grid,
        land=block_mean((fine.coast_m > 0).astype(float), f),
        elevation=elev,
        population=block_mean(fine.population, f),
        urban=urban,
        forest=forest,
        valley=valley,
        emissions={k: block_mean(v, f) for k, v in fine.emissions.items()},
    )


def clc_grid_codes(clc: np.ndarray) -> np.ndarray:
    """CLC level-3 codes -> the CORINE raster's grid codes 1..44 (uint8; 128 unknown)."""
    lut = np.full(1000, 128, dtype=np.uint8)
    lut[np.asarray(CLC_CODES)] = np.arange(1, len(CLC_CODES) + 1, dtype=np.uint8)
    return lut[np.asarray(clc, dtype=np.int64)]


def inventory_flux(fine: FineStatic, s: Settlements, lat_edges: np.ndarray,
                   lon_edges: np.ndarray) -> np.ndarray:
    """CAMS-GLOB-ANT-like NOx flux (kg m-2 s-1) on lat/lon cells ``(ny, nx)``.

    The area sectors as they are, the point sources as the inventory reports them (some
    missing, the rest with reporting errors); each cell is the mean over the fine cells
    whose centres fall in it (NaN where none does).
    """
    grid = fine.grid
    area = sum(v for k, v in fine.emissions.items() if k != "industry")
    flux = area + _point_sources(grid, s, s.sources.inventory_kt)
    X, Y = np.meshgrid(grid.x, grid.y)
    lon, lat = to_lonlat(X, Y)
    i = np.searchsorted(lon_edges, lon.ravel()) - 1
    j = np.searchsorted(lat_edges, lat.ravel()) - 1
    nx, ny = lon_edges.size - 1, lat_edges.size - 1
    ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
    cell = j[ok] * nx + i[ok]
    tot = np.bincount(cell, weights=flux.ravel()[ok], minlength=nx * ny)
    cnt = np.bincount(cell, minlength=nx * ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tot / cnt).reshape(ny, nx)


__all__ = ["SECTORS", "T_KM2_YR", "FineStatic", "Static2km", "clc_grid_codes", "fine_static",
           "inventory_flux", "static_2km"]
