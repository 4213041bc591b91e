"""The prepared cache of DACNO2 training data: one pass over the days, then fast reads.

:func:`prepare` reads every input once (:mod:`aprior.models.dacno2.inputs`) and writes,
atomically, into a cache directory::

    meta.json            spec, grid, split, z-score statistics, layer ratios, station
                         cells and their split, the catalog's identity (written last)
    static.npz           emis (4, ny, nx), geo (6, ny, nx)           physical units
    days/YYYY-MM-DD.npz  met2d, met3d, temporal, cams, stations      physical units, float32

Splits (DataSpec): the test year (default the last year with data) is held out; the days
of the training years are split at random (seeded) into training and validation days,
80/20. The paper split its samples (patches) at random; we split whole days, so the
overlapping patches of one day never sit on both sides. Station cells are split into
training and evaluation cells once (:func:`aprior.inputs.stations.split_stations`, 23 %
evaluation), the same for every year.

Statistics come from the training days only: z-scores per ERA5 single-level variable,
per ERA5 pressure-level variable *and level* (``"z@500"``; geopotential and humidity
differ by orders of magnitude between levels), per emission layer, elevation and flights
(day of week and land cover are not normalised); layer ratios from the training days'
CAMS targets. A cache whose identity (spec, catalog, dates) matches is reused; another is
refused unless ``overwrite``; an interrupted run resumes from the days already written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aprior import __version__
from aprior._io import atomic_path
from aprior.errors import ConfigError, InputFileError, OutputExistsError
from aprior.grids.grid import Grid
from aprior.grids.levels import DEFAULT_LEVELS_M, Levels
from aprior.grids.tiling import ALIGN, PAPER_STRIDE, PATCH_SIZE, Patch, PatchTiling
from aprior.inputs.era5 import (
    DEFAULT_PRESSURE_LEVELS_HPA,
    PRESSURE_LEVEL_VARIABLES,
    SINGLE_LEVEL_VARIABLES,
)
from aprior.models.dacno2.catalog import DataCatalog, as_date, grid_to_dict, same_identity
from aprior.models.dacno2.inputs import (
    EMIS_CHANNELS,
    GEO_CHANNELS,
    TEMPORAL_CHANNELS,
    VARIANTS,
    DayArrays,
    InputReader,
    StaticArrays,
    fit_static,
    read_static,
)
from aprior.models.dacno2.targets import LayerMeans, LayerRatios
from aprior.models.normalisation import ZScoreFitter, ZScoreStats

log = logging.getLogger(__name__)

FORMAT = "aprior-dacno2-prepared"
VERSION = 1
META = "meta.json"
PARTIAL = ".prepare-partial.json"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DataSpec:
    """What training data to prepare. Defaults follow the paper (S5P variant, Sect. 4.3).

    Attributes:
        variant: "s5p" (11-13 UTC means, DACNO2-S5P) or "daily" (daily means).
        levels_m: the model's heights (m above ground).
        patch: patch side in 2 km cells (multiple of 8).
        stride: largest patch stride (x, y) in cells; None scales the paper's (168, 160)
            for 256 to the patch size (rounded to multiples of 8).
        train_years: years whose days are split into training and validation; None =
            every year but the test year.
        test_year: the held-out year; None = the last year with data (if the data span a
            single year, no day is held out and a warning says so).
        val_fraction: fraction of the training years' days used for validation.
        eval_station_fraction: fraction of the station cells kept for evaluation.
        seed: seed of the day split and the station split.
        pressure_levels_hpa: the ERA5 pressure levels (surface first).
        exclude_dates: days left out of every split and not prepared, whatever their year:
            for example the orbit days of a closed-loop test world, so that no phase trains
            or validates on them (dates or ``YYYY-MM-DD`` strings; stored sorted).
        log_inputs: emission channels (of ``EMIS_CHANNELS``) z-scored on a log scale
            (:func:`~aprior.models.dacno2.inputs.log_scaled`); the paper z-scores them as
            they are. The prepared files are the same either way.
    """

    variant: str = "s5p"
    levels_m: tuple[float, ...] = DEFAULT_LEVELS_M
    patch: int = PATCH_SIZE
    stride: tuple[int, int] | None = None
    train_years: tuple[int, ...] | None = None
    test_year: int | None = None
    val_fraction: float = 0.2
    eval_station_fraction: float = 0.23
    seed: int = 0
    pressure_levels_hpa: tuple[float, ...] = tuple(DEFAULT_PRESSURE_LEVELS_HPA)
    exclude_dates: tuple[dt.date, ...] = ()
    log_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        unknown = sorted(set(self.log_inputs) - set(EMIS_CHANNELS))
        if unknown or isinstance(self.log_inputs, str):
            raise ConfigError(f"log_inputs must list emission channels ({', '.join(EMIS_CHANNELS)}), "
                              f"got {self.log_inputs!r}")
        set_(self, "log_inputs", tuple(c for c in EMIS_CHANNELS if c in self.log_inputs))
        try:
            set_(self, "exclude_dates", tuple(sorted({as_date(d) for d in self.exclude_dates or ()})))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid exclude_dates: {exc}") from None
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        try:
            set_(self, "levels_m", Levels(tuple(self.levels_m)).heights_m)
        except ValueError as exc:
            raise ConfigError(f"invalid levels_m: {exc}") from None
        if self.levels_m[0] != 0.0:
            raise ConfigError("levels_m must start at the surface (0 m): the layer ratios are "
                              "relative to it")
        set_(self, "pressure_levels_hpa", tuple(float(v) for v in self.pressure_levels_hpa))
        if self.train_years is not None:
            set_(self, "train_years", tuple(sorted({int(y) for y in self.train_years})))
            if self.test_year is not None and int(self.test_year) in self.train_years:
                raise ConfigError(f"the test year {self.test_year} is also a training year")
        if self.stride is not None:
            s = (self.stride, self.stride) if isinstance(self.stride, int) else self.stride
            set_(self, "stride", tuple(int(v) for v in s))
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.eval_station_fraction <= 1.0:
            raise ConfigError("eval_station_fraction must be in [0, 1]")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        try:
            self.tiling()
        except ValueError as exc:
            raise ConfigError(f"invalid patch or stride: {exc}") from None

    def tiling(self) -> PatchTiling:
        """The :class:`PatchTiling` of the spec."""
        if self.stride is not None:
            return PatchTiling(self.patch, self.stride)
        scaled = (max(ALIGN, min(self.patch, ALIGN * int(round(self.patch * s / PATCH_SIZE / ALIGN))))
                  for s in PAPER_STRIDE)
        return PatchTiling(self.patch, tuple(scaled))

    def to_dict(self) -> dict:
        out = asdict(self)
        for k in ("levels_m", "pressure_levels_hpa", "stride", "train_years", "log_inputs"):
            out[k] = None if out[k] is None else list(out[k])
        out["exclude_dates"] = [d.isoformat() for d in self.exclude_dates]
        for k in ("exclude_dates", "log_inputs"):  # absent when empty: caches and weights
            if not out[k]:                          # made before these fields stay valid
                del out[k]
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> DataSpec:
        try:
            kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(f"invalid data spec {dict(d)!r}: {exc}") from None


@dataclass(frozen=True)
class Split:
    """Days of the training, validation and test sets (sorted)."""

    train: tuple[dt.date, ...]
    val: tuple[dt.date, ...]
    test: tuple[dt.date, ...]
    train_years: tuple[int, ...]
    test_year: int | None


def split_days(days: Sequence[dt.date], spec: DataSpec) -> Split:
    """Hold out the test year; split the training years' days at random into train/val."""
    years = sorted({d.year for d in days})
    test_year = spec.test_year if spec.test_year is not None else (
        years[-1] if len(years) > 1 else None)
    if test_year is None:
        log.warning("the data span the single year %d: no test year is held out", years[0])
    train_years = spec.train_years or tuple(y for y in years if y != test_year)
    if test_year in train_years:
        raise ConfigError(f"the test year {test_year} is also a training year")
    pool = [d for d in days if d.year in train_years]
    if not pool:
        raise ConfigError(f"no day of the training years {list(train_years)} among the "
                          f"{len(days)} days ({days[0]}..{days[-1]}); set test_year or train_years")
    order = np.random.default_rng(spec.seed).permutation(len(pool))
    n_val = int(round(spec.val_fraction * len(pool)))
    if spec.val_fraction > 0 and len(pool) >= 2:
        n_val = min(max(n_val, 1), len(pool) - 1)
    val = sorted(pool[i] for i in order[:n_val])
    train = sorted(pool[i] for i in order[n_val:])
    test = [d for d in days if d.year == test_year]
    if test_year is not None and not test:
        log.warning("no day of the test year %d is prepared", test_year)
    return Split(tuple(train), tuple(val), tuple(test), tuple(train_years), test_year)


def met3d_names(levels_hpa: Iterable[float]) -> list[str]:
    """z-score names of the pressure-level channels, ``var@level`` in (var, level) order."""
    return [f"{v}@{lev:g}" for v in PRESSURE_LEVEL_VARIABLES for lev in levels_hpa]


# -- the cache ------------------------------------------------------------------------------
def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputFileError("is missing from the prepared cache; prepare again with "
                             "overwrite", path) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"is not a readable array file ({exc}); prepare again with "
                             "overwrite", path) from exc


def _day_path(root: Path, day: dt.date) -> Path:
    return root / "days" / f"{day.isoformat()}.npz"


class Prepared:
    """Read-only view of a prepared cache (see the module docstring).

    Attributes:
        root: the cache directory.
        spec, grid (2 km region grid), tiling, stats, ratios: as in ``meta.json``.
        dates, train_dates, val_dates, test_dates: ``list[datetime.date]``.
        station_cells, train_cells, eval_cells: sorted int64 flat 2 km cell indices
            (``row * nx + col``); ``DayArrays.stations`` follows ``station_cells``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        path = self.root / META
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError("holds no prepared DACNO2 data (no meta.json)", self.root) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"cannot be read ({exc})", path) from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise InputFileError("is not the metadata of a prepared DACNO2 cache", path)
        if meta.get("version") != VERSION:
            raise InputFileError(f"has version {meta.get('version')}, this aprior reads "
                                 f"{VERSION}; prepare again", path)
        self._meta = meta
        self.spec = DataSpec.from_dict(meta["spec"])
        self.grid = Grid(**meta["grid"])
        self.tiling = self.spec.tiling()
        self.stats = ZScoreStats.from_dict(meta["stats"])
        self.ratios = LayerRatios.from_dict(meta["ratios"])
        split = meta["split"]
        self.dates = [as_date(d) for d in meta["dates"]]
        self.train_dates = [as_date(d) for d in split["train"]]
        self.val_dates = [as_date(d) for d in split["val"]]
        self.test_dates = [as_date(d) for d in split["test"]]
        st = meta["stations"]
        self.station_cells = np.asarray(st["cells"], dtype=np.int64)
        self.train_cells = np.asarray(st["train_cells"], dtype=np.int64)
        self.eval_cells = np.asarray(st["eval_cells"], dtype=np.int64)
        self._static: StaticArrays | None = None
        missing = [d for d in self.dates if not _day_path(self.root, d).is_file()]
        if missing:
            raise InputFileError(f"is incomplete: {len(missing)} day files are missing (first "
                                 f"{missing[0]}); prepare again with overwrite", self.root)

    @property
    def synthetic(self) -> bool:
        return bool(self._meta["catalog"].get("synthetic"))

    @property
    def patches(self) -> list[Patch]:
        """The 2 km patches of the region grid, in dataset order."""
        return self.tiling.patches(self.grid)

    def metadata(self) -> dict:
        """JSON-able: spec, grid, split, stats, ratios, stations, channels, catalog."""
        return json.loads(json.dumps(self._meta))

    def static(self) -> StaticArrays:
        if self._static is None:
            z = _load_npz(self.root / "static.npz")
            self._static = StaticArrays(z["emis"], z["geo"])
        return self._static

    def day(self, date: dt.date | str) -> DayArrays:
        """One day's arrays in physical units over the full region."""
        day = as_date(date)
        if day not in self.dates:
            raise KeyError(f"{day} is not among the prepared days")
        z = _load_npz(_day_path(self.root, day))
        try:
            out = DayArrays(day, z["met2d"], z["met3d"], z["temporal"], z["cams"], z["stations"])
        except (KeyError, ValueError) as exc:
            raise InputFileError(f"does not hold one day's arrays ({exc}); prepare again with "
                                 "overwrite", _day_path(self.root, day)) from exc
        ny16, nx16 = self.grid.ny // 8, self.grid.nx // 8
        if out.met2d.shape[-2:] != (ny16, nx16) or out.stations.size != self.station_cells.size:
            raise InputFileError("does not match the cache's grid or stations; prepare again "
                                 "with overwrite", _day_path(self.root, day))
        return out


def open_prepared(cache_dir: str | os.PathLike[str]) -> Prepared:
    """Open a complete prepared cache (no catalog needed)."""
    return Prepared(cache_dir)


def _differences(old: Mapping, new: Mapping) -> str:
    parts = []
    if old.get("spec") != new["spec"]:
        keys = sorted(k for k in new["spec"] if old.get("spec", {}).get(k) != new["spec"][k])
        parts.append(f"settings ({', '.join(keys)})")
    if not same_identity(old.get("catalog", {}), new["catalog"]):
        parts.append("input data")
    if old.get("dates") != new["dates"]:
        parts.append("dates")
    return ", ".join(parts) or "format"


def _clear(root: Path) -> None:
    for name in (META, PARTIAL, "static.npz"):
        (root / name).unlink(missing_ok=True)
    if (root / "days").is_dir():
        for f in (root / "days").glob("*.npz"):
            f.unlink()
        if not any((root / "days").iterdir()):
            (root / "days").rmdir()


def _cache_state(root: Path, identity: dict, overwrite: bool) -> str:
    """"complete" (reuse), "resume" or "fresh"; refuses other data unless ``overwrite``."""
    for name, state in ((META, "complete"), (PARTIAL, "resume")):
        path = root / name
        if not path.is_file():
            continue
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            old = old.get("identity", {}) if name == META else old
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            old = {}
        if old.get("spec") == identity["spec"] and old.get("dates") == identity["dates"] \
                and same_identity(old.get("catalog", {}), identity["catalog"]):
            return state
        if not overwrite:
            raise OutputExistsError(f"holds prepared data of other {_differences(old, identity)}; "
                                    "pass overwrite=True (--overwrite) to replace it", root)
        log.info("replacing the prepared data in %s", root)
        _clear(root)
        return "fresh"
    if root.is_dir() and any(root.iterdir()):
        raise OutputExistsError("is not empty and holds no prepared DACNO2 data; choose an empty "
                                "or new directory", root)
    return "fresh"


def prepare(catalog: DataCatalog, spec: DataSpec, cache_dir: str | os.PathLike[str], *,
            dates: Iterable[dt.date | str] | None = None, progress: Progress | None = None,
            overwrite: bool = False) -> Prepared:
    """Prepare (or reuse) the training data of ``catalog`` for ``spec`` in ``cache_dir``.

    Args:
        catalog: the inputs (:func:`aprior.models.dacno2.catalog.open_catalog`).
        spec: what to prepare.
        cache_dir: the cache directory (created; must be empty, or hold a cache).
        dates: the days; default every day the catalog has complete.
        progress: ``progress(what, done, total)`` after each day.
        overwrite: replace a cache of other data or settings.

    Raises:
        InputFileError: a file is missing for a date or unreadable.
        OutputExistsError: ``cache_dir`` holds something else.
    """
    days = sorted({as_date(d) for d in dates}) if dates is not None else catalog.dates()
    if spec.exclude_dates:
        left_out = set(spec.exclude_dates)
        n_before = len(days)
        days = [d for d in days if d not in left_out]
        log.info("left out %d excluded days of %d", n_before - len(days), n_before)
    if not days:
        raise ConfigError("no day to prepare")
    catalog.check_dates(days)
    split = split_days(days, spec)
    identity = {"spec": spec.to_dict(), "catalog": catalog.identity(),
                "dates": [d.isoformat() for d in days]}
    root = Path(cache_dir)
    state = _cache_state(root, identity, overwrite)
    if state == "complete":
        log.info("reusing the prepared data in %s", root)
        return Prepared(root)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / PARTIAL) as tmp:
        tmp.write_text(json.dumps(identity))
    (root / "days").mkdir(exist_ok=True)
    reader = InputReader(catalog, catalog.grid, variant=spec.variant, levels_m=spec.levels_m,
                         levels_hpa=spec.pressure_levels_hpa)
    cells, train_cells, eval_cells = reader.station_split(sorted({d.year for d in days}),
                                                          spec.eval_station_fraction, spec.seed)
    if state == "resume" and (root / "static.npz").is_file():
        z = _load_npz(root / "static.npz")
        static = StaticArrays(z["emis"], z["geo"])
    else:
        static = read_static(catalog, catalog.grid)
        _save_npz(root / "static.npz", {"emis": static.emis, "geo": static.geo})
    fitter, means = ZScoreFitter(), LayerMeans(spec.levels_m)
    train = set(split.train)
    m3 = met3d_names(spec.pressure_levels_hpa)
    for k, day in enumerate(days):
        path = _day_path(root, day)
        if state == "resume" and path.is_file():
            z = _load_npz(path)
            arrays = DayArrays(day, z["met2d"], z["met3d"], z["temporal"], z["cams"], z["stations"])
        else:
            arrays = reader.day(day, cells)
            _save_npz(path, {"met2d": arrays.met2d, "met3d": arrays.met3d,
                             "temporal": arrays.temporal, "cams": arrays.cams,
                             "stations": arrays.stations})
        if day in train:
            for c, name in enumerate(SINGLE_LEVEL_VARIABLES):
                fitter.update_values(name, arrays.met2d[:, c])
            flat = arrays.met3d.reshape(arrays.met3d.shape[0], len(m3), *arrays.met3d.shape[-2:])
            for c, name in enumerate(m3):
                fitter.update_values(name, flat[:, c])
            fitter.update_values("flights", arrays.temporal[2:])
            means.update(arrays.cams)
        if progress is not None:
            progress("prepare", k + 1, len(days))
    fit_static(fitter, static, spec.log_inputs)
    try:
        ratios = means.ratios()
    except ValueError as exc:
        raise InputFileError(f"the CAMS targets of the training days give no layer ratios "
                             f"({exc})", catalog.root) from exc
    meta = {
        "format": FORMAT, "version": VERSION, "aprior_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "identity": identity, "spec": identity["spec"], "catalog": identity["catalog"],
        "grid": grid_to_dict(catalog.grid), "dates": identity["dates"],
        "split": {"train": [d.isoformat() for d in split.train],
                  "val": [d.isoformat() for d in split.val],
                  "test": [d.isoformat() for d in split.test],
                  "train_years": list(split.train_years), "test_year": split.test_year,
                  "unit": "day"},
        "stats": fitter.result().to_dict(), "ratios": ratios.to_dict(),
        "stations": {"cells": cells.tolist(), "train_cells": train_cells.tolist(),
                     "eval_cells": eval_cells.tolist(),
                     "means": "11-13 UTC" if spec.variant == "s5p" else "daily"},
        "channels": {"met2d": list(SINGLE_LEVEL_VARIABLES), "met3d": list(PRESSURE_LEVEL_VARIABLES),
                     "pressure_levels_hpa": list(spec.pressure_levels_hpa),
                     "emis": list(EMIS_CHANNELS), "geo": list(GEO_CHANNELS),
                     "temporal": list(TEMPORAL_CHANNELS)},
        "synthetic": catalog.synthetic,
    }
    if catalog.synthetic:
        from aprior.inputs.world import WARNING

        meta["warning"] = WARNING
    with atomic_path(root / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (root / PARTIAL).unlink(missing_ok=True)
    log.info("prepared %d days in %s (%d train, %d val, %d test)", len(days), root,
             len(split.train), len(split.val), len(split.test))
    return Prepared(root)


__all__ = ["DataSpec", "Prepared", "Split", "met3d_names", "open_prepared", "prepare",
           "split_days"]
