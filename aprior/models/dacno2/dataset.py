"""DACNO2 samples: normalised patches of one day, as torch tensors.

One item of :class:`PatchDataset` is one (day, patch) of the prepared cache's tiling,
a dict of tensors (``P`` the patch side in 2 km cells, ``Z`` levels, ``T`` = 24 hours):

===============  ===================  =====================================================
key              shape, dtype         content
===============  ===================  =====================================================
met2d            (T, 9, P/8, P/8) f4  ERA5 single levels, z-scored per variable
met3d            (T, 6, Zp, P/8, P/8) ERA5 pressure levels, z-scored per variable and level
emis             (4, P, P) f4         emissions, roads, population, night light, z-scored
geo              (6, P, P) f4         elevation z-scored, 5 land-cover groups 0/1
temporal         (3,) f4              sin, cos of the day of week, z-scored flights
cams             (Z, P/4, P/4) f4     CAMS NO2 / layer ratio (ratio-scaled ug m-3), 0 where
                                      missing
cams_mask        (Z, P/4, P/4) bool   True where ``cams`` holds a value
stations         (P, P) f4            station NO2 (ug m-3, not scaled), 0 where none
station_mask     (P, P) bool          True at the station cells of the chosen set
day              () int64             ``date.toordinal()``
patch            () int64             index of the patch in the tiling
===============  ===================  =====================================================

Patches reaching outside a small region grid are padded by edge replication for the
inputs; targets there are 0 with masks False. Days are loaded lazily from the cache and
kept in a small LRU, so memory stays bounded; iterate with the patches of a day
together (the default order) for speed. :func:`build_inputs` gives the same inputs for
one day straight from the raw files, for generation without a prepared cache.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from aprior.errors import ConfigError
from aprior.grids.grid import Grid, grid_family
from aprior.grids.tiling import Patch, PatchTiling
from aprior.inputs.era5 import SINGLE_LEVEL_VARIABLES
from aprior.models.dacno2.catalog import DataCatalog, as_date
from aprior.models.dacno2.inputs import (
    EMIS_CHANNELS,
    InputReader,
    StaticArrays,
    log_name,
    log_scaled,
    read_meteorology,
    read_static,
)
from aprior.models.dacno2.prepare import DataSpec, Prepared, met3d_names
from aprior.models.normalisation import ZScoreStats

STATION_SETS = ("train", "eval", "all", "none")
INPUT_KEYS = ("met2d", "met3d", "emis", "geo", "temporal")


# -- normalisation ----------------------------------------------------------------------
class Normaliser:
    """Applies the prepared z-scores to whole-region arrays (float32 in, float32 out).

    Args:
        stats: the training statistics (names as written by :func:`prepare`).
        levels_hpa: the ERA5 pressure levels of ``met3d``.
        log_inputs: the emission channels z-scored on a log scale (``DataSpec.log_inputs``).
    """

    def __init__(self, stats: ZScoreStats, levels_hpa: Sequence[float],
                 log_inputs: Sequence[str] = ()) -> None:
        index = {n: i for i, n in enumerate(stats.names)}

        def ms(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            missing = [n for n in names if n not in index]
            if missing:
                raise ConfigError(f"the z-score statistics lack {', '.join(missing)}; they "
                                  "are not those of a DACNO2 data preparation")
            i = [index[n] for n in names]
            return (np.asarray(stats.mean, np.float64)[i].astype(np.float32),
                    np.asarray(stats.std, np.float64)[i].astype(np.float32))

        self.m2, self.s2 = ms(SINGLE_LEVEL_VARIABLES)
        m3, s3 = ms(met3d_names(levels_hpa))
        n_lev = len(levels_hpa)
        self.m3, self.s3 = m3.reshape(-1, n_lev), s3.reshape(-1, n_lev)
        self.me, self.se = ms(EMIS_CHANNELS)
        self.log = {EMIS_CHANNELS.index(n): (stats.mean[index[n]], *ms((log_name(n),)))
                    for n in log_inputs}
        (self.mz,), (self.sz,) = ms(("elevation",))
        (self.mf,), (self.sf,) = ms(("flights",))

    def met2d(self, x: np.ndarray) -> np.ndarray:
        """``(T, 9, y, x)`` -> z-scores."""
        return (x - self.m2[:, None, None]) / self.s2[:, None, None]

    def met3d(self, x: np.ndarray) -> np.ndarray:
        """``(T, 6, Zp, y, x)`` -> z-scores per variable and level."""
        return (x - self.m3[:, :, None, None]) / self.s3[:, :, None, None]

    def emis(self, x: np.ndarray) -> np.ndarray:
        """``(4, y, x)`` -> z-scores (of :func:`log_scaled` values for ``log_inputs``)."""
        out = (x - self.me[:, None, None]) / self.se[:, None, None]
        for c, (raw_mean, (m,), (s,)) in self.log.items():
            out[c] = (log_scaled(x[c], raw_mean) - m) / s
        return out

    def geo(self, x: np.ndarray) -> np.ndarray:
        """``(6, y, x)``: elevation z-scored, land cover unchanged."""
        out = x.copy()
        out[0] = (x[0] - self.mz) / self.sz
        return out

    def temporal(self, x: np.ndarray) -> np.ndarray:
        """``(3,)`` sin, cos, flights -> sin, cos, z-scored flights."""
        out = np.asarray(x, dtype=np.float32).copy()
        out[2] = (out[2] - self.mf) / self.sf
        return out


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _input_items(met2d: np.ndarray, met3d: np.ndarray, emis: np.ndarray, geo: np.ndarray,
                 temporal: np.ndarray, tiling: PatchTiling,
                 patches: Sequence[Patch]) -> list[dict[str, torch.Tensor]]:
    """The normalised input patches of one day (edge padding outside the grid)."""
    out = []
    for k, p in enumerate(patches):
        out.append({"met2d": _t(tiling.extract(met2d, p, 8)), "met3d": _t(tiling.extract(met3d, p, 8)),
                    "emis": _t(tiling.extract(emis, p, 1)), "geo": _t(tiling.extract(geo, p, 1)),
                    "temporal": _t(temporal), "patch": torch.tensor(k, dtype=torch.int64)})
    return out


# -- the dataset --------------------------------------------------------------------------
class PatchDataset(torch.utils.data.Dataset):
    """(day, patch) samples of a prepared cache (see the module docstring).

    Args:
        prepared: the cache.
        dates: the days (e.g. ``prepared.train_dates``); each must be prepared.
        stations: which station cells the station mask shows: the training cells
            ("train"), the evaluation cells ("eval"), both ("all"), none ("none"), or an
            array of cell indices (flat 2 km grid indices among the station cells).
        cache_days: how many normalised days to keep in memory.
    """

    def __init__(self, prepared: Prepared, dates: Sequence[dt.date | str], *,
                 stations: str | np.ndarray = "train", cache_days: int = 2) -> None:
        if isinstance(stations, str) and stations not in STATION_SETS:
            raise ValueError(f"stations must be one of {STATION_SETS}, got {stations!r}")
        self.prepared = prepared
        self.dates = [as_date(d) for d in dates]
        unknown = sorted(set(self.dates) - set(prepared.dates))
        if unknown:
            raise KeyError(f"days not in the prepared cache: {', '.join(map(str, unknown[:3]))}")
        self.stations = stations if isinstance(stations, str) else "custom"
        self.tiling = prepared.tiling
        self.patches = prepared.patches
        self.cache_days = max(1, int(cache_days))
        self._days: OrderedDict[dt.date, dict[str, np.ndarray]] = OrderedDict()
        self._static: dict[str, np.ndarray] | None = None
        self._norm: Normaliser | None = None
        if isinstance(stations, str):
            cells = {"train": prepared.train_cells, "eval": prepared.eval_cells,
                     "all": prepared.station_cells, "none": np.zeros(0, np.int64)}[stations]
        else:
            cells = np.asarray(stations, dtype=np.int64)
            if not np.isin(cells, prepared.station_cells).all():
                raise ValueError("stations: cells that are not station cells of the data")
        self._use = np.isin(prepared.station_cells, cells)

    def __len__(self) -> int:
        return len(self.dates) * len(self.patches)

    def index(self, date: dt.date | str, patch: int) -> int:
        """The item index of (day, patch)."""
        return self.dates.index(as_date(date)) * len(self.patches) + int(patch)

    def _normaliser(self) -> Normaliser:
        if self._norm is None:
            spec = self.prepared.spec
            self._norm = Normaliser(self.prepared.stats, spec.pressure_levels_hpa, spec.log_inputs)
        return self._norm

    def _static_arrays(self) -> dict[str, np.ndarray]:
        if self._static is None:
            st, norm = self.prepared.static(), self._normaliser()
            self._static = {"emis": norm.emis(st.emis), "geo": norm.geo(st.geo)}
        return self._static

    def _day(self, date: dt.date) -> dict[str, np.ndarray]:
        if date in self._days:
            self._days.move_to_end(date)
            return self._days[date]
        arr, norm, prep = self.prepared.day(date), self._normaliser(), self.prepared
        cams = prep.ratios.apply(arr.cams, axis=0).astype(np.float32)
        cams_ok = np.isfinite(cams)
        grid = prep.grid
        stations = np.zeros(grid.size, np.float32)
        smask = np.zeros(grid.size, bool)
        use = self._use & np.isfinite(arr.stations)
        stations[prep.station_cells[use]] = arr.stations[use]
        smask[prep.station_cells[use]] = True
        out = {"met2d": norm.met2d(arr.met2d), "met3d": norm.met3d(arr.met3d),
               "temporal": norm.temporal(arr.temporal), "cams": np.where(cams_ok, cams, 0.0),
               "cams_mask": cams_ok, "stations": stations.reshape(grid.shape),
               "station_mask": smask.reshape(grid.shape)}
        self._days[date] = out
        while len(self._days) > self.cache_days:
            self._days.popitem(last=False)
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        d, k = divmod(int(i), len(self.patches))
        date, p, tl = self.dates[d], self.patches[k], self.tiling
        day, st = self._day(date), self._static_arrays()
        item = _input_items(day["met2d"], day["met3d"], st["emis"], st["geo"], day["temporal"],
                            tl, [p])[0]
        item["patch"] = torch.tensor(k, dtype=torch.int64)
        item["cams"] = _t(tl.extract(day["cams"], p, 4, "constant"))
        item["cams_mask"] = _t(tl.extract(day["cams_mask"], p, 4, "constant"))
        item["stations"] = _t(tl.extract(day["stations"], p, 1, "constant"))
        item["station_mask"] = _t(tl.extract(day["station_mask"], p, 1, "constant"))
        item["day"] = torch.tensor(date.toordinal(), dtype=torch.int64)
        return item


# -- generation from raw files ----------------------------------------------------------
#: (static paths, grid) -> StaticArrays and (catalog root, grid) -> InputReader, a few
#: each: generation calls build_inputs day after day on the same grid
_STATIC: OrderedDict[tuple, StaticArrays] = OrderedDict()
_READERS: OrderedDict[tuple, InputReader] = OrderedDict()


def _cached(cache: OrderedDict, key: tuple, make):
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = value = make()
    while len(cache) > 2:
        cache.popitem(last=False)
    return value


def build_inputs(catalog: DataCatalog, date: dt.date | str, spec: DataSpec, grid: Grid,
                 stats: ZScoreStats) -> list[dict[str, torch.Tensor]]:
    """The normalised inputs of one day on ``grid``, one dict per patch of
    ``spec.tiling().patches(grid)`` in that order, with the keys ``met2d``, ``met3d``,
    ``emis``, ``geo``, ``temporal`` and ``patch`` (shapes as :class:`PatchDataset`).

    Args:
        catalog: the raw inputs; they must cover ``grid``.
        date: the UTC day.
        spec: the data spec the model was trained with (patch, stride, pressure levels).
        grid: a 2 km grid with sides multiples of 8 cells (e.g. ``catalog.grid``).
        stats: the training statistics (``Prepared.stats``, or a checkpoint's).
    """
    day = as_date(date)
    _, _, grid16 = grid_family(grid)
    norm = Normaliser(stats, spec.pressure_levels_hpa, spec.log_inputs)
    met2d, met3d = read_meteorology(catalog, day, grid16, spec.pressure_levels_hpa)
    reader = _cached(_READERS, (str(catalog.root), catalog.flights, grid, spec.variant),
                     lambda: InputReader(catalog, grid, variant=spec.variant,
                                         levels_m=spec.levels_m,
                                         levels_hpa=spec.pressure_levels_hpa))
    static = _cached(_STATIC, (catalog.static, grid), lambda: read_static(catalog, grid))
    tiling = spec.tiling()
    return _input_items(norm.met2d(met2d), norm.met3d(met3d), norm.emis(static.emis),
                        norm.geo(static.geo), norm.temporal(reader.temporal(day)), tiling,
                        tiling.patches(grid))


def patch_windows(prepared_or_tiling: Prepared | PatchTiling,
                  grid: Grid | None = None) -> list[Patch]:
    """The 2 km :class:`Patch` windows in item order, to merge patch outputs back with
    ``PatchTiling.merge`` (factor 1 on the 2 km grid, 4 on the 8 km grid).

    Args:
        prepared_or_tiling: a prepared cache (its grid is used), or a tiling.
        grid: the 2 km grid; needed with a tiling.
    """
    if isinstance(prepared_or_tiling, Prepared):
        return prepared_or_tiling.tiling.patches(grid or prepared_or_tiling.grid)
    if grid is None:
        raise ValueError("patch_windows needs the grid when given a tiling")
    return prepared_or_tiling.patches(grid)
