"""Minimal single-band GeoTIFF reading and writing on top of tifffile.

Only what the static layers need: the affine placement of a north-up raster
(``ModelPixelScale`` + ``ModelTiepoint``, or a rotation-free ``ModelTransformation``),
the EPSG code from the ``GeoKeyDirectory`` (``ProjectedCSTypeGeoKey`` 3072 or
``GeographicTypeGeoKey`` 2048) and the GDAL nodata value (tag 42113). Rasters whose
``GTRasterTypeGeoKey`` is PixelIsPoint are shifted by half a pixel, as GDAL does.

Windows are read segment by segment (strips or tiles), so a crop of a continental
raster (CORINE 100 m, VIIRS, MERIT tiles) never loads the whole file. Compressions
other than deflate/LZMA (LZW, PackBits, ...) need the ``imagecodecs`` package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from pyproj import CRS

from aprior._io import atomic_path
from aprior.errors import InputFileError

log = logging.getLogger(__name__)

TAG_PIXEL_SCALE = 33550
TAG_TIEPOINT = 33922
TAG_TRANSFORMATION = 34264
TAG_GEOKEYS = 34735
TAG_GDAL_NODATA = 42113

KEY_MODEL_TYPE = 1024
KEY_RASTER_TYPE = 1025
KEY_GEOGRAPHIC_TYPE = 2048
KEY_PROJECTED_TYPE = 3072
USER_DEFINED = 32767


@dataclass(frozen=True)
class GeoTiffInfo:
    """Placement of a north-up single-band GeoTIFF.

    Attributes:
        path: the file.
        ny, nx: rows and columns; row 0 is the northern (top) row.
        x0: x of the left edge of column 0 (CRS units).
        y_top: y of the top edge of row 0 (CRS units).
        dx, dy: pixel sizes, positive (rows go south, y decreases by dy per row).
        epsg: EPSG code of the CRS.
        nodata: the GDAL nodata value, or None.
        dtype: numpy dtype of the samples.
    """

    path: str
    ny: int
    nx: int
    x0: float
    y_top: float
    dx: float
    dy: float
    epsg: int
    nodata: float | None
    dtype: np.dtype

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    def x_centres(self, c0: int = 0, c1: int | None = None) -> np.ndarray:
        """(c1 - c0,) pixel-centre x of columns c0..c1-1."""
        c1 = self.nx if c1 is None else c1
        return self.x0 + self.dx * (np.arange(c0, c1, dtype=np.float64) + 0.5)

    def y_centres(self, r0: int = 0, r1: int | None = None) -> np.ndarray:
        """(r1 - r0,) pixel-centre y of rows r0..r1-1 (descending)."""
        r1 = self.ny if r1 is None else r1
        return self.y_top - self.dy * (np.arange(r0, r1, dtype=np.float64) + 0.5)

    def window_for_bounds(self, xmin: float, ymin: float, xmax: float, ymax: float,
                          pad: int = 1) -> tuple[int, int, int, int] | None:
        """(r0, r1, c0, c1) of the pixels touching the box, padded; None if disjoint."""
        c0 = int(np.floor((xmin - self.x0) / self.dx)) - pad
        c1 = int(np.ceil((xmax - self.x0) / self.dx)) + pad
        r0 = int(np.floor((self.y_top - ymax) / self.dy)) - pad
        r1 = int(np.ceil((self.y_top - ymin) / self.dy)) + pad
        c0, c1 = max(c0, 0), min(c1, self.nx)
        r0, r1 = max(r0, 0), min(r1, self.ny)
        if c0 >= c1 or r0 >= r1:
            return None
        return r0, r1, c0, c1


@dataclass(frozen=True)
class GeoRaster:
    """A window of a GeoTIFF in memory.

    Attributes:
        data: ``(ny, nx)`` samples, rows north to south, nodata as stored in the file.
        info: placement of the whole file.
        r0, c0: row and column of ``data[0, 0]`` in the file.
    """

    data: np.ndarray
    info: GeoTiffInfo
    r0: int = 0
    c0: int = 0

    @property
    def x(self) -> np.ndarray:
        """(nx,) pixel-centre x of the window's columns."""
        return self.info.x_centres(self.c0, self.c0 + self.data.shape[1])

    @property
    def y(self) -> np.ndarray:
        """(ny,) pixel-centre y of the window's rows (descending)."""
        return self.info.y_centres(self.r0, self.r0 + self.data.shape[0])

    def valid_mask(self) -> np.ndarray:
        """(ny, nx) True where the sample is not nodata (and not NaN)."""
        d = self.data
        ok = np.isfinite(d) if np.issubdtype(d.dtype, np.floating) else np.ones(d.shape, bool)
        if self.info.nodata is not None and not np.isnan(self.info.nodata):
            ok &= d != np.asarray(self.info.nodata).astype(d.dtype)
        return ok


def _geokeys(tags: dict, path: str) -> dict[int, int]:
    raw = tags.get(TAG_GEOKEYS)
    if raw is None:
        raise InputFileError("is a TIFF without GeoTIFF keys (no GeoKeyDirectory tag); "
                             "a georeferenced GeoTIFF is needed", path)
    v = np.asarray(raw, dtype=np.int64).ravel()
    nkeys = int(v[3]) if v.size >= 4 else 0
    keys: dict[int, int] = {}
    for k in range(nkeys):
        kid, loc, _count, val = v[4 + 4 * k: 8 + 4 * k]
        if loc == 0:  # value stored inline (all the keys we need are)
            keys[int(kid)] = int(val)
    return keys


def _epsg(keys: dict[int, int], path: str) -> int:
    code = keys.get(KEY_PROJECTED_TYPE) or keys.get(KEY_GEOGRAPHIC_TYPE)
    if code is None or code == USER_DEFINED:
        raise InputFileError("has a user-defined or missing CRS in its GeoKeys (no EPSG code); "
                             "reproject it to an EPSG CRS (e.g. gdalwarp -t_srs EPSG:4326)", path)
    try:
        CRS.from_epsg(code)
    except Exception as exc:  # pyproj raises CRSError
        raise InputFileError(f"has an EPSG code {code} that pyproj does not know", path) from exc
    return int(code)


def read_geotiff_info(path: str | os.PathLike[str]) -> GeoTiffInfo:
    """Read the placement, CRS and nodata of a single-band GeoTIFF without its pixels."""
    p = str(path)
    if not Path(p).exists():
        raise InputFileError("no such file", p)
    try:
        with tifffile.TiffFile(p) as tf:
            page = tf.pages[0]
            tags = {t.code: t.value for t in page.tags.values()}
            shape, dtype, spp = page.shape, page.dtype, page.samplesperpixel
    except (tifffile.TiffFileError, OSError, ValueError) as exc:
        raise InputFileError(f"is not a readable TIFF file ({exc})", p) from exc
    if spp != 1 or len(shape) != 2:
        raise InputFileError(f"has {spp} bands (shape {shape}); a single-band GeoTIFF is needed", p)
    keys = _geokeys(tags, p)
    epsg = _epsg(keys, p)
    if TAG_PIXEL_SCALE in tags and TAG_TIEPOINT in tags:
        sx, sy = (float(s) for s in tags[TAG_PIXEL_SCALE][:2])
        i, j, _k, tx, ty, _tz = (float(t) for t in tags[TAG_TIEPOINT][:6])
        x0, y_top = tx - i * sx, ty + j * sy
    elif TAG_TRANSFORMATION in tags:
        m = [float(t) for t in tags[TAG_TRANSFORMATION]]
        if m[1] != 0 or m[4] != 0 or m[5] >= 0:
            raise InputFileError("is rotated or not north-up; warp it to a north-up grid first", p)
        sx, sy, x0, y_top = m[0], -m[5], m[3], m[7]
    else:
        raise InputFileError("has no ModelPixelScale/ModelTiepoint or ModelTransformation tag", p)
    if not (sx > 0 and sy > 0):
        raise InputFileError(f"has non-positive pixel sizes ({sx}, {sy})", p)
    if keys.get(KEY_RASTER_TYPE, 1) == 2:  # PixelIsPoint: tiepoint is a pixel centre
        x0, y_top = x0 - sx / 2, y_top + sy / 2
    nodata = None
    if TAG_GDAL_NODATA in tags:
        text = str(tags[TAG_GDAL_NODATA]).strip().strip("\x00")
        try:
            nodata = float(text)
        except ValueError as exc:
            raise InputFileError(f"has an unreadable GDAL_NODATA value {text!r}", p) from exc
    return GeoTiffInfo(p, int(shape[0]), int(shape[1]), float(x0), float(y_top), float(sx),
                       float(sy), epsg, nodata, np.dtype(dtype))


def read_geotiff(path: str | os.PathLike[str],
                 window: tuple[int, int, int, int] | None = None) -> GeoRaster:
    """Read a single-band GeoTIFF, or only the ``(r0, r1, c0, c1)`` window of it.

    Only the strips or tiles that intersect the window are read and decoded.
    """
    info = read_geotiff_info(path)
    r0, r1, c0, c1 = window if window is not None else (0, info.ny, 0, info.nx)
    if not (0 <= r0 < r1 <= info.ny and 0 <= c0 < c1 <= info.nx):
        raise ValueError(f"window {(r0, r1, c0, c1)} outside raster {info.ny}x{info.nx}")
    fill = info.nodata if info.nodata is not None else 0
    out = np.empty((r1 - r0, c1 - c0), dtype=info.dtype)
    with tifffile.TiffFile(info.path) as tf:
        page = tf.pages[0]
        if page.is_tiled:
            th, tw = page.tilelength, page.tilewidth
        else:
            th, tw = (page.rowsperstrip or info.ny), info.nx
        ntc = -(-info.nx // tw)
        try:
            decode = page.decode
        except Exception as exc:
            raise InputFileError(f"uses {page.compression.name} compression, which needs the "
                                 "imagecodecs package: pip install 'aprior[geotiff]'", info.path) from exc
        fh = tf.filehandle
        for tr in range(r0 // th, (r1 - 1) // th + 1):
            for tc in range(c0 // tw, (c1 - 1) // tw + 1):
                index = tr * ntc + tc
                ys, xs = tr * th, tc * tw
                offset, count = page.dataoffsets[index], page.databytecounts[index]
                if count == 0:
                    seg = np.full((th, tw), fill, dtype=info.dtype)
                else:
                    fh.seek(offset)
                    try:
                        seg = decode(fh.read(count), index)[0]
                    except Exception as exc:
                        raise InputFileError(
                            f"could not be decoded ({page.compression.name} compression; "
                            f"LZW and others need: pip install 'aprior[geotiff]'): {exc}", info.path) from exc
                    seg = np.asarray(seg).reshape(seg.shape[-3], seg.shape[-2])
                ya, yb = max(r0, ys), min(r1, ys + seg.shape[0], info.ny)
                xa, xb = max(c0, xs), min(c1, xs + seg.shape[1], info.nx)
                out[ya - r0: yb - r0, xa - c0: xb - c0] = seg[ya - ys: yb - ys, xa - xs: xb - xs]
    return GeoRaster(out, info, r0, c0)


def _geokey_directory(epsg: int) -> list[int]:
    geographic = CRS.from_epsg(epsg).is_geographic
    keys = [(KEY_MODEL_TYPE, 2 if geographic else 1), (KEY_RASTER_TYPE, 1),
            (KEY_GEOGRAPHIC_TYPE if geographic else KEY_PROJECTED_TYPE, epsg)]
    out = [1, 1, 0, len(keys)]
    for kid, val in keys:
        out += [kid, 0, 1, val]
    return out


def write_geotiff(path: str | os.PathLike[str], data: np.ndarray, *, x0: float, y_top: float,
                  dx: float, dy: float, epsg: int, nodata: float | None = None,
                  rows_per_strip: int = 64) -> Path:
    """Write a single-band, deflate-compressed, north-up GeoTIFF atomically.

    Args:
        path: output file.
        data: ``(ny, nx)`` samples, rows north to south.
        x0: x of the left edge of column 0; y_top: y of the top edge of row 0 (CRS units).
        dx, dy: positive pixel sizes (CRS units).
        epsg: EPSG code of the CRS (projected or geographic).
        nodata: value written to the GDAL_NODATA tag, or None.
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be (ny, nx), got shape {data.shape}")
    if not (dx > 0 and dy > 0):
        raise ValueError("dx and dy must be positive")
    geokeys = _geokey_directory(int(epsg))
    extratags = [
        (TAG_PIXEL_SCALE, "d", 3, (float(dx), float(dy), 0.0), True),
        (TAG_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, float(x0), float(y_top), 0.0), True),
        (TAG_GEOKEYS, "H", len(geokeys), tuple(geokeys), True),
    ]
    if nodata is not None:
        extratags.append((TAG_GDAL_NODATA, "s", 0, f"{nodata:.17g}", True))
    target = Path(path)
    with atomic_path(target) as tmp:
        tifffile.imwrite(tmp, data, photometric="minisblack", compression="zlib",
                         rowsperstrip=rows_per_strip, extratags=extratags, metadata=None)
    log.debug("wrote GeoTIFF %s (%d x %d, EPSG:%d)", target, *data.shape, epsg)
    return target
