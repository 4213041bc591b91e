"""Finding and reading the PM2.5 files DeepCAMS trains and evaluates on.

A *data directory* is either a synthetic world (``manifest.json`` marked synthetic: its
``pm25_geoscf`` and ``pm25_eac4`` files) or any directory of netCDF files, searched
recursively: files with ``PM25_RH35_GCC`` are GEOS-CF (hourly 0.25 degree, the training
truth), files with ``pm2p5`` are CAMS EAC4 (3-hourly 0.75 degree, used by the chained
evaluation when present); other files are ignored.

:class:`FrameStore` serves hourly GEOS-CF frames on the node grid (lat 90..-90, lon 0..)
and their 3x coarsening, reading whole files and keeping the last ``cache_files`` of them.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from aprior.errors import InputFileError, ProfileFieldError
from aprior.inputs.pm25 import PM25Field, concat_pm25, hour_labels, read_eac4_pm25, read_geoscf_pm25
from aprior.models.deepcams.data import coarsen_nodes, field_to_nodes

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class PM25Data:
    """The PM2.5 files of a data directory.

    Attributes:
        root: the directory.
        synthetic: True for a synthetic world (everything made from it is SYNTHETIC).
        geoscf_files: GEOS-CF(-like) files, hourly 0.25 degree.
        eac4_files: EAC4(-like) files, 3-hourly 0.75 degree (may be empty).
        description: one line saying what the data is (with "SYNTHETIC world ..." first
            for a synthetic world).
        model_files: hourly 0.75 degree model files in the EAC4 layout (a synthetic PM2.5
            world's ``pm25_model``; inputs for training on model-made coarse frames).
    """

    root: Path
    synthetic: bool
    geoscf_files: tuple[Path, ...]
    eac4_files: tuple[Path, ...]
    description: str
    model_files: tuple[Path, ...] = ()


def _variables(path: Path) -> set[str]:
    try:
        with xr.open_dataset(path, decode_times=False) as ds:
            return {str(v) for v in ds.variables}
    except Exception as exc:  # netCDF backends raise many kinds
        log.debug("skipping %s: not a readable netCDF file (%s)", path, exc)
        return set()


def open_pm25_data(path: PathLike) -> PM25Data:
    """Find the GEOS-CF and EAC4 files of a data directory (see the module docstring).

    Raises:
        InputFileError: the directory does not exist or holds no GEOS-CF PM2.5 file.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputFileError("is not a directory of PM2.5 data (GEOS-CF files or a synthetic "
                             "world made by 'aprior synth')", root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"cannot read the manifest ({exc})", manifest) from exc
        if isinstance(doc, dict) and doc.get("synthetic") is True:
            files = sorted(doc.get("files", []), key=lambda e: (e.get("date") or "", e["path"]))
            geo = tuple(root / e["path"] for e in files if e.get("kind") == "pm25_geoscf")
            eac = tuple(root / e["path"] for e in files if e.get("kind") == "pm25_eac4")
            mod = tuple(root / e["path"] for e in files if e.get("kind") == "pm25_model")
            desc = (f"SYNTHETIC world {root} (seed {doc.get('seed')}, "
                    f"{doc.get('period', {}).get('start')} to {doc.get('period', {}).get('end')})")
            if not geo:
                raise InputFileError("the synthetic world has no global GEOS-CF-like PM2.5 files; "
                                     "make it with 'aprior synth --pm25-hours -1'", root)
            return PM25Data(root, True, geo, eac, desc, mod)
    geo_l, eac_l = [], []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in (".nc", ".nc4", ".netcdf") or not p.is_file():
            continue
        names = {v.lower() for v in _variables(p)}
        if "pm25_rh35_gcc" in names:
            geo_l.append(p)
        elif "pm2p5" in names:
            eac_l.append(p)
    if not geo_l:
        raise InputFileError("holds no GEOS-CF PM2.5 file (netCDF with PM25_RH35_GCC)", root)
    return PM25Data(root, False, tuple(geo_l), tuple(eac_l),
                    f"{len(geo_l)} GEOS-CF files under {root}")


def file_hours(path: Path) -> np.ndarray:
    """The hour labels (datetime64[h]) of a PM2.5 file's time coordinate (``time`` or
    ``valid_time``): on-the-hour stamps as they are, GEOS-CF HH:30 hourly means labelled HH
    (:func:`aprior.inputs.pm25.hour_labels`; other minutes are refused)."""
    try:
        with xr.open_dataset(path) as ds:
            name = next((n for n in ("time", "valid_time") if n in ds.variables), None)
            if name is None:
                raise InputFileError("has no time coordinate", path)
            stamps = np.asarray(ds[name].values)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(f"is not a readable netCDF file ({exc})", path) from exc
    return hour_labels(stamps, str(path))


class FrameStore:
    """Hourly GEOS-CF frames on the node grid, read on demand and cached by file.

    Args:
        files: GEOS-CF(-like) files (global, hourly, any number of hours each).
        cache_files: how many whole files to keep in memory (a synthetic-world day is
            about 100 MB).
        max_coarse: how many coarsened frames to keep.
    """

    def __init__(self, files: tuple[Path, ...] | list[Path], cache_files: int = 8,
                 max_coarse: int = 4096, model_files: tuple[Path, ...] | list[Path] = ()) -> None:
        self.files = tuple(Path(f) for f in files)
        self.model_files = tuple(Path(f) for f in model_files)
        self._model_where = {h: (i, j) for i, f in enumerate(self.model_files)
                             for j, h in enumerate(file_hours(f))}
        self._models: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_files = max(1, int(cache_files))
        self.max_coarse = max(1, int(max_coarse))
        self._where: dict[np.datetime64, tuple[int, int]] = {}
        for i, f in enumerate(self.files):
            for j, h in enumerate(file_hours(f)):
                if h in self._where:
                    raise InputFileError(f"hour {h} is also in {self.files[self._where[h][0]].name}; "
                                         "each GEOS-CF hour must come from one file", f)
                self._where[h] = (i, j)
        if not self._where:
            raise InputFileError("the GEOS-CF files hold no time step", self.files[0] if self.files else None)
        self.hours = np.array(sorted(self._where), dtype="datetime64[h]")
        self._files: OrderedDict[int, np.ndarray] = OrderedDict()
        self._coarse: OrderedDict[np.datetime64, np.ndarray] = OrderedDict()

    @property
    def days(self) -> np.ndarray:
        """The distinct days (datetime64[D]) with at least one hour."""
        return np.unique(self.hours.astype("datetime64[D]"))

    def _file(self, i: int) -> np.ndarray:
        if i in self._files:
            self._files.move_to_end(i)
            return self._files[i]
        field = read_geoscf_pm25(self.files[i])
        try:
            nodes = field_to_nodes(field)
        except ProfileFieldError as exc:
            raise InputFileError(exc.message, self.files[i]) from exc
        self._files[i] = nodes
        while len(self._files) > self.cache_files:
            self._files.popitem(last=False)
        return nodes

    def fine(self, hour: np.datetime64) -> np.ndarray:
        """The frame at ``hour``: ``(ny, nx)`` float32 ug m-3, node grid (0.25 deg: 721 x 1440)."""
        h = np.datetime64(hour, "h")
        if h not in self._where:
            raise InputFileError(f"the GEOS-CF data has no frame at {h}",
                                 self.files[0].parent if self.files else None)
        i, j = self._where[h]
        return self._file(i)[j]

    def coarse(self, hour: np.datetime64) -> np.ndarray:
        """The 3x coarsening of :meth:`fine` (0.75 deg: 241 x 480), float32 ug m-3."""
        h = np.datetime64(hour, "h")
        if h in self._coarse:
            self._coarse.move_to_end(h)
            return self._coarse[h]
        out = coarsen_nodes(self.fine(h)[None])[0]
        self._coarse[h] = out
        while len(self._coarse) > self.max_coarse:
            self._coarse.popitem(last=False)
        return out

    def has_model(self, hour: np.datetime64) -> bool:
        """True when a model-made coarse frame exists at ``hour``."""
        return np.datetime64(hour, "h") in self._model_where

    def model(self, hour: np.datetime64) -> np.ndarray:
        """The 0.75 degree model frame at ``hour`` (node grid, float32 ug m-3)."""
        i, j = self._model_where[np.datetime64(hour, "h")]
        if i not in self._models:
            field = read_eac4_pm25(self.model_files[i])
            try:
                self._models[i] = field_to_nodes(field)
            except ProfileFieldError as exc:
                raise InputFileError(exc.message, self.model_files[i]) from exc
            while len(self._models) > self.cache_files:
                self._models.popitem(last=False)
        self._models.move_to_end(i)
        return self._models[i][j]

    def frame(self, hour: np.datetime64, grid: str) -> np.ndarray:
        """:meth:`fine` for ``grid == "fine"``, :meth:`coarse` for ``"coarse"``."""
        return self.fine(hour) if grid == "fine" else self.coarse(hour)

    def __getstate__(self) -> dict:  # DataLoader workers start with empty caches
        state = dict(self.__dict__)
        state["_files"], state["_coarse"] = OrderedDict(), OrderedDict()
        state["_models"] = OrderedDict()
        return state


def read_eac4_files(files: list[Path] | tuple[Path, ...]) -> PM25Field:
    """Read and join EAC4 files (kg m-3 -> ug m-3); ProfileFieldError if none."""
    if not files:
        raise ProfileFieldError("no EAC4 file given")
    fields = [read_eac4_pm25(f) for f in files]
    try:
        return concat_pm25(fields)
    except ValueError as exc:
        raise InputFileError(f"cannot be joined with the other EAC4 files ({exc})", files[0]) from exc
