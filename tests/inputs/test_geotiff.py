"""GeoTIFFs in the forms real static layers come in, read through rasterio."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from aprior.errors import InputFileError
from aprior.inputs.geotiff import read_geotiff, read_geotiff_info

ESRI_LAEA = ('PROJCS["ETRS_1989_LAEA",GEOGCS["GCS_ETRS_1989",DATUM["D_ETRS_1989",'
             'SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
             'UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Azimuthal_Equal_Area"],'
             'PARAMETER["False_Easting",4321000.0],PARAMETER["False_Northing",3210000.0],'
             'PARAMETER["Central_Meridian",10.0],PARAMETER["Latitude_Of_Origin",52.0],'
             'UNIT["Meter",1.0]]')


def _write(path, data, crs, **options):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs=crs, nodata=-1,
                       transform=Affine(100.0, 0, 3_900_000.0, 0, -100.0, 3_100_000.0),
                       **options) as ds:
        ds.write(data, 1)
    return path


@pytest.mark.parametrize("options", [
    {"compress": "lzw"},
    {"compress": "deflate", "predictor": 2},
    {"compress": "lzw", "tiled": True, "blockxsize": 64, "blockysize": 64},
    {"compress": "deflate", "tiled": True, "blockxsize": 32, "blockysize": 32, "bigtiff": "YES"},
    {"compress": "packbits"},
])
@pytest.mark.parametrize("crs", ["EPSG:3035", ESRI_LAEA])
def test_real_forms_are_read_windowed(tmp_path, options, crs):
    data = np.arange(150 * 170, dtype=np.int32).reshape(150, 170)
    path = _write(tmp_path / "r.tif", data, crs, **options)
    info = read_geotiff_info(path)
    assert (info.ny, info.nx, info.dx, info.dy) == (150, 170, 100.0, 100.0)
    assert (info.x0, info.y_top, info.nodata) == (3_900_000.0, 3_100_000.0, -1.0)
    # the ESRI WKT is the same projection as EPSG:3035 up to naming
    tr = Transformer.from_crs(CRS.from_user_input(info.crs), "EPSG:3035", always_xy=True)
    np.testing.assert_allclose(tr.transform(3_950_000.0, 3_050_000.0), (3_950_000.0, 3_050_000.0),
                               atol=1e-3)
    win = read_geotiff(path, (37, 101, 45, 133))
    np.testing.assert_array_equal(win.data, data[37:101, 45:133])
    np.testing.assert_allclose(win.x[0], 3_900_000.0 + 45.5 * 100)


def test_bigtiff_flag_is_really_bigtiff(tmp_path):
    path = _write(tmp_path / "b.tif", np.ones((8, 8), np.int16), "EPSG:4326", bigtiff="YES")
    assert path.read_bytes()[2:4] == b"\x2b\x00"  # BigTIFF version 43 (little endian)
    assert read_geotiff_info(path).epsg == 4326


def test_rotated_and_multiband_and_garbage_are_refused(tmp_path):
    rot = tmp_path / "rot.tif"
    with rasterio.open(rot, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(1, 0.2, 0, 0.1, -1, 50)) as ds:
        ds.write(np.zeros((4, 4), np.uint8), 1)
    with pytest.raises(InputFileError, match="rotated"):
        read_geotiff_info(rot)
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", driver="GTiff", width=4, height=4, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(1, 0, 0, 0, -1, 50)) as ds:
        ds.write(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(InputFileError, match="3 bands"):
        read_geotiff_info(rgb)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(InputFileError, match="not a readable TIFF") as err:
        read_geotiff(junk)
    assert err.value.path == str(junk)
