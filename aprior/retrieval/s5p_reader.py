"""Read Sentinel-5P TROPOMI L2 NO2 files: validate, then decode scanline blocks.

Backend: h5py, not netCDF4. An L2 file holds ~350 metadata groups (ISO, EOP and ESA
headers) that the netCDF-C library walks completely at every open; h5py opens lazily
and touches only the ~16 datasets we read, so opening is a few milliseconds. Reads are
HDF5 hyperslabs ``[0, start:stop, ...]`` decoded with the file's own ``_FillValue`` /
``scale_factor`` attributes; memory is bounded by the block (and one chunk row), whatever
the orbit length. A block that ends inside a chunk along ``scanline`` reads the whole
chunk window and keeps it (one window per variable and thread, keyed by the file's
identity), so consecutive blocks of any height decompress each chunk once.

Decoding (see :mod:`aprior.retrieval.granule`): float fill -> NaN, tropopause-index
fill -> -1, ``qa_value`` scaled by its ``scale_factor`` (0.01) with fill 255 -> NaN,
the per-scanline time = ``time_reference`` + ``delta_time`` (ms).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from aprior.errors import InputFileError
from aprior.retrieval import s5p_names as names
from aprior.retrieval.granule import N_TM5_LAYERS, GranuleBlock, GranuleInfo

log = logging.getLogger(__name__)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_FILENAME = re.compile(
    r"^S5P_[A-Z]{4}_L2__NO2____\d{8}T\d{6}_\d{8}T\d{6}_\d{5}_\d{2}_\d{6}_\d{8}T\d{6}"
)
_CHUNK_CACHE_BYTES = 64 * 2**20
_NETCDF_INTERNAL = {
    "_NCProperties",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "_IsNetcdf4",
}
_EPOCH_2010 = np.datetime64("2010-01-01T00:00:00", "ns")
_SINCE = re.compile(
    r"^\s*(\w+)\s+since\s+(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?))?"
)
_UNIT_NS = {"milliseconds": 10**6, "seconds": 10**9, "days": 86400 * 10**9}

_PIXEL_VARS = (
    "longitude",
    "qa_value",
    "no2_trop",
    "no2_trop_precision",
    "amf_trop",
    "amf_total",
    "tropopause_index",
    "surface_pressure",
)


def decode_attr(value: object) -> object:
    """An HDF5 attribute value as plain Python: bytes -> str, 1-element arrays -> scalars."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SOU":
            items = [decode_attr(v) for v in value.ravel().tolist()]
            return items[0] if len(items) == 1 else items
        return value.item() if value.size == 1 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


def identify(path: str | PathLike[str]) -> bool:
    """Whether ``path`` is (or claims to be) an S5P L2 NO2 file. Never raises.

    An HDF5 file is recognised by its ``ProductShortName`` (or, without one, by its NO2
    column variable); a file that cannot be opened is claimed when its name follows the
    S5P NO2 pattern, so that :func:`open_granule` can say what is wrong with it.
    """
    try:
        p = Path(path)
        if not p.is_file():
            return False
        named = _FILENAME.match(p.name) is not None
        with open(p, "rb") as fh:
            if fh.read(8) != _HDF5_SIGNATURE:
                return named
        try:
            with h5py.File(p, "r") as f:
                desc = f.get(names.GRANULE_DESCRIPTION)
                short = None if desc is None else decode_attr(desc.attrs.get("ProductShortName"))
                if short is not None:
                    return short == names.PRODUCT_SHORT_NAME
                return names.path_of("no2_trop") in f
        except Exception:
            return named
    except Exception:
        return False


def explain(path: str | PathLike[str]) -> str | None:
    """Why this reader declines ``path`` when it is another Sentinel-5P product, else None."""
    try:
        with h5py.File(Path(path), "r") as f:
            desc = f.get(names.GRANULE_DESCRIPTION)
            short = None if desc is None else decode_attr(desc.attrs.get("ProductShortName"))
    except Exception:
        return None
    if short and str(short).strip() != names.PRODUCT_SHORT_NAME:
        return (f"this is a Sentinel-5P {str(short).strip()} file; aprior reprocesses "
                f"{names.PRODUCT_SHORT_NAME} (NO2) files")
    return None


def _open(path: Path) -> h5py.File:
    """Open read-only, turning every failure into an InputFileError that says why."""
    if not path.exists():
        raise InputFileError("the file does not exist", path=path)
    if not path.is_file():
        raise InputFileError("not a regular file", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputFileError(f"the file cannot be read ({exc.strerror})", path=path) from exc
    if head[:4] in _NETCDF3_SIGNATURES:
        raise InputFileError(
            "a netCDF-3 file, not a Sentinel-5P L2 product (netCDF-4/HDF5)", path=path
        )
    if head != _HDF5_SIGNATURE and not h5py.is_hdf5(path):
        raise InputFileError("not a netCDF-4/HDF5 file, so not a Sentinel-5P L2 product", path=path)
    try:
        return h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES, rdcc_nslots=10007)
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise InputFileError(
                f"the file is truncated ({path.stat().st_size} bytes; an incomplete download?)",
                path=path,
            ) from exc
        raise InputFileError(f"the HDF5 file cannot be opened ({exc})", path=path) from exc


def _product_short_name(f: h5py.File) -> str | None:
    desc = f.get(names.GRANULE_DESCRIPTION)
    if desc is None or "ProductShortName" not in desc.attrs:
        return None
    return str(decode_attr(desc.attrs["ProductShortName"])).strip()


def _resolve_all(f: h5py.File, path: Path, short: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names.READ_VARIABLES:
        hit = names.resolve(name, lambda p: isinstance(f.get(p), h5py.Dataset))
        if hit is None:
            what = (
                "an incomplete or damaged NO2 product"
                if short
                else "probably not an L2 NO2 product"
            )
            raise InputFileError(
                f"lacks the required variable {names.path_of(name)} ({what}); "
                "give a complete Sentinel-5P L2 NO2 file",
                path=path,
            )
        found[name] = hit
    return found


def _check_shapes(f: h5py.File, paths: dict[str, str], path: Path) -> tuple[int, int]:
    lat = f[paths["latitude"]].shape
    if len(lat) != 3 or lat[0] != 1:
        raise InputFileError(
            f"{paths['latitude']} has shape {lat}; expected (1, scanline, ground_pixel)", path=path
        )
    _, n_s, n_p = lat
    if n_s == 0 or n_p == 0:
        raise InputFileError(
            "the file holds no pixels (zero scanlines or ground pixels)", path=path
        )
    expected = {name: (1, n_s, n_p) for name in _PIXEL_VARS}
    expected["latitude_bounds"] = expected["longitude_bounds"] = (1, n_s, n_p, 4)
    expected["averaging_kernel"] = (1, n_s, n_p, N_TM5_LAYERS)
    expected["tm5_constant_a"] = expected["tm5_constant_b"] = (N_TM5_LAYERS, 2)
    expected["time"] = (1,)
    for name, shape in expected.items():
        got = f[paths[name]].shape
        if got != shape:
            raise InputFileError(
                f"{paths[name]} has shape {got}, inconsistent with {shape} from latitude and the "
                f"{N_TM5_LAYERS} TM5 layers",
                path=path,
            )
    dt = f[paths["delta_time"]].shape
    if dt not in ((1, n_s), (1, n_s, n_p)):
        raise InputFileError(
            f"{paths['delta_time']} has shape {dt}, inconsistent with {n_s} scanlines", path=path
        )
    return n_s, n_p


def _parse_since(units: object) -> tuple[int, np.datetime64] | None:
    """('milliseconds since 2024-08-15 00:00:00') -> (ns per unit, reference)."""
    m = _SINCE.match(str(units)) if units is not None else None
    if m is None or m.group(1) not in _UNIT_NS:
        return None
    ref = np.datetime64(f"{m.group(2)}T{m.group(3) or '00:00:00'}", "ns")
    return _UNIT_NS[m.group(1)], ref


def _time_reference(f: h5py.File, paths: dict[str, str], path: Path) -> np.datetime64:
    """The file's reference time (midnight UTC of the orbit's day), datetime64[ns]."""
    text = decode_attr(f.attrs.get("time_reference"))
    if isinstance(text, str):
        try:
            return np.datetime64(text.rstrip("Z"), "ns")
        except ValueError:
            log.debug("unparsable time_reference %r in %s", text, path)
    var = f[paths["time"]]
    value = var[0]
    fill = decode_attr(var.attrs.get("_FillValue"))
    since = _parse_since(decode_attr(var.attrs.get("units")))
    if (fill is not None and value == fill) or since is None:
        raise InputFileError(
            "the reference time (PRODUCT/time, time_reference) is missing", path=path
        )
    return since[1] + np.timedelta64(int(value) * since[0], "ns")


def open_granule(path: str | PathLike[str]) -> GranuleInfo:
    """Validate an S5P L2 NO2 file and read its metadata (no pixel data).

    Raises:
        InputFileError: naming the file, if it is not HDF5/netCDF-4, truncated, another
            product (CO, O3, ...), lacks a required variable or has inconsistent dims.
    """
    p = Path(path)
    with _open(p) as f:
        short = _product_short_name(f)
        if short is not None and short != names.PRODUCT_SHORT_NAME:
            raise InputFileError(
                f"a Sentinel-5P {short} product, not {names.PRODUCT_SHORT_NAME} (NO2); give an L2 NO2 file",
                path=p,
            )
        paths = _resolve_all(f, p, short)
        n_s, n_p = _check_shapes(f, paths, p)
        try:
            tm5_a = np.asarray(f[paths["tm5_constant_a"]][...], dtype=np.float64)
            tm5_b = np.asarray(f[paths["tm5_constant_b"]][...], dtype=np.float64)
            f[paths["latitude"]][0, n_s - 1, :1]  # reaches the data of the last scanline
        except OSError as exc:
            raise InputFileError(
                f"the data cannot be read, the file is damaged ({exc})", path=p
            ) from exc
        if not (
            np.all(np.isfinite(tm5_a))
            and np.all(np.abs(tm5_a) < 1e30)
            and np.all(np.abs(tm5_b) < 1e30)
        ):
            raise InputFileError("tm5_constant_a/b hold fill values", path=p)
        attrs = {k: decode_attr(v) for k, v in f.attrs.items() if k not in _NETCDF_INTERNAL}
        desc = f.get(names.GRANULE_DESCRIPTION)
        version = attrs.get("processor_version")
        if version is None and desc is not None:
            version = decode_attr(desc.attrs.get("ProcessorVersion"))
        info = GranuleInfo(
            path=os.fspath(p),
            product=short or names.PRODUCT_SHORT_NAME,
            processor_version=str(version) if version is not None else "unknown",
            n_scanline=int(n_s),
            n_ground_pixel=int(n_p),
            tm5_a=tm5_a,
            tm5_b=tm5_b,
            time_reference=_time_reference(f, paths, p),
            attrs=attrs,
        )
    log.debug("opened %s: %d x %d pixels, processor %s", p, n_s, n_p, info.processor_version)
    return info


class _WindowCache(threading.local):
    """Per thread: the last chunk-aligned window read of each variable."""

    max_bytes = 512 * 2**20

    def __init__(self) -> None:
        self.windows: dict[str, tuple[tuple, int, int, np.ndarray]] = {}


_CACHE = _WindowCache()


def clear_cache() -> None:
    """Drop this thread's cached chunk windows (they are also replaced file by file)."""
    _CACHE.windows.clear()


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _rows(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """``ds[0, start:stop, ...]``, reading whole chunk windows when the block ends inside one.

    A fresh array is returned (callers decode in place).
    """
    chunks = ds.chunks
    step = chunks[1] if chunks is not None and len(chunks) > 1 else 1
    lo, hi = (start // step) * step, min(ds.shape[1], -(-stop // step) * step)
    if (lo, hi) == (start, stop) or step == 1:
        return ds[0, start:stop]
    key = (_file_key(ds.file.filename), ds.name)
    hit = _CACHE.windows.get(ds.name)
    if hit is not None and hit[0] == key and hit[1] <= start and stop <= hit[2]:
        return hit[3][start - hit[1] : stop - hit[1]].copy()
    nbytes = (hi - lo) * int(np.prod(ds.shape[2:], dtype=np.int64)) * ds.dtype.itemsize
    if nbytes > _CACHE.max_bytes:
        return ds[0, start:stop]
    window = ds[0, lo:hi]
    _CACHE.windows[ds.name] = (key, lo, hi, window)
    return window[start - lo : stop - lo].copy()


def _float(ds: h5py.Dataset, sel: tuple) -> np.ndarray:
    """Read a float variable, fill -> NaN (float32 stays float32)."""
    out = _rows(ds, sel[1].start, sel[1].stop)
    fill = decode_attr(ds.attrs.get("_FillValue"))
    if fill is not None:
        out[out == np.asarray(fill, dtype=out.dtype)] = np.nan
    return out


def _qa(ds: h5py.Dataset, sel: tuple) -> np.ndarray:
    raw = _rows(ds, sel[1].start, sel[1].stop)
    fill = decode_attr(ds.attrs.get("_FillValue"))
    scale = float(decode_attr(ds.attrs.get("scale_factor", 1.0)))
    offset = float(decode_attr(ds.attrs.get("add_offset", 0.0)))
    out = raw.astype(np.float32) * np.float32(scale) + np.float32(offset)
    out[raw == (255 if fill is None else fill)] = np.nan
    return out


def _tropopause(ds: h5py.Dataset, sel: tuple) -> np.ndarray:
    raw = _rows(ds, sel[1].start, sel[1].stop).astype(np.int32, copy=False)
    fill = decode_attr(ds.attrs.get("_FillValue"))
    bad = raw < 0 if fill is None else (raw == fill) | (raw < 0)
    raw[bad] = -1
    return raw


def _scanline_time(
    f: h5py.File, paths: dict[str, str], info: GranuleInfo, start: int, stop: int
) -> np.ndarray:
    ds = f[paths["delta_time"]]
    raw = ds[0, start:stop].astype(np.int64)
    fill = decode_attr(ds.attrs.get("_FillValue"))
    since = _parse_since(decode_attr(ds.attrs.get("units")))
    if (
        raw.ndim == 2
    ):  # (scanline, ground_pixel) in some 1.x files: the scanline's first valid pixel
        valid = raw != (fill if fill is not None else np.iinfo(np.int32).min)
        raw = np.where(valid, raw, np.iinfo(np.int64).max).min(axis=1)
        missing = ~valid.any(axis=1)
    else:
        missing = raw == fill if fill is not None else np.zeros(raw.shape, bool)
    ref, ns_per_unit = (since[1], since[0]) if since is not None else (info.time_reference, 10**6)
    out = ref + (raw * ns_per_unit).astype("timedelta64[ns]")
    out[missing] = np.datetime64("NaT")
    return out.astype("datetime64[ns]")


def block_rows(info: GranuleInfo, target: int = 512) -> int:
    """A block height (scanlines) near ``target`` that is a multiple of the file's chunking.

    Reading in blocks aligned on the chunks along ``scanline`` decompresses each chunk
    once. Returns ``target`` when the file is not chunked along scanline.
    """
    try:
        with h5py.File(info.path, "r") as f:
            chunks = [f[names.path_of(n)].chunks for n in ("no2_trop", "averaging_kernel")]
    except Exception:
        return target
    sizes = [c[1] for c in chunks if c is not None and len(c) > 1]
    step = max(sizes, default=0)
    if step <= 0 or any(step % s for s in sizes):
        return target
    return max(step, (target // step) * step)


def _check_rows(info: GranuleInfo, start: int, stop: int) -> None:
    if not 0 <= start < stop <= info.n_scanline:
        raise ValueError(f"scanlines [{start}, {stop}) outside [0, {info.n_scanline})")


def _paths(f: h5py.File, wanted: tuple[str, ...], path: Path) -> dict[str, str]:
    found = {n: names.resolve(n, lambda q: isinstance(f.get(q), h5py.Dataset)) for n in wanted}
    if any(v is None for v in found.values()):
        raise InputFileError(
            "the file changed since it was opened: a required variable is gone", path=path
        )
    return found


def read_bounds(info: GranuleInfo, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Footprint corners of scanlines ``[start, stop)``, nothing else.

    Returns:
        (latitude_bounds, longitude_bounds): each ``(s, p, 4)`` float64 degrees, corners
        counter-clockwise from the south-west one; NaN where fill.
    """
    _check_rows(info, start, stop)
    p = Path(info.path)
    sel = (0, slice(start, stop))
    with _open(p) as f:
        paths = _paths(f, ("latitude_bounds", "longitude_bounds"), p)
        try:
            lat = _float(f[paths["latitude_bounds"]], sel).astype(np.float64)
            lon = _float(f[paths["longitude_bounds"]], sel).astype(np.float64)
        except OSError as exc:
            raise InputFileError(
                f"scanlines {start}-{stop} cannot be read, the file is damaged ({exc})", path=p
            ) from exc
    return lat, lon


def read_block(info: GranuleInfo, start: int, stop: int) -> GranuleBlock:
    """Read and decode scanlines ``[start, stop)`` of an opened granule.

    Only the variables of :data:`~aprior.retrieval.s5p_names.READ_VARIABLES` and only
    these rows are read. Shapes and units are documented on
    :class:`~aprior.retrieval.granule.GranuleBlock`.
    """
    _check_rows(info, start, stop)
    p = Path(info.path)
    sel = (0, slice(start, stop))
    with _open(p) as f:
        paths = _paths(f, names.READ_VARIABLES, p)
        try:
            block = GranuleBlock(
                start=start,
                stop=stop,
                latitude=_float(f[paths["latitude"]], sel),
                longitude=_float(f[paths["longitude"]], sel),
                latitude_bounds=_float(f[paths["latitude_bounds"]], sel),
                longitude_bounds=_float(f[paths["longitude_bounds"]], sel),
                time=_scanline_time(f, paths, info, start, stop),
                qa_value=_qa(f[paths["qa_value"]], sel),
                no2_trop=_float(f[paths["no2_trop"]], sel),
                no2_trop_precision=_float(f[paths["no2_trop_precision"]], sel),
                averaging_kernel=_float(f[paths["averaging_kernel"]], sel),
                amf_trop=_float(f[paths["amf_trop"]], sel),
                amf_total=_float(f[paths["amf_total"]], sel),
                tropopause_index=_tropopause(f[paths["tropopause_index"]], sel),
                surface_pressure=_float(f[paths["surface_pressure"]], sel),
            )
        except OSError as exc:
            raise InputFileError(
                f"scanlines {start}-{stop} cannot be read, the file is damaged ({exc})", path=p
            ) from exc
    return block
