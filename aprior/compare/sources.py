"""Find, validate and match the files of a comparison (no pixel data is read here).

A reprocessed file is a Sentinel-5P L2 NO2 file written by ``aprior reprocess``: it holds
the original ``PRODUCT/nitrogendioxide_tropospheric_column`` (retrieved with the TM5
a-priori) and ``PRODUCT/nitrogendioxide_tropospheric_column_reprocessed``. Files are
validated with :func:`aprior.retrieval.s5p_reader.open_granule`, read-only.

Files of two sets (``--against``) and truth files are matched by orbit number (the global
``orbit`` attribute, else the orbit field of the S5P file name) and, within an orbit, by
the values of the ``scanline`` coordinate, so that differently cropped copies of one orbit
line up. Truth files are the per-orbit files of a synthetic world
(``truth/s5p/<L2 stem>_truth.nc``: ``true_tropospheric_column`` on ``(scanline,
ground_pixel)``).
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from aprior.errors import InputFileError
from aprior.retrieval import s5p_names as names
from aprior.retrieval.s5p_reader import block_rows, decode_attr, open_granule

MOLEC_CM2_PER_MOL_M2 = 6.02214076e19
COLUMN = names.path_of("no2_trop")
REPROCESSED_COLUMN = f"{names.PRODUCT}/{names.reprocessed_name('no2_trop')}"
TRUTH_COLUMN = "true_tropospheric_column"
#: the model column seen through the original kernel (``aprior reprocess`` writes it)
SMOOTHED_COLUMN = f"{names.APRIORI_REPLACEMENT}/apriori_tropospheric_column_smoothed"
_ORBIT_IN_NAME = re.compile(r"_\d{8}T\d{6}_\d{8}T\d{6}_(\d{5})_")
_SYNTHETIC_MARKS = ("aprior.synth.s5p.l2", "synthetic file")


@dataclass(frozen=True)
class L2Source:
    """A reprocessed L2 file, inspected.

    Attributes:
        path: the file.
        orbit: matching key ("27223", or the file stem when no orbit is known).
        scanlines: ``(s,)`` int64 values of the ``scanline`` coordinate (input rows).
        n_ground_pixel: pixels per scanline.
        apriori_source: the reprocessed column's ``apriori_source`` attribute ("" if none).
        synthetic: the file says it is synthetic (``aprior synth``).
        factor: mol m-2 -> molecules cm-2.
        block: scanlines read at once.
        column: the compared column's path: the reprocessed column, or the smoothed model
            column in a model-versus-satellite comparison.
    """

    path: Path
    orbit: str
    scanlines: np.ndarray
    n_ground_pixel: int
    apriori_source: str
    synthetic: bool
    factor: float
    block: int
    column: str = REPROCESSED_COLUMN


@dataclass(frozen=True)
class TruthSource:
    """A per-orbit truth file: ``true_tropospheric_column`` (s, p) and its scanlines."""

    path: Path
    orbit: str
    l2_name: str
    scanlines: np.ndarray
    factor: float


def _orbit_key(path: Path, attrs: dict) -> str:
    orbit = attrs.get("orbit")
    if isinstance(orbit, int | np.integer) and int(orbit) > 0:
        return str(int(orbit))
    m = _ORBIT_IN_NAME.search(path.name)
    return str(int(m.group(1))) if m else path.stem


def _is_synthetic(path: Path, attrs: dict) -> bool:
    flag = str(attrs.get("synthetic", "")).strip().lower()
    if flag in ("true", "1", "yes"):
        return True
    history = str(attrs.get("history", ""))
    if any(mark in history for mark in _SYNTHETIC_MARKS):
        return True
    for parent in list(path.resolve().parents)[:3]:
        manifest = parent / "manifest.json"
        if manifest.is_file():
            try:
                return bool(json.loads(manifest.read_text(encoding="utf-8")).get("synthetic"))
            except (OSError, ValueError, AttributeError):
                return False
    return False


def _factor(ds: h5py.Dataset) -> float:
    value = decode_attr(ds.attrs.get("multiplication_factor_to_convert_to_molecules_percm2"))
    return float(value) if isinstance(value, int | float) and value > 0 else MOLEC_CM2_PER_MOL_M2


def _scanlines(f: h5py.File, key: str, n: int, path: Path) -> np.ndarray:
    ds = f.get(key)
    pure_dim = str(decode_attr(ds.attrs.get("NAME", ""))).startswith("This is a netCDF dimension") \
        if isinstance(ds, h5py.Dataset) else True
    if pure_dim or ds.shape != (n,):  # no coordinate variable: rows are the scanlines
        return np.arange(n, dtype=np.int64)
    values = np.asarray(ds[...], dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
        raise InputFileError(f"{key} is not strictly increasing", path=path)
    return np.rint(values).astype(np.int64)


def inspect_reprocessed(path: str | PathLike[str], column: str = REPROCESSED_COLUMN) -> L2Source:
    """Validate a reprocessed L2 NO2 file and read what matching needs.

    Args:
        path: the file.
        column: the compared column it must hold: the reprocessed column, or
            :data:`SMOOTHED_COLUMN` for a model-versus-satellite comparison.

    Raises:
        InputFileError: naming the file: not an L2 NO2 file (see ``open_granule``), or
            no reprocessed column (not written by ``aprior reprocess``).
    """
    p = Path(path)
    info = open_granule(p)
    with h5py.File(p, "r") as f:
        if column != REPROCESSED_COLUMN and not isinstance(f.get(column), h5py.Dataset):
            raise InputFileError(
                f"has no {column}: reprocess it with an aprior that writes the model columns", path=p)
        ds = f.get(REPROCESSED_COLUMN)
        if not isinstance(ds, h5py.Dataset):
            raise InputFileError(
                f"has no {REPROCESSED_COLUMN}: not a reprocessed file; run 'aprior reprocess' on "
                "it first", path=p)
        if ds.shape != f[COLUMN].shape:
            raise InputFileError(f"{REPROCESSED_COLUMN} has shape {ds.shape}, unlike "
                                 f"{COLUMN} {f[COLUMN].shape}", path=p)
        source = decode_attr(ds.attrs.get("apriori_source", ""))
        scan = _scanlines(f, names.path_of("scanline"), info.n_scanline, p)
        factor = _factor(f[COLUMN])
    return L2Source(p, _orbit_key(p, info.attrs), scan, info.n_ground_pixel,
                    str(source or ""), _is_synthetic(p, info.attrs), factor, block_rows(info), column)


def inspect_truth(path: str | PathLike[str]) -> TruthSource:
    """Validate a per-orbit truth file (``true_tropospheric_column`` on scanline, ground_pixel)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("the truth file does not exist", path=p)
    if not h5py.is_hdf5(p):
        raise InputFileError("not a netCDF-4/HDF5 truth file", path=p)
    with h5py.File(p, "r") as f:
        ds = f.get(TRUTH_COLUMN)
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2:
            raise InputFileError(f"has no 2D {TRUTH_COLUMN}: not a per-orbit truth file "
                                 "(truth/s5p/*_truth.nc of a synthetic world)", path=p)
        attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
        units = str(decode_attr(ds.attrs.get("units", "mol m-2"))).replace("^", "").strip()
        if units in ("mol m-2", "mol/m2", "mol m**-2"):
            factor = MOLEC_CM2_PER_MOL_M2
        elif units in ("molec cm-2", "molecules cm-2", "cm-2"):
            factor = 1.0
        else:
            raise InputFileError(f"{TRUTH_COLUMN} has unknown units {units!r}", path=p)
        scan = _scanlines(f, "scanline", ds.shape[0], p)
    l2_name = str(attrs.get("l2_file", ""))
    orbit = _orbit_key(Path(l2_name) if l2_name else p, attrs)
    return TruthSource(p, orbit, l2_name, scan, factor)


def expand_paths(specs: Sequence[str | PathLike[str]], *, dir_pattern: str = "*.nc",
                 what: str = "input") -> list[Path]:
    """Files from files, globs and directories, in order, without duplicates.

    A directory gives its files matching ``dir_pattern`` (sorted); a glob or directory
    that matches nothing is an error naming it.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for spec in specs:
        text = str(spec)
        p = Path(text)
        if p.is_dir():
            hits = sorted(p.glob(dir_pattern))
        elif glob.has_magic(text):
            hits = [Path(h) for h in sorted(glob.glob(text))]
        else:
            hits = [p]
        if not hits:
            raise InputFileError(f"no {what} file matches this", path=p)
        for h in hits:
            key = h.resolve()
            if key not in seen:
                seen.add(key)
                out.append(h)
    return out


def one_file_per_orbit(sources: Sequence[L2Source | TruthSource], what: str) -> dict[str, L2Source | TruthSource]:
    """orbit -> source; an orbit held by two files is an error naming the second."""
    seen: dict[str, L2Source | TruthSource] = {}
    for s in sources:
        if s.orbit in seen:
            raise InputFileError(f"holds orbit {s.orbit} like {seen[s.orbit].path.name}; give one "
                                 f"{what} file per orbit", path=s.path)
        seen[s.orbit] = s
    return seen


def pair_against(primary: Sequence[L2Source], against: Sequence[L2Source]) -> list[L2Source]:
    """The ``--against`` file of each primary file (same orbit), in the primary order.

    Raises:
        InputFileError: naming the file that has no partner, holds an orbit twice, has
            another number of ground pixels or no scanline in common.
    """
    one_file_per_orbit(primary, "input")
    other = one_file_per_orbit(against, "--against")
    out = []
    for src in primary:
        mate = other.pop(src.orbit, None)
        if mate is None:
            raise InputFileError(f"no --against file holds its orbit {src.orbit}", path=src.path)
        if mate.n_ground_pixel != src.n_ground_pixel:
            raise InputFileError(f"has {mate.n_ground_pixel} ground pixels, {src.path.name} has "
                                 f"{src.n_ground_pixel}: not the same orbit", path=mate.path)
        if np.intersect1d(src.scanlines, mate.scanlines).size == 0:
            raise InputFileError(f"shares no scanline with {src.path.name}", path=mate.path)
        out.append(mate)
    if other:
        extra = next(iter(other.values()))
        raise InputFileError(f"its orbit {extra.orbit} is not among the input files; the "
                             "--against set must hold the same orbits", path=extra.path)
    return out  # type: ignore[return-value]


def pair_truth(primary: Sequence[L2Source], truths: Sequence[TruthSource]) -> list[TruthSource]:
    """The truth file of each primary file (same orbit); extra truth files are ignored."""
    by = one_file_per_orbit(truths, "truth")
    out = []
    for src in primary:
        t = by.get(src.orbit)
        if t is None:
            raise InputFileError(f"no truth file holds its orbit {src.orbit}", path=src.path)
        out.append(t)
    return out  # type: ignore[return-value]
