"""Writing a synthetic world's directory: the manifest, the READMEs, output checks.

The reader of the manifest (:func:`aprior.inputs.world.open_world`) lives on the data side.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aprior import __version__
from aprior._io import atomic_path, probe_writable
from aprior.errors import InputFileError, OutputExistsError
from aprior.inputs.world import MANIFEST_NAME, WARNING, open_world

log = logging.getLogger(__name__)

#: kind -> (format, what it stands for)
KINDS: dict[str, tuple[str, str]] = {
    "era5_single_levels": ("netcdf4", "ERA5 hourly single levels (CDS netCDF, new style)"),
    "era5_pressure_levels": ("netcdf4", "ERA5 hourly pressure levels (CDS netCDF, new style)"),
    "cams_eu_no2": ("netcdf4-classic", "CAMS European air-quality reanalysis, NO2 at 10 heights"),
    "eea_values": ("parquet", "EEA air-quality download service, hourly NO2 per sampling point"),
    "eea_metadata": ("csv", "EEA station metadata"),
    "population": ("geotiff", "GEOSTAT-like population grid, 1 km EPSG:3035 (inhabitants km-2)"),
    "corine": ("geotiff", "CORINE Land Cover raster, grid codes 1-44, EPSG:3035"),
    "night_light": ("geotiff", "VIIRS-like night lights, 30 arc-seconds (nW cm-2 sr-1)"),
    "elevation": ("geotiff", "MERIT-like DEM, 30 arc-seconds (m)"),
    "roads": ("geojson", "GRIP-like road lines with GP_RTP types"),
    "cams_glob_ant": ("netcdf4", "CAMS-GLOB-ANT anthropogenic NOx emissions, 0.1 degree"),
    "flights": ("csv", "Eurocontrol-like daily flights per country"),
    "pm25_geoscf": ("netcdf4", "GEOS-CF PM2.5 (PM25_RH35_GCC), hourly 0.25 degree, global"),
    "pm25_eac4": ("netcdf4", "CAMS global reanalysis EAC4 pm2p5, 3-hourly 0.75 degree, global"),
    "s5p_l2_no2": ("netcdf4", "Sentinel-5P TROPOMI L2 NO2 (OFFL, processor 2.6 layout)"),
    "truth_no2_daily": ("netcdf4", "TRUTH: daily-mean 3D NO2 (our CF profile field)"),
    "truth_no2_s5p": ("netcdf4", "TRUTH: 11-13 UTC mean 3D NO2 (our CF profile field)"),
    "truth_s5p_orbit": ("netcdf4", "TRUTH: true columns and partial columns per S5P pixel"),
    "truth_stations": ("netcdf4", "TRUTH: noise-free NO2 in the station cells and station errors"),
    "truth_static_2km": ("netcdf4", "TRUTH: the 2 km maps and emissions that drove the chemistry"),
    "truth_point_sources": ("csv", "TRUTH: point sources, true and inventory emissions"),
    "truth_cities": ("csv", "TRUTH: city centres and populations"),
    "readme": ("text", "what this directory is"),
}


@dataclass
class ManifestBuilder:
    """Collects the files of a world being written."""

    root: Path
    entries: list[dict] = field(default_factory=list)

    def add(self, path: Path, kind: str, *, date: str | None = None) -> Path:
        fmt, what = KINDS[kind]
        rel = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        self.entries.append({"path": rel, "kind": kind, "format": fmt, "stands_for": what,
                             "truth": rel.startswith("truth/"), "date": date,
                             "bytes": os.path.getsize(path)})
        return Path(path)

    def write(self, config: dict, info: dict) -> Path:
        doc = {
            "synthetic": True,
            "warning": WARNING,
            "generator": "aprior synth",
            "aprior_version": __version__,
            "seed": config["seed"],
            "config": config,
            **info,
            "n_files": len(self.entries),
            "total_bytes": int(sum(e["bytes"] for e in self.entries)),
            "files": sorted(self.entries, key=lambda e: (e["kind"], e["path"])),
        }
        target = self.root / MANIFEST_NAME
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
        return target


# -- the output directory ---------------------------------------------------------------
#: marker of a world being written (removed when its manifest is written)
PARTIAL_MARKER = ".aprior-synth-partial"
_OUR_DIRS = ("static", "flights", "era5", "cams_eu", "eea", "pm25", "s5p", "truth")


def check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` that this run may not fill.

    ``out`` may be absent or empty; with ``overwrite`` it may hold a synthetic world (or
    the unfinished world of an older aprior, marked by :data:`PARTIAL_MARKER`); anything
    else is refused. Its parent must be writable.
    """
    if out.exists() and not out.is_dir():
        raise OutputExistsError("exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError("exists and is not empty; pass --overwrite to replace the "
                                    "synthetic world in it", out)
        if not (out / PARTIAL_MARKER).is_file():
            try:
                open_world(out)
            except InputFileError:
                raise OutputExistsError("is not empty and holds no synthetic world; refusing to "
                                        "write into it even with --overwrite", out) from None
    parent = out.parent if out.parent != Path("") else Path(".")
    if not parent.exists():
        raise OutputExistsError("the parent directory does not exist", parent)
    probe_writable(parent)


def prepare_output(out: Path, overwrite: bool) -> None:
    """Empty ``out`` of an earlier world (checked by :func:`check_output_dir`).

    A directory holding a world (a ``manifest.json`` marked synthetic) has that world's
    files removed, one holding an unfinished world of an older aprior (the
    :data:`PARTIAL_MARKER` file) has the world's directories removed.
    """
    check_output_dir(out, overwrite)
    if not (out.is_dir() and any(out.iterdir())):
        return
    if (out / PARTIAL_MARKER).is_file():
        log.info("removing the unfinished synthetic world in %s", out)
        for sub in _OUR_DIRS:
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        for name in (MANIFEST_NAME, "README.txt", PARTIAL_MARKER):
            (out / name).unlink(missing_ok=True)
        return
    old = open_world(out)
    (out / MANIFEST_NAME).unlink()
    for e in old.manifest["files"]:
        (out / e["path"]).unlink(missing_ok=True)
    for sub in _OUR_DIRS:
        p = out / sub
        if p.is_dir() and not any(f.is_file() for f in p.rglob("*")):
            shutil.rmtree(p)


def publish(staged: Path, out: Path) -> None:
    """Move a complete world from its staging directory to ``out`` (absent or emptied by
    :func:`prepare_output`); the manifest moves last, so ``out`` is a world only when whole."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        staged.rename(out)
        return
    for entry in sorted(staged.iterdir(), key=lambda e: e.name == MANIFEST_NAME):
        entry.rename(out / entry.name)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_readmes(root: Path, rec: ManifestBuilder, what: str) -> None:
    """``README.txt`` and ``truth/README.txt``: the SYNTHETIC warnings."""
    text = (f"{WARNING}\n\n{what}\n"
            "Files and what they stand for: manifest.json. Layout and physics: "
            "docs/synthetic-world.md of aprior.\n")
    _write_text(root / "README.txt", text)
    rec.add(root / "README.txt", "readme")
    (root / "truth").mkdir(exist_ok=True)
    truth = ("THIS DIRECTORY HOLDS THE SYNTHETIC TRUTH of a synthetic world made by 'aprior synth'.\n"
             "It is known only because the world is invented. Use it to test and benchmark the\n"
             "toolkit; never present results on it as real-world skill, and never feed it to a\n"
             "model as an input.\n")
    _write_text(root / "truth" / "README.txt", truth)
    rec.add(root / "truth" / "README.txt", "readme")
