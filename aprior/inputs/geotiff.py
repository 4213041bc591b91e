"""Single-band GeoTIFF reading and writing through rasterio (GDAL).

GDAL reads every GeoTIFF the static layers come in: strips or tiles, deflate, LZW, ZSTD,
PackBits, BigTIFF, cloud-optimised files, EPSG codes or WKT CRSs (ESRI WKT included),
PixelIsPoint rasters (shifted by half a pixel, as GDAL does). This module only turns a file
into the placement the static layers need (:class:`GeoTiffInfo`) and reads windows of it,
so a crop of a continental raster (CORINE 100 m, VIIRS, MERIT tiles) never loads the whole
file, and it refuses what the layers cannot use (several bands, no CRS, a rotated raster)
with one line naming the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from aprior._io import atomic_path
from aprior.errors import InputFileError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeoTiffInfo:
    """Placement of a north-up single-band GeoTIFF.

    Attributes:
        path: the file.
        ny, nx: rows and columns; row 0 is the northern (top) row.
        x0: x of the left edge of column 0 (CRS units).
        y_top: y of the top edge of row 0 (CRS units).
        dx, dy: pixel sizes, positive (rows go south, y decreases by dy per row).
        epsg: EPSG code of the CRS, or None when the file's CRS is a WKT with no EPSG
            equivalent.
        nodata: the nodata value, or None.
        dtype: numpy dtype of the samples.
        wkt: the CRS as WKT.
    """

    path: str
    ny: int
    nx: int
    x0: float
    y_top: float
    dx: float
    dy: float
    epsg: int | None
    nodata: float | None
    dtype: np.dtype
    wkt: str = ""

    @property
    def crs(self) -> str:
        """The CRS for pyproj: ``"EPSG:<code>"`` when known, else the WKT."""
        return f"EPSG:{self.epsg}" if self.epsg is not None else self.wkt

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


def _open(path: str):
    if not Path(path).exists():
        raise InputFileError("no such file", path)
    try:
        return rasterio.open(path)
    except (RasterioError, OSError, ValueError) as exc:
        raise InputFileError(f"is not a readable TIFF file ({exc})", path) from exc


def _info(ds, path: str) -> GeoTiffInfo:
    if ds.count != 1:
        raise InputFileError(f"has {ds.count} bands (shape {ds.count}x{ds.height}x{ds.width}); "
                             "a single-band GeoTIFF is needed", path)
    crs = ds.crs
    if crs is None or not crs.to_wkt():
        raise InputFileError("has no CRS in its GeoKeys (no EPSG code, no WKT); "
                             "assign one (e.g. gdal_edit.py -a_srs EPSG:4326)", path)
    if not (crs.is_geographic or crs.is_projected):
        raise InputFileError("has a user-defined or local CRS in its GeoKeys (no EPSG code, "
                             "not geographic or projected); reproject it to an EPSG CRS "
                             "(e.g. gdalwarp -t_srs EPSG:4326)", path)
    t = ds.transform
    if t.b != 0 or t.d != 0 or t.e >= 0:
        raise InputFileError("is rotated or not north-up; warp it to a north-up grid first", path)
    if not (t.a > 0):
        raise InputFileError(f"has non-positive pixel sizes ({t.a}, {-t.e})", path)
    epsg = crs.to_epsg()
    return GeoTiffInfo(path, int(ds.height), int(ds.width), float(t.c), float(t.f),
                       float(t.a), float(-t.e), None if epsg is None else int(epsg),
                       None if ds.nodata is None else float(ds.nodata),
                       np.dtype(ds.dtypes[0]), crs.to_wkt())


def read_geotiff_info(path: str | os.PathLike[str]) -> GeoTiffInfo:
    """Read the placement, CRS and nodata of a single-band GeoTIFF without its pixels."""
    p = str(path)
    with _open(p) as ds:
        return _info(ds, p)


def read_geotiff(path: str | os.PathLike[str],
                 window: tuple[int, int, int, int] | None = None) -> GeoRaster:
    """Read a single-band GeoTIFF, or only the ``(r0, r1, c0, c1)`` window of it.

    Only the strips or tiles that intersect the window are read and decoded (by GDAL).
    """
    p = str(path)
    with _open(p) as ds:
        info = _info(ds, p)
        r0, r1, c0, c1 = window if window is not None else (0, info.ny, 0, info.nx)
        if not (0 <= r0 < r1 <= info.ny and 0 <= c0 < c1 <= info.nx):
            raise ValueError(f"window {(r0, r1, c0, c1)} outside raster {info.ny}x{info.nx}")
        try:
            data = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        except RasterioError as exc:
            raise InputFileError(f"could not be decoded ({exc})", p) from exc
    return GeoRaster(np.asarray(data), info, r0, c0)


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
        nodata: the nodata value, or None.
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be (ny, nx), got shape {data.shape}")
    if not (dx > 0 and dy > 0):
        raise ValueError("dx and dy must be positive")
    target = Path(path)
    profile = {
        "driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype, "crs": f"EPSG:{int(epsg)}", "nodata": nodata,
        "transform": Affine(dx, 0.0, x0, 0.0, -dy, y_top),
        "compress": "deflate", "blockysize": min(rows_per_strip, data.shape[0]),
    }
    with atomic_path(target) as tmp, rasterio.open(tmp, "w", **profile) as ds:
        ds.write(data, 1)
    log.debug("wrote GeoTIFF %s (%d x %d, EPSG:%d)", target, *data.shape, epsg)
    return target
