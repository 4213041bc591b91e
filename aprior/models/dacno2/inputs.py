"""One day of DACNO2 inputs and targets on a region grid, in physical units.

The readers of :mod:`aprior.a_priori` do the work; this module puts their results into the
arrays the model is fed (Sect. 2.2 of the DACNO2 paper), on the 2 km region grid and its
8 km (CAMS targets) and 16 km (ERA5) family:

==============  ===================================  ==========================================
array           shape                                content (units)
==============  ===================================  ==========================================
met2d           (24, 9, ny16, nx16)                  ERA5 single levels, 00-23 UTC, in the order
                                                     of ``SINGLE_LEVEL_VARIABLES`` (LEXICON units)
met3d           (24, 6, Zp, ny16, nx16)              ERA5 pressure levels (``PRESSURE_LEVEL_
                                                     VARIABLES``), levels from the surface up
temporal        (3,)                                 sin, cos of the day of week; flights (count)
emis            (4, ny, nx)                          NOx emissions (kg m-2 s-1), roads (km km-2),
                                                     population (km-2), night light (source unit)
geo             (6, ny, nx)                          elevation (m), 5 CORINE groups one-hot (1)
cams            (Z, ny8, nx8)                        CAMS NO2 (ug m-3) daily or 11-13 UTC mean
stations        (m,)                                 EEA NO2 (ug m-3) per station cell, same means
==============  ===================================  ==========================================

Variants: ``"daily"`` (the paper's daily means) and ``"s5p"`` (DACNO2-S5P, Sect. 4.3: CAMS
mean of 11, 12 and 13 UTC; EEA mean of the hours starting at 11, 12 and 13 UTC, as
:func:`aprior.inputs.stations.window_means`). Missing values are NaN.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aprior.errors import InputFileError
from aprior.grids.grid import Grid, grid_family
from aprior.grids.rasterise import LANDCOVER_CLASSES
from aprior.inputs.era5 import (
    PRESSURE_LEVEL_VARIABLES,
    SINGLE_LEVEL_VARIABLES,
    read_era5_pressure_levels,
    read_era5_single_levels,
)
from aprior.inputs.static import load_static_layers
from aprior.inputs.stations import (
    GriddedStations,
    daily_means,
    grid_stations,
    select_stations,
    split_stations,
    window_means,
)
from aprior.inputs.temporal import day_of_week_features, read_flights
from aprior.models.dacno2.catalog import DataCatalog, as_date

log = logging.getLogger(__name__)

VARIANTS = ("s5p", "daily")
#: channel names of ``emis`` and ``geo`` (also the z-score names of the normalised ones)
EMIS_CHANNELS = ("emissions", "roads", "population", "nightlight")
GEO_CHANNELS = ("elevation", *(f"landcover_{c}" for c in LANDCOVER_CLASSES))
TEMPORAL_CHANNELS = ("dow_sin", "dow_cos", "flights")
#: an emission channel named in ``DataSpec.log_inputs`` is z-scored as ``log1p(x / (LOG_SCALE *
#: m))``, ``m`` its raw mean over the training region; its statistic is named ``log1p:<name>``
LOG_SCALE = 0.1


def log_name(name: str) -> str:
    """The z-score name of the log-scaled emission channel ``name``."""
    return f"log1p:{name}"


def log_scaled(x: np.ndarray, raw_mean: float) -> np.ndarray:
    """``log1p(x / (LOG_SCALE * raw_mean))`` of a non-negative layer ``(..., y, x)``, float32.

    The emission layers are heavy-tailed: z-scored as they are, half of the demo region's cells
    lie within 0.2 standard deviations of each other while point sources reach 30, so the
    network sees almost the same input over all clean air. Log-scaled, the low end is resolved
    (interquartile range about 0.8 standard deviations) and the tail is bounded (about 5).
    """
    scale = LOG_SCALE * raw_mean if raw_mean > 0 else 1.0
    return np.log1p(np.maximum(x, 0.0) / scale).astype(np.float32)


def fit_static(fitter, static: StaticArrays, log_inputs: Sequence[str] = ()) -> None:
    """Feed the z-scored static channels of the training region to ``fitter`` (a
    :class:`~aprior.models.normalisation.ZScoreFitter`): the emission layers (and the
    :func:`log_scaled` ones of ``log_inputs``, as :func:`log_name`) and the elevation."""
    for c, name in enumerate(EMIS_CHANNELS):
        fitter.update_values(name, static.emis[c])
        if name in log_inputs:  # scaled by the raw mean the statistics will hold
            fitter.update_values(log_name(name), log_scaled(static.emis[c], fitter.mean(name)))
    fitter.update_values("elevation", static.geo[0])


def cams_mode(variant: str) -> str:
    """The :func:`aprior.models.dacno2.targets.reduce_time` mode of a variant."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return "window" if variant == "s5p" else "daily"


@dataclass(frozen=True)
class StaticArrays:
    """The static inputs on the 2 km region grid.

    Attributes:
        emis: ``(4, ny, nx)`` float32, :data:`EMIS_CHANNELS` in physical units.
        geo: ``(6, ny, nx)`` float32, elevation (m) then the 5 land-cover groups (0/1).
    """

    emis: np.ndarray
    geo: np.ndarray

    def __post_init__(self) -> None:
        for name, n in (("emis", len(EMIS_CHANNELS)), ("geo", len(GEO_CHANNELS))):
            a = np.asarray(getattr(self, name), dtype=np.float32)
            if a.ndim != 3 or a.shape[0] != n:
                raise ValueError(f"{name} must be ({n}, ny, nx), got {a.shape}")
            object.__setattr__(self, name, a)
        if self.emis.shape[1:] != self.geo.shape[1:]:
            raise ValueError("emis and geo are on different grids")


@dataclass(frozen=True)
class DayArrays:
    """One day's dynamic inputs and targets (physical units, full region; NaN = missing).

    Attributes:
        date: the UTC day.
        met2d: ``(24, 9, ny16, nx16)`` float32.
        met3d: ``(24, 6, Zp, ny16, nx16)`` float32.
        temporal: ``(3,)`` float32: sin and cos of the day of week, the day's flights.
        cams: ``(Z, ny8, nx8)`` float32 ug m-3 (not divided by the layer ratios).
        stations: ``(m,)`` float32 ug m-3 at the prepared station cells (NaN: no value).
    """

    date: dt.date
    met2d: np.ndarray
    met3d: np.ndarray
    temporal: np.ndarray
    cams: np.ndarray
    stations: np.ndarray

    def __post_init__(self) -> None:
        for name, nd in (("met2d", 4), ("met3d", 5), ("temporal", 1), ("cams", 3),
                         ("stations", 1)):
            a = np.asarray(getattr(self, name), dtype=np.float32)
            if a.ndim != nd:
                raise ValueError(f"{name} must have {nd} dims, got shape {a.shape}")
            object.__setattr__(self, name, a)
        if self.temporal.shape != (3,):
            raise ValueError(f"temporal must be (3,), got {self.temporal.shape}")
        if self.met2d.shape[-2:] != self.met3d.shape[-2:]:
            raise ValueError("met2d and met3d are on different grids")


# -- readers ----------------------------------------------------------------------------
def read_meteorology(catalog: DataCatalog, date: dt.date, grid16: Grid,
                     levels_hpa: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(met2d (24, 9, ny, nx), met3d (24, 6, Zp, ny, nx))`` float32 on ``grid16``."""
    sl = read_era5_single_levels(catalog.files_for("era5_single", date), date, grid16)
    pl = read_era5_pressure_levels(catalog.files_for("era5_pressure", date), date, grid16,
                                   levels_hpa=levels_hpa)
    met2d = np.stack([sl[v].values for v in SINGLE_LEVEL_VARIABLES], axis=1)
    met3d = np.stack([pl[v].values for v in PRESSURE_LEVEL_VARIABLES], axis=1)
    return met2d.astype(np.float32, copy=False), met3d.astype(np.float32, copy=False)


def read_static(catalog: DataCatalog, grid: Grid) -> StaticArrays:
    """The static layers of the catalog on the 2 km ``grid``."""
    layers = load_static_layers(catalog.static, grid)
    emis = np.stack([layers.emissions, layers.roads, layers.population, layers.nightlight])
    geo = np.concatenate([layers.elevation[None], layers.landcover])
    return StaticArrays(emis, geo)


class InputReader:
    """Reads one day at a time, keeping what several days share (flights, the targets of
    a multi-day CAMS file, a year of EEA stations).

    Args:
        catalog: where the files are.
        grid: the 2 km region grid (its 8 and 16 km family is derived).
        variant: "s5p" or "daily".
        levels_m: the model's heights (m) for the CAMS targets.
        levels_hpa: the ERA5 pressure levels.
    """

    def __init__(self, catalog: DataCatalog, grid: Grid, *, variant: str,
                 levels_m: Sequence[float], levels_hpa: Sequence[float]) -> None:
        self.catalog = catalog
        self.grid, self.grid8, self.grid16 = grid_family(grid)
        self.variant = variant
        self.mode = cams_mode(variant)
        self.levels_m = tuple(float(v) for v in levels_m)
        self.levels_hpa = tuple(float(v) for v in levels_hpa)
        self._flights = None
        self._cams: OrderedDict[Path, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._years: dict[int, GriddedStations | None] = {}

    # -- dynamic inputs ---------------------------------------------------------------
    def meteorology(self, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
        return read_meteorology(self.catalog, date, self.grid16, self.levels_hpa)

    def flights(self, date: dt.date) -> float:
        """The day's number of flights (EUROCONTROL, summed over the study countries)."""
        if self._flights is None:
            self._flights = read_flights(self.catalog.flights)
        import pandas as pd

        value = self._flights.get(pd.Timestamp(date))
        if value is None or not np.isfinite(value):
            s = self._flights
            raise InputFileError(f"has no flight count for {date} (covers {s.index.min().date()}"
                                 f" to {s.index.max().date()})", self.catalog.flights)
        return float(value)

    def temporal(self, date: dt.date) -> np.ndarray:
        """``(3,)`` float32: sin, cos of the day of week and the raw flight count."""
        dow = day_of_week_features(np.array([np.datetime64(date, "D")]))[0]
        return np.array([dow[0], dow[1], self.flights(date)], dtype=np.float32)

    # -- targets ------------------------------------------------------------------------
    def cams(self, date: dt.date) -> np.ndarray:
        """``(Z, ny8, nx8)`` float32 CAMS NO2 (ug m-3) of the variant, NaN where missing."""
        from aprior.models.dacno2.targets import read_cams_targets

        for path in self.catalog.files_for("cams_eu", date):
            if path not in self._cams:
                field = read_cams_targets(path, self.grid8, self.levels_m, self.mode)
                self._cams[path] = (field.times.astype("datetime64[D]"), field.no2)
                while len(self._cams) > 2:  # a monthly file serves its days in turn
                    self._cams.popitem(last=False)
            days, no2 = self._cams[path]
            hit = np.flatnonzero(days == np.datetime64(date, "D"))
            if hit.size:
                return np.asarray(no2[hit[0]], dtype=np.float32)
        raise InputFileError(f"holds no CAMS NO2 for {date} ({self.mode} mean)",
                             self.catalog.files_for("cams_eu", date)[0])

    def station_year(self, year: int) -> GriddedStations | None:
        """The year's EEA stations (selected, reduced to the variant's daily values and
        averaged per 2 km cell); None without EEA data or without a station in the grid."""
        if year not in self._years:
            self._years[year] = self._read_year(year)
        return self._years[year]

    def _read_year(self, year: int) -> GriddedStations | None:
        from aprior.inputs.eea import read_eea

        files = self.catalog.eea_for(year)
        if files is None:
            return None
        data = read_eea(files[0], files[1], utc_offset_hours=self.catalog.eea_utc_offset_hours)
        if not np.any(data.times.astype("datetime64[Y]").astype(int) + 1970 == year):
            raise InputFileError(f"the EEA files hold no values in {year}", files[1])
        data = select_stations(data, year=year)
        if not len(data.meta):
            log.warning("no EEA station qualifies in %d (background/industrial, >= 20 %% valid)",
                        year)
            return None
        data = window_means(data) if self.variant == "s5p" else daily_means(data)
        try:
            return grid_stations(data, self.grid)
        except InputFileError:
            log.warning("no EEA station of %d lies inside the region grid", year)
            return None

    def station_cells(self, years: Sequence[int]) -> np.ndarray:
        """Sorted flat 2 km cell indices with stations in any of ``years``."""
        cells = [g.cells for y in years if (g := self.station_year(y)) is not None]
        return np.unique(np.concatenate(cells)) if cells else np.zeros(0, dtype=np.int64)

    def station_split(self, years: Sequence[int], eval_fraction: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(all, train, eval) station cells of ``years``; the split hashes each cell's
        location, so a cell is on the same side in every year."""
        train, evl = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for g in (self.station_year(y) for y in years):
            if g is None:
                continue
            t, e = split_stations(g, eval_fraction, seed)
            train.append(t)
            evl.append(e)
        return (self.station_cells(years), np.unique(np.concatenate(train)),
                np.unique(np.concatenate(evl)))

    def stations(self, date: dt.date, cells: np.ndarray) -> np.ndarray:
        """``(m,)`` float32 station values of ``date`` at ``cells`` (NaN where none)."""
        out = np.full(cells.size, np.nan, dtype=np.float32)
        g = self.station_year(date.year)
        if g is None or not cells.size:
            return out
        t = np.flatnonzero(g.times.astype("datetime64[D]") == np.datetime64(date, "D"))
        if not t.size:
            return out
        pos = np.searchsorted(g.cells, cells)
        pos = np.minimum(pos, g.cells.size - 1)
        found = g.cells[pos] == cells
        out[found] = g.values[t[0], pos[found]]
        return out

    # -- a whole day ----------------------------------------------------------------------
    def day(self, date: dt.date | str, station_cells: np.ndarray) -> DayArrays:
        """Everything of one day (see :class:`DayArrays`)."""
        day = as_date(date)
        met2d, met3d = self.meteorology(day)
        return DayArrays(day, met2d, met3d, self.temporal(day), self.cams(day),
                         self.stations(day, station_cells))
