"""The physical geography of the synthetic world: coast, terrain and countries.

Everything here is a function of position (EPSG:3035 metres), defined everywhere and
independent of the grid it is evaluated on, so the same seed gives the same geography on
the 500 m, 1 km and 2 km rasters, on the ERA5 0.25 degree grid and for any region.

- **Coast.** Two land polygons, a crude continent (Atlantic, Channel and North Sea coasts
  in the north and west, the Gulf of Lion and the Ligurian Sea in the south-east) and a
  crude Great Britain, placed roughly where the real coasts are so that named regions keep
  their meaning. The coastline is roughened by a smooth random field (+-6 km, wavelengths
  8-150 km): land is where the signed distance to the polygons plus that perturbation is
  positive.
- **Terrain.** A lowland base (10-230 m, rising inland over the first 60 km), rolling
  hills (+-10 m near the coast to +-100 m in uplands) and mountain ranges along polylines at the places of the
  Alps, Pyrenees, Massif Central, Jura, Vosges, Black Forest, Ardennes-Eifel and
  Sauerland. Ranges are Gaussian ridges modulated by "ridged" noise, which cuts them into
  crests and valleys (valleys trap pollution in the chemistry).
- **Countries.** A weighted nearest-centre partition of the continent around rough
  country centres (FR, BE, NL, DE, LU, CH, ES, IT) plus GB for the island. It only serves
  the EEA-like station metadata and the national flight counts; it is not a border map.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.path import Path as MplPath
from pyproj import Transformer

from aprior.synth.noise import FourierNoise, component_rng

_CONTINENT = [
    (-9.5, 43.0), (-8.0, 43.7), (-5.5, 43.55), (-3.5, 43.45), (-1.8, 43.4), (-1.3, 44.3),
    (-1.15, 45.5), (-1.9, 46.7), (-2.6, 47.3), (-4.3, 47.8), (-4.8, 48.4), (-4.0, 48.7),
    (-2.8, 48.55), (-1.6, 48.7), (-1.6, 49.65), (-1.1, 49.4), (0.1, 49.45), (1.0, 49.9),
    (1.6, 50.3), (1.7, 50.95), (2.6, 51.1), (3.4, 51.4), (4.0, 51.95), (4.5, 52.5),
    (4.75, 53.0), (5.6, 53.35), (7.0, 53.65), (8.3, 53.55), (8.7, 53.9), (8.9, 54.9),
    (8.6, 56.5), (14.0, 56.5), (14.0, 45.5), (10.0, 44.05), (8.8, 44.4), (8.0, 43.9),
    (7.3, 43.7), (6.6, 43.15), (5.3, 43.25), (4.5, 43.45), (3.9, 43.5), (3.1, 43.1),
    (3.2, 42.2), (3.2, 41.8), (2.2, 41.3), (0.9, 41.0), (-9.5, 40.0),
]
_BRITAIN = [
    (-5.7, 50.0), (-4.2, 50.35), (-2.0, 50.6), (0.3, 50.75), (1.4, 51.15), (1.6, 52.1),
    (1.75, 52.7), (0.3, 53.1), (0.1, 53.6), (-0.6, 54.6), (-1.6, 55.6), (-2.0, 57.5),
    (-4.0, 58.6), (-5.5, 58.5), (-6.2, 56.5), (-4.9, 55.0), (-3.4, 54.9), (-3.0, 53.7),
    (-4.4, 53.3), (-4.2, 52.3), (-5.1, 51.8), (-3.5, 51.4), (-5.2, 51.0),
]

#: (name, lon/lat polyline, peak height m, half-width km)
_RANGES: list[tuple[str, list[tuple[float, float]], float, float]] = [
    ("alps", [(5.6, 43.9), (6.6, 44.8), (6.9, 45.8), (7.8, 46.2), (8.8, 46.5), (10.5, 46.6)], 2900.0, 55.0),
    ("pyrenees", [(-1.9, 43.0), (0.0, 42.75), (1.5, 42.6), (2.8, 42.45)], 2300.0, 38.0),
    ("massif_central", [(2.4, 44.6), (3.0, 45.3), (3.2, 46.0)], 1300.0, 70.0),
    ("jura", [(5.6, 46.2), (6.4, 46.8), (7.3, 47.4)], 1100.0, 22.0),
    ("vosges", [(6.9, 47.8), (7.2, 48.3), (7.4, 48.9)], 1000.0, 20.0),
    ("black_forest", [(8.0, 47.7), (8.3, 48.3), (8.5, 48.9)], 1050.0, 20.0),
    ("ardennes_eifel", [(4.4, 49.8), (5.6, 50.1), (6.6, 50.3), (7.2, 50.4)], 550.0, 42.0),
    ("sauerland", [(7.6, 51.0), (8.3, 51.2), (8.8, 51.3)], 600.0, 28.0),
]

#: rough country centres (lon, lat) and weights of the partition (larger -> wider)
_COUNTRIES: dict[str, tuple[float, float, float]] = {
    "FR": (2.4, 46.8, 1.45), "BE": (4.6, 50.6, 0.42), "NL": (5.6, 52.4, 0.45),
    "DE": (8.8, 51.0, 1.0), "LU": (6.1, 49.75, 0.14), "CH": (8.2, 46.8, 0.55),
    "ES": (-3.5, 41.0, 1.3), "IT": (10.5, 45.0, 0.85),
}

_TO_LAEA = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)
_TO_LONLAT = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)


def to_laea(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat (degrees) -> EPSG:3035 x, y (m)."""
    x, y = _TO_LAEA.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return np.asarray(x), np.asarray(y)


def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:3035 x, y (m) -> lon/lat (degrees)."""
    lon, lat = _TO_LONLAT.transform(np.asarray(x, np.float64), np.asarray(y, np.float64))
    return np.asarray(lon), np.asarray(lat)


def _densify(points: list[tuple[float, float]], step_deg: float = 0.1) -> np.ndarray:
    out = []
    for (a0, b0), (a1, b1) in zip(points[:-1], points[1:], strict=True):
        n = max(1, int(np.ceil(max(abs(a1 - a0), abs(b1 - b0)) / step_deg)))
        t = np.arange(n) / n
        out.append(np.column_stack([a0 + (a1 - a0) * t, b0 + (b1 - b0) * t]))
    out.append(np.array([points[-1]]))
    return np.concatenate(out)


@lru_cache(maxsize=1)
def _polygons() -> tuple[tuple[np.ndarray, MplPath], ...]:
    polys = []
    for ring in (_CONTINENT, _BRITAIN):
        ll = _densify([*ring, ring[0]], 0.25)
        x, y = to_laea(ll[:, 0], ll[:, 1])
        xy = np.column_stack([x, y])
        polys.append((xy, MplPath(xy, closed=True)))
    return tuple(polys)


def segment_distance(x: np.ndarray, y: np.ndarray, xy: np.ndarray, cap: float) -> np.ndarray:
    """Distance (m) from points to the polyline ``xy`` (k, 2), capped at ``cap``.

    Only segments within ``cap`` of the points' bounding box are visited.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d2 = np.full(x.shape, cap * cap)
    if x.size == 0:
        return np.sqrt(d2)
    a, b = xy[:-1], xy[1:]
    lo = np.minimum(a, b) - cap
    hi = np.maximum(a, b) + cap
    near = ((hi[:, 0] >= x.min()) & (lo[:, 0] <= x.max())
            & (hi[:, 1] >= y.min()) & (lo[:, 1] <= y.max()))
    for (ax, ay), (bx, by) in zip(a[near], b[near], strict=True):
        ex, ey = bx - ax, by - ay
        t = np.clip(((x - ax) * ex + (y - ay) * ey) / max(ex * ex + ey * ey, 1e-9), 0.0, 1.0)
        np.minimum(d2, (x - ax - t * ex) ** 2 + (y - ay - t * ey) ** 2, out=d2)
    return np.sqrt(d2)


@dataclass(frozen=True)
class Geography:
    """Coast, terrain and countries of one seed (see the module docstring)."""

    coast_noise: FourierNoise
    base_noise: FourierNoise
    hill_noise: FourierNoise
    ridge_noise: FourierNoise
    range_scale: np.ndarray  # (n_ranges,) random factors on the peak heights

    @classmethod
    def from_seed(cls, seed: int) -> Geography:
        rng = component_rng(seed, "geography")
        return cls(
            coast_noise=FourierNoise.draw(rng, n_waves=48, lmin=8e3, lmax=150e3, slope=1.0),
            base_noise=FourierNoise.draw(rng, n_waves=24, lmin=150e3, lmax=1000e3, slope=0.5),
            hill_noise=FourierNoise.draw(rng, n_waves=64, lmin=4e3, lmax=60e3, slope=0.8),
            ridge_noise=FourierNoise.draw(rng, n_waves=64, lmin=8e3, lmax=70e3, slope=0.7),
            range_scale=rng.uniform(0.85, 1.15, len(_RANGES)),
        )

    # -- coast ----------------------------------------------------------------------
    def coast_distance(self, x: np.ndarray, y: np.ndarray, cap: float = 60e3) -> np.ndarray:
        """Signed distance to the roughened coast (m): positive on land, capped at +-cap."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        pts = np.column_stack([x.ravel(), y.ravel()])
        inside = np.zeros(x.size, dtype=bool)
        dist = np.full(x.size, cap + 10e3)
        for xy, path in _polygons():
            inside |= path.contains_points(pts)
            dist = np.minimum(dist, segment_distance(pts[:, 0], pts[:, 1], xy, cap + 10e3))
        sd = np.where(inside, dist, -dist).reshape(x.shape) + 6e3 * self.coast_noise(x, y)
        return np.clip(sd, -cap, cap)

    # -- terrain --------------------------------------------------------------------
    def elevation(self, x: np.ndarray, y: np.ndarray, coast: np.ndarray | None = None) -> np.ndarray:
        """Terrain height (m above sea level), 0 over the sea; ``coast`` may pass
        :meth:`coast_distance` already computed at the points."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        sd = self.coast_distance(x, y) if coast is None else coast
        ramp = np.clip(sd / 60e3, 0.0, 1.0)
        base = (10.0 + 110.0 * (1.0 + np.tanh(self.base_noise(x, y)))) * ramp
        h = base + 30.0 * (0.3 + base / 100.0) * self.hill_noise(x, y) * np.sqrt(ramp)
        ridged = None
        for k, (_, line, peak, width) in enumerate(_RANGES):
            lx, ly = to_laea(*np.asarray(line).T)
            d = segment_distance(x, y, np.column_stack([lx, ly]), 4.0 * width * 1e3)
            env = np.exp(-(d / (width * 1e3)) ** 2)
            if not np.any(env > 1e-3):
                continue
            if ridged is None:
                ridged = 1.0 - np.abs(np.tanh(self.ridge_noise(x, y)))
            h = h + peak * self.range_scale[k] * env * (0.3 + 0.7 * ridged)
        return np.where(sd > 0, np.maximum(h, 1.0), 0.0)

    # -- countries ------------------------------------------------------------------
    def country(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """ISO 3166 alpha-2 code of the (synthetic) country at each point; "GB" on the
        island, the nearest weighted centre elsewhere (sea points included)."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        names = list(_COUNTRIES)
        lon, lat, w = (np.array(v) for v in zip(*_COUNTRIES.values(), strict=True))
        cx, cy = to_laea(lon, lat)
        score = np.hypot(x[..., None] - cx, y[..., None] - cy) / w
        out = np.asarray(names, dtype=object)[np.argmin(score, axis=-1)]
        gb_xy, gb_path = _polygons()[1]
        on_gb = gb_path.contains_points(np.column_stack([x.ravel(), y.ravel()])).reshape(x.shape)
        out = np.where(on_gb, "GB", out)
        return out.astype("U2")


#: the countries of the flight counts (the nine of the DACNO2 study area)
COUNTRIES: tuple[str, ...] = ("FR", "BE", "NL", "DE", "LU", "CH", "ES", "IT", "GB")
