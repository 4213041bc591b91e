"""Small model files written in code in their real layouts (WRF-Chem, GEOS-Chem, CAMS global,
LOTOS-EUROS, plain xarray, CF hybrid), from one function ``vmr(lon, lat) -> mol mol-1``
that is constant in the vertical."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from aprior.constants import M_AIR, M_NO2

BOX = (1.0, 47.5, 9.0, 54.5)  # covers the test swath around Brussels
TIME = np.datetime64("2023-06-15T12:00:00")
#: a 10-layer hybrid grid, half levels bottom first, reaching 0 Pa
A_HALF = np.array([0, 800, 2500, 6000, 10000, 15000, 18000, 12000, 5000, 1000, 0.0])
B_HALF = np.array([1, 0.9, 0.75, 0.55, 0.35, 0.18, 0.06, 0.01, 0, 0, 0.0])


def constant(value: float = 2e-9):
    return lambda lon, lat: np.full(np.broadcast(lon, lat).shape, value)


def step(lon_step: float, west: float = 1e-9, east: float = 5e-9):
    return lambda lon, lat: np.where(np.broadcast_to(lon, np.broadcast(lon, lat).shape) < lon_step, west, east)


def _lonlat(res: float):
    lon = np.arange(BOX[0] + res / 2, BOX[2], res)
    lat = np.arange(BOX[1] + res / 2, BOX[3], res)
    return lon, lat


def write_plain(path: Path, vmr, heights=(0, 50, 250, 500, 1000, 2000, 3000, 5000, 8000, 12000)) -> Path:
    """A plain xarray file: no2(height, lat, lon) in ug m-3 of ``vmr`` in a standard atmosphere."""
    from aprior.retrieval.vertical import VerticalConfig, _state_at, number_density_air

    lon, lat = _lonlat(0.25)
    h = np.asarray(heights, float)
    ps = np.full(1, 101325.0)
    p, t = zip(*[_state_at(np.array([z]), ps, None, None, None, VerticalConfig()) for z in h], strict=True)
    air = number_density_air(np.concatenate(p), np.concatenate(t))  # mol m-3
    x = vmr(*np.meshgrid(lon, lat))
    conc = x[None] * air[:, None, None] * M_NO2 * 1e6
    xr.Dataset({"no2": (("height", "lat", "lon"), conc.astype(np.float32), {"units": "ug m-3"})},
               coords={"height": ("height", h, {"units": "m"}), "lat": lat, "lon": lon}).to_netcdf(path)
    return path


def write_geos_chem(path: Path, vmr, with_ps: bool = False) -> Path:
    lon, lat = _lonlat(0.5)
    x = vmr(*np.meshgrid(lon, lat))
    nz = A_HALF.size - 1
    ds = xr.Dataset(
        {"SpeciesConc_NO2": (("time", "lev", "lat", "lon"), np.broadcast_to(x, (1, nz, *x.shape)).astype(np.float32),
                             {"units": "mol mol-1 dry", "long_name": "Dry mixing ratio of species NO2"}),
         "hyai": ("ilev", A_HALF / 100.0, {"units": "hPa"}), "hybi": ("ilev", B_HALF, {"units": "1"}),
         "hyam": ("lev", 0.5 * (A_HALF[:-1] + A_HALF[1:]) / 100.0, {"units": "hPa"}),
         "hybm": ("lev", 0.5 * (B_HALF[:-1] + B_HALF[1:]), {"units": "1"}),
         "P0": ((), 1000.0, {"units": "hPa"})},
        coords={"time": ("time", [0.0], {"units": "minutes since 2023-06-15 12:00:00", "calendar": "gregorian"}),
                "lev": ("lev", np.arange(1, nz + 1, dtype=float), {
                    "standard_name": HYBRID, "positive": "up", "units": "level",
                    "formula_terms": "ap: hyam b: hybm p0: P0 ps: PS"}),
                "ilev": ("ilev", np.arange(1, nz + 2, dtype=float), {
                    "standard_name": HYBRID, "positive": "up", "units": "level",
                    "formula_terms": "ap: hyai b: hybi p0: P0 ps: PS"}),
                "lat": ("lat", lat, {"units": "degrees_north", "axis": "Y"}),
                "lon": ("lon", lon, {"units": "degrees_east", "axis": "X"})})
    if with_ps:
        ds["PS"] = (("time", "lat", "lon"), np.full((1, lat.size, lon.size), 1000.0), {"units": "hPa"})
    ds.to_netcdf(path)
    return path


HYBRID = "atmosphere_hybrid_sigma_pressure_coordinate"


def write_cams_global(path: Path, vmr) -> Path:
    """EAC4-like: L60 model levels 1..60 (top first), no2 in kg kg**-1, lnsp on level 1,
    latitude north to south, longitude 0-360, grib_to_netcdf-style attributes."""
    lon, lat = _lonlat(0.75)
    lat = lat[::-1]
    x = vmr(*np.meshgrid(lon, lat))
    mmr = x * M_NO2 / (M_AIR * 1e3)
    levels = np.arange(1, 61, dtype=np.int32)
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.6"
        ds.history = "grib_to_netcdf-2.23.0"
        for n, k in (("longitude", lon.size), ("latitude", lat.size), ("level", 60), ("time", 1)):
            ds.createDimension(n, k)
        v = ds.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon % 360
        v = ds.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat
        v = ds.createVariable("level", "i4", ("level",))
        v.units, v.long_name = "~", "model_level_number"
        v[:] = levels
        v = ds.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        v[:] = int((TIME - np.datetime64("1900-01-01T00:00")) / np.timedelta64(1, "h"))
        v = ds.createVariable("no2", "f4", ("time", "level", "latitude", "longitude"))
        v.units, v.long_name = "kg kg**-1", "Nitrogen dioxide mass mixing ratio"
        v.standard_name = "mass_fraction_of_nitrogen_dioxide_in_air"
        v[:] = np.broadcast_to(mmr, (1, 60, *mmr.shape))
        v = ds.createVariable("lnsp", "f4", ("time", "latitude", "longitude"))
        v.units, v.long_name = "~", "Logarithm of surface pressure"
        v[:] = np.log(np.full((1, lat.size, lon.size), 100000.0))
    return path


def write_lotos_euros(path: Path, vmr) -> Path:
    lon, lat = _lonlat(0.2)
    x = vmr(*np.meshgrid(lon, lat))
    ps = 100500.0
    hp = A_HALF[:7, None, None] * 0 + (np.array([1.0, 0.97, 0.92, 0.85, 0.75, 0.6, 0.45]) * ps)[:, None, None]
    hp = np.broadcast_to(hp, (7, lat.size, lon.size))
    xr.Dataset(
        {"no2": (("time", "level", "latitude", "longitude"), np.broadcast_to(x, (1, 6, *x.shape)).astype(np.float32),
                 {"units": "mol mol-1", "long_name": "nitrogen dioxide volume mixing ratio"}),
         "hp": (("time", "hlevel", "latitude", "longitude"), hp[None].astype(np.float32),
                {"units": "Pa", "long_name": "half level pressure"})},
        coords={"time": ("time", [0.0], {"units": "seconds since 2023-06-15 12:00:00"}),
                "level": ("level", np.arange(1, 7)), "hlevel": ("hlevel", np.arange(0, 7)),
                "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"})}).to_netcdf(path)
    return path


def write_wrfout(path: Path, vmr, dx: float = 15000.0) -> Path:
    """A wrfout with a Lambert conformal grid over Belgium (XLAT/XLONG from the projection)."""
    attrs = {"MAP_PROJ": 1, "TRUELAT1": 45.0, "TRUELAT2": 55.0, "STAND_LON": 5.0, "CEN_LAT": 51.0,
             "CEN_LON": 5.0, "MOAD_CEN_LAT": 51.0, "DX": dx, "DY": dx, "TITLE": " OUTPUT FROM WRF V4.4 MODEL"}
    crs = CRS.from_proj4("+proj=lcc +lat_1=45 +lat_2=55 +lat_0=51 +lon_0=5 +a=6370000 +b=6370000 +units=m")
    nx, ny, nz = 36, 34, 12
    xs = (np.arange(nx) - (nx - 1) / 2) * dx
    ys = (np.arange(ny) - (ny - 1) / 2) * dx
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(*np.meshgrid(xs, ys))
    x = vmr(lon, lat)
    psfc, ptop = 100000.0, 5000.0
    eta_w = np.linspace(1, 0, nz + 1) ** 1.4
    p_w = ptop + eta_w * (psfc - ptop)
    pmid = 0.5 * (p_w[:-1] + p_w[1:])
    with netCDF4.Dataset(path, "w") as ds:
        ds.setncatts(attrs)
        for n, k in (("Time", 1), ("DateStrLen", 19), ("bottom_top", nz), ("bottom_top_stag", nz + 1),
                     ("south_north", ny), ("west_east", nx)):
            ds.createDimension(n, k)
        t = ds.createVariable("Times", "S1", ("Time", "DateStrLen"))
        t[0] = netCDF4.stringtochar(np.array(["2023-06-15_12:00:00"], "S19"))[0]
        dims3, dims2 = ("Time", "bottom_top", "south_north", "west_east"), ("Time", "south_north", "west_east")
        for name, dims, value, units in (
                ("XLAT", dims2, lat, "degree_north"), ("XLONG", dims2, lon, "degree_east"),
                ("no2", dims3, np.broadcast_to(x * 1e6, (nz, ny, nx)), "ppmv"),
                ("P", dims3, np.broadcast_to((pmid * 0.01)[:, None, None], (nz, ny, nx)), "Pa"),
                ("PB", dims3, np.broadcast_to((pmid * 0.99)[:, None, None], (nz, ny, nx)), "Pa"),
                ("PSFC", dims2, np.full((ny, nx), psfc), "Pa")):
            v = ds.createVariable(name, "f4", dims)
            v.units = units
            v[0] = value
        v = ds.createVariable("P_TOP", "f4", ("Time",))
        v.units = "Pa"
        v[:] = ptop
    return path


def write_cf_hybrid_bounds(path: Path, vmr) -> Path:
    """A CF field on hybrid full levels with bounds on the formula terms (p = a p0 + b ps)."""
    lon, lat = _lonlat(0.25)
    x = vmr(*np.meshgrid(lon, lat))
    nz = A_HALF.size - 1
    a_b = np.stack([A_HALF[:-1], A_HALF[1:]], axis=1) / 1e5
    b_b = np.stack([B_HALF[:-1], B_HALF[1:]], axis=1)
    xr.Dataset(
        {"no2": (("lev", "lat", "lon"), np.broadcast_to(x, (nz, *x.shape)).astype(np.float32),
                 {"units": "ppb", "standard_name": "mole_fraction_of_nitrogen_dioxide_in_air"}),
         "a": ("lev", a_b.mean(axis=1), {"bounds": "a_bnds"}), "b": ("lev", b_b.mean(axis=1), {"bounds": "b_bnds"}),
         "a_bnds": (("lev", "nv"), a_b), "b_bnds": (("lev", "nv"), b_b),
         "p0": ((), 1e5, {"units": "Pa"}),
         "ps": (("lat", "lon"), np.full(x.shape, 101000.0), {"units": "Pa"})},
        coords={"lev": ("lev", np.arange(nz, dtype=float), {"standard_name": HYBRID, "positive": "up",
                                                            "formula_terms": "a: a b: b ps: ps p0: p0"}),
                "lat": ("lat", lat, {"units": "degrees_north"}), "lon": ("lon", lon, {"units": "degrees_east"})},
    ).to_netcdf(path)
    # the ppb unit: scale the values
    with netCDF4.Dataset(path, "a") as ds:
        ds["no2"][:] = ds["no2"][:] * 1e9
    return path
