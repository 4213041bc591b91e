"""Stream the pixels to compare from matched reprocessed L2 files and truth files.

Files come from :mod:`aprior.compare.sources` (validated and matched by orbit);
they are read with h5py, read-only, a block of scanlines at a time, and only the pixels
that pass the selection are kept. Pixels of the two sets and of the truth are matched by
the ``scanline`` coordinate; their centres must agree (1e-4 degrees) and so must the
original columns of the two sets (1e-4 relative). All columns come out in molecules cm-2
(the file's ``multiplication_factor_to_convert_to_molecules_percm2``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from aprior.compare.sources import (
    COLUMN,
    TRUTH_COLUMN,
    L2Source,
    TruthSource,
)
from aprior.errors import InputFileError
from aprior.retrieval import s5p_names as names
from aprior.retrieval.s5p_reader import decode_attr

log = logging.getLogger(__name__)

_PIXEL_TOL_DEG = 1e-4
_COLUMN_RTOL = 1e-4


@dataclass(frozen=True)
class PixelBlock:
    """Selected pixels of one block (qa and finite columns), flattened to ``n``.

    Attributes (shapes; units):
        lon, lat: ``(n,)``; degrees. Pixel centres.
        lon_bounds, lat_bounds: ``(n, 4)``; degrees. Footprint corners.
        qa: ``(n,)``; 1.
        columns: set name ("tm5", "main", "against") -> ``(n,)`` molecules cm-2, finite.
        truth: ``(n,)`` molecules cm-2 (NaN where unknown), or None without truth files.
    """

    lon: np.ndarray
    lat: np.ndarray
    lon_bounds: np.ndarray
    lat_bounds: np.ndarray
    qa: np.ndarray
    columns: dict[str, np.ndarray]
    truth: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.lon.size)


def _floats(ds: h5py.Dataset, rows: slice, lead: bool = True) -> np.ndarray:
    raw = ds[0, rows] if lead else ds[rows]
    out = np.asarray(raw, dtype=np.float64)
    fill = decode_attr(ds.attrs.get("_FillValue"))
    bad = ~np.isfinite(out) | (np.abs(out) > 1e30)
    if isinstance(fill, int | float):
        bad |= out == np.float64(np.asarray(fill, dtype=ds.dtype))
    out[bad] = np.nan
    return out


def _qa(ds: h5py.Dataset, rows: slice) -> np.ndarray:
    raw = ds[0, rows]
    fill = decode_attr(ds.attrs.get("_FillValue"))
    scale = float(decode_attr(ds.attrs.get("scale_factor", 1.0)))
    offset = float(decode_attr(ds.attrs.get("add_offset", 0.0)))
    out = raw.astype(np.float64) * scale + offset
    out[raw == (255 if fill is None else fill)] = np.nan
    return out


def _rows_of(scan: np.ndarray, wanted: np.ndarray) -> tuple[slice, np.ndarray]:
    """(slice of file rows spanning ``wanted`` scanline values, their rows within it)."""
    idx = np.searchsorted(scan, wanted)
    lo = int(idx.min())
    return slice(lo, int(idx.max()) + 1), idx - lo


def _check_same(a: np.ndarray, b: np.ndarray, what: str, path: Path, other: Path) -> None:
    both = np.isfinite(a) & np.isfinite(b)
    if both.any() and float(np.max(np.abs(a[both] - b[both]))) > _PIXEL_TOL_DEG:
        raise InputFileError(f"its {what} differ from those of {other.name}: not the same orbit "
                             "pixels", path=path)


def iter_blocks(primary: L2Source, against: L2Source | None = None,
                truth: TruthSource | None = None, *, qa_min: float = 0.75,
                qa_tol: float = 1e-6,
                within: tuple[float, float, float, float] | None = None) -> Iterator[PixelBlock]:
    """Yield the selected pixels of one orbit, a block of scanlines at a time.

    The ``main`` (and ``against``) column is each source's ``column``: the reprocessed
    column, or the smoothed model column in a model-versus-satellite comparison.

    A pixel is selected when ``qa_value >= qa_min - qa_tol`` (of the primary file), all
    its columns (original, reprocessed and, with ``against``, the other set's reprocessed
    column) are finite and, with ``within`` (west, south, east, north; degrees), its centre
    lies in that box. With ``against``, only scanlines present in both files are read.
    Corners, the other set and the truth are read only for blocks with selected pixels.
    """
    common = primary.scanlines if against is None else np.intersect1d(primary.scanlines,
                                                                       against.scanlines)
    if truth is not None:
        missing = np.setdiff1d(common, truth.scanlines)
        if missing.size:
            raise InputFileError(f"lacks scanlines {missing[0]}..{missing[-1]} of "
                                 f"{primary.path.name}", path=truth.path)
    with contextlib.ExitStack() as stack:
        fp = stack.enter_context(h5py.File(primary.path, "r"))
        fa = stack.enter_context(h5py.File(against.path, "r")) if against is not None else None
        ft = stack.enter_context(h5py.File(truth.path, "r")) if truth is not None else None
        for a in range(0, common.size, primary.block):
            wanted = common[a:a + primary.block]
            got = _read_block(fp, primary, wanted, qa_min - qa_tol, within)
            if got is None:
                continue
            block, full = got
            if against is not None:
                block, full = _add_against(block, full, fa, against, primary, wanted)
            if truth is not None:
                block = _add_truth(block, full, ft, truth, primary, wanted)
            if block.size:
                yield block


@dataclass(frozen=True)
class _Rows:
    """All pixels of a block (centres, ``(n_all,)``) and which of them are selected."""

    sel: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def _read_block(fp: h5py.File, src: L2Source, wanted: np.ndarray, qa_min: float,
                within: tuple[float, float, float, float] | None
                ) -> tuple[PixelBlock, _Rows] | None:
    rows, sub = _rows_of(src.scanlines, wanted)

    def take(name: str) -> np.ndarray:
        arr = _qa(fp[name], rows) if name.endswith("qa_value") else _floats(fp[name], rows)
        return arr[sub].reshape(sub.size * src.n_ground_pixel, *arr.shape[2:])

    qa = take(names.path_of("qa_value"))
    tm5 = take(COLUMN) * src.factor
    main = take(src.column) * src.factor
    lat, lon = take(names.path_of("latitude")), take(names.path_of("longitude"))
    sel = (qa >= qa_min) & np.isfinite(tm5) & np.isfinite(main)
    if within is not None:
        w, s, e, n = within
        sel &= (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    if not sel.any():
        return None
    geo = names.GEOLOCATIONS
    lat_b, lon_b = take(f"{geo}/latitude_bounds"), take(f"{geo}/longitude_bounds")
    block = PixelBlock(lon=lon[sel], lat=lat[sel], lon_bounds=lon_b[sel], lat_bounds=lat_b[sel],
                       qa=qa[sel], columns={"tm5": tm5[sel], "main": main[sel]})
    return block, _Rows(sel, lon, lat)


def _add_against(block: PixelBlock, full: _Rows, fa: h5py.File, against: L2Source,
                 primary: L2Source, wanted: np.ndarray) -> tuple[PixelBlock, _Rows]:
    """The block with the other set's column, its pixels checked against the primary's."""
    rows_a, sub_a = _rows_of(against.scanlines, wanted)

    def take(name: str) -> np.ndarray:
        return _floats(fa[name], rows_a)[sub_a].reshape(-1)

    _check_same(take(names.path_of("latitude")), full.lat, "pixel latitudes", against.path,
                primary.path)
    _check_same(take(names.path_of("longitude")), full.lon, "pixel longitudes", against.path,
                primary.path)
    tm5_a = take(COLUMN)[full.sel] * against.factor
    tm5 = block.columns["tm5"]
    both = np.isfinite(tm5_a)
    if both.any() and not np.allclose(tm5_a[both], tm5[both], rtol=_COLUMN_RTOL, atol=1e10):
        raise InputFileError(f"its original columns differ from those of {primary.path.name}: "
                             "not reprocessed from the same L2 file", path=against.path)
    col = take(against.column)[full.sel] * against.factor
    keep = np.isfinite(col)
    sel = full.sel.copy()
    sel[full.sel] = keep
    out = PixelBlock(lon=block.lon[keep], lat=block.lat[keep], lon_bounds=block.lon_bounds[keep],
                     lat_bounds=block.lat_bounds[keep], qa=block.qa[keep],
                     columns={**{k: v[keep] for k, v in block.columns.items()},
                              "against": col[keep]})
    return out, _Rows(sel, full.lon, full.lat)


def _add_truth(block: PixelBlock, full: _Rows, ft: h5py.File, truth: TruthSource,
               primary: L2Source, wanted: np.ndarray) -> PixelBlock:
    """The block with the true column (NaN where the truth file has none)."""
    rows_t, sub_t = _rows_of(truth.scanlines, wanted)
    t = _floats(ft[TRUTH_COLUMN], rows_t, lead=False)[sub_t].reshape(-1)
    if t.size != full.lat.size:
        raise InputFileError(f"has {t.size // max(1, sub_t.size)} ground pixels, "
                             f"{primary.path.name} has {primary.n_ground_pixel}", path=truth.path)
    if isinstance(ft.get("latitude"), h5py.Dataset):
        t_lat = _floats(ft["latitude"], rows_t, lead=False)[sub_t].reshape(-1)
        _check_same(t_lat, full.lat, "pixel latitudes", truth.path, primary.path)
    return replace(block, truth=t[full.sel] * truth.factor)
