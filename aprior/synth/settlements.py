"""Where people live and emit in the synthetic world: cities, roads, industrial sources.

All features are drawn once for the whole DACNO2 domain (plus 150 km) from the seed, so a
region sees the same cities, roads and stacks whatever its extent.

- **Cities.** About sixty "anchor" cities at the places of real large cities with sizes
  of their real order of magnitude (randomised +-15 %), and a few hundred random towns with
  power-law (Pareto, alpha 1.15) populations of 12 thousand to 600 thousand, placed with
  a preference for lowland, at least 6 km apart. A city's population density falls off
  exponentially from its centre with a scale of 1.3 km x (P / 1e5)^0.42, with a wider
  suburban halo holding a quarter of it.
- **Roads.** Motorways join every city of more than 150 thousand people to its three
  nearest such cities (within 350 km); primary roads join towns of more than 25 thousand
  to their two nearest larger neighbours; secondary roads join every other town to its
  nearest neighbour. Roads are gently curved (quadratic Bezier curves), never cross the
  sea and avoid passes above 1500 m.
- **Industry.** About 170 point sources (power plants, refineries and steel works,
  cement and chemistry): half next to large cities, a quarter at coastal ports, the rest in
  the lowland countryside. Annual NOx emissions are log-normal (median 1.5 kt per year,
  up to 25 kt). 15 % of them are missing from the "inventory" (the CAMS-GLOB-ANT-like
  file), and the listed ones carry a +-20 % reporting error, as real inventories omit
  and misplace small sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aprior.grids.grid import DOMAIN_BBOX
from aprior.synth.geography import Geography, to_laea
from aprior.synth.noise import component_rng

#: (lon, lat, population in millions) of the anchor cities
_ANCHORS: list[tuple[float, float, float]] = [
    (2.35, 48.86, 10.8), (-0.12, 51.5, 9.0), (4.35, 50.85, 2.1), (4.40, 51.22, 1.1),
    (4.90, 52.37, 1.6), (4.48, 51.92, 1.2), (4.30, 52.08, 0.8), (5.12, 52.09, 0.5),
    (3.06, 50.63, 1.2), (5.57, 50.63, 0.6), (5.47, 51.44, 0.4), (6.96, 50.94, 1.9),
    (6.78, 51.23, 1.2), (7.01, 51.46, 1.3), (7.47, 51.51, 1.0), (6.76, 51.43, 0.7),
    (8.68, 50.11, 2.3), (9.18, 48.78, 1.6), (7.75, 48.58, 0.5), (4.84, 45.76, 2.3),
    (5.37, 43.30, 1.8), (7.26, 43.70, 1.0), (1.44, 43.60, 1.4), (-0.58, 44.84, 1.3),
    (-1.55, 47.22, 1.0), (-1.68, 48.11, 0.7), (6.14, 46.20, 0.6), (8.54, 47.37, 1.4),
    (-1.90, 52.48, 2.5), (-2.24, 53.48, 2.8), (-2.93, 43.26, 1.0), (6.13, 49.61, 0.2),
    (3.88, 43.61, 0.6), (5.72, 45.19, 0.7), (3.08, 45.78, 0.5), (6.18, 48.69, 0.4),
    (6.18, 49.12, 0.4), (4.03, 49.26, 0.3), (1.10, 49.44, 0.7), (0.11, 49.49, 0.3),
    (3.72, 51.05, 0.6), (4.44, 50.41, 0.5), (-2.59, 51.45, 0.7), (-1.40, 50.90, 0.8),
    (-1.55, 53.80, 1.9), (-1.47, 53.38, 0.7), (-1.15, 52.95, 0.8), (1.90, 47.90, 0.4),
    (0.69, 47.39, 0.5), (5.04, 47.32, 0.4), (7.59, 47.56, 0.8), (8.47, 49.49, 1.0),
    (8.40, 49.00, 0.6), (7.00, 49.23, 0.5), (6.08, 50.78, 0.5), (6.57, 53.22, 0.3),
    (8.80, 53.08, 1.0), (7.63, 51.96, 0.3), (8.53, 52.02, 0.3), (7.68, 45.07, 1.7),
    (8.93, 44.41, 0.8), (9.19, 45.46, 4.0), (-0.89, 41.65, 0.7),
]

_MARGIN_DEG = 1.5


@dataclass(frozen=True)
class Cities:
    """Point cities. ``x, y``: (n,) EPSG:3035 m; ``pop``: (n,) inhabitants;
    ``scale``: (n,) e-folding radius of the core density (m)."""

    x: np.ndarray
    y: np.ndarray
    pop: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class Roads:
    """Road polylines: ``lines`` (list of (k, 2) EPSG:3035 m arrays), ``kinds`` (GRIP kinds:
    "highway", "primary", "secondary")."""

    lines: list[np.ndarray]
    kinds: list[str]


@dataclass(frozen=True)
class PointSources:
    """Stacks. ``x, y`` (n,) m; ``nox_kt`` (n,) true annual NOx (kt as NO2 per year);
    ``kind`` (n,) str; ``inventory_kt`` (n,) what the inventory reports (0 = missing)."""

    x: np.ndarray
    y: np.ndarray
    nox_kt: np.ndarray
    kind: np.ndarray
    inventory_kt: np.ndarray


@dataclass(frozen=True)
class Settlements:
    cities: Cities
    roads: Roads
    sources: PointSources


def city_scale(pop: np.ndarray) -> np.ndarray:
    """E-folding radius (m) of a city's core population density."""
    return 1300.0 * (np.asarray(pop) / 1e5) ** 0.42


def _box_xy() -> tuple[float, float, float, float]:
    w, s, e, n = DOMAIN_BBOX
    xs, ys = to_laea(np.array([w, e, w, e]) + np.array([-1, 1, -1, 1]) * _MARGIN_DEG,
                     np.array([s, s, n, n]) + np.array([-1, -1, 1, 1]) * _MARGIN_DEG)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _draw_cities(seed: int, geo: Geography) -> Cities:
    rng = component_rng(seed, "settlements", "cities")
    lon, lat, pm = (np.array(v) for v in zip(*_ANCHORS, strict=True))
    ax, ay = to_laea(lon, lat)
    apop = pm * 1e6 * rng.lognormal(0.0, 0.15, lon.size)
    x0, y0, x1, y1 = _box_xy()
    n_cand = 9000
    cx, cy = rng.uniform(x0, x1, n_cand), rng.uniform(y0, y1, n_cand)
    sd = geo.coast_distance(cx, cy)
    elev = geo.elevation(cx, cy, sd)
    suit = (sd > 1e3) * np.exp(-elev / 450.0)
    keep = rng.uniform(size=n_cand) < suit
    cx, cy = cx[keep], cy[keep]
    tpop = np.minimum(12e3 * rng.uniform(size=cx.size) ** (-1.0 / 1.15), 6e5)
    xs, ys, ps = list(ax), list(ay), list(apop)
    n_towns = 0
    for x, y, p in zip(cx, cy, tpop, strict=True):
        d = np.hypot(np.asarray(xs) - x, np.asarray(ys) - y)
        if np.any(d < np.maximum(6e3, 2.5 * city_scale(np.asarray(ps)))):
            continue
        xs.append(x)
        ys.append(y)
        ps.append(p)
        n_towns += 1
        if n_towns >= 900:
            break
    pop = np.asarray(ps)
    return Cities(np.asarray(xs), np.asarray(ys), pop, city_scale(pop))


def _curve(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, step: float = 1000.0) -> np.ndarray:
    """A quadratic Bezier curve from a to b, its control point off the chord by +-10 %."""
    d = b - a
    length = float(np.hypot(*d))
    normal = np.array([-d[1], d[0]]) / max(length, 1.0)
    ctrl = (a + b) / 2 + normal * length * rng.uniform(-0.1, 0.1)
    t = np.linspace(0.0, 1.0, max(3, int(length / step) + 1))[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t ** 2 * b


def _draw_roads(seed: int, geo: Geography, cities: Cities) -> Roads:
    rng = component_rng(seed, "settlements", "roads")
    xy = np.column_stack([cities.x, cities.y])
    pop = cities.pop
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(dist, np.inf)
    edges: dict[tuple[int, int], str] = {}
    big = np.flatnonzero(pop > 1.5e5)
    for i in big:
        for j in big[np.argsort(dist[i, big])[:3]]:
            if dist[i, j] < 350e3:
                edges.setdefault((min(i, j), max(i, j)), "highway")
    for i in np.flatnonzero(pop > 2.5e4):
        larger = np.flatnonzero(pop > pop[i])
        for j in larger[np.argsort(dist[i, larger])[:2]]:
            if dist[i, j] < 90e3:
                edges.setdefault((min(i, j), max(i, j)), "primary")
    for i in np.flatnonzero(pop <= 2.5e4):
        j = int(np.argmin(dist[i]))
        if dist[i, j] < 45e3:
            edges.setdefault((min(i, j), max(i, j)), "secondary")
    items = sorted(edges.items())
    curves = [_curve(rng, xy[i], xy[j]) for (i, j), _ in items]
    probes = [c[:: max(1, len(c) // 12)] for c in curves]
    owner = np.repeat(np.arange(len(probes)), [len(p) for p in probes])
    pts = np.concatenate(probes)
    sd = geo.coast_distance(pts[:, 0], pts[:, 1])
    bad = (sd < 0) | (geo.elevation(pts[:, 0], pts[:, 1], sd) > 1500.0)
    drop = np.bincount(owner, weights=bad, minlength=len(curves)) > 0
    lines = [c for c, d in zip(curves, drop, strict=True) if not d]
    kinds = [k for (_, k), d in zip(items, drop, strict=True) if not d]
    return Roads(lines, kinds)


def _draw_sources(seed: int, geo: Geography, cities: Cities) -> PointSources:
    rng = component_rng(seed, "settlements", "industry")
    n = 170
    big = np.flatnonzero(cities.pop > 1e5)
    coastal = big[np.abs(geo.coast_distance(cities.x[big], cities.y[big])) < 15e3]
    x0, y0, x1, y1 = _box_xy()
    m = 6 * n
    w = cities.pop[big] ** 0.7
    near = rng.choice(big, m, p=w / w.sum())
    port = rng.choice(coastal, m) if coastal.size else near
    ang = rng.uniform(0, 2 * np.pi, m)
    r = rng.uniform(size=m)
    c = np.where(r < 0.5, near, port)
    rad = np.where(r < 0.5, rng.uniform(4e3, 15e3, m), rng.uniform(2e3, 10e3, m))
    x = np.where(r < 0.75, cities.x[c] + rad * np.cos(ang), rng.uniform(x0, x1, m))
    y = np.where(r < 0.75, cities.y[c] + rad * np.sin(ang), rng.uniform(y0, y1, m))
    sd = geo.coast_distance(x, y)
    ok = np.flatnonzero((sd > 500.0) & (geo.elevation(x, y, sd) < 600.0))[:n]
    xs, ys = x[ok], y[ok]
    n = ok.size
    kind = rng.choice(np.array(["power_plant", "refinery_steel", "cement_chemistry"]), n, p=[0.4, 0.3, 0.3])
    median = np.select([kind == "power_plant", kind == "refinery_steel"], [2.5, 1.6], 0.8)
    nox = np.minimum(median * rng.lognormal(0.0, 0.9, n), 25.0)
    listed = rng.uniform(size=n) > 0.15
    inventory = np.where(listed, nox * rng.lognormal(0.0, 0.2, n), 0.0)
    return PointSources(xs, ys, nox, kind, inventory)


@lru_cache(maxsize=4)
def settlements(seed: int) -> Settlements:
    """Cities, roads and point sources of the world ``seed`` (cached)."""
    geo = Geography.from_seed(seed)
    cities = _draw_cities(seed, geo)
    return Settlements(cities, _draw_roads(seed, geo, cities), _draw_sources(seed, geo, cities))
