"""WRF-Chem ``wrfout`` files: the ``wrf-chem`` profile source.

The layout (WRF ARW User's Guide, "WRF output fields"; the variables as ``ncdump -h``
of a ``wrfout_d01_YYYY-MM-DD_HH:MM:SS`` file shows them):

- ``no2(Time, bottom_top, south_north, west_east)``, ppmv (the chemistry species of
  WRF-Chem are volume mixing ratios in ppmv);
- pressure ``P + PB`` (perturbation + base state, Pa) on the mass levels, ``PSFC`` (Pa) at
  the surface, ``P_TOP`` (Pa) at the model top;
- geopotential ``PH + PHB`` (m2 s-2) on the staggered ``bottom_top_stag`` levels (not needed:
  the vertical integration is in pressure);
- ``XLAT``/``XLONG(Time, south_north, west_east)``, degrees;
- ``Times(Time, DateStrLen)``, characters ``YYYY-MM-DD_HH:MM:SS``;
- global attributes ``MAP_PROJ`` (1 Lambert conformal, 2 polar stereographic, 3 Mercator),
  ``TRUELAT1``, ``TRUELAT2``, ``STAND_LON``, ``CEN_LAT``, ``CEN_LON``, ``MOAD_CEN_LAT``,
  ``DX``, ``DY`` (m).

The grid is rebuilt in WRF's own projection on its sphere of radius 6370 km: the cell
centres ``XLAT``/``XLONG`` are projected and must form the regular ``DX`` x ``DY`` grid.
Layer interfaces are ``PSFC`` at the bottom, the mean of ``P + PB`` of the two adjacent
mass levels between layers, and ``P_TOP`` at the top; above ``P_TOP`` (often 50 hPa) the
top layer's mixing ratio is kept up to 0 Pa (the ``constant_vmr`` extension).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np
from pyproj import CRS

from aprior.a_priori.cf_axes import grid_from_lonlat_2d
from aprior.a_priori.cf_field import global_attrs, open_netcdf, read_float32, require_variable
from aprior.a_priori.field import PressureLevels, ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.a_priori.quantities import check_amounts, quantity_of
from aprior.errors import ProfileFieldError

WRF_RADIUS_M = 6_370_000.0


def wrf_crs(attrs: dict, path: str | PathLike[str]) -> CRS:
    """The CRS of a WRF grid from its global attributes (MAP_PROJ 1, 2, 3 or 6)."""
    proj = int(attrs.get("MAP_PROJ", -1))
    sphere = f"+a={WRF_RADIUS_M} +b={WRF_RADIUS_M} +units=m +no_defs"
    lat0 = float(attrs.get("MOAD_CEN_LAT", attrs.get("CEN_LAT", 0.0)))
    lon0 = float(attrs.get("STAND_LON", attrs.get("CEN_LON", 0.0)))
    t1, t2 = float(attrs.get("TRUELAT1", lat0)), float(attrs.get("TRUELAT2", attrs.get("TRUELAT1", lat0)))
    if proj == 1:
        return CRS.from_proj4(f"+proj=lcc +lat_1={t1} +lat_2={t2} +lat_0={lat0} +lon_0={lon0} {sphere}")
    if proj == 2:
        return CRS.from_proj4(f"+proj=stere +lat_0={90 if t1 >= 0 else -90} +lat_ts={t1} +lon_0={lon0} {sphere}")
    if proj == 3:
        return CRS.from_proj4(f"+proj=merc +lat_ts={t1} +lon_0={lon0} {sphere}")
    if proj == 6:
        return CRS.from_proj4(f"+proj=longlat {sphere}")
    raise ProfileFieldError(f"WRF MAP_PROJ {proj} is not supported (1, 2, 3 or 6)", path)


def _times(ds: netCDF4.Dataset, path: Path) -> np.ndarray:
    raw = ds.variables["Times"][:]
    text = [b"".join(np.asarray(r).astype("S1").tolist()).decode() for r in np.atleast_2d(raw)]
    try:
        return np.array([np.datetime64(t.replace("_", "T"), "ns") for t in text])
    except ValueError as exc:
        raise ProfileFieldError(f"WRF Times {text[:2]} are not YYYY-MM-DD_HH:MM:SS", path) from exc


def read_wrfout(path: str | PathLike[str]) -> ProfileField:
    """Read NO2 of a WRF-Chem ``wrfout`` file (module docstring) as mole fractions on the
    model's layers with their 3D interface pressures."""
    p = Path(path)
    with open_netcdf(p) as ds:
        var = require_variable(ds, "no2", p, "WRF-Chem wrfout file")
        for name in ("P", "PB", "PSFC", "XLAT", "XLONG", "Times"):
            require_variable(ds, name, p, "WRF-Chem wrfout file")
        units = (getattr(var, "units", "") or "ppmv").strip() or "ppmv"
        quantity, fac = quantity_of(units, variable="no2", path=p)
        no2 = read_float32(var) * np.float32(fac)  # (t, z, y, x)
        check_amounts(no2, quantity, units, variable="no2", path=p)
        pmid = read_float32(ds.variables["P"]).astype(np.float64) + read_float32(ds.variables["PB"])
        psfc = read_float32(ds.variables["PSFC"]).astype(np.float64)
        ptop = (float(np.ravel(ds.variables["P_TOP"][:])[0]) if "P_TOP" in ds.variables
                else max(float(pmid[:, -1].min()) - (float(pmid[:, -2].min()) - float(pmid[:, -1].min())) / 2, 0.0))
        lat = read_float32(ds.variables["XLAT"])[0]
        lon = read_float32(ds.variables["XLONG"])[0]
        attrs = global_attrs(ds)
        times = _times(ds, p)
    if no2.ndim != 4 or pmid.shape != no2.shape:
        raise ProfileFieldError(f"no2 {no2.shape} and P+PB {pmid.shape} must both be (Time, bottom_top, y, x)", p)
    hz = grid_from_lonlat_2d(wrf_crs(attrs, p), lon, lat, p)
    inner = 0.5 * (pmid[:, :-1] + pmid[:, 1:])
    interfaces = np.concatenate([psfc[:, None], inner, np.full_like(psfc[:, None], ptop)], axis=1)
    if not np.all(np.diff(interfaces, axis=1) < 0):
        raise ProfileFieldError("WRF pressures do not decrease upwards (PSFC > P+PB > P_TOP)", p)

    def order(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[..., hz.y_order, :][..., hz.x_order])

    levels = PressureLevels(np.zeros(no2.shape[1] + 1), np.zeros(no2.shape[1] + 1), None,
                            order(interfaces).astype(np.float32), terrain_following=True)
    title = str(attrs.get("TITLE", "WRF")).strip()
    try:
        return ProfileField(order(no2), None, hz.grid, times, source=f"WRF-Chem ({title}; {p.name})",
                            path=str(p), attrs=attrs, quantity=quantity, pressure=levels)
    except ValueError as exc:
        raise ProfileFieldError(f"invalid WRF-Chem field: {exc}", p) from exc


class WrfChemSource:
    """The ``wrf-chem`` profile source: WRF-Chem ``wrfout`` files."""

    name = "wrf-chem"
    description = "WRF-Chem wrfout (no2 in ppmv on eta levels, P+PB pressure, Lambert/polar/Mercator grid)"

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, lambda ds: "no2" in ds.variables and "XLAT" in ds.variables and "MAP_PROJ" in ds.ncattrs())

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_wrfout(path)
