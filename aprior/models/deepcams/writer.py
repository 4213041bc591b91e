"""Writing a downscaled PM2.5 field: CF netCDF in ug m-3 with its provenance.

The file holds ``pm25(time, lat, lon)`` float32 ug m-3 with ``lat`` ascending (-90..90)
and ``lon`` ascending in [-180, 180), the layout of :class:`~aprior.inputs.pm25.PM25Field`,
so :func:`aprior.inputs.pm25.open_pm25` reads it back unchanged. Provenance (models,
weights and their SHA-256, source files, date, a SYNTHETIC note) goes into global
attributes. The write is atomic.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from aprior import __version__
from aprior._io import atomic_path
from aprior.inputs.pm25 import PM25Field

STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"


def _attr(value: object) -> str | int | float:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def downscaled_dataset(field: PM25Field, provenance: dict) -> xr.Dataset:
    """The CF dataset of ``field`` (``(t, lat, lon)`` ug m-3) with ``provenance`` as attributes.

    Provenance values are written as strings or numbers (lists joined by ", ").
    """
    attrs = {"Conventions": "CF-1.8",
             "title": "PM2.5 downscaled with DeepCAMS (hourly, 0.25 degree)",
             "source": "aprior DeepCAMS spatiotemporal downscaling of CAMS EAC4 PM2.5",
             "history": f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} "
                        f"aprior {__version__} downscale"}
    attrs.update({str(k): _attr(v) for k, v in provenance.items() if v is not None})
    var = {"units": "ug m-3", "long_name": "PM2.5 mass concentration at the surface",
           "standard_name": STANDARD_NAME}
    return xr.Dataset(
        {"pm25": (("time", "lat", "lon"), np.asarray(field.values, np.float32), var)},
        coords={"time": ("time", field.times.astype("datetime64[ns]"), {"standard_name": "time"}),
                "lat": ("lat", np.asarray(field.lat, np.float64),
                        {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", np.asarray(field.lon, np.float64),
                        {"units": "degrees_east", "standard_name": "longitude"})},
        attrs=attrs)


def write_downscaled(path: str | os.PathLike[str], field: PM25Field, provenance: dict) -> Path:
    """Write ``field`` to ``path`` (CF netCDF-4, zlib), atomically; returns the path.

    Args:
        field: hourly PM2.5, ``(t, lat, lon)`` ug m-3 (lat ascending, lon in [-180, 180)).
        provenance: global attributes to record (see :func:`downscaled_dataset`).
    """
    target = Path(path)
    ds = downscaled_dataset(field, provenance)
    ny, nx = field.values.shape[1:]
    enc = {"pm25": {"zlib": True, "complevel": 1, "chunksizes": (1, ny, nx), "dtype": "float32"},
           "time": {"units": "hours since 1970-01-01 00:00:00", "calendar": "standard",
                    "dtype": "float64"}}
    with atomic_path(target, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", encoding=enc)
    return target
