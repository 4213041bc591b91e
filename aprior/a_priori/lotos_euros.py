"""LOTOS-EUROS 3D concentration output: the ``lotos-euros`` profile source.

The layout of LOTOS-EUROS netCDF output (the ``conc-3d`` files of its ``output`` settings;
the variables as TNO's LOTOS-EUROS user guide and the TROPOMI comparison scripts of KNMI
read them):

- ``no2(time, level, latitude, longitude)``, ``mol mol-1`` (some runs write ``ppb`` or
  ``ug/m3``: the units attribute decides);
- ``hp(time, hlevel, latitude, longitude)``, half-level (interface) pressure in Pa, from the
  surface up (``hlevel`` = ``level`` + 1); ``halt`` the half-level altitudes, ``T`` the
  temperature;
- ``latitude``/``longitude`` 1D (a regular lat/lon grid), time in CF units.

The interfaces are taken from ``hp`` pixel by pixel. The model top (about 200 hPa in the
operational CAMS configuration) lies below the tropopause in the tropics and often in
mid-latitude summer, so the top level's mixing ratio is kept above it (``constant_vmr``).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from aprior.a_priori.cf_axes import axis_roles, horizontal
from aprior.a_priori.cf_generic import field_from_dataset, open_dataset
from aprior.a_priori.cf_vertical import Vertical
from aprior.a_priori.field import PressureLevels, ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.errors import ProfileFieldError
from aprior.units import factor

VAR = "no2"


def read_lotos_euros(path: str | PathLike[str]) -> ProfileField:
    """Read ``no2`` with its ``hp`` interfaces from a LOTOS-EUROS file (module docstring)."""
    p = Path(path)
    with open_dataset(p) as ds:
        for name in (VAR, "hp"):
            if name not in ds.variables:
                raise ProfileFieldError(f"no variable {name!r}; is this a LOTOS-EUROS 3D file?", p)
        roles = axis_roles(ds, VAR, p)
        if "Z" not in roles:
            raise ProfileFieldError(f"{VAR!r} has no level dimension", p)
        hz = horizontal(ds, VAR, roles["Y"], roles["X"], p)
        hp = ds["hp"]
        hdim = next((d for d in hp.dims if d not in (roles.get("T"), roles["Y"], roles["X"])), None)
        if hdim is None or ds.sizes[hdim] != ds.sizes[roles["Z"]] + 1:
            raise ProfileFieldError("'hp' must have one more level than 'no2' (the interfaces)", p)
        dims = [d for d in (roles.get("T"), hdim, roles["Y"], roles["X"]) if d is not None]
        hpa = np.asarray(hp.transpose(*dims).values, np.float64) * factor(str(hp.attrs.get("units", "Pa")) or "Pa", "Pa")
        if "T" not in roles:
            hpa = hpa[None]
        flip = float(np.nanmean(hpa[:, 0])) < float(np.nanmean(hpa[:, -1]))
        if flip:
            hpa = hpa[:, ::-1]
        if times := roles.get("T"):
            order_t = np.argsort(ds[times].values, kind="stable")
            hpa = hpa[order_t]
        hpa = hpa[:, :, hz.y_order][:, :, :, hz.x_order]
        if not np.all(np.diff(hpa, axis=1) < 0):
            raise ProfileFieldError("'hp' does not decrease monotonically from the surface up", p)
        nz = ds.sizes[roles["Z"]]
        order = np.arange(nz)[::-1] if flip else np.arange(nz)
        zeros = np.zeros(nz + 1)
        vert = Vertical(order=order, pressure=PressureLevels(zeros, zeros, None, hpa.astype(np.float32)))
        return field_from_dataset(ds, VAR, p, source=f"LOTOS-EUROS ({p.name})", vert=vert, roles=roles)


class LotosEurosSource:
    """The ``lotos-euros`` profile source."""

    name = "lotos-euros"
    description = "LOTOS-EUROS 3D output (no2 on its levels with half-level pressures hp)"

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, lambda ds: VAR in ds.variables and "hp" in ds.variables)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_lotos_euros(path)
