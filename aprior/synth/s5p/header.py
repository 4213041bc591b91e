"""The packaged header of an operational S5P L2 NO2 file, and files built on it.

``s5p_no2_header.json`` (made once from the ``ncdump -h`` of a processor-2.6.0 file by
``tools/cdl_to_schema.py``) holds every group, dimension, variable (dtype, dims,
attributes, ``_FillValue``) and attribute of the product. :func:`create_from_schema`
builds that skeleton in a new netCDF-4 file, with our chunking and compression;
:func:`file_attributes` gives the values that change from file to file (identifiers,
times, orbit, bounds).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import uuid
from collections.abc import Callable

import netCDF4
import numpy as np

from aprior.synth.s5p.swath import SwathGeometry

CHUNK_SCANLINES = 512
"""Chunk height along ``scanline`` of the synthetic files: chunks ``(1, 512, p[, ...])``."""
COMPLEVEL = 3


@functools.lru_cache(maxsize=1)
def load_schema() -> dict:
    """The packaged header schema (root group dict, see ``tools/cdl_to_schema.py``)."""
    res = importlib.resources.files("aprior.synth.s5p").joinpath("s5p_no2_header.json")
    return json.loads(res.read_text(encoding="utf-8"))["root"]


def attr_value(dtype: str, value: object) -> object:
    """A schema attribute value as numpy (numbers) or str (text)."""
    if dtype in ("char", "string"):
        return value
    return np.array(value, dtype=dtype)


def _stamp(t: np.datetime64) -> str:
    return str(np.datetime64(t, "s")).replace("-", "").replace(":", "")


def _iso(t: np.datetime64) -> str:
    return str(np.datetime64(t, "s"))


def synthetic_filename(
    start: np.datetime64, end: np.datetime64, orbit: int, created: np.datetime64
) -> str:
    """``S5P_OFFL_L2__NO2____{start}_{end}_{orbit:05d}_03_020600_{created}.nc``."""
    return f"S5P_OFFL_L2__NO2____{_stamp(start)}_{_stamp(end)}_{orbit:05d}_03_020600_{_stamp(created)}.nc"


def _pos_list(geometry: SwathGeometry, max_points: int = 40) -> str:
    """GML footprint ``lat lon lat lon ...``: west edge northwards, east edge southwards."""
    s = geometry.shape[0]
    rows = np.unique(np.linspace(0, s - 1, min(s, max_points)).astype(int))
    west = [(geometry.latitude_bounds[r, 0, 0], geometry.longitude_bounds[r, 0, 0]) for r in rows]
    west.append((geometry.latitude_bounds[-1, 0, 3], geometry.longitude_bounds[-1, 0, 3]))
    east = [
        (geometry.latitude_bounds[r, -1, 2], geometry.longitude_bounds[r, -1, 2])
        for r in rows[::-1]
    ]
    east.append((geometry.latitude_bounds[0, -1, 1], geometry.longitude_bounds[0, -1, 1]))
    pts = [*west, *east, west[0]]
    return " ".join(f"{lat:.6g} {lon:.6g}" for lat, lon in pts)


def file_attributes(
    root: dict,
    geometry: SwathGeometry,
    orbit: int,
    file_id: str,
    end: np.datetime64,
    created: np.datetime64,
) -> tuple[dict, dict, list[tuple[str, str]]]:
    """Per-file header values of a synthetic file.

    Returns:
        (globals, anywhere, substitutions): global attributes to set; attributes to set
        wherever they occur (ISO/EOP bounds, orbit number, footprint); and
        ``(old, new)`` text replacements for every other text attribute (the template's
        identifier, times, day and processing mode).
    """
    orig = {a[0]: a[2] for a in root["attrs"]}
    t0 = geometry.time[0]
    day = t0.astype("datetime64[D]")
    days_1950 = int((day - np.datetime64("1950-01-01", "D")).astype(int))
    lat_b, lon_b = geometry.latitude_bounds, geometry.longitude_bounds
    bounds = {
        k: np.float32(v)
        for k, v in (
            ("lat_min", np.nanmin(lat_b)),
            ("lat_max", np.nanmax(lat_b)),
            ("lon_min", np.nanmin(lon_b)),
            ("lon_max", np.nanmax(lon_b)),
        )
    }
    duration = (end - t0) / np.timedelta64(1, "s")
    globals_ = {
        "history": f"{_iso(created).replace('T', ' ')} aprior.synth.s5p.l2: synthetic file, "
        "not an operational product",
        "tracking_id": str(uuid.uuid5(uuid.NAMESPACE_URL, file_id)),
        "id": file_id,
        "time_reference": f"{day}T00:00:00Z",
        "time_reference_days_since_1950": np.int32(days_1950),
        "time_reference_julian_day": np.float64(days_1950 + 2433282.5),
        "time_reference_seconds_since_1970": np.int64(
            (day - np.datetime64("1970-01-01", "D")).astype(np.int64) * 86400
        ),
        "time_coverage_start": _iso(t0) + "Z",
        "time_coverage_end": _iso(end) + "Z",
        "time_coverage_duration": f"PT{duration:.3f}S",
        "orbit": np.int32(orbit),
        "date_created": _iso(created) + "Z",
        **{f"geospatial_{k}": v for k, v in bounds.items()},
    }
    anywhere = {
        "gmd:westBoundLongitude": bounds["lon_min"],
        "gmd:eastBoundLongitude": bounds["lon_max"],
        "gmd:southBoundLatitude": bounds["lat_min"],
        "gmd:northBoundLatitude": bounds["lat_max"],
        "eop:orbitNumber": np.int32(orbit),
        "gml:posList": _pos_list(geometry),
        "Creation_Date": "UTC=" + _iso(created),
    }
    subst = [
        (orig["id"], file_id),
        (orig["time_coverage_start"].rstrip("Z"), _iso(t0)),
        (orig["time_coverage_end"].rstrip("Z"), _iso(end)),
        (orig["time_reference"][:10], str(day)),
        ("NRTI", "OFFL"),
        ("Near-realtime", "Offline"),
        ("5-minute", "1-Orbit"),
        (f"orbit {orig['orbit']}", f"orbit {orbit}"),
    ]
    return globals_, anywhere, subst


def _chunks(dims: list[str], sizes: dict[str, int]) -> list[int]:
    return [
        1 if d == "time" else min(sizes[d], CHUNK_SCANLINES) if d == "scanline" else sizes[d]
        for d in dims
    ]


def _set_attrs(obj, attrs: list, fix: Callable[[str, str, object], object]) -> None:
    for name, dtype, value in attrs:
        if name == "_FillValue":
            continue
        value = fix(name, dtype, value)
        if isinstance(value, str):
            if dtype == "string":
                obj.setncattr_string(name, value)
            else:
                obj.setncattr(name, value.encode("utf-8"))  # bytes keep NC_CHAR, even non-ASCII
        elif isinstance(value, np.ndarray | np.generic):
            obj.setncattr(name, value)
        else:
            obj.setncattr(name, attr_value(dtype, value))


def create_from_schema(
    ds: netCDF4.Dataset,
    schema: dict,
    sizes: dict[str, int],
    fix: Callable[[str, str, str, object], object] | None = None,
) -> None:
    """Create every group, dimension, variable and attribute of ``schema`` in ``ds``.

    Args:
        ds: a netCDF4 dataset open for writing.
        schema: root group of the schema (:func:`load_schema`).
        sizes: dimension sizes replacing the schema's, e.g. ``{"scanline": 60}``.
        fix: ``fix(group_path, name, dtype, value) -> value`` rewrites attribute values.
    """
    fix = fix or (lambda _g, _n, _d, v: v)

    def build(nc, group: dict, gpath: str, scope: dict[str, int]) -> None:
        scope = dict(scope)
        for dim, size in group["dims"].items():
            scope[dim] = sizes.get(dim, size)
            nc.createDimension(dim, None if size is None else scope[dim])
        _set_attrs(nc, group["attrs"], lambda n, d, v: fix(gpath, n, d, v))
        for var in group["vars"]:
            fill = next((a for a in var["attrs"] if a[0] == "_FillValue"), None)
            dims = var["dims"]
            kwargs: dict = {}
            if var["dtype"] == "string":
                vtype: object = str
                fill_value = fill[2] if fill else None
                if dims:
                    kwargs = {"chunksizes": _chunks(dims, scope)}
            else:
                vtype = np.dtype(var["dtype"])
                fill_value = attr_value(fill[1], fill[2])[()] if fill else None
                if dims:
                    kwargs = {
                        "zlib": True,
                        "complevel": COMPLEVEL,
                        "shuffle": True,
                        "chunksizes": _chunks(dims, scope),
                    }
            v = nc.createVariable(var["name"], vtype, dims, fill_value=fill_value, **kwargs)
            vpath = f"{gpath}/{var['name']}"
            _set_attrs(v, var["attrs"], lambda n, d, val, vp=vpath: fix(vp, n, d, val))
        for child in group["groups"]:
            build(
                nc.createGroup(child["name"]), child, f"{gpath}/{child['name']}".lstrip("/"), scope
            )

    build(ds, schema, "", {})
