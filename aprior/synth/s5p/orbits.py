"""Synthetic Sentinel-5P NO2 orbits of the synthetic world (one a day over the region).

Geometry: the ascending day-side swath of :func:`aprior.synth.s5p.l2.synthetic_swath`
(450 ground pixels, 5.5 km scanlines, pixels ~3.5 km across at nadir widening to ~14 km
at the edges), its nadir track placed each day so that the region falls at a different
across-track distance (cycling between 1100 km west and 1100 km east of nadir), the nadir
crossing the region's latitude at 13:30 local solar time less 25 minutes (about 12:30-13:30
UTC over the DACNO2 domain). Only the scanlines over the region grid (plus 0.15 degree) are kept;
all 450 ground pixels of each scanline are kept.

Per pixel whose footprint lies wholly inside the region grid (the others are written as
fill, like pixels without a retrieval):

- truth: the true NO2 averaged over the footprint (exact area weights,
  :func:`aprior.retrieval.footprint.footprint_weights`) from the 11-13 UTC mean truth (the
  field written to ``truth/no2_s5p``), turned into TM5-layer partial columns by
  :func:`aprior.retrieval.vertical.partial_columns` (constant mixing ratio above 5 km), plus
  a stratospheric layer (4.5 ppb peaking near 10 hPa) above the tropopause;
- the TM5-like a-priori: the same truth averaged over 1 x 1 degree cells, smoothed over
  the neighbouring cells and interpolated bilinearly to the pixel, with its column below
  5 km redistributed as TM5 would mix it, uniform to 1.2 km and decaying above with a 1 km
  scale (deeper than the truth), plus the same stratosphere;
- surface pressure from ERA5 at the overpass hour; tropopause at 220 hPa + 6 hPa per
  degree north of 50 N, 15 hPa lower in winter;
- surface albedo from the land cover (water 0.06, towns 0.07, farmland 0.065, forest
  0.035, snow above 1200 m in winter 0.5); cloud fraction ``0.9 tcc^1.5`` (ERA5, at the
  pixel) and cloud pressure 850-600 hPa (thicker clouds higher);
- box AMFs from :func:`aprior.synth.s5p.l2.box_amf_model`; qa_value 1.0 for a
  cloud radiance fraction under 0.3, 0.84 under 0.5, 0.5 under 0.8, else 0.2;
- the reported column is the truth's slant column over the TM5-like AMF (the writer does
  this), so reprocessing with the truth as a-priori gives back the true column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from aprior.grids.grid import Grid, lonlat_of
from aprior.retrieval import s5p_names as names
from aprior.retrieval.footprint import apply, footprint_weights
from aprior.retrieval.vertical import partial_columns
from aprior.synth.noise import component_rng
from aprior.synth.s5p.l2 import (
    SwathGeometry,
    air_partial_columns,
    box_amf_model,
    cloud_radiance_fraction,
    layer_pressures,
    synthetic_swath,
    tm5_hybrid_coefficients,
)
from aprior.synth.weather import winter_weight

N_GROUND_PIXEL = 450
_KM_PER_SCANLINE = 5.5
_SCANLINE_S = 0.84
_FIRST_ORBIT_DAY = dt.date(2017, 10, 13)


@dataclass(frozen=True)
class Orbit:
    """One simulated orbit.

    geometry: the cropped swath ``(s, p)``; orbit: orbit number; valid: ``(s, p)`` bool,
    pixels with a retrieval; fields for :func:`write_synthetic_l2` (``box_amf``,
    ``apriori_tm5``, ``truth`` ``(s, p, 34)``, ``tropopause_index``, ``surface_pressure``,
    ``qa_value`` ``(s, p)``, ``extra``); ``surface_no2``: ``(s, p)`` true surface NO2 over
    the footprint (ug m-3).
    """

    geometry: SwathGeometry
    orbit: int
    valid: np.ndarray
    box_amf: np.ndarray
    apriori_tm5: np.ndarray
    truth: np.ndarray
    tropopause_index: np.ndarray
    surface_pressure: np.ndarray
    qa_value: np.ndarray
    surface_no2: np.ndarray
    extra: dict

    @property
    def true_tropospheric_column(self) -> np.ndarray:
        """``(s, p)`` mol m-2: the truth summed over layers ``l <= tropopause_index``."""
        layer = np.arange(self.truth.shape[-1])
        trop = layer <= self.tropopause_index[..., None]
        return np.where(self.valid, np.sum(np.where(trop, self.truth, 0.0), axis=-1), np.nan)


def orbit_number(day: dt.date) -> int:
    """A plausible absolute orbit number for the day's early-afternoon orbit."""
    return int((day - _FIRST_ORBIT_DAY).days * 14.19 + 7)


def swath_for_day(seed: int, day: dt.date, bbox: tuple[float, float, float, float],
                  margin_deg: float = 0.15) -> tuple[SwathGeometry, int]:
    """The day's swath cropped to the scanlines over ``bbox`` + margin, and its orbit."""
    w, s, e, n = bbox
    clat, clon = 0.5 * (s + n), 0.5 * (w + e)
    frac = (day.toordinal() * 0.6180339887 + seed * 0.2357) % 1.0
    offset_km = 1100.0 * (2.0 * frac - 1.0)
    nadir_lon = clon - offset_km / (111.32 * np.cos(np.deg2rad(clat)))
    tilt = offset_km * np.sin(np.deg2rad(16.0)) / 111.2
    lat0 = s - margin_deg - tilt - 1.0
    n_scan = int(np.ceil((n - s + 2 * margin_deg + 2.0) * 111.2 / _KM_PER_SCANLINE))
    t_cross = 13.5 - nadir_lon / 15.0 - 25.0 / 60.0
    t_start = t_cross - (clat - tilt - lat0) * 111.2 / _KM_PER_SCANLINE * _SCANLINE_S / 3600.0
    start = np.datetime64(day.isoformat(), "ns") + np.timedelta64(int(round(t_start * 3.6e12)), "ns")
    geom = synthetic_swath(n_scan, N_GROUND_PIXEL, start_time=start, center_lon=float(nadir_lon),
                           start_lat=float(lat0), heading_deg=-16.0)
    inside = ((geom.longitude >= w - margin_deg) & (geom.longitude <= e + margin_deg)
              & (geom.latitude >= s - margin_deg) & (geom.latitude <= n + margin_deg))
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        raise ValueError("the synthetic swath misses the region")
    sl = slice(int(rows[0]), int(rows[-1]) + 1)
    cut = {f: (None if getattr(geom, f) is None else getattr(geom, f)[sl])
           for f in geom.__dataclass_fields__}
    return replace(geom, **cut), orbit_number(day)


def _tm5_like(no2: np.ndarray, grid: Grid, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1 degree TM5-like field from the truth ``(z, ny, nx)``: ``(z, nlat, nlon)``, lat, lon
    (cell centres, ascending)."""
    lon2, lat2 = lonlat_of(grid)
    la0, lo0 = np.floor(lat2.min()), np.floor(lon2.min())
    nlat, nlon = int(np.ceil(lat2.max()) - la0), int(np.ceil(lon2.max()) - lo0)
    cell = (np.floor(lat2 - la0).astype(int) * nlon + np.floor(lon2 - lo0).astype(int)).ravel()
    cnt = np.bincount(cell, minlength=nlat * nlon)
    field = np.stack([np.bincount(cell, weights=lev.ravel(), minlength=nlat * nlon) for lev in no2])
    with np.errstate(invalid="ignore"):
        field = (field / cnt).reshape(len(heights), nlat, nlon)
    fill = np.nanmean(field, axis=(1, 2))[:, None, None]
    field = np.where(np.isfinite(field), field, fill)
    field = ndimage.uniform_filter(field, size=(1, 3, 3), mode="nearest")
    column = np.trapezoid(field, heights, axis=0)
    shape = np.where(heights <= 1200.0, 1.0, np.exp(-(heights - 1200.0) / 1000.0))
    tm5 = column[None] * (shape / np.trapezoid(shape, heights))[:, None, None]
    return tm5, la0 + 0.5 + np.arange(nlat), lo0 + 0.5 + np.arange(nlon)


def _bilinear(field: np.ndarray, lat: np.ndarray, lon: np.ndarray, plat: np.ndarray,
              plon: np.ndarray) -> np.ndarray:
    """Sample ``(k, ny, nx)`` on ascending ``lat`` x ``lon`` at points: ``(n, k)``."""
    jj = np.interp(plat, lat, np.arange(lat.size))
    ii = np.interp(plon, lon, np.arange(lon.size))
    return np.stack([ndimage.map_coordinates(f, [jj, ii], order=1, mode="nearest") for f in field], axis=1)


def _stratosphere(pmid: np.ndarray, air: np.ndarray, tp: np.ndarray) -> np.ndarray:
    strat = 4.5e-9 * np.exp(-0.5 * ((np.log(pmid) - np.log(1000.0)) / 0.9) ** 2) * air
    return np.where(np.arange(pmid.shape[-1]) > tp[:, None], strat, 0.0)


def simulate_orbit(seed: int, day: dt.date, *, region_grid: Grid, bbox: tuple[float, float, float, float],
                   no2_s5p: np.ndarray, heights: np.ndarray, albedo_map: np.ndarray,
                   era5_lat: np.ndarray, era5_lon: np.ndarray, sp_hour: np.ndarray,
                   tcc_hour: np.ndarray) -> Orbit:
    """Simulate the day's orbit (see the module docstring).

    Args:
        region_grid: the 2 km region grid; ``no2_s5p`` ``(z, ny, nx)`` ug m-3 on it at
            ``heights`` (m above ground); ``albedo_map`` ``(ny, nx)`` surface albedo.
        era5_lat (descending), era5_lon: the ERA5 axes; ``sp_hour``, ``tcc_hour``
            ``(nlat, nlon)``: surface pressure (Pa) and cloud cover at the overpass hour.
    """
    geom, orbit = swath_for_day(seed, day, bbox)
    s, p = geom.shape if hasattr(geom, "shape") else geom.latitude.shape
    lonb = geom.longitude_bounds.reshape(-1, 4)
    latb = geom.latitude_bounds.reshape(-1, 4)
    weights = footprint_weights(lonb, latb, region_grid)
    valid = weights.coverage >= 1.0 - 1e-9
    idx = np.flatnonzero(valid)
    a, b = tm5_hybrid_coefficients()
    plat, plon = geom.latitude.ravel()[idx], geom.longitude.ravel()[idx]
    lat_up = era5_lat[::-1]
    sp = _bilinear(sp_hour[::-1][None], lat_up, era5_lon, plat, plon)[:, 0]
    tcc = _bilinear(tcc_hour[::-1][None], lat_up, era5_lon, plat, plon)[:, 0]
    conc = apply(weights, no2_s5p)[idx]
    albedo = apply(weights, albedo_map)[idx, 0]
    pmid = layer_pressures(a, b, sp).mean(axis=-1)
    air = air_partial_columns(a, b, sp)
    winter = float(winter_weight(np.datetime64(day.isoformat(), "h").astype(np.int64)))
    p_tp = 22000.0 + 600.0 * (plat - 50.0) + 1500.0 * winter
    tp = np.sum(pmid > p_tp[:, None], axis=-1) - 1
    strat = _stratosphere(pmid, air, tp)
    truth = partial_columns(conc, heights, sp, a, b) + strat
    tm5, tlat, tlon = _tm5_like(no2_s5p, region_grid, heights)
    prior = partial_columns(_bilinear(tm5, tlat, tlon, plat, plon), heights, sp, a, b) + strat
    rng = component_rng(seed, "s5p", "clouds", day.toordinal())
    cf = np.clip(0.9 * np.clip(tcc, 0, 1) ** 1.5 + rng.normal(0.0, 0.03, idx.size), 0.0, 1.0)
    cp = 85000.0 - 25000.0 * np.clip(tcc, 0, 1) + rng.normal(0.0, 3000.0, idx.size)
    sza = geom.solar_zenith_angle.ravel()[idx]
    vza = geom.viewing_zenith_angle.ravel()[idx]
    box = box_amf_model(pmid, sp, sza=sza, vza=vza, albedo=albedo, cloud_fraction=cf, cloud_pressure=cp)
    crf = cloud_radiance_fraction(cf, albedo)
    qa = np.select([crf < 0.3, crf < 0.5, crf < 0.8], [1.0, 0.84, 0.5], 0.2)

    def full(values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        out = np.full((s * p, *values.shape[1:]), fill, dtype=np.float64)
        out[idx] = values
        return out.reshape(s, p, *values.shape[1:])

    extra = {
        f"{names.INPUT_DATA}/surface_albedo_nitrogendioxide_window": full(albedo),
        f"{names.INPUT_DATA}/cloud_pressure_crb": full(cp),
        f"{names.INPUT_DATA}/surface_altitude": full(8434.0 * np.log(101325.0 / sp)),
        f"{names.DETAILED_RESULTS}/cloud_fraction_crb_nitrogendioxide_window": full(cf),
        f"{names.DETAILED_RESULTS}/cloud_radiance_fraction_nitrogendioxide_window": full(crf),
    }
    return Orbit(geometry=geom, orbit=orbit, valid=valid.reshape(s, p), box_amf=full(box),
                 apriori_tm5=full(prior), truth=full(truth), tropopause_index=full(tp, -1).astype(np.int64),
                 surface_pressure=full(sp), qa_value=full(qa), surface_no2=full(conc[:, 0]), extra=extra)
