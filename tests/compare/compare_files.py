"""Small reprocessed L2 files with chosen columns, for the tests of ``aprior compare``.

A synthetic L2 file (``make_test_granule``, real layout) is copied and given chosen
original columns, qa values and an added ``nitrogendioxide_tropospheric_column_reprocessed``
variable laid out like the original, as ``aprior reprocess`` writes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np

from aprior.synth.s5p.l2 import make_test_granule

FILL = np.float32(9.96921e36)
NA = 6.02214e19  # the file's mol m-2 -> molecules cm-2 factor
S, P = 12, 10


def base_granule(directory: Path) -> Path:
    """A 12 x 10 pixel L2 file near (4.5E, 50.5N), written once per directory."""
    directory.mkdir(parents=True, exist_ok=True)
    hits = sorted(directory.glob("S5P_*.nc"))
    return hits[0] if hits else make_test_granule(directory, n_scanline=S, n_ground_pixel=P)


def reprocessed_copy(src: Path, dst: Path, *, original: np.ndarray, reprocessed: np.ndarray,
                     qa: np.ndarray, orbit: int | None = None, source: str = "TEST prior (x.nc)",
                     history: str | None = None, shift_lat: float = 0.0) -> Path:
    """Copy ``src`` to ``dst`` with the given ``(s, p)`` columns (molecules cm-2, NaN -> fill)
    and qa values (0..1)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    with netCDF4.Dataset(dst, "a") as ds:
        ds.set_auto_maskandscale(False)
        prod = ds["PRODUCT"]
        col = prod["nitrogendioxide_tropospheric_column"]
        col[0] = np.where(np.isfinite(original), original / NA, FILL).astype(np.float32)
        prod["qa_value"][0] = np.rint(np.asarray(qa) * 100).astype(np.uint8)
        var = prod.createVariable("nitrogendioxide_tropospheric_column_reprocessed", "f4",
                                  col.dimensions, fill_value=FILL)
        var.setncattr("units", "mol m-2")
        var.setncattr("multiplication_factor_to_convert_to_molecules_percm2", np.float32(NA))
        var.setncattr("apriori_source", source)
        var[0] = np.where(np.isfinite(reprocessed), reprocessed / NA, FILL).astype(np.float32)
        if orbit is not None:
            ds.setncattr("orbit", np.int32(orbit))
        if history is not None:
            ds.setncattr("history", history)
        if shift_lat:
            prod["latitude"][0] = prod["latitude"][0] + shift_lat
    return dst


def truth_file(path: Path, l2: Path, column: np.ndarray, orbit: int = 35442) -> Path:
    """A per-orbit truth file (as ``aprior synth`` writes) with ``column`` (s, p) molecules cm-2."""
    with netCDF4.Dataset(l2) as src:
        lat = np.asarray(src["PRODUCT/latitude"][0])
        lon = np.asarray(src["PRODUCT/longitude"][0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("scanline", column.shape[0])
        ds.createDimension("ground_pixel", column.shape[1])
        ds.setncatts({"synthetic": "true", "l2_file": l2.name, "orbit": np.int32(orbit)})
        for name, data in (("latitude", lat), ("longitude", lon)):
            ds.createVariable(name, "f4", ("scanline", "ground_pixel"))[:] = data
        v = ds.createVariable("true_tropospheric_column", "f8", ("scanline", "ground_pixel"),
                              fill_value=np.nan)
        v.units = "mol m-2"
        v[:] = column / NA
    return path


def pixel_centres(l2: Path) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) ``(s, p)`` of a file's pixel centres."""
    with netCDF4.Dataset(l2) as ds:
        return np.asarray(ds["PRODUCT/longitude"][0]), np.asarray(ds["PRODUCT/latitude"][0])
