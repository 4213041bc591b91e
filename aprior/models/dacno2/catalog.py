"""Where the DACNO2 training inputs are: a synthetic world or a directory of real data.

:func:`open_catalog` takes either

- a synthetic world made by ``aprior synth`` (a directory with ``manifest.json``): the
  files are found through the manifest and the region is the world's 2 km grid; or
- a directory of real data with an ``aprior-data.toml`` that names, per input kind, glob
  patterns relative to the directory (see ``docs/training-data.md``) and optionally a
  region (a name, ``"w,s,e,n"`` or ``[w, s, e, n]``; default the DACNO2 domain), whose
  2 km grid is snapped to the 16 km lattice (:func:`aprior.grids.grid.subdomain`).

Dated kinds (ERA5 single and pressure levels, CAMS European NO2) are dated per file: from
the JSON request that ``aprior fetch`` stores next to each download (``year``/``month``/
``day`` lists or a ``date`` range), otherwise from the first date in the file name
(``20230115``, ``2023-01-15``, a month ``2023-01`` or ``202301`` meaning every day of the
month, a year meaning every day of the year). EEA values and metadata are per year: a
``{year}`` in their pattern gives the year; without it every matching file serves every
year. Asking for a date a kind has no file for raises :class:`InputFileError` naming the
date and the kind.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aprior.errors import ConfigError, InputFileError
from aprior.grids.grid import Grid, subdomain, window_offset
from aprior.inputs.static import StaticPaths

log = logging.getLogger(__name__)

CONFIG_NAME = "aprior-data.toml"

#: kinds with one or more files per day, and how messages call them
DAILY_KINDS = {"era5_single": "ERA5 single-level", "era5_pressure": "ERA5 pressure-level",
               "cams_eu": "CAMS European NO2"}
#: kinds that are read for a whole year
YEARLY_KINDS = {"eea_values": "EEA NO2 values", "eea_metadata": "EEA station metadata"}
#: time-independent kinds
STATIC_KINDS = ("cams_glob_ant", "roads", "population", "night_light", "elevation", "corine",
                "flights")
KINDS = (*DAILY_KINDS, *YEARLY_KINDS, *STATIC_KINDS)

#: our kind -> the kind in a synthetic world's manifest
_MANIFEST_KINDS = {"era5_single": "era5_single_levels", "era5_pressure": "era5_pressure_levels",
                   "cams_eu": "cams_eu_no2"}

_DAY = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_]?(\d\d)[-_]?(\d\d)(?!\d)")
_MONTH = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_]?(\d\d)(?!\d)")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


@dataclass(frozen=True)
class DataCatalog:
    """The input files of DACNO2 training and generation, and the region grid.

    Attributes:
        root: the data directory (or the synthetic world).
        grid: the 2 km EPSG:3035 region grid (sides multiples of 16 km).
        region: what the region is (a name or a box), for messages and metadata.
        synthetic: True for a synthetic world (everything made from it says so).
        daily: kind -> date -> files holding that day (a file may hold many days).
        eea_values: year -> value files; the key None holds files serving every year.
        eea_metadata: year -> station metadata CSV; key None as above.
        static: the static layers' files (:class:`StaticPaths`).
        flights: the EUROCONTROL daily traffic CSV.
        patterns: kind -> the glob patterns (real data) or "manifest" (synthetic).
        eea_utc_offset_hours: offset of zone-less EEA time stamps from UTC.
        seed: the synthetic world's seed (None for real data).
    """

    root: Path
    grid: Grid
    region: str
    synthetic: bool
    daily: Mapping[str, Mapping[dt.date, tuple[Path, ...]]]
    eea_values: Mapping[int | None, tuple[Path, ...]]
    eea_metadata: Mapping[int | None, Path]
    static: StaticPaths
    flights: Path
    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    eea_utc_offset_hours: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.grid.nx % 8 or self.grid.ny % 8:
            raise ValueError(f"the region grid's sides must divide by 8 cells, got {self.grid.shape}")
        missing = [k for k in DAILY_KINDS if k not in self.daily]
        if missing:
            raise ValueError(f"daily kinds {missing} are missing")

    # -- dates ----------------------------------------------------------------------
    def dates(self, kind: str | None = None) -> list[dt.date]:
        """Days with files of ``kind``; by default days with all the dated kinds."""
        if kind is not None:
            return sorted(self.daily[kind])
        common = set.intersection(*(set(v) for v in self.daily.values()))
        return sorted(common)

    @property
    def years(self) -> list[int]:
        """Years with at least one day of every dated kind."""
        return sorted({d.year for d in self.dates()})

    def _where(self, kind: str) -> str:
        pats = self.patterns.get(kind, ())
        return "" if not pats or pats == ("manifest",) else f" (pattern {', '.join(pats)})"

    def files_for(self, kind: str, date: dt.date | str) -> tuple[Path, ...]:
        """The files of a dated kind holding ``date``.

        Raises:
            InputFileError: none; the message names the date, the kind and the directory.
        """
        if kind not in DAILY_KINDS:
            raise ValueError(f"{kind!r} is not a dated kind ({', '.join(DAILY_KINDS)})")
        day = as_date(date)
        files = self.daily[kind].get(day)
        if not files:
            have = self.dates(kind)
            span = f"; files cover {have[0]}..{have[-1]}" if have else "; there are none"
            raise InputFileError(f"no {DAILY_KINDS[kind]} file for {day}{self._where(kind)}{span}",
                                 self.root)
        return files

    def check_dates(self, dates: Iterable[dt.date]) -> None:
        """Raise InputFileError for the first date some dated kind has no file for."""
        for day in dates:
            for kind in DAILY_KINDS:
                self.files_for(kind, day)

    # -- stations -------------------------------------------------------------------
    @property
    def has_stations(self) -> bool:
        return bool(self.eea_values) and bool(self.eea_metadata)

    def eea_for(self, year: int) -> tuple[tuple[Path, ...], Path] | None:
        """``(value files, metadata file)`` for a year; None when the catalog has no EEA
        data at all.

        Raises:
            InputFileError: the catalog has EEA data, but none for ``year``.
        """
        if not self.has_stations:
            return None
        values = self.eea_values.get(year) or self.eea_values.get(None)
        meta = self.eea_metadata.get(year) or self.eea_metadata.get(None)
        if not values:
            raise InputFileError(f"no {YEARLY_KINDS['eea_values']} files for {year}"
                                 f"{self._where('eea_values')}", self.root)
        if meta is None:
            raise InputFileError(f"no {YEARLY_KINDS['eea_metadata']} file for {year}"
                                 f"{self._where('eea_metadata')}", self.root)
        return values, meta

    # -- identity -------------------------------------------------------------------
    def all_files(self) -> list[Path]:
        """Every input file, sorted, without duplicates."""
        files: set[Path] = set()
        for by_date in self.daily.values():
            for fs in by_date.values():
                files.update(fs)
        for fs in self.eea_values.values():
            files.update(fs)
        files.update(self.eea_metadata.values())
        s = self.static
        files.update((s.emissions, s.roads, *s.population, *s.nightlight, *s.elevation,
                      *s.landcover, self.flights))
        return sorted(files)

    def identity(self) -> dict:
        """A JSON-able description that changes when the inputs do: the region grid, the
        static options and a digest of every file's path (relative to the root) and size.
        ``root`` is recorded but not meant for comparison (a moved directory is the same
        data); compare with :func:`same_identity`."""
        h = hashlib.sha256()
        for p in self.all_files():
            try:
                rel = p.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                rel = str(p)
            h.update(f"{rel}\t{p.stat().st_size}\n".encode())
        s = self.static
        return {"root": str(self.root.resolve()), "synthetic": self.synthetic, "seed": self.seed,
                "region": self.region, "grid": grid_to_dict(self.grid),
                "static_options": {"road_types": None if s.road_types is None else list(s.road_types),
                                   "population_is_density": s.population_is_density,
                                   "min_coverage": s.min_coverage},
                "eea_utc_offset_hours": self.eea_utc_offset_hours,
                "n_files": len(self.all_files()), "files_sha256": h.hexdigest()}

    def describe(self) -> str:
        what = "synthetic world" if self.synthetic else "data directory"
        days = self.dates()
        span = f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "no complete day"
        return (f"{what} {self.root}: region {self.region}, {self.grid.ny} x {self.grid.nx} "
                f"cells of 2 km, {span}")


def same_identity(a: Mapping, b: Mapping) -> bool:
    """Whether two :meth:`DataCatalog.identity` dicts describe the same inputs."""
    return {k: v for k, v in a.items() if k != "root"} == {k: v for k, v in b.items() if k != "root"}


def grid_to_dict(grid: Grid) -> dict:
    return {"crs": grid.crs, "x0": grid.x0, "y0": grid.y0, "dx": grid.dx, "dy": grid.dy,
            "nx": grid.nx, "ny": grid.ny}


def as_date(value: object) -> dt.date:
    """A ``datetime.date`` from a date, datetime, datetime64 or ISO string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConfigError(f"not a date YYYY-MM-DD: {value!r}") from None


# -- dating files -------------------------------------------------------------------
def _month_days(year: int, month: int) -> list[dt.date]:
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def _dates_from_request(request: Mapping) -> list[dt.date] | None:
    """Days an ``aprior fetch`` (CDS/ADS) request covers, or None if it says nothing."""
    try:
        if "date" in request:
            out = []
            for item in request["date"]:
                first, _, last = str(item).partition("/")
                a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
                out += [a + dt.timedelta(days=k) for k in range((b - a).days + 1)]
            return out
        if "year" in request and "month" in request:
            out = []
            for y in request["year"]:
                for m in request["month"]:
                    days = _month_days(int(y), int(m))
                    if "day" in request:
                        wanted = {int(d) for d in request["day"]}
                        days = [d for d in days if d.day in wanted]
                    out += days
            return out
    except (TypeError, ValueError):
        return None
    return None


def file_dates(path: Path) -> list[dt.date]:
    """The days a file holds, from its ``aprior fetch`` sidecar or its name ([] if none)."""
    sidecar = path.with_suffix(".json")
    if sidecar.is_file() and sidecar != path:
        try:
            doc = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("request"), dict):
            found = _dates_from_request(doc["request"])
            if found:
                return found
    name = path.name
    for m in _DAY.finditer(name):
        try:
            return [dt.date(int(m[1]), int(m[2]), int(m[3]))]
        except ValueError:
            continue
    for m in _MONTH.finditer(name):
        if 1 <= int(m[2]) <= 12:
            return _month_days(int(m[1]), int(m[2]))
    m = _YEAR.search(name)
    if m:
        y = int(m[1])
        return [dt.date(y, 1, 1) + dt.timedelta(days=k) for k in range(366 if calendar.isleap(y) else 365)]
    return []


def _by_date(files: Iterable[Path]) -> dict[dt.date, tuple[Path, ...]]:
    out: dict[dt.date, list[Path]] = {}
    for f in sorted(files):
        days = file_dates(f)
        if not days:
            log.warning("cannot tell the dates of %s from its name; ignored", f)
        for d in days:
            out.setdefault(d, []).append(f)
    return {d: tuple(v) for d, v in sorted(out.items())}


# -- synthetic world ----------------------------------------------------------------
def _from_world(root: Path, region: object | None) -> DataCatalog:
    from aprior.inputs.world import open_world

    world = open_world(root)
    grid = world.grid
    name = f"synthetic {world.manifest['region']['name']} {tuple(world.bbox)}"
    if region is not None:
        grid, name = _sub_grid(region, grid, root), str(region)
    daily = {k: {as_date(d): (p,) for d, p in world.dated(mk).items()}
             for k, mk in _MANIFEST_KINDS.items()}
    values: dict[int | None, list[Path]] = {}
    meta: dict[int | None, Path] = {}
    for e in world.manifest["files"]:
        if e["kind"] == "eea_values" and e.get("date"):
            values.setdefault(int(str(e["date"])[:4]), []).append(root / e["path"])
        elif e["kind"] == "eea_metadata" and e.get("date"):
            meta[int(str(e["date"])[:4])] = root / e["path"]
    static = StaticPaths(emissions=world.file("cams_glob_ant"), roads=world.file("roads"),
                         population=world.file("population"), nightlight=world.file("night_light"),
                         elevation=world.file("elevation"), landcover=world.file("corine"),
                         population_is_density=True)
    return DataCatalog(root=root, grid=grid, region=name, synthetic=True, daily=daily,
                       eea_values={y: tuple(sorted(v)) for y, v in values.items()},
                       eea_metadata=meta, static=static, flights=world.file("flights"),
                       patterns={k: ("manifest",) for k in KINDS}, seed=world.seed)


def _sub_grid(region: object, within: Grid, root: Path) -> Grid:
    grid = subdomain(region)
    try:
        window_offset(within, grid)
    except ValueError:
        raise ConfigError(f"region {region!r} is not inside the data's region grid "
                          f"{within.bounds}", root) from None
    return grid


# -- real data ----------------------------------------------------------------------
def _glob_regex(pattern: str) -> re.Pattern:
    """A regex matching the relative paths a glob pattern with ``{year}`` matches."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("{year}", i):
            out.append(r"(?P<year>\d{4})")
            i += 6
        elif pattern.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif pattern[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^/]")
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i)
            out.append(pattern[i:j + 1] if j > i else re.escape("["))
            i = j + 1 if j > i else i + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _glob(root: Path, pattern: str) -> list[Path]:
    if os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise ConfigError(f"pattern {pattern!r} must be relative to the data directory, "
                          "without '..'", root / CONFIG_NAME)
    return sorted(p for p in root.glob(pattern.replace("{year}", "[0-9][0-9][0-9][0-9]"))
                  if p.is_file() and not p.name.startswith("."))


def _patterns(files: Mapping, root: Path) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(files) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown input kind(s) {', '.join(unknown)} in [files]; known: "
                          f"{', '.join(KINDS)}", root / CONFIG_NAME)
    out = {}
    for kind, value in files.items():
        pats = (value,) if isinstance(value, str) else value
        if not isinstance(pats, list | tuple) or not pats or not all(isinstance(p, str) for p in pats):
            raise ConfigError(f"[files] {kind} must be a glob pattern or a list of them",
                              root / CONFIG_NAME)
        out[kind] = tuple(pats)
    return out


def _match(root: Path, kind: str, pats: tuple[str, ...]) -> list[Path]:
    found = sorted({p for pat in pats for p in _glob(root, pat)})
    if not found:
        raise InputFileError(f"no file matches {', '.join(repr(p) for p in pats)} for {kind}",
                             root)
    return found


def _yearly(root: Path, pats: tuple[str, ...]) -> dict[int | None, list[Path]]:
    out: dict[int | None, list[Path]] = {}
    for pat in pats:
        rx = _glob_regex(pat) if "{year}" in pat else None
        for p in _glob(root, pat):
            year = None
            if rx is not None:
                m = rx.match(p.relative_to(root).as_posix())
                if m is None:
                    continue
                year = int(m["year"])
            out.setdefault(year, []).append(p)
    return out


def _from_toml(root: Path, region: object | None) -> DataCatalog:
    from aprior.config import load_toml

    cfg_path = root / CONFIG_NAME
    cfg = load_toml(cfg_path)
    unknown = sorted(set(cfg) - {"region", "files", "static", "eea"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; expected region, [files], "
                          "[static], [eea]", cfg_path)
    pats = _patterns(cfg.get("files", {}), root)
    required = [k for k in (*DAILY_KINDS, *STATIC_KINDS) if k not in pats]
    if required:
        raise ConfigError(f"[files] lacks the input kind(s) {', '.join(required)}", cfg_path)
    reg = region if region is not None else cfg.get("region", "domain")
    if isinstance(reg, list):
        reg = tuple(reg)
    elif isinstance(reg, str) and reg.lower().endswith((".geojson", ".json")) \
            and not os.path.isabs(reg):
        reg = str(root / reg)  # a region file next to the data
    grid = subdomain(reg)
    daily = {k: _by_date(_match(root, k, pats[k])) for k in DAILY_KINDS}
    one = {k: _match(root, k, pats[k]) for k in STATIC_KINDS}
    for k in ("cams_glob_ant", "roads", "flights"):
        if len(one[k]) != 1:
            raise ConfigError(f"[files] {k} must match exactly one file, matches {len(one[k])}",
                              cfg_path)
    opts = dict(cfg.get("static", {}))
    bad = sorted(set(opts) - {"road_types", "population_is_density", "min_coverage"})
    if bad:
        raise ConfigError(f"unknown key(s) {', '.join(bad)} in [static]", cfg_path)
    try:
        static = StaticPaths(emissions=one["cams_glob_ant"][0], roads=one["roads"][0],
                             population=one["population"], nightlight=one["night_light"],
                             elevation=one["elevation"], landcover=one["corine"], **opts)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid [static] options: {exc}", cfg_path) from None
    values = _yearly(root, pats["eea_values"]) if "eea_values" in pats else {}
    metas = _yearly(root, pats["eea_metadata"]) if "eea_metadata" in pats else {}
    if bool(values) != bool(metas):
        raise ConfigError("give both eea_values and eea_metadata, or neither", cfg_path)
    if any(len(v) != 1 for v in metas.values()):
        raise ConfigError("eea_metadata must match one file (per year with {year})", cfg_path)
    eea = dict(cfg.get("eea", {}))
    if set(eea) - {"utc_offset_hours"}:
        raise ConfigError("[eea] knows only utc_offset_hours", cfg_path)
    return DataCatalog(root=root, grid=grid, region=str(reg), synthetic=False, daily=daily,
                       eea_values={y: tuple(v) for y, v in values.items()},
                       eea_metadata={y: v[0] for y, v in metas.items()}, static=static,
                       flights=one["flights"][0], patterns=pats,
                       eea_utc_offset_hours=float(eea.get("utc_offset_hours", 1.0)))


def open_catalog(path: str | os.PathLike[str], *, region: object | None = None) -> DataCatalog:
    """Open a synthetic world or a real-data directory (see the module docstring).

    Args:
        path: the directory.
        region: optional region overriding the data's own (a name, ``"w,s,e,n"``, a box);
            in a synthetic world it must lie inside the world's grid.

    Raises:
        InputFileError: the directory is neither, or a kind matches no file.
        ConfigError: the ``aprior-data.toml`` is invalid.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputFileError("is not a directory", root)
    if (root / "manifest.json").is_file():
        cat = _from_world(root, region)
    elif (root / CONFIG_NAME).is_file():
        cat = _from_toml(root, region)
    else:
        raise InputFileError(f"holds neither a synthetic world (manifest.json) nor a "
                             f"{CONFIG_NAME} naming the input files", root)
    if not cat.dates():
        raise InputFileError("has no day with ERA5 single-level, ERA5 pressure-level and CAMS "
                             "files all present", root)
    log.info("%s", cat.describe())
    return cat
