"""Station NO2 for training targets: selection, daily means, gridding, train/eval split.

Follows DACNO2 Sect. 2.2.2: background and industrial stations only (traffic stations
represent < 1 km2); stations with at least 20 % valid observations in a year; hourly
values converted to daily means; stations in the same 2 km cell averaged, a cell with a
background station counting as background; cells split into training and evaluation
(575 / 173 of 748 in the paper, i.e. 23 % evaluation).

The paper splits background cells following the CAMS assimilation/validation station
lists (to avoid evaluating on stations CAMS assimilated). Those lists are not bundled:
by default every cell is assigned by a hash of its location and a seed, so the same cell
is in the same set whatever year or station subset is processed (no leakage between
years). Pass ``eval_stations`` (e.g. the CAMS validation stations) to split the
background cells by list as the paper does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyproj import Transformer

from aprior.errors import InputFileError
from aprior.grids.grid import Grid
from aprior.grids.rasterise import cell_index

log = logging.getLogger(__name__)

#: station types in order of precedence for a cell's type
TYPE_PRECEDENCE = ("background", "industrial", "traffic")


@dataclass(frozen=True)
class StationData:
    """NO2 time series of stations on a common regular time axis.

    Attributes:
        meta: indexed by station id (EoI code), columns ``lon``, ``lat`` (degrees),
            ``type`` (background/industrial/traffic), ``area``, ``country``, ``altitude`` (m).
        times: ``(t,)`` datetime64[ns], strictly increasing (UTC hour starts, or days).
        values: ``(t, n_station)`` float32 NO2 in ug m-3; NaN = missing or invalid.
        source: the metadata file (named in messages).
    """

    meta: pd.DataFrame
    times: np.ndarray
    values: np.ndarray
    source: str | None = None

    def __post_init__(self) -> None:
        times = np.asarray(self.times).astype("datetime64[ns]")
        values = np.asarray(self.values, dtype=np.float32)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)
        if values.shape != (times.size, len(self.meta)):
            raise ValueError(f"values shape {values.shape} != (times, stations) "
                             f"{(times.size, len(self.meta))}")
        if times.size > 1 and not np.all(np.diff(times) > np.timedelta64(0, "ns")):
            raise ValueError("times must be strictly increasing")
        missing = {"lon", "lat", "type"} - set(self.meta.columns)
        if missing:
            raise ValueError(f"meta lacks columns {sorted(missing)}")

    @property
    def station_ids(self) -> np.ndarray:
        return self.meta.index.to_numpy()

    @property
    def frame(self) -> pd.DataFrame:
        """The values as a DataFrame indexed by time, one column per station."""
        return pd.DataFrame(self.values, index=pd.DatetimeIndex(self.times), columns=self.meta.index)

    def subset(self, stations: np.ndarray | None = None, time_mask: np.ndarray | None = None) -> StationData:
        """A copy restricted to a boolean station mask and/or a boolean time mask."""
        s = slice(None) if stations is None else np.asarray(stations, bool)
        t = slice(None) if time_mask is None else np.asarray(time_mask, bool)
        return StationData(self.meta.loc[self.meta.index[s]], self.times[t], self.values[t][:, s],
                           self.source)


def _years(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[Y]").astype(np.int64) + 1970


def valid_fraction(data: StationData, year: int) -> pd.Series:
    """Fraction of the time steps of ``year`` (within the data's time axis) with a valid
    value, per station."""
    in_year = _years(data.times) == year
    if not in_year.any():
        return pd.Series(np.zeros(len(data.meta)), index=data.meta.index)
    frac = np.isfinite(data.values[in_year]).mean(axis=0)
    return pd.Series(frac, index=data.meta.index)


def select_stations(data: StationData, year: int | None = None, min_valid: float = 0.2,
                    types: Sequence[str] = ("background", "industrial")) -> StationData:
    """Keep stations of the given types with at least ``min_valid`` valid data in a year.

    With ``year`` the result covers that year only. Without, every year is screened on its
    own: a station's values in a year where it falls short become NaN, and stations that
    never qualify are dropped.
    """
    if not 0.0 <= min_valid <= 1.0:
        raise ValueError("min_valid must be in [0, 1]")
    keep_type = data.meta["type"].str.lower().isin([t.lower() for t in types]).to_numpy()
    years = _years(data.times)
    if year is not None:
        in_year = years == year
        ok = keep_type & (valid_fraction(data, year).to_numpy() >= min_valid)
        out = data.subset(ok, in_year)
    else:
        values = data.values.copy()
        qualifies = np.zeros(len(data.meta), dtype=bool)
        for y in np.unique(years):
            rows = years == y
            ok = np.isfinite(values[rows]).mean(axis=0) >= min_valid
            values[np.ix_(rows, ~ok)] = np.nan
            qualifies |= ok
        out = StationData(data.meta, data.times, values, data.source).subset(keep_type & qualifies)
    log.info("selected %d of %d stations (types %s, >= %.0f %% valid)", len(out.meta),
             len(data.meta), ", ".join(types), 100 * min_valid)
    return out


def _daily(data: StationData, hour_mask: np.ndarray, min_hours: int) -> StationData:
    days_all = data.times.astype("datetime64[D]")
    days, inv = np.unique(days_all, return_inverse=True)
    n = data.values.shape[1]
    flat = inv[:, None] * n + np.arange(n)[None, :]
    ok = np.isfinite(data.values) & hour_mask[:, None]
    total = np.bincount(flat[ok], weights=data.values[ok].astype(np.float64), minlength=days.size * n)
    count = np.bincount(flat[ok], minlength=days.size * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= max(min_hours, 1), total / np.maximum(count, 1), np.nan)
    return StationData(data.meta, days.astype("datetime64[ns]"),
                       mean.reshape(days.size, n).astype(np.float32), data.source)


def daily_means(data: StationData, min_hours: int = 1) -> StationData:
    """Daily (UTC) means of hourly data; a day needs ``min_hours`` valid hours (the paper
    states none; the EU Directive uses 18)."""
    return _daily(data, np.ones(data.times.size, dtype=bool), min_hours)


def window_means(data: StationData, start_hour: int = 11, end_hour: int = 13,
                 min_hours: int = 1) -> StationData:
    """Daily means of the hourly values whose start hour (UTC) is in
    ``[start_hour, end_hour]`` (default 11, 12 and 13 UTC: the TROPOMI overpass window
    of DACNO2-S5P)."""
    if not 0 <= start_hour <= end_hour <= 23:
        raise ValueError("need 0 <= start_hour <= end_hour <= 23")
    hours = (data.times.astype("datetime64[h]").astype(np.int64)) % 24
    return _daily(data, (hours >= start_hour) & (hours <= end_hour), min_hours)


@dataclass(frozen=True)
class GriddedStations:
    """Station values averaged per grid cell (a sparse table of the cells with stations).

    Attributes:
        grid: the grid.
        times: ``(t,)`` datetime64[ns].
        cells: ``(m,)`` int64 flat cell index ``row * nx + col``, ascending.
        values: ``(t, m)`` float32 ug m-3, the mean of the cell's valid station values.
        cell_type: ``(m,)`` "background" if any station is background, else "industrial"
            (then "traffic").
        stations: the station ids in each cell.
    """

    grid: Grid
    times: np.ndarray
    cells: np.ndarray
    values: np.ndarray
    cell_type: np.ndarray
    stations: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        m = self.cells.size
        if self.values.shape != (self.times.size, m) or self.cell_type.shape != (m,) \
                or len(self.stations) != m:
            raise ValueError("inconsistent gridded-station shapes")

    @property
    def rows(self) -> np.ndarray:
        return self.cells // self.grid.nx

    @property
    def cols(self) -> np.ndarray:
        return self.cells % self.grid.nx

    def to_dense(self) -> np.ndarray:
        """``(t, ny, nx)`` float32 with NaN where there is no station."""
        out = np.full((self.times.size, self.grid.size), np.nan, dtype=np.float32)
        out[:, self.cells] = self.values
        return out.reshape(self.times.size, *self.grid.shape)

    def select(self, cells: np.ndarray) -> GriddedStations:
        """The subset of the given flat cell indices."""
        keep = np.isin(self.cells, cells)
        return GriddedStations(self.grid, self.times, self.cells[keep], self.values[:, keep],
                               self.cell_type[keep],
                               tuple(s for s, k in zip(self.stations, keep, strict=True) if k))


def grid_stations(data: StationData, grid: Grid) -> GriddedStations:
    """Average the stations falling in the same cell of ``grid`` (stations outside are
    dropped; if none is inside, InputFileError names the station file)."""
    tr = Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    x, y = tr.transform(data.meta["lon"].to_numpy(float), data.meta["lat"].to_numpy(float))
    idx = cell_index(grid, np.asarray(x), np.asarray(y))
    inside = idx >= 0
    if not inside.any():
        raise InputFileError(f"none of its {len(data.meta)} stations lies inside the grid",
                             data.source)
    if (~inside).any():
        log.info("%d station(s) outside the grid were dropped", int((~inside).sum()))
    cells, inv = np.unique(idx[inside], return_inverse=True)
    n_in, m = int(inside.sum()), cells.size
    member = sp.csr_matrix((np.ones(n_in, np.float32), (np.arange(n_in), inv)), shape=(n_in, m))
    v = data.values[:, inside]
    finite = np.isfinite(v)
    total = np.asarray(np.where(finite, v, 0.0).astype(np.float32) @ member)
    count = np.asarray(finite.astype(np.float32) @ member)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    types = data.meta["type"].str.lower().to_numpy()[inside]
    rank = np.array([TYPE_PRECEDENCE.index(t) if t in TYPE_PRECEDENCE else len(TYPE_PRECEDENCE)
                     for t in types])
    best = np.full(m, len(TYPE_PRECEDENCE))
    np.minimum.at(best, inv, rank)
    names = np.array([*TYPE_PRECEDENCE, "other"], dtype=object)
    ids = data.meta.index.to_numpy()[inside]
    stations = tuple(tuple(sorted(str(s) for s in ids[inv == k])) for k in range(m))
    log.info("%d stations in %d grid cells", n_in, m)
    return GriddedStations(grid, data.times, cells.astype(np.int64), values, names[best], stations)


def _unit_hash(grid: Grid, cells: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per cell from its centre coordinates and the seed."""
    xs = grid.x0 + (cells % grid.nx + 0.5) * grid.dx
    ys = grid.y0 + (cells // grid.nx + 0.5) * grid.dy
    out = np.empty(cells.size)
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        digest = hashlib.sha256(f"{seed}|{grid.crs}|{x:.1f}|{y:.1f}".encode()).digest()
        out[k] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def split_stations(gridded: GriddedStations, eval_fraction: float = 0.23, seed: int = 0,
                   eval_stations: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split the station cells into training and evaluation cells, reproducibly.

    A cell goes to evaluation when the hash of (seed, its centre) is below
    ``eval_fraction``. With ``eval_stations``, background cells instead go to evaluation
    when all their stations are in that list (e.g. the CAMS validation stations);
    industrial cells still use the hash.

    Returns:
        ``(train_cells, eval_cells)``: sorted flat cell indices.
    """
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError("eval_fraction must be in [0, 1]")
    is_eval = _unit_hash(gridded.grid, gridded.cells, seed) < eval_fraction
    if eval_stations is not None:
        listed = set(eval_stations)
        bg = gridded.cell_type == "background"
        by_list = np.array([all(s in listed for s in st) for st in gridded.stations], dtype=bool)
        is_eval = np.where(bg, by_list, is_eval)
    train, evl = np.sort(gridded.cells[~is_eval]), np.sort(gridded.cells[is_eval])
    log.info("split %d cells: %d training, %d evaluation", gridded.cells.size, train.size, evl.size)
    return train, evl
