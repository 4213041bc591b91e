"""Machine-readable outputs of a comparison: stats.json, stats.csv and maps.nc.

Every writer goes through :func:`aprior._io.atomic_path`. ``stats.json`` is the statistics
dict of :func:`aprior.compare.api.compare` with NaN written as ``null``;
``stats.csv`` is its tidy form, one row per (kind, subject, reference, region); ``maps.nc``
holds the gridded maps on CF ``lat``/``lon`` coordinates with cell bounds.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import netCDF4
import numpy as np

from aprior._io import atomic_path

CSV_FIELDS = ("kind", "subject", "reference", "region", "unit", "n", "mean", "std", "rms",
              "p01", "p05", "median", "p95", "p99")


def _clean(obj: object) -> object:
    """A JSON-safe copy: NaN/inf -> None, numpy scalars and arrays -> Python."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, stats: Mapping) -> Path:
    """Write the statistics dict as indented JSON (NaN -> null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_clean(stats), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    return Path(path)


def csv_rows(stats: Mapping) -> Iterator[dict]:
    """The tidy rows of the statistics dict (see :data:`CSV_FIELDS`)."""
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    col_unit = stats["units"]["column"]

    def row(kind, subject, reference, region, unit, s):
        out = {"kind": kind, "subject": subject, "reference": reference, "region": region,
               "unit": unit}
        out.update({k: s.get(k, "") for k in CSV_FIELDS[5:]})
        return out

    for name, regions in stats["columns"].items():
        for region, s in regions.items():
            yield row("column", labels.get(name, name), "", region, col_unit, s)
    for d in stats["differences"]:
        for region, s in d["regions"].items():
            yield row("difference", labels[d["test"]], labels[d["reference"]], region, col_unit,
                      s["absolute"])
            yield row("relative_difference", labels[d["test"]], labels[d["reference"]], region,
                      "%", s["relative"])
    for d in stats.get("gridded", []):
        for region, s in d["regions"].items():
            yield row("gridded_difference", labels[d["test"]], labels[d["reference"]], region,
                      col_unit, s["absolute"])
            yield row("gridded_relative_difference", labels[d["test"]], labels[d["reference"]],
                      region, "%", s["relative"])
    truth = stats.get("truth") or {}
    for name, regions in truth.get("sets", {}).items():
        for region, s in regions.items():
            yield row("truth_difference", labels[name], "truth", region, col_unit, s["difference"])
            yield row("truth_ratio", labels[name], "truth", region, "1", s["ratio"])


def write_csv(path: str | Path, stats: Mapping) -> Path:
    """Write :func:`csv_rows` with a header; empty cells for undefined values."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in csv_rows(stats):
            writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                             for k, v in r.items()})
    return Path(path)


def write_maps(path: str | Path, lon_edges: np.ndarray, lat_edges: np.ndarray,
               variables: Mapping[str, tuple[np.ndarray, Mapping[str, str]]],
               attrs: Mapping[str, str]) -> Path:
    """Write gridded maps as CF netCDF-4.

    Args:
        lon_edges: ``(nx + 1,)`` degrees east; lat_edges: ``(ny + 1,)`` degrees north.
        variables: name -> (``(ny, nx)`` array, attributes incl. ``units``); NaN is fill.
        attrs: global attributes.
    """
    lon = 0.5 * (lon_edges[1:] + lon_edges[:-1])
    lat = 0.5 * (lat_edges[1:] + lat_edges[:-1])
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        ds.setncatts({"Conventions": "CF-1.8", **dict(attrs)})
        ds.createDimension("lat", lat.size)
        ds.createDimension("lon", lon.size)
        ds.createDimension("nv", 2)
        for name, centres, edges, axis, units, std in (
                ("lat", lat, lat_edges, "Y", "degrees_north", "latitude"),
                ("lon", lon, lon_edges, "X", "degrees_east", "longitude")):
            v = ds.createVariable(name, "f8", (name,))
            v.setncatts({"units": units, "standard_name": std, "axis": axis,
                         "bounds": f"{name}_bnds"})
            v[:] = centres
            b = ds.createVariable(f"{name}_bnds", "f8", (name, "nv"))
            b[:] = np.column_stack([edges[:-1], edges[1:]])
        for name, (data, vattrs) in variables.items():
            v = ds.createVariable(name, "f4", ("lat", "lon"), zlib=True, complevel=4,
                                  fill_value=np.float32(np.nan))
            v.setncatts(dict(vattrs))
            v[:] = np.asarray(data, dtype=np.float32)
    return Path(path)
